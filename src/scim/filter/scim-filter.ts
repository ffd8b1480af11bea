/**
 * SCIM 2.0 filter parsing (RFC 7644 §3.4.2.2) and compilation to a parametrised
 * PostgreSQL WHERE fragment.
 *
 * The parser is a small recursive-descent parser over a real tokenizer that follows the
 * RFC 7644 ABNF:
 *
 *   FILTER    = attrExp / logExp / valuePath / *1"not" "(" valFilter ")"
 *   valuePath = attrPath "[" valFilter "]"
 *   valFilter = attrExp / logExp / *1"not" "(" valFilter ")"
 *   attrExp   = (attrPath SP "pr") / (attrPath SP compareOp SP compValue)
 *   logExp    = FILTER SP ("and" / "or") SP FILTER
 *   compValue = false / null / true / number / string   ; JSON (RFC 7159)
 *   attrPath  = [URI ":"] ATTRNAME *1subAttr
 *   ATTRNAME  = ALPHA *(nameChar)                       ; plus "$ref" (RFC 7643 §2.1)
 *   subAttr   = "." ATTRNAME
 *
 * Precedence: not > and > or; parentheses group. Keywords, operators and attribute names
 * are case-insensitive. Extensions over the strict ABNF (common in the wild): any run of
 * whitespace separates tokens; `true`/`false`/`null` are accepted in any case; a value
 * path may be followed by a sub-attribute comparison (`emails[type eq "work"].value co
 * "@x.com"`), which is evaluated correlated (same element), i.e. as
 * `emails[type eq "work" and value co "@x.com"]`.
 *
 * Nothing here touches the database: `compileScimFilter` only produces SQL text whose
 * identifiers come from the trusted {@link ScimSqlSchema} and whose values are all bound
 * parameters.
 */

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

const DEFAULT_LIMITS: Required<ParseLimits> = { maxLength: 4096, maxDepth: 32, maxTerms: 100 };

export function formatAttrPath(p: AttrPath): string {
  return `${p.uri ? `${p.uri}:` : ''}${p.name}${p.subAttr ? `.${p.subAttr}` : ''}`;
}

// ---------------------------------------------------------------------------------------
// Tokenizer
// ---------------------------------------------------------------------------------------

type TokenType = 'word' | 'string' | 'number' | 'lparen' | 'rparen' | 'lbracket' | 'rbracket' | 'dot' | 'eof';

interface Token {
  readonly type: TokenType;
  /** Raw source text of the token. */
  readonly text: string;
  readonly pos: number;
  /** Decoded value for string and number tokens. */
  readonly value?: string | number;
}

const WORD_START = /[A-Za-z$]/;
const WORD_CHAR = /[A-Za-z0-9_.:$+-]/;
const NUMBER_RE = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const WHITESPACE = /[ \t\r\n]/;

function describe(t: Token): string {
  return t.type === 'eof' ? 'end of input' : `'${t.text}'`;
}

function tokenize(input: string, scimType: ScimFilterErrorType): Token[] {
  const tokens: Token[] = [];
  const fail = (msg: string, pos: number): never => {
    throw new ScimFilterError(scimType, `${msg} at position ${pos}`, pos);
  };
  let i = 0;
  while (i < input.length) {
    const c = input[i]!;
    if (WHITESPACE.test(c)) {
      i++;
      continue;
    }
    const single: Partial<Record<string, TokenType>> = {
      '(': 'lparen',
      ')': 'rparen',
      '[': 'lbracket',
      ']': 'rbracket',
      '.': 'dot',
    };
    const st = single[c];
    if (st) {
      tokens.push({ type: st, text: c, pos: i });
      i++;
      continue;
    }
    if (c === '"') {
      const start = i;
      i++;
      for (;;) {
        if (i >= input.length) fail('Unterminated string literal', start);
        const ch = input.charCodeAt(i);
        if (ch === 0x22) break;
        if (ch < 0x20) fail('Control character in string literal (must be escaped)', i);
        if (ch === 0x5c) {
          const e = input[i + 1];
          if (e === undefined) fail('Unterminated string literal', start);
          if (e === 'u') {
            if (!/^[0-9A-Fa-f]{4}$/.test(input.slice(i + 2, i + 6))) fail('Invalid \\u escape in string literal', i);
            i += 6;
          } else if (e !== undefined && '"\\/bfnrt'.includes(e)) {
            i += 2;
          } else {
            fail(`Invalid escape '\\${e}' in string literal (a backslash is written as \\\\)`, i);
          }
          continue;
        }
        i++;
      }
      const raw = input.slice(start, i + 1);
      tokens.push({ type: 'string', text: raw, pos: start, value: JSON.parse(raw) as string });
      i++;
      continue;
    }
    if (c === '-' || (c >= '0' && c <= '9')) {
      NUMBER_RE.lastIndex = i;
      const m = NUMBER_RE.exec(input);
      const raw = m?.[0] ?? '';
      const next = input[i + raw.length];
      if (!raw || raw === '-' || (next !== undefined && (WORD_CHAR.test(next) || next === '"'))) {
        let end = i + 1;
        while (end < input.length && (WORD_CHAR.test(input[end]!) || input[end] === '"')) end++;
        fail(`Invalid number '${input.slice(i, end)}'`, i);
      }
      const value = Number(raw);
      if (!Number.isFinite(value)) fail(`Number '${raw}' is out of range`, i);
      tokens.push({ type: 'number', text: raw, pos: i, value });
      i += raw.length;
      continue;
    }
    if (WORD_START.test(c)) {
      const start = i;
      while (i < input.length && WORD_CHAR.test(input[i]!)) i++;
      tokens.push({ type: 'word', text: input.slice(start, i), pos: start });
      continue;
    }
    fail(`Unexpected character '${c}'`, i);
  }
  tokens.push({ type: 'eof', text: '', pos: input.length });
  return tokens;
}

