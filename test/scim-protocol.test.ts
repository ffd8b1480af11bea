import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { TenantsService } from '../src/tenants/tenants.service.js';
import { ScimSettingsService, ScimTokensService } from '../src/scim/scim-tokens.service.js';
import { USER_CI, USER_SQL, compileFilter } from '../src/scim/scim-sql.js';
import { PostgresRateLimiter } from '../src/rate-limit/postgres-rate-limiter.js';
import {
  CORE_GROUP,
  CORE_USER,
  ENTERPRISE,
  ERROR_SCHEMA,
  PATCH_OP,
  type ListBody,
  ScimClient,
  entraUser,
  q,
  scimClient,
} from './support/scim.js';
import { tenantRows } from './support/tenant-rows.js';

let app: TestApp;
let scim: ScimClient;
let tenantId: string;
const ids: Record<string, string> = {};

/** Seven users with distinct attributes, to check which ones a filter selects. */
const PEOPLE = [
  {
    key: 'bjensen',
    userName: 'bjensen@example.com',
    given: 'Barbara',
    family: 'Jensen',
    title: 'Tour Guide',
    dept: 'Tours',
    active: true,
    emails: [
      { value: 'bjensen@example.com', type: 'work', primary: true },
      { value: 'babs@jensen.org', type: 'home' },
    ],
  },
  {
    key: 'jsmith',
    userName: 'jsmith@example.com',
    given: 'John',
    family: 'Smith',
    title: 'Vice President',
    dept: 'Sales',
    active: true,
    emails: [{ value: 'jsmith@example.com', type: 'work' }],
  },
  {
    key: 'adoe',
    userName: 'adoe@example.org',
    given: 'Alice',
    family: "O'Doe",
    title: null,
    dept: 'Sales',
    active: false,
    emails: [{ value: 'alice@example.org', type: 'home' }],
  },
  {
    key: 'mmuller',
    userName: 'MMuller@Example.com',
    given: 'Max',
    family: 'Müller',
    title: 'Engineer',
    dept: 'R&D',
    active: true,
    emails: [],
  },
  {
    key: 'zed',
    userName: 'zed@example.net',
    given: 'Zed',
    family: 'Zulu',
    title: 'Engineer',
    dept: null,
    active: true,
    emails: [{ value: 'ZED@EXAMPLE.NET', type: 'work' }],
  },
  { key: 'pct', userName: '100%_sure@example.com', given: 'Percy', family: 'Cent', title: 'Tester', dept: 'QA', active: true, emails: [] },
  {
    key: 'under',
    userName: '100x_sure@example.com',
    given: 'Under',
    family: 'Score',
    title: 'Tester',
    dept: 'QA',
    active: true,
    emails: [],
  },
] as const;

beforeAll(async () => {
  app = await startTestApp();
  tenantId = (await app.app.get(TenantsService).create('protocol', 'Protocol Inc.')).id;
  scim = await scimClient(app, tenantId);
  for (const p of PEOPLE) {
    const res = await scim.post('/Users', {
      schemas: [CORE_USER, ENTERPRISE],
      userName: p.userName,
      externalId: `ext-${p.key}`,
      name: { givenName: p.given, familyName: p.family },
      displayName: `${p.given} ${p.family}`,
      ...(p.title ? { title: p.title } : {}),
      active: p.active,
      emails: p.emails,
      ...(p.dept ? { [ENTERPRISE]: { department: p.dept, employeeNumber: p.key.length.toString() } } : {}),
    });
    if (res.status !== 201) throw new Error(res.text);
    ids[p.key] = res.body['id'] as string;
  }
  const group = await scim.post('/Groups', {
    schemas: [CORE_GROUP],
    displayName: 'Engineers',
    members: [{ value: ids['mmuller'] }, { value: ids['zed'] }],
  });
  ids['engineers'] = group.body['id'] as string;
});

afterAll(async () => {
  await app?.close();
});

const keysOf = (body: ListBody) => body.Resources.map((r) => PEOPLE.find((p) => ids[p.key] === r['id'])?.key).sort();

