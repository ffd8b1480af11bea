import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type FilterAst,
  type ScimSqlSchema,
  ScimFilterError,
  compileScimFilter,
  defineScimSqlSchema,
  parseScimFilter,
} from './scim-filter.js';
import { matchesFilter, parseScimPath } from './scim-path.js';

const CORE_USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';

/** Test mapping of a `users u` table (see the PostgreSQL block for its DDL). */
const USER = defineScimSqlSchema({
  resourceType: 'User',
  schema: CORE_USER,
  attributes: {
    id: { kind: 'column', sql: 'u.id', type: 'uuid' },
    externalId: { kind: 'column', sql: 'u.external_id', type: 'string', caseExact: true },
    userName: { kind: 'column', sql: 'u.user_name', type: 'string' },
    displayName: { kind: 'column', sql: 'u.display_name', type: 'string' },
    title: { kind: 'column', sql: 'u.title', type: 'string' },
    userType: { kind: 'column', sql: 'u.user_type', type: 'string' },
    active: { kind: 'column', sql: 'u.active', type: 'boolean' },
    loginCount: { kind: 'column', sql: 'u.login_count', type: 'integer' },
    'name.givenName': { kind: 'column', sql: 'u.given_name', type: 'string' },
    'name.familyName': { kind: 'column', sql: 'u.family_name', type: 'string' },
    'meta.created': { kind: 'column', sql: 'u.created_at', type: 'dateTime' },
    'meta.lastModified': { kind: 'column', sql: 'u.updated_at', type: 'dateTime' },
    emails: {
      kind: 'jsonArray',
      column: 'u.emails',
      lowercaseColumn: 'u.emails_ci',
      subAttributes: {
        value: { type: 'string' },
        type: { type: 'string' },
        primary: { type: 'boolean' },
        display: { type: 'string' },
      },
    },
    ims: {
      kind: 'jsonArray',
      column: 'u.ims',
      subAttributes: { value: { type: 'string' }, type: { type: 'string', caseExact: true } },
    },
    schemas: { kind: 'jsonArray', column: 'u.schemas', element: { type: 'reference', caseExact: true } },
    [`${ENTERPRISE}:employeeNumber`]: { kind: 'column', sql: `(u.enterprise ->> 'employeeNumber')`, type: 'string' },
    [`${ENTERPRISE}:manager.value`]: {
      kind: 'column',
      sql: `(u.enterprise #>> '{manager,value}')`,
      type: 'string',
      caseExact: true,
    },
  },
});

const GROUP = defineScimSqlSchema({
  resourceType: 'Group',
  schema: 'urn:ietf:params:scim:schemas:core:2.0:Group',
  attributes: {
    id: { kind: 'column', sql: 'g.id', type: 'uuid' },
    externalId: { kind: 'column', sql: 'g.external_id', type: 'string', caseExact: true },
    displayName: { kind: 'column', sql: 'g.display_name', type: 'string' },
    members: {
      kind: 'table',
      table: 'group_members',
      foreignKey: 'group_id',
      parentKey: 'g.id',
      subAttributes: {
        value: { column: 'member_id', type: 'uuid' },
        type: { column: 'member_type', type: 'string' },
      },
    },
  },
});

const UUID1 = '2819c223-7f76-453a-919d-413861904646';

function compile(filter: string, schema: ScimSqlSchema = USER, paramOffset = 0) {
  return compileScimFilter(parseScimFilter(filter), schema, { paramOffset });
}

function errorOf(fn: () => unknown): ScimFilterError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ScimFilterError) return e;
    throw e;
  }
  throw new Error('expected a ScimFilterError');
}

// ---------------------------------------------------------------------------------------