// ---------------------------------------------------------------------------------------
// Attribute paths
// ---------------------------------------------------------------------------------------

const ATTRNAME = '(?:\\$ref|[A-Za-z][A-Za-z0-9_-]*)';
const ATTR_RE = new RegExp(`^(${ATTRNAME})(?:\\.(${ATTRNAME}))?$`);
const ATTRNAME_RE = new RegExp(`^${ATTRNAME}$`);
const URI_RE = /^[A-Za-z][A-Za-z0-9+.-]*(?::[A-Za-z0-9_.+$-]+)+$/;

function parseAttrPathText(text: string, pos: number, scimType: ScimFilterErrorType): AttrPath {
  const colon = text.lastIndexOf(':');
  const uri = colon >= 0 ? text.slice(0, colon) : undefined;
  const rest = colon >= 0 ? text.slice(colon + 1) : text;
  if (uri !== undefined && !URI_RE.test(uri)) {
    throw new ScimFilterError(scimType, `Invalid schema URI '${uri}' in attribute path '${text}' at position ${pos}`, pos);
  }
  const m = ATTR_RE.exec(rest);
  if (!m) {
    throw new ScimFilterError(
      scimType,
      `Invalid attribute path '${text}' at position ${pos} (expected [schemaUrn:]attribute[.subAttribute])`,
      pos,
    );
  }
  return { ...(uri !== undefined ? { uri } : {}), name: m[1]!, ...(m[2] !== undefined ? { subAttr: m[2] } : {}) };
}

// ---------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------

/** Structured PATCH path (RFC 7644 §3.5.2: `PATH = attrPath / valuePath [subAttr]`). */
export interface PatchPathSyntax {
  readonly attr: AttrPath;
  readonly valueFilter?: FilterAst;
  /** Sub-attribute after `]` (`emails[type eq "work"].value`). */
  readonly subAttr?: string;
}

class Parser {
  private i = 0;
  private depth = 0;
  private terms = 0;
  private readonly tokens: Token[];
  private readonly limits: Required<ParseLimits>;