describe('discovery', () => {
  it('serves ServiceProviderConfig, ResourceTypes and Schemas as application/scim+json', async () => {
    const spc = await scim.get('/ServiceProviderConfig');
    expect(spc.status).toBe(200);
    expect(spc.headers.get('content-type')).toMatch(/^application\/scim\+json/);
    expect(spc.body).toMatchObject({
      patch: { supported: true },
      filter: { supported: true, maxResults: 1000 },
      etag: { supported: true },
      bulk: { supported: false },
    });
    const types = await scim.get<ListBody>('/ResourceTypes');
    expect(types.body.Resources.map((r) => r['id'])).toEqual(['User', 'Group']);
    expect(types.body.Resources[0]).toMatchObject({
      endpoint: '/Users',
      schema: CORE_USER,
      schemaExtensions: [{ schema: ENTERPRISE, required: false }],
    });
    const schemas = await scim.get<ListBody>('/Schemas');
    expect(schemas.body.Resources.map((r) => r['id'])).toEqual([CORE_USER, ENTERPRISE, CORE_GROUP]);
    const user = await scim.get(`/Schemas/${CORE_USER}`);
    const userName = (user.body['attributes'] as Array<Record<string, unknown>>).find((a) => a['name'] === 'userName');
    expect(userName).toMatchObject({ type: 'string', required: true, uniqueness: 'server', caseExact: false });
  });

  it('answers unknown SCIM routes and /Bulk in the SCIM error schema', async () => {
    const bulk = await scim.post('/Bulk', { schemas: ['urn:ietf:params:scim:api:messages:2.0:BulkRequest'], Operations: [] });
    expect(bulk.status).toBe(501);
    expect(bulk.body).toMatchObject({ schemas: [ERROR_SCHEMA], status: '501' });
    const nowhere = await scim.get('/Nowhere');
    expect(nowhere.status).toBe(404);
    expect(nowhere.body['schemas']).toEqual([ERROR_SCHEMA]);
  });
});

