import { ScimError } from '../common/errors.js';
import {
  type CompiledFilter,
  ScimFilterError,
  compileScimFilter,
  defineScimSqlSchema,
  parseScimFilter,
  type FilterAst,
  type ScimSqlSchema,
} from './filter/scim-filter.js';
import { CORE_GROUP, CORE_USER, ENTERPRISE_USER } from './scim-schemas.js';

/**
 * How SCIM attributes map to SQL for filtering. Indexed: `id` (primary key), `userName`
 * (`users_user_name_key` on `(tenant_id, user_name_ci)`), `externalId`, `emails` (the
 * `user_emails` side table), group `displayName` / `externalId`, and `members.value` /
 * `groups.value` (primary key and `group_members_user_idx`). The remaining attributes are still
 * evaluated by PostgreSQL inside the tenant's rows, never in memory.
 *
 * Why `*_ci` columns instead of `lower(col)` / jsonb `@>`: under row-level security PostgreSQL
 * only turns a condition into an index condition when its functions are LEAKPROOF, and neither
 * lower() nor jsonb containment is. The case-insensitive attributes are therefore mapped as
 * case-exact on stored lower-case copies, and `lowerCaseInsensitive` lower-cases the filter's
 * values for exactly those attributes before compilation: same semantics, plain `=` on an index.
 */
const profile = (key: string) => `(u.scim_profile ->> '${key}')`;
const enterprise = (key: string) => `(u.enterprise ->> '${key}')`;

export const USER_SQL = defineScimSqlSchema({
  resourceType: 'User',
  schema: CORE_USER,
  attributes: {
    id: { kind: 'column', sql: 'u.id', type: 'uuid' },
    externalId: { kind: 'column', sql: 'u.external_id', type: 'string', caseExact: true },
    userName: { kind: 'column', sql: 'u.user_name_ci', type: 'string', caseExact: true },
    displayName: { kind: 'column', sql: 'u.display_name', type: 'string' },
    active: { kind: 'column', sql: `(u.status = 'active')`, type: 'boolean' },
    'name.givenName': { kind: 'column', sql: 'u.given_name', type: 'string' },
    'name.familyName': { kind: 'column', sql: 'u.family_name', type: 'string' },
    'name.formatted': { kind: 'column', sql: `(u.scim_profile #>> '{name,formatted}')`, type: 'string' },
    'name.middleName': { kind: 'column', sql: `(u.scim_profile #>> '{name,middleName}')`, type: 'string' },
    nickName: { kind: 'column', sql: profile('nickName'), type: 'string' },
    title: { kind: 'column', sql: profile('title'), type: 'string' },
    userType: { kind: 'column', sql: profile('userType'), type: 'string' },
    preferredLanguage: { kind: 'column', sql: profile('preferredLanguage'), type: 'string' },
    locale: { kind: 'column', sql: profile('locale'), type: 'string' },
    timezone: { kind: 'column', sql: profile('timezone'), type: 'string' },
    'meta.created': { kind: 'column', sql: 'u.created_at', type: 'dateTime' },
    'meta.lastModified': { kind: 'column', sql: 'u.updated_at', type: 'dateTime' },
    emails: {
      kind: 'table',
      table: 'user_emails',
      foreignKey: 'user_id',
      parentKey: 'u.id',
      subAttributes: {
        value: { column: 'value_ci', type: 'string', caseExact: true },
        type: { column: 'type_ci', type: 'string', caseExact: true },
        display: { column: 'display_ci', type: 'string', caseExact: true },
        primary: { column: 'is_primary', type: 'boolean' },
      },
    },
    phoneNumbers: {
      kind: 'jsonArray',
      column: `COALESCE(u.scim_profile -> 'phoneNumbers', '[]'::jsonb)`,
      subAttributes: { value: { type: 'string' }, type: { type: 'string' }, primary: { type: 'boolean' } },
    },
    groups: {
      kind: 'table',
      table: 'group_members',
      foreignKey: 'user_id',
      parentKey: 'u.id',
      subAttributes: { value: { column: 'group_id', type: 'uuid' } },
    },
    [`${ENTERPRISE_USER}:employeeNumber`]: { kind: 'column', sql: enterprise('employeeNumber'), type: 'string' },
    [`${ENTERPRISE_USER}:costCenter`]: { kind: 'column', sql: enterprise('costCenter'), type: 'string' },
    [`${ENTERPRISE_USER}:organization`]: { kind: 'column', sql: enterprise('organization'), type: 'string' },
    [`${ENTERPRISE_USER}:division`]: { kind: 'column', sql: enterprise('division'), type: 'string' },
    [`${ENTERPRISE_USER}:department`]: { kind: 'column', sql: enterprise('department'), type: 'string' },
    [`${ENTERPRISE_USER}:manager.value`]: { kind: 'column', sql: `(u.enterprise #>> '{manager,value}')`, type: 'string', caseExact: true },
  },
});