  constructor(
    input: string,
    /** scimType for structural errors; errors inside a value filter are always invalidFilter. */
    scimType: ScimFilterErrorType,
    limits: ParseLimits,
  ) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
    if (typeof input !== 'string' || input.trim() === '') {
      throw new ScimFilterError(scimType, scimType === 'invalidPath' ? 'Path is empty' : 'Filter is empty');
    }
    if (input.length > this.limits.maxLength) {
      throw new ScimFilterError(
        scimType,
        `${scimType === 'invalidPath' ? 'Path' : 'Filter'} is too long (${input.length} characters, maximum ${this.limits.maxLength})`,
      );
    }
    this.tokens = tokenize(input, scimType);
  }

  private peek(offset = 0): Token {
    return this.tokens[Math.min(this.i + offset, this.tokens.length - 1)]!;
  }

  private next(): Token {
    const t = this.peek();
    if (t.type !== 'eof') this.i++;
    return t;
  }

  private fail(msg: string, t: Token, scimType: ScimFilterErrorType = 'invalidFilter'): never {
    throw new ScimFilterError(scimType, `${msg} at position ${t.pos}`, t.pos);
  }

  private isKeyword(t: Token, kw: string): boolean {
    return t.type === 'word' && t.text.toLowerCase() === kw;
  }

  private expect(type: TokenType, what: string, scimType: ScimFilterErrorType = 'invalidFilter'): Token {
    const t = this.peek();
    if (t.type !== type) this.fail(`Expected ${what} but found ${describe(t)}`, t, scimType);
    return this.next();
  }

  private enter(t: Token): void {
    if (++this.depth > this.limits.maxDepth) {
      this.fail(`Filter is nested too deeply (maximum depth ${this.limits.maxDepth})`, t);
    }
  }

  parseFilter(): FilterAst {
    const ast = this.parseOr(false);
    const t = this.peek();
    if (t.type !== 'eof') {
      if (t.type === 'rparen') this.fail(`Unbalanced ')'`, t);
      if (t.type === 'rbracket') this.fail(`Unbalanced ']'`, t);
      this.fail(`Expected 'and', 'or' or end of filter but found ${describe(t)}`, t);
    }
    return ast;
  }

  parsePath(): PatchPathSyntax {
    const first = this.peek();
    if (first.type !== 'word') this.fail(`Expected an attribute path but found ${describe(first)}`, first, 'invalidPath');
    this.next();
    const attr = parseAttrPathText(first.text, first.pos, 'invalidPath');
    let valueFilter: FilterAst | undefined;
    let subAttr: string | undefined;
    if (this.peek().type === 'lbracket') {
      const lb = this.next();
      if (attr.subAttr !== undefined) {
        this.fail(`A value filter cannot follow the sub-attribute '${formatAttrPath(attr)}'`, lb, 'invalidPath');
      }
      this.enter(lb);
      valueFilter = this.parseOr(true);
      this.depth--;
      this.expect('rbracket', `']'`);
      if (this.peek().type === 'dot') subAttr = this.parseSubAttrAfterBracket('invalidPath');
    }
    const t = this.peek();
    if (t.type !== 'eof') this.fail(`Unexpected ${describe(t)} in path`, t, 'invalidPath');
    return { attr, ...(valueFilter ? { valueFilter } : {}), ...(subAttr !== undefined ? { subAttr } : {}) };
  }

  private parseSubAttrAfterBracket(scimType: ScimFilterErrorType): string {
    const dot = this.next();
    const prev = this.tokens[this.i - 2]!;
    const w = this.peek();
    if (prev.pos + 1 !== dot.pos || w.type !== 'word' || w.pos !== dot.pos + 1 || !ATTRNAME_RE.test(w.text)) {
      this.fail(`Expected a sub-attribute name immediately after '].'`, dot, scimType);
    }
    this.next();
    return w.text;
  }

  private parseOr(inValuePath: boolean): FilterAst {
    const filters = [this.parseAnd(inValuePath)];
    while (this.isKeyword(this.peek(), 'or')) {
      this.next();
      filters.push(this.parseAnd(inValuePath));
    }
    return filters.length === 1 ? filters[0]! : { op: 'or', filters };
  }

  private parseAnd(inValuePath: boolean): FilterAst {
    const filters = [this.parseUnary(inValuePath)];
    while (this.isKeyword(this.peek(), 'and')) {
      this.next();
      filters.push(this.parseUnary(inValuePath));
    }
    return filters.length === 1 ? filters[0]! : { op: 'and', filters };
  }

  private parseUnary(inValuePath: boolean): FilterAst {
    const t = this.peek();
    if (t.type === 'lparen') {
      this.next();
      this.enter(t);
      const inner = this.parseOr(inValuePath);
      this.depth--;
      this.expect('rparen', `')'`);
      return inner;
    }
    if (this.isKeyword(t, 'not')) {
      const n = this.peek(1);
      if (n.type === 'lparen') {
        this.next();
        this.next();
        this.enter(t);
        const inner = this.parseOr(inValuePath);
        this.depth--;
        this.expect('rparen', `')'`);
        return { op: 'not', filter: inner };
      }
      const isOperator =
        n.type === 'lbracket' || (n.type === 'word' && (COMPARE_OPS.has(n.text.toLowerCase()) || n.text.toLowerCase() === 'pr'));
      if (!isOperator) this.fail(`'not' must be followed by a parenthesised filter: not (...)`, t);
    }
    if (t.type === 'word') return this.parseAttrExp(inValuePath);
    if (t.type === 'eof') this.fail('Unexpected end of filter, expected an attribute expression', t);
    this.fail(`Expected an attribute path, '(' or 'not' but found ${describe(t)}`, t);
  }

  private parseAttrExp(inValuePath: boolean): FilterAst {
    const pathTok = this.next();
    const attr = parseAttrPathText(pathTok.text, pathTok.pos, 'invalidFilter');
    if (this.peek().type === 'lbracket') {
      const lb = this.next();
      if (inValuePath) this.fail('Value paths cannot be nested', lb);
      if (attr.subAttr !== undefined) {
        this.fail(`A value filter cannot follow the sub-attribute '${formatAttrPath(attr)}'`, lb);
      }
      this.enter(lb);
      const inner = this.parseOr(true);
      this.depth--;
      this.expect('rbracket', `']'`);
      if (this.peek().type === 'dot') {
        // emails[type eq "work"].value co "x": correlated sub-attribute condition.
        const sub = this.parseSubAttrAfterBracket('invalidFilter');
        const subExp = this.parseOperatorAndValue({ name: sub }, pathTok);
        const filters = inner.op === 'and' ? [...inner.filters, subExp] : [inner, subExp];
        return { op: 'valuePath', attr, filter: { op: 'and', filters } };
      }
      return { op: 'valuePath', attr, filter: inner };
    }
    return this.parseOperatorAndValue(attr, pathTok);
  }

  private parseOperatorAndValue(attr: AttrPath, pathTok: Token): FilterAst {
    if (++this.terms > this.limits.maxTerms) {
      this.fail(`Filter has too many expressions (maximum ${this.limits.maxTerms})`, pathTok);
    }
    const opTok = this.peek();
    const op = opTok.type === 'word' ? opTok.text.toLowerCase() : '';
    if (op === 'pr') {
      this.next();
      return { op: 'pr', attr };
    }
    if (!COMPARE_OPS.has(op)) {
      this.fail(
        `Expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after '${formatAttrPath(attr)}' but found ${describe(opTok)}`,
        opTok,
      );
    }
    this.next();
    const v = this.peek();
    let value: CompValue;
    if (v.type === 'string' || v.type === 'number') {
      value = v.value!;
    } else if (v.type === 'word' && ['true', 'false', 'null'].includes(v.text.toLowerCase())) {
      const w = v.text.toLowerCase();
      value = w === 'null' ? null : w === 'true';
    } else if (v.type === 'eof') {
      this.fail(`Missing value after '${formatAttrPath(attr)} ${op}'`, v);
    } else {
      this.fail(`Expected a value (a "double-quoted" string, a number, true, false or null) after '${op}' but found ${describe(v)}`, v);
    }
    this.next();
    return { op: op as CompareOp, attr, value };
  }
}

