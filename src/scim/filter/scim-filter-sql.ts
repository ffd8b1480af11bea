/**
 * Compiles a SCIM filter AST to a parametrised PostgreSQL WHERE fragment. Nothing here touches the
 * database: identifiers come from the trusted ScimSqlSchema, every value is a bound parameter.
 */

import {
  ScimFilterError,
  CompareOp,
  CompValue,
  AttrPath,
  CompareNode,
  PresentNode,
  ValuePathNode,
  FilterAst,
  formatAttrPath,
} from './scim-filter-ast.js';
import {
  ScimAttributeType,
  ScimValueType,
  ScimColumnMapping,
  ScimJsonArrayMapping,
  ScimTableMapping,
  ScimAttributeMapping,
  ScimSqlSchema,
} from './scim-sql-schema.js';

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