describe('filters (RFC 7644 §3.4.2.2), compiled to SQL', () => {
  const cases: Array<[string, string[]]> = [
    ['userName eq "bjensen@example.com"', ['bjensen']],
    ['USERNAME EQ "mmuller@example.COM"', ['mmuller']],
    ['userName ne "bjensen@example.com"', ['adoe', 'jsmith', 'mmuller', 'pct', 'under', 'zed']],
    ['userName co "SMITH"', ['jsmith']],
    ['userName sw "100%"', ['pct']],
    ['userName sw "100_"', []],
    ['userName ew "@example.org"', ['adoe']],
    ['title pr', ['bjensen', 'jsmith', 'mmuller', 'pct', 'under', 'zed']],
    ['not (title pr)', ['adoe']],
    ['title eq "engineer" and active eq true', ['mmuller', 'zed']],
    ['title eq "Tester" or name.familyName eq "O\'Doe"', ['adoe', 'pct', 'under']],
    ['active eq false', ['adoe']],
    ['(title eq "Engineer" or title eq "Tester") and not (userName sw "zed")', ['mmuller', 'pct', 'under']],
    ['emails[type eq "work" and value co "@example.com"]', ['bjensen', 'jsmith']],
    ['emails[type eq "home"].value ew ".org"', ['adoe', 'bjensen']],
    ['emails.value eq "zed@example.net"', ['zed']],
    ['emails pr', ['adoe', 'bjensen', 'jsmith', 'zed']],
    ['externalId eq "ext-jsmith"', ['jsmith']],
    ['externalId eq "EXT-JSMITH"', []],
    [`${ENTERPRISE}:department eq "sales"`, ['adoe', 'jsmith']],
    [`urn:ietf:params:scim:schemas:core:2.0:User:name.givenName sw "B"`, ['bjensen']],
    ['name[givenName eq "Max" or familyName eq "Zulu"]', ['mmuller', 'zed']],
    ['meta.created gt "2000-01-01T00:00:00Z" and userName eq "zed@example.net"', ['zed']],
    ['meta.lastModified lt "2000-01-01T00:00:00Z"', []],
    ['displayName eq "Max Müller"', ['mmuller']],
  ];
  it.each(cases)('%s', async (filter, expected) => {
    const res = await scim.get<ListBody>(`/Users${q(filter)}`);
    expect(res.status, res.text).toBe(200);
    expect(keysOf(res.body)).toEqual(expected.sort());
    expect(res.body.totalResults).toBe(expected.length);
  });

  it('filters users by group membership and groups by member', async () => {
    const users = await scim.get<ListBody>(`/Users${q(`groups[value eq "${ids['engineers']}"]`)}`);
    expect(keysOf(users.body)).toEqual(['mmuller', 'zed']);
    const groups = await scim.get<ListBody>(`/Groups${q(`members[value eq "${ids['zed']}"]`)}`);
    expect(groups.body.Resources.map((g) => g['displayName'])).toEqual(['Engineers']);
  });

  const malformed = [
    'userName eq',
    'userName eq bjensen',
    'userName equals "x"',
    '(userName eq "x"',
    'userName eq "x" and',
    'emails[type eq "work"',
    'noSuchAttribute eq "x"',
    'active eq "yes"',
    'meta.created gt "yesterday"',
    'userName gt 5',
    'urn:example:unknown:1.0:User:x eq "y"',
    'title co null',
    '"just a string"',
  ];
  it.each(malformed)('refuses the malformed filter %s with 400 invalidFilter', async (filter) => {
    const res = await scim.get(`/Users${q(filter)}`);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ schemas: [ERROR_SCHEMA], status: '400', scimType: 'invalidFilter' });
  });

  it("plans the IdPs' look-ups (userName, externalId, emails) on indexes, not scans", async () => {
    // A second tenant with realistic numbers, so that the planner's choice means something.
    const big = (await app.app.get(TenantsService).create('planner', 'Planner Inc.')).id;
    const plans = await app.database.transaction({ tenant: big }, async (tx) => {
      await tx.query(
        `INSERT INTO users (tenant_id, user_name, external_id, emails)
         SELECT $1, 'user' || i || '@planner.test', 'ext-' || i, jsonb_build_array(jsonb_build_object('value', 'user' || i || '@planner.test', 'type', 'work'))
           FROM generate_series(1, 5000) AS i`,
        [big],
      );
      await tx.query(`ANALYZE users`);
      const explain = async (filter: string) => {
        const f = compileFilter(filter, USER_SQL, 1, USER_CI);
        const { rows } = await tx.query<{ 'QUERY PLAN': string }>(
          `EXPLAIN SELECT u.id FROM users u WHERE u.tenant_id = $1 AND u.user_name IS NOT NULL AND (${f.sql})`,
          [big, ...f.params],
        );
        return rows.map((r) => r['QUERY PLAN']).join('\n');
      };
      return {
        userName: await explain('userName eq "USER4242@planner.test"'),
        externalId: await explain('externalId eq "ext-4242"'),
        email: await explain('emails[type eq "work" and value eq "user4242@planner.test"]'),
      };
    });
    expect(plans.userName).toMatch(/Index Scan using users_user_name_key/);
    expect(plans.externalId).toMatch(/users_external_id_idx/);
    expect(plans.email).toMatch(/user_emails_value_idx/);
    for (const plan of Object.values(plans)) expect(plan).not.toMatch(/Seq Scan/);
  });
});