/** Parse a SCIM filter expression; throws {@link ScimFilterError} (`invalidFilter`). */
export function parseScimFilter(text: string, limits: ParseLimits = {}): FilterAst {
  return new Parser(text, 'invalidFilter', limits).parseFilter();
}

/**
 * @internal Syntax of a PATCH path; use `parseScimPath` from `./scim-path.js`.
 * Structural errors are `invalidPath`, errors inside `[...]` are `invalidFilter` (RFC 7644 §3.12).
 */
export function parsePatchPathSyntax(text: string, limits: ParseLimits = {}): PatchPathSyntax {
  return new Parser(text, 'invalidPath', { maxLength: 1024, ...limits }).parsePath();
}

// ---------------------------------------------------------------------------------------
// SQL schema description
// ---------------------------------------------------------------------------------------

/**
 * SCIM attribute types (RFC 7643 §2.3) as far as filtering needs them, plus `uuid` for a
 * string attribute stored in a Postgres `uuid` column (e.g. `id`).
 */
export type ScimAttributeType = 'string' | 'reference' | 'boolean' | 'integer' | 'decimal' | 'dateTime' | 'uuid';

export interface ScimValueType {
  readonly type: ScimAttributeType;
  /** Strings only. false (the SCIM default) compares via lower() on both sides. */
  readonly caseExact?: boolean;
}

/**
 * A single-valued attribute (or sub-attribute of a single-valued complex attribute, e.g.
 * `name.givenName`) read from a SQL expression of the row.
 */
export interface ScimColumnMapping extends ScimValueType {
  readonly kind: 'column';
  /**
   * Trusted SQL expression yielding the typed value: a column (`user_name`, `u.user_name`)
   * or an expression (`(enterprise ->> 'employeeNumber')`). Index it as it is compared:
   * `lower(expr)` for case-insensitive strings, `expr` otherwise.
   */
  readonly sql: string;
}

/**
 * A multi-valued attribute stored as a jsonb array in a column of the row: either of
 * objects (complex, e.g. emails `[{value,type,primary}]`) or of strings (simple).
 */
export interface ScimJsonArrayMapping {
  readonly kind: 'jsonArray';
  /** Trusted jsonb column expression; must hold NULL or a JSON array. */
  readonly column: string;
  /**
   * Optional jsonb column holding `lower(column::text)::jsonb` (e.g. a STORED generated
   * column) with a GIN index: lets case-insensitive `eq` use containment (`@>`).
   */
  readonly lowercaseColumn?: string;
  /** Complex elements: JSON key (canonical spelling) → type. Mutually exclusive with `element`. */
  readonly subAttributes?: Readonly<Record<string, ScimValueType>>;
  /** Simple elements (strings only). */
  readonly element?: ScimValueType;
  /** Sub-attribute used when none is given (`emails co "x"`); default `value`. */
  readonly defaultSubAttribute?: string;
}

/** A multi-valued attribute stored in a child table (e.g. group members). */
export interface ScimTableMapping {
  readonly kind: 'table';
  /** Trusted table name. */
  readonly table: string;
  /** Column of the child table referencing the parent row. */
  readonly foreignKey: string;
  /** Trusted SQL expression of the parent row's key (`g.id`). */
  readonly parentKey: string;
  /** Sub-attribute → column of the child table (unqualified) and type. */
  readonly subAttributes: Readonly<Record<string, ScimValueType & { readonly column: string }>>;
  readonly defaultSubAttribute?: string;
}

export type ScimAttributeMapping = ScimColumnMapping | ScimJsonArrayMapping | ScimTableMapping;

/**
 * How one resource type's SCIM attributes map to SQL.
 *
 * Keys of `attributes`: core attributes by path (`userName`, `name.givenName`,
 * `meta.lastModified`, `emails`); extension attributes by their full URN-prefixed path
 * (`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber`). Keys are
 * matched case-insensitively; attributes absent from the map are rejected (`invalidFilter`).
 */
export interface ScimSqlSchema {
  /** Resource type name used in messages (`User`). */
  readonly resourceType: string;
  /** Core schema URN (`urn:ietf:params:scim:schemas:core:2.0:User`). */
  readonly schema: string;
  readonly attributes: Readonly<Record<string, ScimAttributeMapping>>;
}

const VALID_TYPES: ReadonlySet<string> = new Set<ScimAttributeType>([
  'string',
  'reference',
  'boolean',
  'integer',
  'decimal',
  'dateTime',
  'uuid',
]);

