/**
 * SCIM PATCH `path` parsing (RFC 7644 §3.5.2) and in-memory evaluation of value filters
 * against ONE resource (or one element of a multi-valued attribute).
 *
 *   PATH = attrPath / valuePath [subAttr]
 *
 * Examples: `members`, `name.familyName`, `emails[type eq "work"].value`,
 * `members[value eq "2819c223-..."]`,
 * `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber`.
 */
import {
  type AttrPath,
  type CompValue,
  type FilterAst,
  type ParseLimits,
  ScimFilterError,
  formatAttrPath,
  parsePatchPathSyntax,
} from './scim-filter.js';

export interface ScimPath {
  /** Schema URN prefix as written, if any. */
  readonly uri?: string;
  /** Top-level attribute name as written (`emails`, `name`, `employeeNumber`). */
  readonly attribute: string;
  /**
   * Sub-attribute as written: `name.familyName` → `familyName`;
   * `emails[type eq "work"].value` → `value`.
   */
  readonly subAttribute?: string;
  /** Filter selecting elements of a multi-valued attribute (`emails[type eq "work"]`). */
  readonly valueFilter?: FilterAst;
}

/**
 * Parse a PATCH `path`. Throws {@link ScimFilterError}: `invalidPath` for a malformed path,
 * `invalidFilter` for a malformed filter inside `[...]` (RFC 7644 §3.12).
 */
export function parseScimPath(text: string, limits: ParseLimits = {}): ScimPath {
  const syntax = parsePatchPathSyntax(text, limits);
  const subAttribute = syntax.subAttr ?? syntax.attr.subAttr;
  return {
    ...(syntax.attr.uri !== undefined ? { uri: syntax.attr.uri } : {}),
    attribute: syntax.attr.name,
    ...(subAttribute !== undefined ? { subAttribute } : {}),
    ...(syntax.valueFilter ? { valueFilter: syntax.valueFilter } : {}),
  };
}

export function formatScimPath(p: ScimPath): string {
  if (p.valueFilter) {
    return `${formatAttrPath({ ...(p.uri !== undefined ? { uri: p.uri } : {}), name: p.attribute })}[…]${p.subAttribute !== undefined ? `.${p.subAttribute}` : ''}`;
  }
  return formatAttrPath({
    ...(p.uri !== undefined ? { uri: p.uri } : {}),
    name: p.attribute,
    ...(p.subAttribute !== undefined ? { subAttr: p.subAttribute } : {}),
  });
}

export { ScimFilterError };

// ---------------------------------------------------------------------------------------
// In-memory evaluation
// ---------------------------------------------------------------------------------------

export interface MatchOptions {
  /**
   * Whether string comparisons on an attribute are case-sensitive. Receives the attribute
   * path as written in the filter (`value`, `emails.type`, `urn:…:employeeNumber`).
   * Default: case-insensitive everywhere (the SCIM default, caseExact=false).
   */
  readonly caseExact?: (attrPath: string) => boolean;
  /**
   * Path of the object being evaluated when it is an element of a multi-valued attribute
   * (e.g. `members` when testing `value eq "…"` against one member); prefixed to the paths
   * passed to `caseExact`. Inside `attr[...]` the scope is extended automatically.
   */
  readonly scope?: string;
}

type Json = unknown;

function isObject(v: Json): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function getProp(obj: Json, name: string): Json {
  if (!isObject(obj)) return undefined;
  if (Object.prototype.hasOwnProperty.call(obj, name)) return obj[name];
  const lower = name.toLowerCase();
  for (const k of Object.keys(obj)) if (k.toLowerCase() === lower) return obj[k];
  return undefined;
}

function isPresent(v: Json): boolean {
  if (v === undefined || v === null || v === '') return false;
  if (Array.isArray(v)) return v.some(isPresent);
  if (isObject(v)) return Object.values(v).some(isPresent);
  return true;
}

/** Resolve `attr` against `obj`: the container holding the attribute (URN extension or core). */
function baseFor(obj: Json, attr: AttrPath): Json {
  if (attr.uri === undefined) return obj;
  const ext = getProp(obj, attr.uri);
  return isObject(ext) ? ext : obj;
}

/**
 * Values addressed by an attribute path, plus whether the attribute is multi-valued (an
 * array): multi-valued attributes match if ANY value matches (and never when empty).
 */