describe('pagination and projection', () => {
  it('pages with startIndex and count and reports totalResults', async () => {
    const first = await scim.get<ListBody>('/Users?startIndex=1&count=3');
    expect(first.body).toMatchObject({ totalResults: 7, startIndex: 1, itemsPerPage: 3 });
    const second = await scim.get<ListBody>('/Users?startIndex=4&count=3');
    const third = await scim.get<ListBody>('/Users?startIndex=7&count=3');
    const all = [...first.body.Resources, ...second.body.Resources, ...third.body.Resources].map((r) => r['id']);
    expect(new Set(all).size).toBe(7);
    expect(third.body.itemsPerPage).toBe(1);
    const beyond = await scim.get<ListBody>('/Users?startIndex=50&count=3');
    expect(beyond.body).toMatchObject({ totalResults: 7, itemsPerPage: 0, Resources: [] });
    const none = await scim.get<ListBody>('/Users?count=0');
    expect(none.body).toMatchObject({ totalResults: 7, itemsPerPage: 0 });
    expect((await scim.get('/Users?startIndex=abc')).body).toMatchObject({ status: '400', scimType: 'invalidValue' });
  });

  it('returns only the requested attributes (plus id and schemas)', async () => {
    const res = await scim.get(`/Users/${ids['bjensen']}?attributes=userName,emails.value,${ENTERPRISE}:department`);
    expect(res.body).toEqual({
      schemas: [CORE_USER, ENTERPRISE],
      id: ids['bjensen'],
      userName: 'bjensen@example.com',
      emails: [{ value: 'bjensen@example.com' }, { value: 'babs@jensen.org' }],
      [ENTERPRISE]: { department: 'Tours' },
    });
  });

  it('leaves out excludedAttributes but never id', async () => {
    const res = await scim.get<ListBody>(
      `/Users${q('userName eq "bjensen@example.com"', `&excludedAttributes=emails,name,id,${ENTERPRISE}`)}`,
    );
    const r = res.body.Resources[0]!;
    expect(r['id']).toBe(ids['bjensen']);
    expect(r).not.toHaveProperty('emails');
    expect(r).not.toHaveProperty('name');
    expect(r).not.toHaveProperty(ENTERPRISE);
    expect(r['userName']).toBe('bjensen@example.com');
  });

  it('supports POST /.search', async () => {
    const res = await scim.post<ListBody>('/Users/.search', {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:SearchRequest'],
      filter: 'title eq "Tester"',
      attributes: ['userName'],
      startIndex: 1,
      count: 10,
    });
    expect(res.status).toBe(200);
    expect(res.body.Resources.map((r) => r['userName']).sort()).toEqual(['100%_sure@example.com', '100x_sure@example.com']);
    expect(res.body.Resources[0]).not.toHaveProperty('name');
  });
});

describe('versions and ETags', () => {
  it('answers If-None-Match with 304 and a stale If-Match with 412, changing nothing', async () => {
    const res = await scim.get(`/Users/${ids['jsmith']}`);
    const etag = res.headers.get('etag')!;
    expect(etag).toMatch(/^W\/"\d+"$/);
    expect((await scim.get(`/Users/${ids['jsmith']}`, { 'if-none-match': etag })).status).toBe(304);

    const ok = await scim.patch(
      `/Users/${ids['jsmith']}`,
      { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'title', value: 'President' }] },
      { 'if-match': etag },
    );
    expect(ok.status).toBe(200);
    const newEtag = ok.headers.get('etag')!;
    expect(newEtag).not.toBe(etag);

    const stale = await scim.patch(
      `/Users/${ids['jsmith']}`,
      { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'title', value: 'CEO' }] },
      { 'if-match': etag },
    );
    expect(stale.status).toBe(412);
    expect(stale.body).toMatchObject({ schemas: [ERROR_SCHEMA], status: '412' });
    const stalePut = await scim.put(`/Users/${ids['jsmith']}`, { ...ok.body, title: 'CEO' }, { 'if-match': etag });
    expect(stalePut.status).toBe(412);
    const staleDelete = await scim.delete(`/Users/${ids['jsmith']}`, { 'if-match': etag });
    expect(staleDelete.status).toBe(412);
    const now = await scim.get(`/Users/${ids['jsmith']}`);
    expect(now.body['title']).toBe('President');
    expect(now.headers.get('etag')).toBe(newEtag);
  });

  it('does not bump the version for a PATCH that changes nothing', async () => {
    const before = await scim.get(`/Users/${ids['zed']}`);
    const res = await scim.patch(`/Users/${ids['zed']}`, {
      schemas: [PATCH_OP],
      Operations: [{ op: 'replace', path: 'title', value: 'Engineer' }],
    });
    expect(res.headers.get('etag')).toBe(before.headers.get('etag'));
  });
});