/** Validates a schema description once (at module load) and returns it unchanged. */
export function defineScimSqlSchema<S extends ScimSqlSchema>(schema: S): S {
  const bad = (msg: string): never => {
    throw new Error(`Invalid ScimSqlSchema '${schema.resourceType}': ${msg}`);
  };
  if (!URI_RE.test(schema.schema)) bad(`bad core schema URN '${schema.schema}'`);
  const seen = new Set<string>();
  const checkType = (where: string, t: ScimValueType, json: boolean): void => {
    if (!VALID_TYPES.has(t.type)) bad(`${where}: unknown type '${t.type}'`);
    if (json && t.type === 'uuid') bad(`${where}: 'uuid' is only valid for columns; use 'string'`);
  };
  for (const [key, m] of Object.entries(schema.attributes)) {
    const lower = key.toLowerCase();
    if (seen.has(lower)) bad(`duplicate attribute '${key}'`);
    seen.add(lower);
    try {
      parseAttrPathText(key, 0, 'invalidFilter');
    } catch {
      bad(`bad attribute key '${key}'`);
    }
    if (m.kind === 'column') {
      checkType(key, m, false);
    } else if (m.kind === 'jsonArray') {
      if ((m.subAttributes === undefined) === (m.element === undefined)) bad(`${key}: give exactly one of subAttributes / element`);
      if (m.element && m.element.type !== 'string' && m.element.type !== 'reference') bad(`${key}: simple elements must be strings`);
      for (const [s, t] of Object.entries(m.subAttributes ?? {})) {
        if (!ATTRNAME_RE.test(s)) bad(`${key}: bad sub-attribute '${s}'`);
        checkType(`${key}.${s}`, t, true);
      }
    } else if (m.kind === 'table') {
      for (const [s, t] of Object.entries(m.subAttributes)) {
        if (!ATTRNAME_RE.test(s)) bad(`${key}: bad sub-attribute '${s}'`);
        checkType(`${key}.${s}`, t, false);
      }
    } else {
      bad(`${key}: unknown mapping kind`);
    }
  }
  return schema;
}

// ---------------------------------------------------------------------------------------
// Compiler
// ---------------------------------------------------------------------------------------

export interface CompileOptions {
  /** Number of parameters already used by the enclosing query: the first placeholder is `$<paramOffset+1>`. */
  readonly paramOffset?: number;
}

export interface CompiledFilter {
  /** Self-contained boolean SQL expression (safe to AND with other conditions). */
  readonly sql: string;
  readonly params: unknown[];
}

interface SchemaIndex {
  readonly core: string;
  readonly extensions: ReadonlySet<string>;
  readonly byKey: ReadonlyMap<string, { readonly key: string; readonly mapping: ScimAttributeMapping }>;
}

const schemaIndexes = new WeakMap<ScimSqlSchema, SchemaIndex>();

function indexSchema(schema: ScimSqlSchema): SchemaIndex {
  let idx = schemaIndexes.get(schema);
  if (!idx) {
    const byKey = new Map<string, { key: string; mapping: ScimAttributeMapping }>();
    const extensions = new Set<string>();
    for (const [key, mapping] of Object.entries(schema.attributes)) {
      const lower = key.toLowerCase();
      byKey.set(lower, { key, mapping });
      const colon = lower.lastIndexOf(':');
      if (colon >= 0) extensions.add(lower.slice(0, colon));
    }
    idx = { core: schema.schema.toLowerCase(), extensions, byKey };
    schemaIndexes.set(schema, idx);
  }
  return idx;
}

/** A typed SQL value expression of the row or of an element. */
interface ScalarTarget {
  readonly kind: 'scalar';
  readonly label: string;
  readonly sql: string;
  readonly vt: ScimValueType;
  /** Present for jsonb element sub-attributes: the jsonb (not text) expression. */
  readonly jsonb?: string;
}

interface MultiTarget {
  readonly kind: 'multi';
  readonly label: string;
  readonly mapping: ScimJsonArrayMapping | ScimTableMapping;
  readonly subAttr?: string;
}

interface ComplexTarget {
  readonly kind: 'complex';
  readonly label: string;
  /** Lowercased key prefix including the trailing dot, e.g. `name.`. */
  readonly prefix: string;
}

type Target = ScalarTarget | MultiTarget | ComplexTarget;

/** Resolves attribute paths of the current scope. */
type Resolver = (p: AttrPath) => Target;

const STRINGY: ReadonlySet<ScimAttributeType> = new Set(['string', 'reference']);

function sqlString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (m) => `\\${m}`);
}

const DATE_TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})?$/i;

