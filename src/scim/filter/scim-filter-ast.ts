/** SCIM filter syntax tree and its errors: what the parser produces and the compiler consumes. */

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

export type ScimFilterErrorType = 'invalidFilter' | 'invalidPath';

/** 400 error carrying the SCIM `scimType`; to be folded into the domain error hierarchy. */
export class ScimFilterError extends Error {
  override readonly name = 'ScimFilterError';
  readonly status = 400;
  constructor(
    readonly scimType: ScimFilterErrorType,
    message: string,
    /** 0-based character offset in the input the error refers to, when known. */
    readonly position?: number,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------------------------------
// AST
// ---------------------------------------------------------------------------------------

export type CompareOp = 'eq' | 'ne' | 'co' | 'sw' | 'ew' | 'gt' | 'ge' | 'lt' | 'le';
export type CompValue = string | number | boolean | null;

/** An attribute path as written (names keep their original case; match them case-insensitively). */
export interface AttrPath {
  /** Schema URN prefix, e.g. `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`. */
  readonly uri?: string;
  readonly name: string;
  readonly subAttr?: string;
}

export interface CompareNode {
  readonly op: CompareOp;
  readonly attr: AttrPath;
  readonly value: CompValue;
}
export interface PresentNode {
  readonly op: 'pr';
  readonly attr: AttrPath;
}
export interface LogicalNode {
  readonly op: 'and' | 'or';
  /** Two or more operands (chains of the same operator are flattened). */
  readonly filters: readonly FilterAst[];
}
export interface NotNode {
  readonly op: 'not';
  readonly filter: FilterAst;
}
/** `attr[filter]`: the inner filter's attribute paths are relative to the elements of `attr`. */
export interface ValuePathNode {
  readonly op: 'valuePath';
  readonly attr: AttrPath;
  readonly filter: FilterAst;
}
export type FilterAst = CompareNode | PresentNode | LogicalNode | NotNode | ValuePathNode;

export const COMPARE_OPS: ReadonlySet<string> = new Set<CompareOp>(['eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le']);

export interface ParseLimits {
  /** Maximum input length in characters (default 4096). */
  readonly maxLength?: number;
  /** Maximum nesting of parentheses / not / value paths (default 32). */
  readonly maxDepth?: number;
  /** Maximum number of attribute expressions (default 100). */
  readonly maxTerms?: number;
}

export const DEFAULT_LIMITS: Required<ParseLimits> = { maxLength: 4096, maxDepth: 32, maxTerms: 100 };

export function formatAttrPath(p: AttrPath): string {
  return `${p.uri ? `${p.uri}:` : ''}${p.name}${p.subAttr ? `.${p.subAttr}` : ''}`;
}