function valuesOf(obj: Json, attr: AttrPath, defaultSub: boolean): { values: Json[]; multi: boolean } {
  // A primitive element of a simple multi-valued attribute is addressed as `value`.
  if (
    !isObject(obj) &&
    !Array.isArray(obj) &&
    attr.uri === undefined &&
    attr.subAttr === undefined &&
    attr.name.toLowerCase() === 'value'
  ) {
    return { values: [obj], multi: false };
  }
  const top = getProp(baseFor(obj, attr), attr.name);
  if (attr.subAttr === undefined) {
    if (!Array.isArray(top)) return { values: top === undefined ? [] : [top], multi: false };
    // Comparing a multi-valued complex attribute itself compares its `value` sub-attribute.
    return { values: defaultSub ? top.map((e) => (isObject(e) ? getProp(e, 'value') : e)) : top, multi: true };
  }
  if (Array.isArray(top)) {
    return {
      values: top.flatMap((e) => {
        const v = getProp(e, attr.subAttr!);
        return Array.isArray(v) ? v : [v];
      }),
      multi: true,
    };
  }
  const v = getProp(top, attr.subAttr);
  return Array.isArray(v) ? { values: v, multi: true } : { values: v === undefined ? [] : [v], multi: false };
}

const DATE_TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/i;

function compareOne(op: string, actual: Json, expected: Exclude<CompValue, null>, caseExact: boolean): boolean {
  if (typeof expected === 'boolean') {
    if (typeof actual !== 'boolean') return op === 'ne';
    if (op === 'eq') return actual === expected;
    if (op === 'ne') return actual !== expected;
    return false;
  }
  if (typeof expected === 'number') {
    if (typeof actual !== 'number') return op === 'ne';
    switch (op) {
      case 'eq':
        return actual === expected;
      case 'ne':
        return actual !== expected;
      case 'gt':
        return actual > expected;
      case 'ge':
        return actual >= expected;
      case 'lt':
        return actual < expected;
      case 'le':
        return actual <= expected;
      default:
        return false;
    }
  }
  if (typeof actual !== 'string') return op === 'ne';
  let a: string | number = actual;
  let e: string | number = expected;
  if (DATE_TIME_RE.test(actual) && DATE_TIME_RE.test(expected) && !['co', 'sw', 'ew'].includes(op)) {
    a = Date.parse(actual);
    e = Date.parse(expected);
  } else if (!caseExact) {
    a = actual.toLowerCase();
    e = expected.toLowerCase();
  }
  switch (op) {
    case 'eq':
      return a === e;
    case 'ne':
      return a !== e;
    case 'co':
      return (a as string).includes(e as string);
    case 'sw':
      return (a as string).startsWith(e as string);
    case 'ew':
      return (a as string).endsWith(e as string);
    case 'gt':
      return a > e;
    case 'ge':
      return a >= e;
    case 'lt':
      return a < e;
    case 'le':
      return a <= e;
    default:
      return false;
  }
}

function scoped(scope: string | undefined, path: string): string {
  return scope === undefined ? path : `${scope}.${path}`;
}

/**
 * Evaluate a filter against one JSON object (a resource, or an element of a multi-valued
 * attribute when evaluating the inside of a value path such as `members[value eq "…"]`).
 * Attribute names are matched case-insensitively; type mismatches simply do not match.
 */
export function matchesFilter(ast: FilterAst, resource: unknown, options: MatchOptions = {}): boolean {
  switch (ast.op) {
    case 'and':
      return ast.filters.every((f) => matchesFilter(f, resource, options));
    case 'or':
      return ast.filters.some((f) => matchesFilter(f, resource, options));
    case 'not':
      return !matchesFilter(ast.filter, resource, options);
    case 'valuePath': {
      const v = getProp(baseFor(resource, ast.attr), ast.attr.name);
      const elements = Array.isArray(v) ? v : v === undefined || v === null ? [] : [v];
      const inner = { ...options, scope: scoped(options.scope, formatAttrPath(ast.attr)) };
      return elements.some((el) => matchesFilter(ast.filter, el, inner));
    }
    case 'pr': {
      const { values } = valuesOf(resource, ast.attr, false);
      return values.some(isPresent);
    }
    default: {
      const { values, multi } = valuesOf(resource, ast.attr, true);
      const present = values.some(isPresent);
      if (ast.value === null) {
        if (ast.op === 'eq') return !present;
        if (ast.op === 'ne') return present;
        return false;
      }
      const expected = ast.value;
      const caseExact = options.caseExact?.(scoped(options.scope, formatAttrPath(ast.attr))) ?? false;
      const candidates = values.filter((v) => v !== undefined && v !== null);
      if (candidates.length === 0) return ast.op === 'ne' && !multi;
      return candidates.some((v) => compareOne(ast.op, v, expected, caseExact));
    }
  }
}