export const GROUP_SQL = defineScimSqlSchema({
  resourceType: 'Group',
  schema: CORE_GROUP,
  attributes: {
    id: { kind: 'column', sql: 'g.id', type: 'uuid' },
    externalId: { kind: 'column', sql: 'g.external_id', type: 'string', caseExact: true },
    displayName: { kind: 'column', sql: 'g.display_name_ci', type: 'string', caseExact: true },
    'meta.created': { kind: 'column', sql: 'g.created_at', type: 'dateTime' },
    'meta.lastModified': { kind: 'column', sql: 'g.updated_at', type: 'dateTime' },
    members: {
      kind: 'table',
      table: 'group_members',
      foreignKey: 'group_id',
      parentKey: 'g.id',
      subAttributes: { value: { column: 'user_id', type: 'uuid' } },
    },
  },
});

/** One row of `group_members gm`, for PATCH paths such as `members[value eq "…"]`. */
export const MEMBER_SQL = defineScimSqlSchema({
  resourceType: 'GroupMember',
  schema: CORE_GROUP,
  attributes: {
    value: { kind: 'column', sql: 'gm.user_id', type: 'uuid' },
    type: { kind: 'column', sql: `'User'`, type: 'string' },
    display: {
      kind: 'column',
      sql: '(SELECT COALESCE(mu.display_name, mu.user_name) FROM users mu WHERE mu.id = gm.user_id)',
      type: 'string',
    },
  },
});

/**
 * Attributes stored lower-cased and mapped case-exact (see above): top-level names, and
 * multi-valued attributes with the sub-attributes concerned. Names are lower case.
 */
export interface CaseInsensitiveColumns {
  readonly core: string;
  readonly scalars: ReadonlySet<string>;
  readonly multi: ReadonlyMap<string, ReadonlySet<string>>;
}

export const USER_CI: CaseInsensitiveColumns = {
  core: CORE_USER.toLowerCase(),
  scalars: new Set(['username']),
  multi: new Map([['emails', new Set(['value', 'type', 'display'])]]),
};
export const GROUP_CI: CaseInsensitiveColumns = { core: CORE_GROUP.toLowerCase(), scalars: new Set(['displayname']), multi: new Map() };

/** Lower-cases the compared values of the attributes in `ci`, wherever they occur in the filter. */
export function lowerCaseInsensitive(ast: FilterAst, ci: CaseInsensitiveColumns, scope?: ReadonlySet<string>): FilterAst {
  switch (ast.op) {
    case 'and':
    case 'or':
      return { ...ast, filters: ast.filters.map((f) => lowerCaseInsensitive(f, ci, scope)) };
    case 'not':
      return { ...ast, filter: lowerCaseInsensitive(ast.filter, ci, scope) };
    case 'valuePath': {
      const inner =
        scope === undefined && isCore(ast.attr.uri, ci) && ast.attr.subAttr === undefined
          ? ci.multi.get(ast.attr.name.toLowerCase())
          : undefined;
      return { ...ast, filter: lowerCaseInsensitive(ast.filter, ci, inner ?? new Set()) };
    }
    case 'pr':
      return ast;
    default: {
      if (typeof ast.value !== 'string') return ast;
      const name = ast.attr.name.toLowerCase();
      const sub = ast.attr.subAttr?.toLowerCase();
      let lower: boolean;
      if (scope !== undefined) lower = ast.attr.uri === undefined && sub === undefined && scope.has(name);
      else if (!isCore(ast.attr.uri, ci)) lower = false;
      else if (sub === undefined) lower = ci.scalars.has(name) || (ci.multi.get(name)?.has('value') ?? false);
      else lower = ci.multi.get(name)?.has(sub) ?? false;
      return lower ? { ...ast, value: ast.value.toLowerCase() } : ast;
    }
  }
}

const isCore = (uri: string | undefined, ci: CaseInsensitiveColumns): boolean => uri === undefined || uri.toLowerCase() === ci.core;

/** Parses and compiles a filter; every parser or compiler complaint becomes 400 `invalidFilter`. */
export function compileFilter(text: string, schema: ScimSqlSchema, paramOffset: number, ci?: CaseInsensitiveColumns): CompiledFilter {
  try {
    const ast = parseScimFilter(text);
    return compileScimFilter(ci ? lowerCaseInsensitive(ast, ci) : ast, schema, { paramOffset });
  } catch (err) {
    if (err instanceof ScimFilterError) throw new ScimError(400, err.message, 'invalidFilter', { cause: err });
    throw err;
  }
}

export function compileAst(ast: FilterAst, schema: ScimSqlSchema, paramOffset: number): CompiledFilter {
  try {
    return compileScimFilter(ast, schema, { paramOffset });
  } catch (err) {
    if (err instanceof ScimFilterError) throw new ScimError(400, err.message, 'invalidFilter', { cause: err });
    throw err;
  }
}