describe('PATCH semantics and errors', () => {
  const patch = (id: string, ...Operations: unknown[]) => scim.patch(`/Users/${id}`, { schemas: [PATCH_OP], Operations });

  it('leaves the resource unchanged when any operation of a PATCH fails', async () => {
    const before = await scim.get(`/Users/${ids['bjensen']}`);
    const res = await patch(
      ids['bjensen']!,
      { op: 'replace', path: 'displayName', value: 'Changed' },
      { op: 'replace', path: 'name.givenName', value: 'Changed' },
      { op: 'replace', path: 'active', value: 'maybe' },
    );
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ scimType: 'invalidValue' });
    const after = await scim.get(`/Users/${ids['bjensen']}`);
    expect(after.body).toEqual(before.body);
    expect(after.headers.get('etag')).toBe(before.headers.get('etag'));
  });

  it('leaves the resource unchanged when a later operation collides on userName (409)', async () => {
    const before = await scim.get(`/Users/${ids['bjensen']}`);
    const res = await patch(
      ids['bjensen']!,
      { op: 'replace', path: 'title', value: 'Changed' },
      { op: 'replace', path: 'userName', value: 'JSMITH@example.com' },
    );
    expect(res.status).toBe(409);
    expect(res.body['scimType']).toBe('uniqueness');
    expect((await scim.get(`/Users/${ids['bjensen']}`)).body).toEqual(before.body);
  });

  const errors: Array<[string, unknown[], number, string]> = [
    ['an unknown op', [{ op: 'merge', path: 'title', value: 'x' }], 400, 'invalidSyntax'],
    ['a malformed path', [{ op: 'replace', path: 'emails[type eq', value: 'x' }], 400, 'invalidFilter'],
    ['a path to an unknown attribute', [{ op: 'replace', path: 'shoeSize', value: 42 }], 400, 'invalidPath'],
    ['a path into an unknown schema', [{ op: 'replace', path: 'urn:example:x:2.0:User:foo', value: 1 }], 400, 'invalidPath'],
    ['a change to a read-only attribute', [{ op: 'replace', path: 'id', value: randomUUID() }], 400, 'mutability'],
    ['a change to groups on a user', [{ op: 'add', path: 'groups', value: [{ value: randomUUID() }] }], 400, 'mutability'],
    ['remove without a path', [{ op: 'remove' }], 400, 'noTarget'],
    ['removing the required userName', [{ op: 'remove', path: 'userName' }], 400, 'invalidValue'],
    ['a value filter on a single-valued attribute', [{ op: 'replace', path: 'title[value eq "x"]', value: 'y' }], 400, 'invalidPath'],
    ['a non-boolean active', [{ op: 'replace', path: 'active', value: 3 }], 400, 'invalidValue'],
    ['a filter that cannot create a value', [{ op: 'replace', path: 'emails[value co "x"].type', value: 'work' }], 400, 'noTarget'],
  ];
  it.each(errors)('refuses %s', async (_name, ops, status, scimType) => {
    const res = await patch(ids['pct']!, ...ops);
    expect(res.status).toBe(status);
    expect(res.body).toMatchObject({ schemas: [ERROR_SCHEMA], status: String(status), scimType });
  });

  it('refuses a body that is not JSON with 400 invalidSyntax', async () => {
    const res = await scim.request('POST', '/Users', '{"userName": ', {});
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ schemas: [ERROR_SCHEMA], scimType: 'invalidSyntax' });
    const noOps = await scim.patch(`/Users/${ids['pct']}`, { schemas: [PATCH_OP] });
    expect(noOps.body).toMatchObject({ status: '400', scimType: 'invalidSyntax' });
  });

  it('refuses a user without userName and a body without the core schema', async () => {
    expect((await scim.post('/Users', { schemas: [CORE_USER], name: { givenName: 'x' } })).body).toMatchObject({
      status: '400',
      scimType: 'invalidValue',
    });
    expect((await scim.post('/Users', { schemas: [CORE_GROUP], userName: 'x@example.com' })).body).toMatchObject({
      status: '400',
      scimType: 'invalidSyntax',
    });
  });

  it('adds, replaces and removes with and without paths', async () => {
    const id = ids['under']!;
    let res = await patch(id, {
      op: 'add',
      value: { nickName: 'Undy', 'name.middleName': 'M', emails: [{ value: 'u@example.com', type: 'work', primary: true }] },
    });
    expect(res.body).toMatchObject({
      nickName: 'Undy',
      name: { middleName: 'M', givenName: 'Under' },
      emails: [{ value: 'u@example.com', type: 'work', primary: true }],
    });
    res = await patch(id, { op: 'add', path: 'emails', value: [{ value: 'home@example.com', type: 'home', primary: 'True' }] });
    // A new primary value demotes the old one (RFC 7643 §2.4).
    expect(res.body['emails']).toEqual([
      { value: 'u@example.com', type: 'work', primary: false },
      { value: 'home@example.com', type: 'home', primary: true },
    ]);
    res = await patch(id, { op: 'replace', path: 'emails[type eq "home"]', value: { value: 'new-home@example.com', type: 'home' } });
    expect((res.body['emails'] as unknown[])[1]).toEqual({ value: 'new-home@example.com', type: 'home' });
    res = await patch(id, { op: 'remove', path: 'emails[type eq "work"]' });
    expect(res.body['emails']).toEqual([{ value: 'new-home@example.com', type: 'home' }]);
    res = await patch(id, { op: 'replace', value: { [ENTERPRISE]: { costCenter: '4130' }, name: { familyName: 'Scored' } } });
    expect(res.body).toMatchObject({
      [ENTERPRISE]: { costCenter: '4130', department: 'QA' },
      name: { familyName: 'Scored', givenName: 'Under', middleName: 'M' },
    });
    res = await patch(
      id,
      { op: 'remove', path: 'nickName' },
      { op: 'remove', path: 'emails' },
      { op: 'remove', path: `${ENTERPRISE}:costCenter` },
    );
    expect(res.body).not.toHaveProperty('nickName');
    expect(res.body).not.toHaveProperty('emails');
    expect(res.body[ENTERPRISE]).toEqual({ department: 'QA', employeeNumber: '5' });
    // The platform email follows the SCIM primary email.
    const [user] = await tenantRows<{ email: string }>(app, tenantId, `SELECT email FROM users WHERE id = $1`, [ids['bjensen']]);
    expect(user!.email).toBe('bjensen@example.com');
  });

  it('keeps a group unchanged when one member of a batch is not a user of the tenant', async () => {
    const res = await scim.patch(`/Groups/${ids['engineers']}`, {
      schemas: [PATCH_OP],
      Operations: [
        { op: 'add', path: 'members', value: [{ value: ids['bjensen'] }] },
        { op: 'remove', path: `members[value eq "${ids['zed']}"]` },
        { op: 'add', path: 'members', value: [{ value: ids['jsmith'] }, { value: randomUUID() }] },
      ],
    });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ scimType: 'invalidValue' });
    const group = await scim.get(`/Groups/${ids['engineers']}`);
    expect((group.body['members'] as Array<{ value: string }>).map((m) => m.value).sort()).toEqual([ids['mmuller'], ids['zed']].sort());
    expect(group.body['meta']).toMatchObject({ version: 'W/"1"' });
  });

  it('takes a membership PATCH of 6,000 members (a body over 256 kB), which stays refused outside /scim', async () => {
    const value = Array.from({ length: 6000 }, () => ({ $ref: null, value: randomUUID() }));
    const body = { schemas: [PATCH_OP], Operations: [{ op: 'Remove', path: 'members', value }] };
    expect(JSON.stringify(body).length).toBeGreaterThan(256 * 1024);
    const res = await scim.patch(`/Groups/${ids['engineers']}`, body);
    expect(res.status).toBe(204);
    const elsewhere = await fetch(`${app.url}/health/live`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(elsewhere.status).toBe(413);
  });

  it('refuses nested groups and non-UUID member values', async () => {
    const nested = await scim.patch(`/Groups/${ids['engineers']}`, {
      schemas: [PATCH_OP],
      Operations: [{ op: 'add', path: 'members', value: [{ value: ids['engineers'], type: 'Group' }] }],
    });
    expect(nested.body).toMatchObject({ status: '400', scimType: 'invalidValue' });
    const junk = await scim.patch(`/Groups/${ids['engineers']}`, {
      schemas: [PATCH_OP],
      Operations: [{ op: 'add', path: 'members', value: [{ value: 'not-a-uuid' }] }],
    });
    expect(junk.body).toMatchObject({ status: '400', scimType: 'invalidValue' });
  });
});