function isDateTime(s: string): boolean {
  if (!DATE_TIME_RE.test(s)) return false;
  return !Number.isNaN(Date.parse(/(?:Z|[+-]\d{2}:\d{2})$/i.test(s) ? s : `${s}Z`));
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

class Compiler {
  readonly params: unknown[] = [];
  private aliasCounter = 0;

  constructor(
    private readonly schema: ScimSqlSchema,
    private readonly offset: number,
  ) {}

  private param(v: unknown): string {
    this.params.push(v);
    return `$${this.offset + this.params.length}`;
  }

  private error(msg: string): never {
    throw new ScimFilterError('invalidFilter', msg);
  }

  // ----- resolution -----------------------------------------------------------------

  readonly rootResolver: Resolver = (p) => {
    const idx = indexSchema(this.schema);
    const label = formatAttrPath(p);
    const prefixes: string[] = [];
    if (p.uri !== undefined) {
      const u = p.uri.toLowerCase();
      if (u === idx.core) prefixes.push('');
      else if (idx.extensions.has(u)) prefixes.push(`${u}:`);
      else this.error(`Unknown schema '${p.uri}' in attribute '${label}' for resource type ${this.schema.resourceType}`);
    } else {
      prefixes.push('', ...[...idx.extensions].map((e) => `${e}:`));
    }
    const name = p.name.toLowerCase();
    const sub = p.subAttr?.toLowerCase();
    for (const prefix of prefixes) {
      const full = `${prefix}${name}${sub !== undefined ? `.${sub}` : ''}`;
      const hit = idx.byKey.get(full);
      if (hit) {
        if (hit.mapping.kind === 'column') return { kind: 'scalar', label, sql: hit.mapping.sql, vt: hit.mapping };
        return { kind: 'multi', label, mapping: hit.mapping };
      }
      if (sub !== undefined) {
        const parent = idx.byKey.get(`${prefix}${name}`);
        if (parent && parent.mapping.kind !== 'column') {
          const parentLabel = formatAttrPath({ ...(p.uri !== undefined ? { uri: p.uri } : {}), name: p.name });
          return { kind: 'multi', label: parentLabel, mapping: parent.mapping, subAttr: p.subAttr! };
        }
        if (parent) break;
      } else {
        const complexPrefix = `${prefix}${name}.`;
        for (const k of idx.byKey.keys()) {
          if (k.startsWith(complexPrefix)) return { kind: 'complex', label, prefix: complexPrefix };
        }
      }
    }
    this.error(`Unknown attribute '${label}' for resource type ${this.schema.resourceType}`);
  };

  private complexResolver(parent: ComplexTarget): Resolver {
    return (p) => {
      if (p.uri !== undefined || p.subAttr !== undefined) {
        this.error(`Invalid sub-attribute '${formatAttrPath(p)}' in filter on '${parent.label}'`);
      }
      const hit = indexSchema(this.schema).byKey.get(`${parent.prefix}${p.name.toLowerCase()}`);
      if (!hit || hit.mapping.kind !== 'column') this.error(`Unknown sub-attribute '${p.name}' of '${parent.label}'`);
      return { kind: 'scalar', label: `${parent.label}.${p.name}`, sql: hit.mapping.sql, vt: hit.mapping };
    };
  }

  /** Resolves a sub-attribute name of a multi-valued attribute to its canonical key. */
  private subKey(m: MultiTarget['mapping'], label: string, sub: string): string {
    const s = sub.toLowerCase();
    const key = Object.keys(m.subAttributes ?? {}).find((k) => k.toLowerCase() === s);
    if (key === undefined) this.error(`Unknown sub-attribute '${sub}' of '${label}'`);
    return key;
  }

  private elementResolver(m: MultiTarget['mapping'], label: string, alias: string): Resolver {
    return (p) => {
      if (p.uri !== undefined || p.subAttr !== undefined) {
        this.error(`Invalid sub-attribute '${formatAttrPath(p)}' in filter on '${label}'`);
      }
      const slabel = `${label}.${p.name}`;
      if (m.kind === 'table') {
        const key = this.subKey(m, label, p.name);
        const sa = m.subAttributes[key]!;
        return { kind: 'scalar', label: slabel, sql: `${alias}.${sa.column}`, vt: sa };
      }
      if (m.element) {
        // Simple multi-valued attribute: the element itself is addressed as `value`.
        if (p.name.toLowerCase() !== 'value') this.error(`Unknown sub-attribute '${p.name}' of '${label}'`);
        return { kind: 'scalar', label: slabel, sql: `${alias}.v`, vt: m.element };
      }
      const key = this.subKey(m, label, p.name);
      const vt = m.subAttributes![key]!;
      const k = sqlString(key);
      return { kind: 'scalar', label: slabel, sql: `${alias}.v ->> ${k}`, vt, jsonb: `${alias}.v -> ${k}` };
    };
  }

  // ----- compilation ----------------------------------------------------------------

  /**
   * @param negated true under an odd number of NOTs: predicates must then be two-valued
   * (never NULL) so that NOT gives SCIM semantics for absent attributes.
   */
  compile(node: FilterAst, resolve: Resolver, negated: boolean): string {
    switch (node.op) {
      case 'and':
      case 'or':
        return `(${node.filters.map((f) => this.compile(f, resolve, negated)).join(node.op === 'and' ? ' AND ' : ' OR ')})`;
      case 'not':
        return `NOT (${this.compile(node.filter, resolve, !negated)})`;
      case 'valuePath':
        return this.compileValuePath(node, resolve, negated);
      default:
        return this.compileTargetPredicate(resolve(node.attr), node, negated);
    }
  }

  private compileValuePath(node: ValuePathNode, resolve: Resolver, negated: boolean): string {
    const target = resolve(node.attr);
    if (target.kind === 'complex') return this.compile(node.filter, this.complexResolver(target), negated);
    if (target.kind === 'scalar') this.error(`'${target.label}' is not a complex or multi-valued attribute; it cannot take a [filter]`);
    if (target.subAttr !== undefined) this.error(`A value filter cannot follow the sub-attribute '${target.label}'`);
    return this.exists(target, node.filter, negated);
  }

  private compileTargetPredicate(target: Target, node: CompareNode | PresentNode, negated: boolean): string {
    if (target.kind === 'scalar') return this.scalarPredicate(target, node, negated);
    if (target.kind === 'complex') {
      if (node.op === 'pr' || (node.value === null && (node.op === 'eq' || node.op === 'ne'))) {
        const subs = [...indexSchema(this.schema).byKey.entries()]
          .filter(([k, v]) => k.startsWith(target.prefix) && v.mapping.kind === 'column')
          .map(([, v]) =>
            this.scalarPredicate(
              { kind: 'scalar', label: v.key, sql: (v.mapping as ScimColumnMapping).sql, vt: v.mapping as ScimColumnMapping },
              { op: 'pr', attr: node.attr },
              false,
            ),
          );
        const any = subs.length === 1 ? subs[0]! : `(${subs.join(' OR ')})`;
        return node.op === 'eq' ? `NOT (${any})` : any;
      }
      this.error(
        `'${target.label}' is a complex attribute; filter on one of its sub-attributes (e.g. '${target.label}.<sub> ${node.op} ...')`,
      );
    }
    // Multi-valued.
    const m = target.mapping;
    if (target.subAttr === undefined && (node.op === 'pr' || (node.value === null && (node.op === 'eq' || node.op === 'ne')))) {
      return this.multiPresent(m, node.op !== 'eq');
    }
    let sub = target.subAttr;
    if (sub === undefined) {
      if (m.kind === 'jsonArray' && m.element) sub = 'value';
      else sub = m.defaultSubAttribute ?? 'value';
    }
    const inner: FilterAst = { ...node, attr: { name: sub } };
    return this.exists(target, inner, negated);
  }

  /** Whether a multi-valued attribute has any value (`present`) or none. Two-valued. */
  private multiPresent(m: MultiTarget['mapping'], present: boolean): string {
    if (m.kind === 'table') {
      const a = this.alias();
      return `${present ? '' : 'NOT '}EXISTS (SELECT 1 FROM ${m.table} AS ${a} WHERE ${a}.${m.foreignKey} = ${m.parentKey})`;
    }
    return present
      ? `(${m.column} IS NOT NULL AND jsonb_array_length(${m.column}) > 0)`
      : `(${m.column} IS NULL OR jsonb_array_length(${m.column}) = 0)`;
  }

  private alias(): string {
    return `se${++this.aliasCounter}`;
  }

  /** `EXISTS (...)` over the elements of a multi-valued attribute, or jsonb containment. */
  private exists(target: MultiTarget, filter: FilterAst, negated: boolean): string {
    const m = target.mapping;
    if (m.kind === 'jsonArray') {
      const contained = this.tryContainment(m, filter);
      if (contained !== undefined) {
        return negated ? `(${contained.column} IS NOT NULL AND ${contained.sql})` : contained.sql;
      }
    }
    const a = this.alias();
    const cond = this.compile(filter, this.elementResolver(m, target.label, a), false);
    if (m.kind === 'table') {
      return `EXISTS (SELECT 1 FROM ${m.table} AS ${a} WHERE ${a}.${m.foreignKey} = ${m.parentKey} AND ${cond})`;
    }
    const fn = m.element ? 'jsonb_array_elements_text' : 'jsonb_array_elements';
    return `EXISTS (SELECT 1 FROM ${fn}(${m.column}) AS ${a}(v) WHERE ${cond})`;
  }

  /**
   * A conjunction of `eq` comparisons with non-null values on distinct sub-attributes can be
   * answered by `col @> '[{...}]'` (GIN-indexable, still correlated to a single element).
   */
  private tryContainment(m: ScimJsonArrayMapping, filter: FilterAst): { sql: string; column: string } | undefined {
    const leaves = filter.op === 'and' ? filter.filters : [filter];
    const obj: Record<string, CompValue> = {};
    let simple: CompValue | undefined;
    let exactStrings = false;
    let ciStrings = false;
    for (const leaf of leaves) {
      if (leaf.op !== 'eq' || leaf.value === null || leaf.attr.uri !== undefined || leaf.attr.subAttr !== undefined) return undefined;
      let vt: ScimValueType;
      if (m.element) {
        if (leaf.attr.name.toLowerCase() !== 'value' || leaves.length !== 1) return undefined;
        vt = m.element;
        simple = leaf.value;
      } else {
        const s = leaf.attr.name.toLowerCase();
        const key = Object.keys(m.subAttributes!).find((k) => k.toLowerCase() === s);
        if (key === undefined || key in obj) return undefined;
        vt = m.subAttributes![key]!;
        obj[key] = leaf.value;
      }
      const v = leaf.value;
      if (STRINGY.has(vt.type)) {
        if (typeof v !== 'string') return undefined;
        if (vt.caseExact) exactStrings = true;
        else ciStrings = true;
      } else if (vt.type === 'boolean') {
        if (typeof v !== 'boolean') return undefined;
      } else if (vt.type === 'integer' || vt.type === 'decimal') {
        if (typeof v !== 'number' || (vt.type === 'integer' && !Number.isInteger(v))) return undefined;
      } else {
        return undefined;
      }
    }
    const json = JSON.stringify([m.element ? simple : obj]);
    if (ciStrings) {
      if (exactStrings || m.lowercaseColumn === undefined) return undefined;
      return { sql: `${m.lowercaseColumn} @> lower(${this.param(json)})::jsonb`, column: m.lowercaseColumn };
    }
    return { sql: `${m.column} @> ${this.param(json)}::jsonb`, column: m.column };
  }

  private scalarPredicate(t: ScalarTarget, node: CompareNode | PresentNode, negated: boolean): string {
    const { type } = t.vt;
    const stringy = STRINGY.has(type);
    // RFC 7643 §2.5: unassigned, null and "" are equivalent; `pr` is "has a non-empty value".
    const present = stringy ? `(${t.sql} IS NOT NULL AND ${t.sql} <> '')` : `${t.sql} IS NOT NULL`;
    const absent = stringy ? `(${t.sql} IS NULL OR ${t.sql} = '')` : `${t.sql} IS NULL`;
    if (node.op === 'pr') return present;
    const { op, value } = node;
    if (value === null) {
      if (op === 'eq') return absent;
      if (op === 'ne') return present;
      this.error(`Operator '${op}' cannot be used with null (attribute '${t.label}')`);
    }
    const guard = (expr: string): string => (negated ? `(${t.sql} IS NOT NULL AND ${expr})` : expr);
    const sqlOp = { eq: '=', ne: '<>', gt: '>', ge: '>=', lt: '<', le: '<=' } as const;
    const mismatch: (expected: string) => never = (expected) =>
      this.error(`Attribute '${t.label}' is of type ${type}; '${op}' needs ${expected}, got ${JSON.stringify(value)}`);

    if (stringy || type === 'uuid') {
      if (typeof value !== 'string') mismatch('a "quoted" string');
      if (type === 'uuid') {
        if (op === 'eq' || op === 'ne') {
          if (!UUID_RE.test(value)) return op === 'eq' ? 'FALSE' : 'TRUE';
          const p = this.param(value.toLowerCase());
          return op === 'eq' ? guard(`${t.sql} = ${p}`) : `${t.sql} IS DISTINCT FROM ${p}`;
        }
        const text = `(${t.sql})::text`;
        return guard(this.stringOp(text, op, value.toLowerCase(), false));
      }
      const ci = !t.vt.caseExact;
      if (op === 'ne') {
        const col = ci ? `lower(${t.sql})` : t.sql;
        const p = this.param(value);
        return `(${t.sql} IS NULL OR ${col} <> ${ci ? `lower(${p})` : p})`;
      }
      return guard(this.stringOp(t.sql, op, value, ci));
    }
    if (type === 'boolean') {
      if (op !== 'eq' && op !== 'ne') this.error(`Operator '${op}' is not supported for boolean attribute '${t.label}'`);
      if (typeof value !== 'boolean') mismatch('true or false');
      if (t.jsonb) {
        const p = `${this.param(JSON.stringify(value))}::jsonb`;
        return op === 'eq' ? guard(`${t.jsonb} = ${p}`) : `${t.jsonb} IS DISTINCT FROM ${p}`;
      }
      const p = this.param(value);
      return op === 'eq' ? guard(`${t.sql} = ${p}`) : `${t.sql} IS DISTINCT FROM ${p}`;
    }
    if (op === 'co' || op === 'sw' || op === 'ew') {
      this.error(`Operator '${op}' is only supported for string attributes; '${t.label}' is of type ${type}`);
    }
    if (type === 'integer' || type === 'decimal') {
      if (typeof value !== 'number') mismatch('a number');
      if (type === 'integer' && !Number.isInteger(value)) mismatch('an integer');
      if (t.jsonb) {
        const p = `${this.param(JSON.stringify(value))}::jsonb`;
        const typed = `jsonb_typeof(${t.jsonb}) = 'number'`;
        return op === 'ne' ? `${t.jsonb} IS DISTINCT FROM ${p}` : guard(`(${typed} AND ${t.jsonb} ${sqlOp[op]} ${p})`);
      }
      const p = this.param(value);
      return op === 'ne' ? `${t.sql} IS DISTINCT FROM ${p}` : guard(`${t.sql} ${sqlOp[op]} ${p}`);
    }
    // dateTime
    if (typeof value !== 'string' || !isDateTime(value)) mismatch('an RFC 3339 date-time string such as "2011-05-13T04:42:34Z"');
    const normalized = /(?:Z|[+-]\d{2}:\d{2})$/i.test(value) ? value : `${value}Z`;
    const expr = t.jsonb ? `(${t.sql})::timestamptz` : t.sql;
    const p = `${this.param(normalized)}::timestamptz`;
    return op === 'ne' ? `${expr} IS DISTINCT FROM ${p}` : guard(`${expr} ${sqlOp[op]} ${p}`);
  }

  private stringOp(col: string, op: Exclude<CompareOp, 'ne'>, value: string, ci: boolean): string {
    const l = (x: string): string => (ci ? `lower(${x})` : x);
    switch (op) {
      case 'co':
        return `${l(col)} LIKE ${l(this.param(`%${escapeLike(value)}%`))}`;
      case 'sw':
        return `${l(col)} LIKE ${l(this.param(`${escapeLike(value)}%`))}`;
      case 'ew':
        return `${l(col)} LIKE ${l(this.param(`%${escapeLike(value)}`))}`;
      default: {
        const sqlOp = { eq: '=', gt: '>', ge: '>=', lt: '<', le: '<=' }[op];
        return `${l(col)} ${sqlOp} ${l(this.param(value))}`;
      }
    }
  }
}

/**
 * Compile a parsed filter to a parametrised PostgreSQL boolean expression.
 * Throws {@link ScimFilterError} (`invalidFilter`) for unknown attributes, unsupported
 * operator/type combinations and type mismatches.
 */
export function compileScimFilter(ast: FilterAst, schema: ScimSqlSchema, options: CompileOptions = {}): CompiledFilter {
  const offset = options.paramOffset ?? 0;
  if (!Number.isInteger(offset) || offset < 0) throw new RangeError('paramOffset must be a non-negative integer');
  const c = new Compiler(schema, offset);
  const sql = c.compile(ast, c.rootResolver, false);
  return { sql, params: c.params };
}
