/** How SCIM attributes map to SQL columns, JSON arrays and child tables: the trusted input of the filter compiler. */

import { ATTRNAME_RE, URI_RE, parseAttrPathText } from './scim-filter-parser.js';

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