describe('parseScimFilter', () => {
  const cases: Array<[string, FilterAst]> = [
    ['userName eq "bjensen"', { op: 'eq', attr: { name: 'userName' }, value: 'bjensen' }],
    ['USERNAME EQ "x"', { op: 'eq', attr: { name: 'USERNAME' }, value: 'x' }],
    ['title pr', { op: 'pr', attr: { name: 'title' } }],
    ['name.familyName co "O\'Malley"', { op: 'co', attr: { name: 'name', subAttr: 'familyName' }, value: "O'Malley" }],
    [`${CORE_USER}:name.givenName sw "J"`, { op: 'sw', attr: { uri: CORE_USER, name: 'name', subAttr: 'givenName' }, value: 'J' }],
    [`${ENTERPRISE}:employeeNumber eq "701984"`, { op: 'eq', attr: { uri: ENTERPRISE, name: 'employeeNumber' }, value: '701984' }],
    ['active eq TRUE', { op: 'eq', attr: { name: 'active' }, value: true }],
    ['a eq false', { op: 'eq', attr: { name: 'a' }, value: false }],
    ['a eq null', { op: 'eq', attr: { name: 'a' }, value: null }],
    ['a gt -1.5e3', { op: 'gt', attr: { name: 'a' }, value: -1500 }],
    ['a eq 0', { op: 'eq', attr: { name: 'a' }, value: 0 }],
    ['a eq "tab\\t quote\\" back\\\\slash \\u00e9 \\/"', { op: 'eq', attr: { name: 'a' }, value: 'tab\t quote" back\\slash é /' }],
    ['a eq "x)y]z and b"', { op: 'eq', attr: { name: 'a' }, value: 'x)y]z and b' }],
    ['members[$ref eq "x"]', { op: 'valuePath', attr: { name: 'members' }, filter: { op: 'eq', attr: { name: '$ref' }, value: 'x' } }],
    [
      'a pr or b pr and c pr or d pr',
      {
        op: 'or',
        filters: [
          { op: 'pr', attr: { name: 'a' } },
          {
            op: 'and',
            filters: [
              { op: 'pr', attr: { name: 'b' } },
              { op: 'pr', attr: { name: 'c' } },
            ],
          },
          { op: 'pr', attr: { name: 'd' } },
        ],
      },
    ],
    [
      '(a pr or b pr) and not (c pr)',
      {
        op: 'and',
        filters: [
          {
            op: 'or',
            filters: [
              { op: 'pr', attr: { name: 'a' } },
              { op: 'pr', attr: { name: 'b' } },
            ],
          },
          { op: 'not', filter: { op: 'pr', attr: { name: 'c' } } },
        ],
      },
    ],
    [
      'NOT(a pr)AND b eq"x"',
      {
        op: 'and',
        filters: [
          { op: 'not', filter: { op: 'pr', attr: { name: 'a' } } },
          { op: 'eq', attr: { name: 'b' }, value: 'x' },
        ],
      },
    ],
    [
      'emails[type eq "work" and value co "@example.com"]',
      {
        op: 'valuePath',
        attr: { name: 'emails' },
        filter: {
          op: 'and',
          filters: [
            { op: 'eq', attr: { name: 'type' }, value: 'work' },
            { op: 'co', attr: { name: 'value' }, value: '@example.com' },
          ],
        },
      },
    ],
    [
      // Extension: a sub-attribute after a value path is correlated with the same element.
      'emails[type eq "work"].value eq "x@y.com"',
      {
        op: 'valuePath',
        attr: { name: 'emails' },
        filter: {
          op: 'and',
          filters: [
            { op: 'eq', attr: { name: 'type' }, value: 'work' },
            { op: 'eq', attr: { name: 'value' }, value: 'x@y.com' },
          ],
        },
      },
    ],
    ['  userName   eq\t"a"  ', { op: 'eq', attr: { name: 'userName' }, value: 'a' }],
  ];
  it.each(cases)('%s', (text, ast) => {
    expect(parseScimFilter(text)).toEqual(ast);
  });

  const malformed: Array<[string, RegExp]> = [
    ['', /empty/],
    ['   ', /empty/],
    ['userName', /Expected an operator .* found end of input/],
    ['userName eq', /Missing value after 'userName eq'/],
    ['userName xx "a"', /Expected an operator .* found 'xx'/],
    ['userName eq bjensen', /Expected a value .* found 'bjensen'/],
    ['userName eq "a" and', /Unexpected end of filter/],
    ['userName eq "a" userName eq "b"', /Expected 'and', 'or' or end of filter/],
    ['(userName eq "a"', /Expected '\)' but found end of input/],
    ['userName eq "a")', /Unbalanced '\)'/],
    ['userName eq "unterminated', /Unterminated string literal at position 12/],
    ['userName eq "bad \\x escape"', /Invalid escape '\\x'/],
    ['userName eq "bad \\u12"', /Invalid \\u escape/],
    ['userName eq "raw\nnewline"', /Control character/],
    ["userName eq 'single'", /Unexpected character '''/],
    ['emails[type eq "work"', /Expected '\]'/],
    ['emails[value[type eq "x"]]', /Value paths cannot be nested/],
    ['emails.value[type eq "x"]', /cannot follow the sub-attribute/],
    ['emails[type eq "work"] .value eq "x"', /Expected a sub-attribute name immediately after/],
    ['not userName eq "a"', /'not' must be followed by a parenthesised filter/],
    ['a..b eq "x"', /Invalid attribute path 'a\.\.b'/],
    ['a.b.c eq "x"', /Invalid attribute path/],
    ['1abc eq "x"', /Invalid number '1abc'/],
    ['a eq 01', /Invalid number/],
    ['a eq 1.', /Invalid number/],
    ['a eq 1e999', /out of range/],
    ['a eq -', /Invalid number/],
    ['urn:foo: eq "x"', /Invalid attribute path/],
    ['a eq "x" or', /Unexpected end of filter/],
    ['()', /Expected an attribute path/],
    ['a eq "x" and (b eq "y" or (c eq "z")', /Expected '\)'/],
    ['userName eq "a" ; drop table users', /Unexpected character ';'/],
  ];
  it.each(malformed)('rejects %j', (text, message) => {
    const e = errorOf(() => parseScimFilter(text));
    expect(e.scimType).toBe('invalidFilter');
    expect(e.status).toBe(400);
    expect(e.message).toMatch(message);
  });

  it('enforces length, depth and term limits', () => {
    const long = `userName eq "${'x'.repeat(5000)}"`;
    expect(errorOf(() => parseScimFilter(long)).message).toMatch(/too long \(5014 characters, maximum 4096\)/);
    expect(() => parseScimFilter(long, { maxLength: 6000 })).not.toThrow();
    const deep = `${'('.repeat(40)}a pr${')'.repeat(40)}`;
    expect(errorOf(() => parseScimFilter(deep)).message).toMatch(/nested too deeply/);
    const deepNot = `${'not ('.repeat(40)}a pr${')'.repeat(40)}`;
    expect(errorOf(() => parseScimFilter(deepNot)).message).toMatch(/nested too deeply/);
    const many = Array.from({ length: 101 }, (_, i) => `id eq "${i}"`).join(' or ');
    expect(errorOf(() => parseScimFilter(many)).message).toMatch(/too many expressions \(maximum 100\)/);
    expect(() => parseScimFilter(many, { maxTerms: 200, maxLength: 10_000 })).not.toThrow();
  });

  it('reports the position of the error', () => {
    const e = errorOf(() => parseScimFilter('userName eq "a" and title xx "b"'));
    expect(e.position).toBe(26);
    expect(e.message).toMatch(/at position 26$/);
  });
});

// ---------------------------------------------------------------------------------------

describe('compileScimFilter', () => {
  const cases: Array<[string, string, unknown[]]> = [
    // Entra ID / Okta provisioning look-ups.
    ['userName eq "x@y.com"', 'lower(u.user_name) = lower($1)', ['x@y.com']],
    ['externalId eq "00aa00aa-bb11"', 'u.external_id = $1', ['00aa00aa-bb11']],
    ['displayName eq "Group"', 'lower(u.display_name) = lower($1)', ['Group']],
    [`id eq "${UUID1.toUpperCase()}"`, 'u.id = $1', [UUID1]],
    ['id eq "not-a-uuid"', 'FALSE', []],
    ['id ne "not-a-uuid"', 'TRUE', []],
    [`id ne "${UUID1}"`, 'u.id IS DISTINCT FROM $1', [UUID1]],
    ['id sw "2819"', '(u.id)::text LIKE $1', ['2819%']],
    // Case-insensitive attribute names and operators, URN prefixes.
    ['USERNAME EQ "x"', 'lower(u.user_name) = lower($1)', ['x']],
    ['username Eq "x"', 'lower(u.user_name) = lower($1)', ['x']],
    [`${CORE_USER}:userName eq "x"`, 'lower(u.user_name) = lower($1)', ['x']],
    [`${CORE_USER.toUpperCase()}:USERNAME eq "x"`, 'lower(u.user_name) = lower($1)', ['x']],
    [`${ENTERPRISE}:employeeNumber eq "701984"`, `lower((u.enterprise ->> 'employeeNumber')) = lower($1)`, ['701984']],
    [`${ENTERPRISE}:manager.value eq "M1"`, `(u.enterprise #>> '{manager,value}') = $1`, ['M1']],
    ['employeeNumber eq "701984"', `lower((u.enterprise ->> 'employeeNumber')) = lower($1)`, ['701984']],
    // String operators; LIKE metacharacters escaped.
    ['userName ne "x"', '(u.user_name IS NULL OR lower(u.user_name) <> lower($1))', ['x']],
    ['externalId ne "x"', '(u.external_id IS NULL OR u.external_id <> $1)', ['x']],
    ['userName co "100%_\\\\x"', 'lower(u.user_name) LIKE lower($1)', ['%100\\%\\_\\\\x%']],
    ['userName sw "J"', 'lower(u.user_name) LIKE lower($1)', ['J%']],
    ['userName ew "@example.com"', 'lower(u.user_name) LIKE lower($1)', ['%@example.com']],
    ['externalId sw "A_"', 'u.external_id LIKE $1', ['A\\_%']],
    ['userName gt "m"', 'lower(u.user_name) > lower($1)', ['m']],
    ['userName le "m"', 'lower(u.user_name) <= lower($1)', ['m']],
    ['title pr', "(u.title IS NOT NULL AND u.title <> '')", []],
    ['title eq null', "(u.title IS NULL OR u.title = '')", []],
    ['active eq null', 'u.active IS NULL', []],
    ['title ne null', "(u.title IS NOT NULL AND u.title <> '')", []],
    // Booleans, numbers, date-times.
    ['active eq true', 'u.active = $1', [true]],
    ['active ne false', 'u.active IS DISTINCT FROM $1', [false]],
    ['active pr', 'u.active IS NOT NULL', []],
    ['loginCount ge 3', 'u.login_count >= $1', [3]],
    ['loginCount ne 3', 'u.login_count IS DISTINCT FROM $1', [3]],
    ['meta.lastModified gt "2011-05-13T04:42:34Z"', 'u.updated_at > $1::timestamptz', ['2011-05-13T04:42:34Z']],
    ['meta.created le "2011-05-13T04:42:34.123+02:00"', 'u.created_at <= $1::timestamptz', ['2011-05-13T04:42:34.123+02:00']],
    ['meta.created lt "2011-05-13T04:42:34"', 'u.created_at < $1::timestamptz', ['2011-05-13T04:42:34Z']],
    // Logic and precedence.
    ['title pr and userType eq "Employee"', "((u.title IS NOT NULL AND u.title <> '') AND lower(u.user_type) = lower($1))", ['Employee']],
    [
      'loginCount eq 1 or userName eq "a" and displayName eq "b"',
      '(u.login_count = $1 OR (lower(u.user_name) = lower($2) AND lower(u.display_name) = lower($3)))',
      [1, 'a', 'b'],
    ],
    // NOT: predicates below an odd number of NOTs are made two-valued (absent ⇒ false, so NOT ⇒ true).
    ['not (userName eq "a")', 'NOT ((u.user_name IS NOT NULL AND lower(u.user_name) = lower($1)))', ['a']],
    ['not (not (userName eq "a"))', 'NOT (NOT (lower(u.user_name) = lower($1)))', ['a']],
    ['not (loginCount gt 2)', 'NOT ((u.login_count IS NOT NULL AND u.login_count > $1))', [2]],
    // Single-valued complex attribute.
    ['name pr', "((u.given_name IS NOT NULL AND u.given_name <> '') OR (u.family_name IS NOT NULL AND u.family_name <> ''))", []],
    [
      'name[givenName eq "Barbara" and familyName sw "J"]',
      '(lower(u.given_name) = lower($1) AND lower(u.family_name) LIKE lower($2))',
      ['Barbara', 'J%'],
    ],
    // Multi-valued complex attribute in jsonb: GIN containment where possible, EXISTS otherwise.
    ['emails[type eq "work"]', 'u.emails_ci @> lower($1)::jsonb', ['[{"type":"work"}]']],
    ['emails[type eq "work" and value eq "X@Y.com"]', 'u.emails_ci @> lower($1)::jsonb', ['[{"type":"work","value":"X@Y.com"}]']],
    ['emails.value eq "x@y.com"', 'u.emails_ci @> lower($1)::jsonb', ['[{"value":"x@y.com"}]']],
    ['emails eq "x@y.com"', 'u.emails_ci @> lower($1)::jsonb', ['[{"value":"x@y.com"}]']],
    ['emails[primary eq true]', 'u.emails @> $1::jsonb', ['[{"primary":true}]']],
    ['ims[type eq "xmpp"]', 'u.ims @> $1::jsonb', ['[{"type":"xmpp"}]']],
    [
      'emails[type eq "work" and value co "@example.com"]',
      "EXISTS (SELECT 1 FROM jsonb_array_elements(u.emails) AS se1(v) WHERE (lower(se1.v ->> 'type') = lower($1) AND lower(se1.v ->> 'value') LIKE lower($2)))",
      ['work', '%@example.com%'],
    ],
    [
      'emails[type eq "work"].value co "@example.com"',
      "EXISTS (SELECT 1 FROM jsonb_array_elements(u.emails) AS se1(v) WHERE (lower(se1.v ->> 'type') = lower($1) AND lower(se1.v ->> 'value') LIKE lower($2)))",
      ['work', '%@example.com%'],
    ],
    [
      'emails co "example.com"',
      "EXISTS (SELECT 1 FROM jsonb_array_elements(u.emails) AS se1(v) WHERE lower(se1.v ->> 'value') LIKE lower($1))",
      ['%example.com%'],
    ],
    [
      'ims[value eq "A" and type eq "xmpp"]',
      "EXISTS (SELECT 1 FROM jsonb_array_elements(u.ims) AS se1(v) WHERE (lower(se1.v ->> 'value') = lower($1) AND se1.v ->> 'type' = $2))",
      ['A', 'xmpp'],
    ],
    [
      'emails[type eq "work" or type eq "home"]',
      "EXISTS (SELECT 1 FROM jsonb_array_elements(u.emails) AS se1(v) WHERE (lower(se1.v ->> 'type') = lower($1) OR lower(se1.v ->> 'type') = lower($2)))",
      ['work', 'home'],
    ],
    [
      'emails[primary ne true]',
      "EXISTS (SELECT 1 FROM jsonb_array_elements(u.emails) AS se1(v) WHERE se1.v -> 'primary' IS DISTINCT FROM $1::jsonb)",
      ['true'],
    ],
    [
      'emails[not (type eq "work")]',
      "EXISTS (SELECT 1 FROM jsonb_array_elements(u.emails) AS se1(v) WHERE NOT ((se1.v ->> 'type' IS NOT NULL AND lower(se1.v ->> 'type') = lower($1))))",
      ['work'],
    ],
    [
      'emails.type pr',
      "EXISTS (SELECT 1 FROM jsonb_array_elements(u.emails) AS se1(v) WHERE (se1.v ->> 'type' IS NOT NULL AND se1.v ->> 'type' <> ''))",
      [],
    ],
    ['emails pr', '(u.emails IS NOT NULL AND jsonb_array_length(u.emails) > 0)', []],
    ['emails eq null', '(u.emails IS NULL OR jsonb_array_length(u.emails) = 0)', []],
    ['not (emails[type eq "work"])', 'NOT ((u.emails_ci IS NOT NULL AND u.emails_ci @> lower($1)::jsonb))', ['[{"type":"work"}]']],
    // Simple multi-valued attribute.
    ['schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"', 'u.schemas @> $1::jsonb', [`["${ENTERPRISE}"]`]],
    ['schemas sw "urn:ietf"', 'EXISTS (SELECT 1 FROM jsonb_array_elements_text(u.schemas) AS se1(v) WHERE se1.v LIKE $1)', ['urn:ietf%']],
  ];
  it.each(cases)('%s', (filter, sql, params) => {
    expect(compile(filter)).toEqual({ sql, params });
  });

  const groupCases: Array<[string, string, unknown[]]> = [
    ['displayName eq "Group"', 'lower(g.display_name) = lower($1)', ['Group']],
    [
      `members[value eq "${UUID1}"]`,
      'EXISTS (SELECT 1 FROM group_members AS se1 WHERE se1.group_id = g.id AND se1.member_id = $1)',
      [UUID1],
    ],
    [
      `id eq "${UUID1}" and members.value eq "${UUID1}"`,
      '(g.id = $1 AND EXISTS (SELECT 1 FROM group_members AS se1 WHERE se1.group_id = g.id AND se1.member_id = $2))',
      [UUID1, UUID1],
    ],
    ['members pr', 'EXISTS (SELECT 1 FROM group_members AS se1 WHERE se1.group_id = g.id)', []],
    ['members eq null', 'NOT EXISTS (SELECT 1 FROM group_members AS se1 WHERE se1.group_id = g.id)', []],
    [
      'members[type eq "User" and value eq "junk"]',
      'EXISTS (SELECT 1 FROM group_members AS se1 WHERE se1.group_id = g.id AND (lower(se1.member_type) = lower($1) AND FALSE))',
      ['User'],
    ],
  ];
  it.each(groupCases)('Group: %s', (filter, sql, params) => {
    expect(compile(filter, GROUP)).toEqual({ sql, params });
  });

  it('numbers parameters from the given offset', () => {
    expect(compile('userName eq "a" or emails[type eq "work" and value co "x"]', USER, 2)).toEqual({
      sql: "(lower(u.user_name) = lower($3) OR EXISTS (SELECT 1 FROM jsonb_array_elements(u.emails) AS se1(v) WHERE (lower(se1.v ->> 'type') = lower($4) AND lower(se1.v ->> 'value') LIKE lower($5))))",
      params: ['a', 'work', '%x%'],
    });
  });

  const rejected: Array<[string, RegExp]> = [
    ['nickName eq "x"', /Unknown attribute 'nickName' for resource type User/],
    ['name.middleName eq "x"', /Unknown attribute 'name\.middleName'/],
    ['urn:ietf:params:scim:schemas:core:2.0:Group:displayName eq "x"', /Unknown schema/],
    ['emails[kind eq "x"]', /Unknown sub-attribute 'kind' of 'emails'/],
    ['emails.kind eq "x"', /Unknown sub-attribute 'kind' of 'emails'/],
    ['active gt "x"', /'gt' is not supported for boolean attribute 'active'/],
    ['active eq "true"', /type boolean; 'eq' needs true or false, got "true"/],
    ['active co "t"', /not supported for boolean/],
    ['userName eq 1', /type string; 'eq' needs a "quoted" string, got 1/],
    ['userName gt true', /type string/],
    ['loginCount eq "3"', /type integer; 'eq' needs a number/],
    ['loginCount eq 1.5', /needs an integer/],
    ['loginCount co 1', /'co' is only supported for string attributes/],
    ['meta.lastModified gt "yesterday"', /RFC 3339 date-time/],
    ['meta.lastModified gt "2011-13-45T99:00:00Z"', /RFC 3339 date-time/],
    ['meta.lastModified gt 5', /RFC 3339 date-time/],
    ['meta.lastModified sw "2011"', /'sw' is only supported for string attributes/],
    ['userName gt null', /'gt' cannot be used with null/],
    ['name eq "x"', /'name' is a complex attribute/],
    ['userName[value eq "x"]', /not a complex or multi-valued attribute/],
    ['emails[primary eq "yes"]', /type boolean/],
    ['name[middleName eq "x"]', /Unknown sub-attribute 'middleName' of 'name'/],
  ];
  it.each(rejected)('rejects %j', (filter, message) => {
    const e = errorOf(() => compile(filter));
    expect(e.scimType).toBe('invalidFilter');
    expect(e.status).toBe(400);
    expect(e.message).toMatch(message);
  });

  it('validates schema descriptions', () => {
    expect(() =>
      defineScimSqlSchema({
        resourceType: 'X',
        schema: CORE_USER,
        attributes: { a: { kind: 'column', sql: 'a', type: 'string' }, A: { kind: 'column', sql: 'a', type: 'string' } },
      }),
    ).toThrow(/duplicate attribute 'A'/);
    expect(() =>
      defineScimSqlSchema({ resourceType: 'X', schema: CORE_USER, attributes: { e: { kind: 'jsonArray', column: 'e' } } }),
    ).toThrow(/exactly one of subAttributes/);
  });
});

// ---------------------------------------------------------------------------------------

describe('RFC 7644 §3.4.2.2 examples', () => {
  // The examples of the RFC, each parsed and compiled against the test User mapping.
  const examples: Array<[string, string]> = [
    ['userName eq "bjensen"', 'lower(u.user_name) = lower($1)'],
    ['name.familyName co "O\'Malley"', 'lower(u.family_name) LIKE lower($1)'],
    ['userName sw "J"', 'lower(u.user_name) LIKE lower($1)'],
    ['urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"', 'lower(u.user_name) LIKE lower($1)'],
    ['title pr', "(u.title IS NOT NULL AND u.title <> '')"],
    ['meta.lastModified gt "2011-05-13T04:42:34Z"', 'u.updated_at > $1::timestamptz'],
    ['meta.lastModified ge "2011-05-13T04:42:34Z"', 'u.updated_at >= $1::timestamptz'],
    ['meta.lastModified lt "2011-05-13T04:42:34Z"', 'u.updated_at < $1::timestamptz'],
    ['meta.lastModified le "2011-05-13T04:42:34Z"', 'u.updated_at <= $1::timestamptz'],
    ['title pr and userType eq "Employee"', "((u.title IS NOT NULL AND u.title <> '') AND lower(u.user_type) = lower($1))"],
    ['title pr or userType eq "Intern"', "((u.title IS NOT NULL AND u.title <> '') OR lower(u.user_type) = lower($1))"],
    ['schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"', 'u.schemas @> $1::jsonb'],
    [
      'userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")',
      "(lower(u.user_type) = lower($1) AND (EXISTS (SELECT 1 FROM jsonb_array_elements(u.emails) AS se1(v) WHERE lower(se1.v ->> 'value') LIKE lower($2)) OR EXISTS (SELECT 1 FROM jsonb_array_elements(u.emails) AS se2(v) WHERE lower(se2.v ->> 'value') LIKE lower($3))))",
    ],
    [
      'userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")',
      "((u.user_type IS NULL OR lower(u.user_type) <> lower($1)) AND NOT ((EXISTS (SELECT 1 FROM jsonb_array_elements(u.emails) AS se1(v) WHERE lower(se1.v ->> 'value') LIKE lower($2)) OR EXISTS (SELECT 1 FROM jsonb_array_elements(u.emails) AS se2(v) WHERE lower(se2.v ->> 'value') LIKE lower($3)))))",
    ],
    ['userType eq "Employee" and (emails.type eq "work")', '(lower(u.user_type) = lower($1) AND u.emails_ci @> lower($2)::jsonb)'],
    [
      'userType eq "Employee" and emails[type eq "work" and value co "@example.com"]',
      "(lower(u.user_type) = lower($1) AND EXISTS (SELECT 1 FROM jsonb_array_elements(u.emails) AS se1(v) WHERE (lower(se1.v ->> 'type') = lower($2) AND lower(se1.v ->> 'value') LIKE lower($3))))",
    ],
    [
      'emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]',
      "(EXISTS (SELECT 1 FROM jsonb_array_elements(u.emails) AS se1(v) WHERE (lower(se1.v ->> 'type') = lower($1) AND lower(se1.v ->> 'value') LIKE lower($2))) OR EXISTS (SELECT 1 FROM jsonb_array_elements(u.ims) AS se2(v) WHERE (se2.v ->> 'type' = $3 AND lower(se2.v ->> 'value') LIKE lower($4))))",
    ],
  ];
  it.each(examples)('%s', (filter, sql) => {
    expect(compile(filter).sql).toBe(sql);
  });
});

// ---------------------------------------------------------------------------------------

describe('parseScimPath', () => {
  it.each([
    ['members', { attribute: 'members' }],
    ['name.familyName', { attribute: 'name', subAttribute: 'familyName' }],
    [`${ENTERPRISE}:employeeNumber`, { uri: ENTERPRISE, attribute: 'employeeNumber' }],
    [`${ENTERPRISE}:manager.value`, { uri: ENTERPRISE, attribute: 'manager', subAttribute: 'value' }],
    [
      'emails[type eq "work"].value',
      { attribute: 'emails', subAttribute: 'value', valueFilter: { op: 'eq', attr: { name: 'type' }, value: 'work' } },
    ],
    [`members[value eq "${UUID1}"]`, { attribute: 'members', valueFilter: { op: 'eq', attr: { name: 'value' }, value: UUID1 } }],
    [
      'addresses[type eq "work" and primary eq true].streetAddress',
      {
        attribute: 'addresses',
        subAttribute: 'streetAddress',
        valueFilter: {
          op: 'and',
          filters: [
            { op: 'eq', attr: { name: 'type' }, value: 'work' },
            { op: 'eq', attr: { name: 'primary' }, value: true },
          ],
        },
      },
    ],
  ])('%s', (text, expected) => {
    expect(parseScimPath(text)).toEqual(expected);
  });

  it.each([
    ['', 'invalidPath', /Path is empty/],
    ['emails[type eq "work"]value', 'invalidPath', /Unexpected 'value' in path/],
    ['emails[type eq "work"].', 'invalidPath', /Expected a sub-attribute name/],
    ['name.familyName[type eq "x"]', 'invalidPath', /cannot follow the sub-attribute/],
    ['emails eq "x"', 'invalidPath', /Unexpected 'eq' in path/],
    ['a..b', 'invalidPath', /Invalid attribute path/],
    ['"members"', 'invalidPath', /Expected an attribute path/],
    ['members[value eq ]', 'invalidFilter', /Expected a value/],
    ['emails[type eq "work"', 'invalidFilter', /Expected '\]'/],
    ['members[value[x pr]]', 'invalidFilter', /Value paths cannot be nested/],
    [`members${'x'.repeat(2000)}`, 'invalidPath', /too long/],
  ] as const)('rejects %j', (text, scimType, message) => {
    const e = errorOf(() => parseScimPath(text));
    expect(e.scimType).toBe(scimType);
    expect(e.message).toMatch(message);
  });
});

describe('matchesFilter', () => {
  const user = {
    schemas: [CORE_USER, ENTERPRISE],
    id: UUID1,
    userName: 'bjensen@example.com',
    name: { givenName: 'Barbara', familyName: 'Jensen' },
    title: '',
    active: true,
    loginCount: 5,
    emails: [
      { value: 'bjensen@example.com', type: 'work', primary: true },
      { value: 'babs@jensen.org', type: 'home' },
    ],
    meta: { lastModified: '2011-05-13T04:42:34Z' },
    [ENTERPRISE]: { employeeNumber: '701984', manager: { value: 'M1' } },
  };
  it.each([
    ['USERNAME eq "BJENSEN@example.com"', true],
    ['name.familyName sw "jen"', true],
    ['title pr', false],
    ['not (title pr)', true],
    ['title eq null', true],
    ['nickName ne "x"', true],
    ['nickName eq "x"', false],
    ['active eq true and loginCount gt 4', true],
    ['loginCount gt "4"', false],
    ['meta.lastModified gt "2011-05-13T04:42:33+00:00"', true],
    ['meta.lastModified lt "2011-05-13T06:42:35+02:00"', true],
    ['meta.lastModified lt "2011-05-13T06:42:34+02:00"', false],
    ['emails[type eq "work" and value co "@example.com"]', true],
    ['emails[type eq "home" and primary eq true]', false],
    ['emails[type eq "home"].value ew ".org"', true],
    ['emails.value eq "babs@jensen.org"', true],
    ['emails co "jensen.org"', true], // compares the `value` sub-attribute, like the SQL
    ['emails.type ne "work"', true],
    [`${ENTERPRISE}:employeeNumber eq "701984"`, true],
    [`${ENTERPRISE}:manager.value eq "M1"`, true],
    ['schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"', true],
    ['name[givenName eq "barbara"]', true],
  ])('%s → %s', (filter, expected) => {
    expect(matchesFilter(parseScimFilter(filter), user)).toBe(expected);
  });

  it('selects elements for a PATCH value path', () => {
    const members = [{ value: UUID1, display: 'a' }, { value: 'other' }];
    const path = parseScimPath(`members[value eq "${UUID1.toUpperCase()}"]`);
    expect(members.filter((m) => matchesFilter(path.valueFilter!, m))).toEqual([members[0]]);
    const exact = members.filter((m) => matchesFilter(path.valueFilter!, m, { scope: 'members', caseExact: (p) => p === 'members.value' }));
    expect(exact).toEqual([]);
    // Primitive elements of a simple multi-valued attribute are addressed as `value`.
    const schemas = [CORE_USER, ENTERPRISE];
    const f = parseScimPath('schemas[value sw "urn:ietf:params:scim:schemas:extension"]').valueFilter!;
    expect(schemas.filter((s) => matchesFilter(f, s))).toEqual([ENTERPRISE]);
  });
});

// ---------------------------------------------------------------------------------------
// Executes compiled SQL on a real PostgreSQL. TEST_DATABASE_URL is provided by the suite's
// global setup (embedded PostgreSQL); the block is skipped when it is unset.

const databaseUrl = process.env.TEST_DATABASE_URL;

describe.skipIf(!databaseUrl)('compiled filters on PostgreSQL', () => {
  const T1 = '00000000-0000-4000-8000-000000000001';
  const T2 = '00000000-0000-4000-8000-000000000002';
  const ids = {
    bjensen: 'aaaaaaaa-0000-4000-8000-000000000001',
    omalley: 'aaaaaaaa-0000-4000-8000-000000000002',
    promo: 'aaaaaaaa-0000-4000-8000-000000000003',
    backslash: 'aaaaaaaa-0000-4000-8000-000000000004',
    other: 'aaaaaaaa-0000-4000-8000-000000000005',
  } as const;
  type Name = keyof typeof ids;

  interface Row {
    tenant: string;
    id: string;
    externalId: string | null;
    userName: string;
    displayName: string | null;
    title: string | null;
    userType: string | null;
    active: boolean | null;
    loginCount: number | null;
    givenName: string | null;
    familyName: string | null;
    created: string;
    lastModified: string;
    emails: Array<Record<string, unknown>> | null;
    ims: Array<Record<string, unknown>> | null;
    schemas: string[];
    enterprise: Record<string, unknown> | null;
  }
  const rows: Record<Name, Row> = {
    bjensen: {
      tenant: T1,
      id: ids.bjensen,
      externalId: 'ext-1',
      userName: 'bjensen@example.com',
      displayName: 'Babs Jensen',
      title: 'Tour Guide',
      userType: 'Employee',
      active: true,
      loginCount: 5,
      givenName: 'Barbara',
      familyName: 'Jensen',
      created: '2010-01-23T04:56:22Z',
      lastModified: '2011-05-13T04:42:34Z',
      emails: [
        { value: 'bjensen@example.com', type: 'work', primary: true },
        { value: 'babs@jensen.org', type: 'home' },
      ],
      ims: [{ value: 'someaimhandle', type: 'aim' }],
      schemas: [CORE_USER, ENTERPRISE],
      enterprise: { employeeNumber: '701984', manager: { value: 'M1' } },
    },
    omalley: {
      tenant: T1,
      id: ids.omalley,
      externalId: 'EXT-2',
      userName: 'jomalley@example.org',
      displayName: "John O'Malley",
      title: null,
      userType: 'Intern',
      active: true,
      loginCount: 1,
      givenName: 'John',
      familyName: "O'Malley",
      created: '2012-01-01T00:00:00Z',
      lastModified: '2012-06-01T12:00:00+02:00',
      emails: [{ value: 'John@Example.ORG', type: 'Work' }],
      ims: [{ value: 'jo@foo.com', type: 'xmpp' }],
      schemas: [CORE_USER],
      enterprise: null,
    },
    promo: {
      tenant: T1,
      id: ids.promo,
      externalId: null,
      userName: 'promo_100%@x.com',
      displayName: 'Promo',
      title: '',
      userType: null,
      active: false,
      loginCount: null,
      givenName: null,
      familyName: null,
      created: '2013-01-01T00:00:00Z',
      lastModified: '2013-01-01T00:00:00Z',
      emails: [],
      ims: null,
      schemas: [CORE_USER],
      enterprise: null,
    },
    backslash: {
      tenant: T1,
      id: ids.backslash,
      externalId: 'ext-4',
      userName: 'DOMAIN\\jdoe',
      displayName: 'Group',
      title: 'Engineer',
      userType: 'Employee',
      active: null,
      loginCount: 10,
      givenName: 'J',
      familyName: 'Doe',
      created: '2014-01-01T00:00:00Z',
      lastModified: '2014-01-01T00:00:00Z',
      emails: null,
      ims: null,
      schemas: [CORE_USER],
      enterprise: { employeeNumber: '42' },
    },
    other: {
      // Same userName in another tenant: must never be returned for tenant T1.
      tenant: T2,
      id: ids.other,
      externalId: 'ext-1',
      userName: 'bjensen@example.com',
      displayName: 'Other',
      title: 'x',
      userType: 'Employee',
      active: true,
      loginCount: 5,
      givenName: 'B',
      familyName: 'J',
      created: '2010-01-23T04:56:22Z',
      lastModified: '2011-05-13T04:42:34Z',
      emails: [{ value: 'bjensen@example.com', type: 'work', primary: true }],
      ims: null,
      schemas: [CORE_USER],
      enterprise: null,
    },
  };

  /** The same user as a SCIM resource, for cross-checking matchesFilter against SQL. */
  function resource(r: Row): Record<string, unknown> {
    const res: Record<string, unknown> = {
      schemas: r.schemas,
      id: r.id,
      externalId: r.externalId,
      userName: r.userName,
      displayName: r.displayName,
      title: r.title,
      userType: r.userType,
      active: r.active,
      loginCount: r.loginCount,
      name: { givenName: r.givenName, familyName: r.familyName },
      meta: { created: r.created, lastModified: r.lastModified },
      emails: r.emails ?? undefined,
      ims: r.ims ?? undefined,
    };
    if (r.enterprise) res[ENTERPRISE] = r.enterprise;
    return res;
  }

  const caseExactPaths = new Set(['id', 'externalid', 'schemas', 'ims.type', `${ENTERPRISE}:manager.value`.toLowerCase()]);
  const isCaseExact = (path: string): boolean => caseExactPaths.has(path.toLowerCase());

  let client: pg.Client;

  beforeAll(async () => {
    client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    await client.query(`
      CREATE TEMP TABLE users (
        tenant_id uuid NOT NULL,
        id uuid PRIMARY KEY,
        external_id text,
        user_name text NOT NULL,
        display_name text,
        title text,
        user_type text,
        active boolean,
        login_count integer,
        given_name text,
        family_name text,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        emails jsonb CHECK (jsonb_typeof(emails) = 'array'),
        emails_ci jsonb GENERATED ALWAYS AS (lower(emails::text)::jsonb) STORED,
        ims jsonb,
        schemas jsonb NOT NULL,
        enterprise jsonb
      )`);
    await client.query(`CREATE UNIQUE INDEX users_user_name_idx ON users (tenant_id, lower(user_name))`);
    await client.query(`CREATE INDEX users_emails_ci_gin ON users USING gin (emails_ci jsonb_path_ops)`);
    await client.query(
      `CREATE TEMP TABLE groups (tenant_id uuid NOT NULL, id uuid PRIMARY KEY, external_id text, display_name text NOT NULL)`,
    );
    await client.query(
      `CREATE TEMP TABLE group_members (group_id uuid NOT NULL, member_id uuid NOT NULL, member_type text NOT NULL, PRIMARY KEY (group_id, member_id))`,
    );
    for (const r of Object.values(rows)) {
      await client.query(
        `INSERT INTO users (tenant_id, id, external_id, user_name, display_name, title, user_type, active, login_count,
           given_name, family_name, created_at, updated_at, emails, ims, schemas, enterprise)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17)`,
        [
          r.tenant,
          r.id,
          r.externalId,
          r.userName,
          r.displayName,
          r.title,
          r.userType,
          r.active,
          r.loginCount,
          r.givenName,
          r.familyName,
          r.created,
          r.lastModified,
          r.emails === null ? null : JSON.stringify(r.emails),
          r.ims === null ? null : JSON.stringify(r.ims),
          JSON.stringify(r.schemas),
          r.enterprise === null ? null : JSON.stringify(r.enterprise),
        ],
      );
    }
    await client.query(`INSERT INTO groups VALUES ($1, $2, 'g-ext', 'Group'), ($1, $3, null, 'Empty')`, [
      T1,
      'bbbbbbbb-0000-4000-8000-000000000001',
      'bbbbbbbb-0000-4000-8000-000000000002',
    ]);
    await client.query(`INSERT INTO group_members VALUES ($1, $2, 'User'), ($1, $3, 'User')`, [
      'bbbbbbbb-0000-4000-8000-000000000001',
      ids.bjensen,
      ids.omalley,
    ]);
  });

  afterAll(async () => {
    await client?.end();
  });

  async function select(filter: string): Promise<Name[]> {
    const { sql, params } = compileScimFilter(parseScimFilter(filter), USER, { paramOffset: 1 });
    const res = await client.query<{ id: string }>(`SELECT u.id FROM users u WHERE u.tenant_id = $1 AND ${sql} ORDER BY u.id`, [
      T1,
      ...params,
    ]);
    const byId = new Map<string, Name>(Object.entries(ids).map(([k, v]) => [v, k as Name]));
    return res.rows.map((r) => byId.get(r.id)!);
  }

  const cases: Array<[string, Name[]]> = [
    ['userName eq "BJensen@Example.com"', ['bjensen']],
    ['username eq "x@y.com"', []],
    ['userName eq "DOMAIN\\\\jdoe"', ['backslash']],
    ['userName co "\\\\"', ['backslash']],
    ['userName co "100%"', ['promo']],
    ['userName co "_"', ['promo']],
    ['userName sw "%"', []],
    ['userName ew "@example.com"', ['bjensen']],
    ['externalId eq "ext-1"', ['bjensen']],
    ['externalId eq "EXT-1"', []],
    ['externalId eq "EXT-2"', ['omalley']],
    ['displayName eq "group"', ['backslash']],
    [`id eq "${ids.omalley}"`, ['omalley']],
    [`id eq "${ids.other}"`, []],
    ['id eq "nope"', []],
    ['id ne "nope"', ['bjensen', 'omalley', 'promo', 'backslash']],
    ['title pr', ['bjensen', 'backslash']],
    ['not (title pr)', ['omalley', 'promo']],
    ['title eq null', ['omalley', 'promo']],
    ['title ne "Tour Guide"', ['omalley', 'promo', 'backslash']],
    ['not (title eq "tour guide")', ['omalley', 'promo', 'backslash']],
    ['not (title co "guide" or userType eq "intern")', ['promo', 'backslash']],
    ['active eq true', ['bjensen', 'omalley']],
    ['active ne true', ['promo', 'backslash']],
    ['not (active eq true)', ['promo', 'backslash']],
    ['loginCount gt 1', ['bjensen', 'backslash']],
    ['not (loginCount gt 1)', ['omalley', 'promo']],
    ['meta.lastModified gt "2011-05-13T04:42:34Z"', ['omalley', 'promo', 'backslash']],
    ['meta.lastModified ge "2011-05-13T04:42:34Z"', ['bjensen', 'omalley', 'promo', 'backslash']],
    ['meta.lastModified lt "2012-06-01T10:00:01Z"', ['bjensen', 'omalley']],
    ['meta.created le "2010-01-23T04:56:22Z"', ['bjensen']],
    ['name.familyName co "O\'Malley"', ['omalley']],
    ['name[givenName eq "barbara" and familyName sw "j"]', ['bjensen']],
    ['name pr', ['bjensen', 'omalley', 'backslash']],
    ['title pr and userType eq "Employee"', ['bjensen', 'backslash']],
    ['title pr or userType eq "Intern"', ['bjensen', 'omalley', 'backslash']],
    [`urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J"`, ['omalley']],
    [`${ENTERPRISE}:employeeNumber eq "701984"`, ['bjensen']],
    [`${ENTERPRISE}:manager.value eq "M1"`, ['bjensen']],
    [`${ENTERPRISE}:employeeNumber pr`, ['bjensen', 'backslash']],
    ['schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"', ['bjensen']],
    ['emails[type eq "work"]', ['bjensen', 'omalley']],
    ['emails[type eq "work" and value eq "john@example.org"]', ['omalley']],
    ['emails[type eq "home" and value eq "bjensen@example.com"]', []],
    ['emails[type eq "work" and value co "@example.com"]', ['bjensen']],
    ['emails[type eq "work"].value co "@EXAMPLE."', ['bjensen', 'omalley']],
    ['emails[type eq "home"].value co "@example.com"', []],
    ['emails.value eq "babs@jensen.org"', ['bjensen']],
    ['emails co "example.org"', ['omalley']],
    ['emails[primary eq true]', ['bjensen']],
    ['emails[primary ne true]', ['bjensen', 'omalley']],
    ['emails[not (type eq "work")]', ['bjensen']],
    ['emails pr', ['bjensen', 'omalley']],
    ['not (emails pr)', ['promo', 'backslash']],
    ['emails eq null', ['promo', 'backslash']],
    ['not (emails[type eq "work"])', ['promo', 'backslash']],
    ['not (emails.value co "jensen")', ['omalley', 'promo', 'backslash']],
    ['userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")', ['bjensen']],
    ['userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")', ['promo']],
    ['emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]', ['bjensen', 'omalley']],
    ['ims[type eq "XMPP"]', []],
  ];

  it.each(cases)('%s', async (filter, expected) => {
    const sorted = [...expected].sort((a, b) => ids[a].localeCompare(ids[b]));
    expect(await select(filter)).toEqual(sorted);
    // The in-memory evaluator used for PATCH agrees with the SQL.
    const inMemory = (Object.keys(rows) as Name[])
      .filter((n) => rows[n].tenant === T1)
      .filter((n) => matchesFilter(parseScimFilter(filter), resource(rows[n]), { caseExact: isCaseExact }));
    expect(inMemory.sort((a, b) => ids[a].localeCompare(ids[b]))).toEqual(sorted);
  });

  it('filters groups by members through the child table', async () => {
    const run = async (filter: string) => {
      const { sql, params } = compileScimFilter(parseScimFilter(filter), GROUP, { paramOffset: 1 });
      const res = await client.query<{ display_name: string }>(
        `SELECT g.display_name FROM groups g WHERE g.tenant_id = $1 AND ${sql} ORDER BY 1`,
        [T1, ...params],
      );
      return res.rows.map((r) => r.display_name);
    };
    expect(await run('displayName eq "GROUP"')).toEqual(['Group']);
    expect(await run(`members[value eq "${ids.omalley}"]`)).toEqual(['Group']);
    expect(await run(`members.value eq "${ids.promo}"`)).toEqual([]);
    expect(await run('members pr')).toEqual(['Group']);
    expect(await run('not (members pr)')).toEqual(['Empty']);
    expect(await run('members eq null')).toEqual(['Empty']);
    expect(await run('members[type eq "user" and value eq "junk"]')).toEqual([]);
  });

  it('uses the indexes (expression btree for userName, GIN for emails containment)', async () => {
    const plan = async (filter: string, tenantScoped: boolean): Promise<string> => {
      const { sql, params } = compileScimFilter(parseScimFilter(filter), USER, { paramOffset: tenantScoped ? 1 : 0 });
      await client.query('SET enable_seqscan = off');
      try {
        const res = await client.query<{ 'QUERY PLAN': string }>(
          `EXPLAIN SELECT u.id FROM users u WHERE ${tenantScoped ? 'u.tenant_id = $1 AND ' : ''}${sql}`,
          tenantScoped ? [T1, ...params] : params,
        );
        return res.rows.map((r) => r['QUERY PLAN']).join('\n');
      } finally {
        await client.query('RESET enable_seqscan');
      }
    };
    expect(await plan('userName eq "bjensen@example.com"', true)).toMatch(/Index Cond: \(\(tenant_id = .*\) AND \(lower\(user_name\) = /);
    // (On this tiny table the planner prefers the tenant btree when both are possible.)
    expect(await plan('emails[type eq "work" and value eq "bjensen@example.com"]', false)).toMatch(
      /Bitmap Index Scan on users_emails_ci_gin/,
    );
  });
});
