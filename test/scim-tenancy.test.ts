/**
 * One tenant's SCIM token never reaches another tenant's data: the token alone decides the
 * tenant, foreign ids answer exactly like unknown ones (404, not 403), and row-level security
 * stays on underneath.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { TenantsService } from '../src/tenants/tenants.service.js';
import { TenantsAdminService } from '../src/admin/tenants-admin.service.js';
import { ScimSettingsService, ScimTokensService } from '../src/scim/scim-tokens.service.js';
import { CORE_GROUP, ERROR_SCHEMA, PATCH_OP, type ListBody, ScimClient, entraUser, q, scimClient } from './support/scim.js';

let app: TestApp;
let a: ScimClient;
let b: ScimClient;
let tenantA: string;
let tenantB: string;
let bUser: Record<string, unknown>;
let bGroup: Record<string, unknown>;
let aGroup: string;

beforeAll(async () => {
  // Verified tokens are not cached here, so that a suspension is seen by the very next request.
  app = await startTestApp({ SCIM_TOKEN_CACHE_SECONDS: '0' });
  const tenants = app.app.get(TenantsService);
  tenantA = (await tenants.create('tenant-a', 'Tenant A')).id;
  tenantB = (await tenants.create('tenant-b', 'Tenant B')).id;
  a = await scimClient(app, tenantA, 'A');
  b = await scimClient(app, tenantB, 'B');
  bUser = (await b.post('/Users', entraUser('shared.name@example.com', 'ext-b-1'))).body;
  bGroup = (await b.post('/Groups', { schemas: [CORE_GROUP], displayName: 'B Admins', members: [{ value: bUser['id'] }] })).body;
  aGroup = (await a.post('/Groups', { schemas: [CORE_GROUP], displayName: 'A Admins' })).body['id'] as string;
});

afterAll(async () => {
  await app?.close();
});

/** The 404 a tenant gets for an id, with the id itself blanked: identical for foreign and unknown ids. */
const notFound = async (res: Promise<{ status: number; body: Record<string, unknown> }>, id: string) => {
  const r = await res;
  return { status: r.status, body: { ...r.body, detail: String(r.body['detail']).replace(id, '<id>') } };
};

describe("tenant A's token against tenant B's resources", () => {
  it("cannot see, replace, patch or delete B's user: 404 exactly like an unknown id", async () => {
    const id = bUser['id'] as string;
    const unknown = randomUUID();
    const patchBody = { schemas: [PATCH_OP], Operations: [{ op: 'replace', path: 'active', value: false }] };
    const pairs: Array<
      [Promise<{ status: number; body: Record<string, unknown> }>, Promise<{ status: number; body: Record<string, unknown> }>]
    > = [
      [a.get(`/Users/${id}`), a.get(`/Users/${unknown}`)],
      [a.put(`/Users/${id}`, entraUser('taken@example.com', 'x')), a.put(`/Users/${unknown}`, entraUser('taken@example.com', 'x'))],
      [a.patch(`/Users/${id}`, patchBody), a.patch(`/Users/${unknown}`, patchBody)],
      [a.delete(`/Users/${id}`), a.delete(`/Users/${unknown}`)],
    ];
    for (const [foreign, missing] of pairs) {
      const f = await notFound(foreign, id);
      expect(f.status).toBe(404);
      expect(f.body).toMatchObject({ schemas: [ERROR_SCHEMA], status: '404' });
      expect(f).toEqual(await notFound(missing, unknown));
    }
    const still = await b.get(`/Users/${id}`);
    expect(still.body).toMatchObject({ active: true, meta: { version: 'W/"1"' } });
  });

  it("cannot see, replace, patch or delete B's group", async () => {
    const id = bGroup['id'] as string;
    expect((await a.get(`/Groups/${id}`)).status).toBe(404);
    expect((await a.put(`/Groups/${id}`, { schemas: [CORE_GROUP], displayName: 'hijacked', members: [] })).status).toBe(404);
    expect((await a.patch(`/Groups/${id}`, { schemas: [PATCH_OP], Operations: [{ op: 'remove', path: 'members' }] })).status).toBe(404);
    expect((await a.delete(`/Groups/${id}`)).status).toBe(404);
    const still = await b.get(`/Groups/${id}`);
    expect(still.body).toMatchObject({ displayName: 'B Admins', members: [expect.objectContaining({ value: bUser['id'] })] });
  });

  it("finds nothing of B's through filters or listing", async () => {
    for (const filter of [
      `id eq "${bUser['id']}"`,
      'userName eq "shared.name@example.com"',
      'externalId eq "ext-b-1"',
      'emails.value co "shared"',
    ]) {
      expect((await a.get<ListBody>(`/Users${q(filter)}`)).body.totalResults).toBe(0);
    }
    expect((await a.get<ListBody>(`/Groups${q(`members[value eq "${bUser['id']}"]`)}`)).body.totalResults).toBe(0);
    expect((await a.get<ListBody>('/Groups')).body.Resources.map((g) => g['id'])).toEqual([aGroup]);
  });

  it("cannot add B's user to A's group (refused like an unknown user)", async () => {
    const res = await a.patch(`/Groups/${aGroup}`, {
      schemas: [PATCH_OP],
      Operations: [{ op: 'add', path: 'members', value: [{ value: bUser['id'] }] }],
    });
    expect(res.status).toBe(400);
    expect(res.body['scimType']).toBe('invalidValue');
  });

  it('has its own userName namespace: the same userName exists once per tenant', async () => {
    const res = await a.post('/Users', entraUser('Shared.Name@example.com', 'ext-a-1'));
    expect(res.status).toBe(201);
    expect(res.body['id']).not.toBe(bUser['id']);
  });

  it("is refused when A's token is re-labelled with B's tenant id", async () => {
    const hexB = tenantB.replaceAll('-', '');
    const forged = a.token.replace(/^st_[0-9a-f]{32}_/, `st_${hexB}_`);
    expect(forged).not.toBe(a.token);
    const res = await new ScimClient(a.baseUrl, forged).get('/Users');
    expect(res.status).toBe(401);
  });

  it('stops working when the tenant is suspended', async () => {
    const tenantC = (await app.app.get(TenantsService).create('tenant-c', 'Tenant C')).id;
    const c = await scimClient(app, tenantC);
    expect((await c.get('/Users')).status).toBe(200);
    await app.database.query(`UPDATE tenants SET status = 'suspended' WHERE id = $1`, [tenantC]);
    expect((await c.get('/Users')).status).toBe(401);
  });
});