describe('authentication and rate limit', () => {
  it('refuses a missing, malformed, unknown or revoked token with 401 in the SCIM error schema', async () => {
    const none = await fetch(`${app.url}/scim/v2/Users`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(await none.json()).toMatchObject({ schemas: [ERROR_SCHEMA], status: '401' });
    expect((await new ScimClient(scim.baseUrl, 'not-a-token').get('/Users')).status).toBe(401);
    const forged = scim.token.slice(0, -6) + 'AAAAAA';
    expect((await new ScimClient(scim.baseUrl, forged).get('/Users')).status).toBe(401);
    // A token in the query string is not accepted (it would end up in access logs).
    expect((await fetch(`${app.url}/scim/v2/Users?access_token=${encodeURIComponent(scim.token)}`)).status).toBe(401);
    // The auth-scheme is case-insensitive, as on every Bearer route (RFC 9110 §11.1).
    for (const scheme of ['bearer', 'BEARER'])
      expect(
        (await fetch(`${app.url}/scim/v2/ServiceProviderConfig`, { headers: { authorization: `${scheme} ${scim.token}` } })).status,
        scheme,
      ).toBe(200);

    const tokens = app.app.get(ScimTokensService);
    const extra = await tokens.create(tenantId, 'to be revoked');
    const client = ScimClient.for(app, extra.token);
    expect((await client.get('/ServiceProviderConfig')).status).toBe(200);
    const listed = await tokens.list(tenantId);
    expect(listed.find((t) => t.id === extra.id)).toMatchObject({
      name: 'to be revoked',
      prefix: extra.token.slice(0, 42),
      revokedAt: null,
    });
    expect(listed.find((t) => t.id === extra.id)!.lastUsedAt).toBeInstanceOf(Date);
    expect(JSON.stringify(listed)).not.toContain(extra.token);
    expect(await tokens.revoke(tenantId, extra.id)).toBe(true);
    expect((await client.get('/ServiceProviderConfig')).status).toBe(401);
  });

  it('stores only a hash of the token', async () => {
    const { token } = await app.app.get(ScimTokensService).create(tenantId, 'hash check');
    const rows = await tenantRows(app, tenantId, `SELECT * FROM scim_tokens`);
    expect(JSON.stringify(rows)).not.toContain(token);
  });

  it('answers 429 with Retry-After once a tenant exceeds its SCIM rate limit, without affecting other tenants', async () => {
    const limited = (await app.app.get(TenantsService).create('ratelimited', 'Rate Limited')).id;
    await app.app.get(ScimSettingsService).update(limited, { rateLimitPerMinute: 5 });
    const client = await scimClient(app, limited);
    // Twelve requests against a limit of 5 per fixed minute: at least two are refused even if the window rolls over mid-loop.
    const responses = [];
    for (let i = 0; i < 12; i++) responses.push(await client.get('/Users'));
    const refused = responses.filter((r) => r.status === 429);
    expect(refused.length).toBeGreaterThanOrEqual(2);
    expect(Number(refused[0]!.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(refused[0]!.body).toMatchObject({ schemas: [ERROR_SCHEMA], status: '429' });
    expect((await scim.get('/Users?count=0')).status).toBe(200);
  });

  it('shares the limit across replicas: each counts locally and merges into the shared counter', async () => {
    const shared = (await app.app.get(TenantsService).create('two-replicas', 'Two Replicas')).id;
    const [r1, r2] = [new PostgresRateLimiter(app.database), new PostgresRateLimiter(app.database)];
    const rule = [{ bucket: `scim:${shared}`, limit: 5 }];
    try {
      for (let i = 0; i < 3; i++) {
        expect(r1.count(rule).allowed).toBe(true);
        expect(r2.count(rule).allowed).toBe(true);
      }
      // Each replica alone is within 5; merged, the tenant is at 6. r2 merged last and knows it at once,
      // r1 learns it at its next merge (the limit holds to within one merge interval).
      await r1.flush();
      await r2.flush();
      expect(r2.count(rule).allowed).toBe(false);
      r1.count(rule);
      await r1.flush();
      expect(r1.count(rule).allowed).toBe(false);
    } finally {
      r1.onModuleDestroy();
      r2.onModuleDestroy();
    }
  });

  it('accepts application/json and application/scim+json request bodies', async () => {
    const res = await scim.request('POST', '/Users', JSON.stringify(entraUser(`json-${randomUUID()}@example.com`, randomUUID())), {
      'content-type': 'application/json',
    });
    expect(res.status).toBe(201);
  });
});