describe('row-level security underneath', () => {
  it("hides B's users, groups, memberships and tokens from a query in A's context that forgot its tenant filter", async () => {
    const counts = await app.database.transaction({ tenant: tenantA }, async (tx) => {
      const one = async (sql: string) => (await tx.query<{ n: number }>(sql)).rows[0]!.n;
      return {
        users: await one(`SELECT count(*)::int AS n FROM users WHERE id = '${bUser['id']}'`),
        groups: await one(`SELECT count(*)::int AS n FROM groups WHERE id = '${bGroup['id']}'`),
        members: await one(`SELECT count(*)::int AS n FROM group_members WHERE group_id = '${bGroup['id']}'`),
        emails: await one(`SELECT count(*)::int AS n FROM user_emails WHERE user_id = '${bUser['id']}'`),
        tokens: await one(`SELECT count(*)::int AS n FROM scim_tokens WHERE tenant_id = '${tenantB}'`),
      };
    });
    expect(counts).toEqual({ users: 0, groups: 0, members: 0, emails: 0, tokens: 0 });
  });

  it("refuses to write a row of B's in A's context", async () => {
    await expect(
      app.database.transaction({ tenant: tenantA }, (tx) =>
        tx.query(`INSERT INTO groups (tenant_id, display_name) VALUES ($1, 'smuggled')`, [tenantB]),
      ),
    ).rejects.toThrow(/row-level security/);
  });
});

describe('cached token verifications (SCIM_TOKEN_CACHE_SECONDS=300, two replicas)', () => {
  // Verifications are cached here for five minutes: each refusal below is the cache being dropped.
  let one: TestApp;
  let two: TestApp;
  const both = (token: string) => [ScimClient.for(one, token), ScimClient.for(two, token)] as const;
  const statuses = async (clients: readonly ScimClient[]) => Promise.all(clients.map(async (c) => (await c.get('/Users')).status));
  const fresh = async (slug: string) => {
    const id = (await one.app.get(TenantsService).create(slug, slug)).id;
    return { id, clients: both((await one.app.get(ScimTokensService).create(id, 'cached')).token) };
  };
  const admin = { actor: 'test-operator', tenantId: randomUUID(), roles: ['SUPER_ADMIN'], scopes: ['admin'] };

  beforeAll(async () => {
    one = await startTestApp({ SCIM_TOKEN_CACHE_SECONDS: '300' }, app.db);
    two = await startTestApp({ SCIM_TOKEN_CACHE_SECONDS: '300' }, app.db);
  });
  afterAll(async () => {
    await one?.close();
    await two?.close();
  });

  it('a token revoked on one replica is refused on both', async () => {
    const { id, clients } = await fresh('cache-revoke');
    expect(await statuses(clients)).toEqual([200, 200]);
    const [token] = await two.app.get(ScimTokensService).list(id);
    expect(await two.app.get(ScimTokensService).revoke(id, token!.id)).toBe(true);
    expect((await clients[1].get('/Users')).status).toBe(401); // the writer's replica: at once
    await vi.waitFor(async () => expect(await statuses(clients)).toEqual([401, 401]), { timeout: 5_000, interval: 50 });
  });

  it('a tenant deleted through the admin API stops SCIM on both replicas', async () => {
    const { id, clients } = await fresh('cache-delete');
    expect(await statuses(clients)).toEqual([200, 200]);
    await one.app.get(TenantsAdminService).remove(admin, id);
    expect((await clients[0].get('/Users')).status).toBe(401);
    await vi.waitFor(async () => expect(await statuses(clients)).toEqual([401, 401]), { timeout: 5_000, interval: 50 });
  });

  it('a tenant suspended by hand in SQL stops SCIM on both replicas', async () => {
    const { id, clients } = await fresh('cache-suspend');
    expect(await statuses(clients)).toEqual([200, 200]);
    await app.database.query(`UPDATE tenants SET status = 'suspended' WHERE id = $1`, [id]);
    await vi.waitFor(async () => expect(await statuses(clients)).toEqual([401, 401]), { timeout: 5_000, interval: 50 });
  });

  it('a changed SCIM rate limit applies on both replicas', async () => {
    const { id, clients } = await fresh('cache-settings');
    expect(await statuses(clients)).toEqual([200, 200]);
    await one.app.get(ScimSettingsService).update(id, { rateLimitPerMinute: 1 });
    // One request per minute for the tenant from now on, on the replica that did not make the change too.
    await vi.waitFor(async () => expect((await clients[1].get('/Users')).status).toBe(429), { timeout: 5_000, interval: 50 });
  });
});
