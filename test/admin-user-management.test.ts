/**
 * User management through the admin API (issue #17): list and search in cursor pages, read with
 * an ETag, change under If-Match, disable (sessions end), unlock, delete (a tombstone: the id is
 * never reused, the sessions stay revoked), and a tenant's own user administrators (USER_ADMIN),
 * confined to their tenant and to their own roles. Every login is a real hosted-form login.
 */
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { adminClient, type AdminClient } from './support/admin.js';
import { ScimClient } from './support/scim.js';
import { nativeLogin, tokenRequest } from './support/bff.js';
import { nativeTenant, signedInCaller } from './support/native-tenant.js';

let app: TestApp;
let admin: AdminClient;
const PASSWORD = 'correct horse battery staple';

beforeAll(async () => {
  app = await startTestApp({
    RATE_LIMIT_LOGIN_PER_MINUTE: '1000',
    RATE_LIMIT_AUTHORIZE_PER_MINUTE: '1000',
    NATIVE_LOCKOUT_THRESHOLD: '3',
  });
  admin = await adminClient(app);
});
afterAll(async () => app.close());

const json = async <T = Record<string, unknown>>(res: Response) => (await res.json()) as T;

interface UserView {
  id: string;
  username: string | null;
  email: string | null;
  displayName: string | null;
  status: string;
  roles: string[];
  manualRoles: string[];
  lockedUntil: string | null;
  managedBy: string | null;
}

async function createUser(
  tenantId: string,
  body: Record<string, unknown>,
  caller: { call: AdminClient['call'] } = admin,
): Promise<UserView> {
  const res = await caller.call('POST', `/admin/v1/tenants/${tenantId}/users`, body);
  expect(res.status, await res.clone().text()).toBe(201);
  return json<UserView>(res);
}

/** PATCH with the ETag just read. */
async function patchUser(tenantId: string, userId: string, change: Record<string, unknown>, caller: { call: AdminClient['call'] } = admin) {
  const path = `/admin/v1/tenants/${tenantId}/users/${userId}`;
  const current = await caller.call('GET', path);
  return caller.call('PATCH', path, change, { 'if-match': current.headers.get('etag') ?? '"none"' });
}

describe('users of a tenant through the admin API', () => {
  it('lists in cursor pages, searches by prefix and status, and reads one user with its ETag', async () => {
    const t = await nativeTenant(app, admin, 'um-list');
    const created: UserView[] = [];
    for (const name of ['alice', 'albert', 'bob', 'carla', 'dora'])
      created.push(
        await createUser(t.id, { username: name, password: PASSWORD, email: `${name}@list.example`, displayName: name.toUpperCase() }),
      );

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: URLSearchParams = new URLSearchParams({ limit: '2', ...(cursor ? { cursor } : {}) });
      const page: { items: UserView[]; nextCursor: string | null } = await json<{ items: UserView[]; nextCursor: string | null }>(
        await admin.call('GET', `/admin/v1/tenants/${t.id}/users?${q}`),
      );
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((u: UserView) => u.id));
      cursor = page.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual(created.map((u) => u.id));

    const al = await json<{ items: UserView[] }>(await admin.call('GET', `/admin/v1/tenants/${t.id}/users?q=AL`));
    expect(al.items.map((u) => u.username).sort()).toEqual(['albert', 'alice']);
    const byEmail = await json<{ items: UserView[] }>(await admin.call('GET', `/admin/v1/tenants/${t.id}/users?q=carla%40`));
    expect(byEmail.items.map((u) => u.username)).toEqual(['carla']);

    const one = await admin.call('GET', `/admin/v1/tenants/${t.id}/users/${created[0]!.id}`);
    expect(one.status).toBe(200);
    expect(one.headers.get('etag')).toMatch(/^"v\d+"$/);
    const body = await one.text();
    expect(body).not.toMatch(/password|argon2|failed/i);
    expect(JSON.parse(body)).toMatchObject({ id: created[0]!.id, username: 'alice', managedBy: null, lockedUntil: null, status: 'active' });

    for (const bad of ['cursor=nonsense', 'limit=0', 'status=deleted', 'unknown=1'])
      expect((await admin.call('GET', `/admin/v1/tenants/${t.id}/users?${bad}`)).status, bad).toBe(400);
    expect((await admin.call('GET', `/admin/v1/tenants/${t.id}/users/not-a-uuid`)).status).toBe(404);
    const missing = await admin.call('GET', `/admin/v1/tenants/${t.id}/users/00000000-0000-4000-8000-000000000000`);
    expect(missing.status).toBe(404);
    expect(await json(missing)).toMatchObject({ type: 'urn:auth-service:problem:user-not-found' });
  });

  it('changes profile and hand-given roles only under the ETag read; the next login carries them', async () => {
    const t = await nativeTenant(app, admin, 'um-update');
    const u = await createUser(t.id, { username: 'erin', password: PASSWORD, email: 'erin@update.example', emailVerified: true });
    const path = `/admin/v1/tenants/${t.id}/users/${u.id}`;
    const read = await admin.call('GET', path);
    const etag = read.headers.get('etag')!;

    expect((await admin.call('PATCH', path, { displayName: 'Erin U' })).status).toBe(428);
    const ok = await admin.call('PATCH', path, { displayName: 'Erin U', roles: ['EDITOR', 'EDITOR', 'VIEWER'] }, { 'if-match': etag });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('etag')).not.toBe(etag);
    expect(await json(ok)).toMatchObject({ displayName: 'Erin U', manualRoles: ['EDITOR', 'VIEWER'] });
    // The ETag read before the change is stale now: nothing changes.
    const stale = await admin.call('PATCH', path, { displayName: 'Lost update' }, { 'if-match': etag });
    expect(stale.status).toBe(412);
    expect(await json<UserView>(await admin.call('GET', path))).toMatchObject({ displayName: 'Erin U' });

    // A new email is unverified unless said otherwise.
    expect(await json(await patchUser(t.id, u.id, { email: 'Erin.New@Update.example' }))).toMatchObject({
      email: 'erin.new@update.example',
      emailVerified: false,
    });
    const bad = await patchUser(t.id, u.id, { roles: ['has space'] });
    expect(bad.status).toBe(400);
    expect((await patchUser(t.id, u.id, { status: 'deleted' })).status).toBe(400);

    const { tokens } = await nativeLogin(app.url, t.bff, t.slug, 'erin', PASSWORD);
    const claims = decodeJwt(tokens.access_token);
    expect(claims['roles']).toEqual(expect.arrayContaining(['EDITOR', 'VIEWER']));
    expect(claims.sub).toBe(u.id);

    const audit = await json<{ items: Array<{ target: string; data: Record<string, unknown> }> }>(
      await admin.call('GET', `/admin/v1/audit-events?tenantId=${t.id}&action=user.updated`),
    );
    expect(audit.items.length).toBe(2);
    expect(JSON.stringify(audit)).not.toContain('erin');
  });

  it('disabling ends the sessions at once (refresh refused), enabling lets the user sign in again', async () => {
    const t = await nativeTenant(app, admin, 'um-disable');
    const u = await createUser(t.id, { username: 'fred', password: PASSWORD });
    const { tokens } = await nativeLogin(app.url, t.bff, t.slug, 'fred', PASSWORD);
    expect((await patchUser(t.id, u.id, { status: 'disabled' })).status).toBe(200);
    const refreshed = await tokenRequest(app.url, t.bff, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
    expect(refreshed.status).toBe(400);
    expect(await json(refreshed)).toMatchObject({ error: 'invalid_grant' });
    const userinfo = await fetch(`${app.url}/oauth2/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(userinfo.status).toBe(401);
    await expect(nativeLogin(app.url, t.bff, t.slug, 'fred', PASSWORD)).rejects.toThrow();

    expect((await patchUser(t.id, u.id, { status: 'active' })).status).toBe(200);
    await expect(nativeLogin(app.url, t.bff, t.slug, 'fred', PASSWORD)).resolves.toBeDefined();
  });

  it('unlocks a password locked by failed attempts', async () => {
    const t = await nativeTenant(app, admin, 'um-unlock');
    const u = await createUser(t.id, { username: 'gus', password: PASSWORD });
    for (let i = 0; i < 3; i++) await expect(nativeLogin(app.url, t.bff, t.slug, 'gus', 'wrong password!')).rejects.toThrow();
    const locked = await json<UserView>(await admin.call('GET', `/admin/v1/tenants/${t.id}/users/${u.id}`));
    expect(locked.lockedUntil).not.toBeNull();
    await expect(nativeLogin(app.url, t.bff, t.slug, 'gus', PASSWORD)).rejects.toThrow();

    const unlocked = await admin.call('POST', `/admin/v1/tenants/${t.id}/users/${u.id}/unlock`, {});
    expect(unlocked.status).toBe(200);
    expect((await json<UserView>(unlocked)).lockedUntil).toBeNull();
    await expect(nativeLogin(app.url, t.bff, t.slug, 'gus', PASSWORD)).resolves.toBeDefined();
  });

  it('deletes a user: sessions end, the profile is gone, the id is never reused, the username is free again', async () => {
    const t = await nativeTenant(app, admin, 'um-delete');
    const u = await createUser(t.id, { username: 'hana', password: PASSWORD, email: 'hana@delete.example', roles: ['MEMBER'] });
    const { tokens } = await nativeLogin(app.url, t.bff, t.slug, 'hana', PASSWORD);
    const gone = await admin.call('DELETE', `/admin/v1/tenants/${t.id}/users/${u.id}`);
    expect(gone.status).toBe(204);
    expect((await admin.call('GET', `/admin/v1/tenants/${t.id}/users/${u.id}`)).status).toBe(404);
    expect((await admin.call('DELETE', `/admin/v1/tenants/${t.id}/users/${u.id}`)).status).toBe(404);
    const refreshed = await tokenRequest(app.url, t.bff, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
    expect(refreshed.status).toBe(400);
    await expect(nativeLogin(app.url, t.bff, t.slug, 'hana', PASSWORD)).rejects.toThrow();

    const { rows } = await app.database.transaction({ tenant: t.id }, (tx) =>
      tx.query<{ email: string | null; status: string; deleted_at: Date | null }>(
        `SELECT email, status, deleted_at FROM users WHERE id = $1`,
        [u.id],
      ),
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ email: null, status: 'disabled' });
    expect(rows[0]?.deleted_at).toBeInstanceOf(Date);

    const again = await createUser(t.id, { username: 'hana', password: PASSWORD });
    expect(again.id).not.toBe(u.id);
    const list = await json<{ items: UserView[] }>(await admin.call('GET', `/admin/v1/tenants/${t.id}/users`));
    expect(list.items.map((x) => x.id)).toEqual([again.id]);
  });
});

describe('users the tenant directory provisions over SCIM', () => {
  it('keep their directory-managed profile: email and name changes and deletes are refused (409), status and roles change', async () => {
    const t = await nativeTenant(app, admin, 'um-scim');
    const token = await json<{ token: string }>(await admin.call('POST', `/admin/v1/tenants/${t.id}/scim-tokens`, { name: 'Entra ID' }));
    const scim = ScimClient.for(app, token.token);
    const created = await scim.request<{ id: string }>('POST', '/Users', {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      userName: 'nia@scim.example',
      emails: [{ value: 'nia@scim.example', primary: true }],
    });
    expect(created.status).toBe(201);
    const id = created.body.id;
    const view = await json<UserView>(await admin.call('GET', `/admin/v1/tenants/${t.id}/users/${id}`));
    expect(view).toMatchObject({ managedBy: 'scim', username: null });

    const email = await patchUser(t.id, id, { email: 'other@scim.example' });
    expect(email.status).toBe(409);
    expect(await json(email)).toMatchObject({ type: 'urn:auth-service:problem:scim-managed' });
    expect((await admin.call('DELETE', `/admin/v1/tenants/${t.id}/users/${id}`)).status).toBe(409);
    const noPassword = await admin.call('POST', `/admin/v1/tenants/${t.id}/users/${id}/unlock`, {});
    expect(noPassword.status).toBe(409);
    expect(await json(noPassword)).toMatchObject({ type: 'urn:auth-service:problem:no-local-password' });
    // Nothing the refusals touched changed.
    expect(await json<UserView>(await admin.call('GET', `/admin/v1/tenants/${t.id}/users/${id}`))).toMatchObject({
      email: 'nia@scim.example',
      status: 'active',
    });

    expect(await json(await patchUser(t.id, id, { roles: ['AUDITOR'], status: 'disabled' }))).toMatchObject({
      manualRoles: ['AUDITOR'],
      status: 'disabled',
    });
  });
});

describe("a tenant's own user administrators (USER_ADMIN)", () => {
  it('manage their own tenant only, within their own roles; never another tenant or the rest of the admin API', async () => {
    const t = await nativeTenant(app, admin, 'um-ta');
    const other = await nativeTenant(app, admin, 'um-ta-other');
    await createUser(t.id, { username: 'ida', password: PASSWORD, roles: ['USER_ADMIN', 'MEMBER'] });
    const boss = await createUser(t.id, { username: 'boss', password: PASSWORD, roles: ['USER_ADMIN', 'MEMBER', 'BILLING'] });
    const ida = await signedInCaller(app, t, 'ida', PASSWORD);

    // Their own tenant: create (within their roles), list, change, disable.
    const jo = await createUser(t.id, { username: 'jo', password: PASSWORD, roles: ['MEMBER'] }, ida);
    expect((await ida.call('GET', `/admin/v1/tenants/${t.id}/users`)).status).toBe(200);
    expect((await patchUser(t.id, jo.id, { displayName: 'Jo' }, ida)).status).toBe(200);
    expect((await patchUser(t.id, jo.id, { status: 'disabled' }, ida)).status).toBe(200);
    const audit = await json<{ items: Array<{ actor: string }> }>(
      await admin.call('GET', `/admin/v1/audit-events?tenantId=${t.id}&action=user.updated`),
    );
    expect(audit.items.every((e) => e.actor.startsWith('user:'))).toBe(true);

    // Never above their own roles: no role they lack, no change to someone holding one.
    const raise = await patchUser(t.id, jo.id, { roles: ['MEMBER', 'BILLING'] }, ida);
    expect(raise.status).toBe(403);
    expect(
      (await ida.call('POST', `/admin/v1/tenants/${t.id}/users`, { username: 'kim', password: PASSWORD, roles: ['SUPER_ADMIN'] })).status,
    ).toBe(403);
    expect((await patchUser(t.id, boss.id, { status: 'disabled' }, ida)).status).toBe(403);
    expect((await ida.call('DELETE', `/admin/v1/tenants/${t.id}/users/${boss.id}`)).status).toBe(403);
    expect(await json<UserView>(await admin.call('GET', `/admin/v1/tenants/${t.id}/users/${boss.id}`))).toMatchObject({ status: 'active' });
    expect((await json<UserView>(await admin.call('GET', `/admin/v1/tenants/${t.id}/users/${jo.id}`))).roles).toEqual(['MEMBER']);

    // Never another tenant, whatever the path, nor any other admin route.
    const foreign = await ida.call('GET', `/admin/v1/tenants/${other.id}/users`);
    expect(foreign.status).toBe(403);
    expect(foreign.headers.get('content-type')).toMatch(/problem\+json/);
    expect((await ida.call('POST', `/admin/v1/tenants/${other.id}/users`, { username: 'x', password: PASSWORD })).status).toBe(403);
    expect((await ida.call('GET', '/admin/v1/tenants')).status).toBe(403);
    expect((await ida.call('GET', `/admin/v1/tenants/${t.id}`)).status).toBe(403);
    expect((await ida.call('GET', `/admin/v1/tenants/${t.id}/bindings`)).status).toBe(403);
    expect((await ida.call('GET', '/admin/v1/audit-events')).status).toBe(403);
  });

  it('lose the power as soon as the role is taken away, even with a token issued before', async () => {
    const t = await nativeTenant(app, admin, 'um-ta-revoke');
    const lee = await createUser(t.id, { username: 'lee', password: PASSWORD, roles: ['USER_ADMIN'] });
    const caller = await signedInCaller(app, t, 'lee', PASSWORD);
    expect((await caller.call('GET', `/admin/v1/tenants/${t.id}/users`)).status).toBe(200);
    expect((await patchUser(t.id, lee.id, { roles: [] })).status).toBe(200);
    expect((await caller.call('GET', `/admin/v1/tenants/${t.id}/users`)).status).toBe(403);
  });

  it('a user without the role, or a SUPER_ADMIN of a customer tenant, gets nothing', async () => {
    const t = await nativeTenant(app, admin, 'um-ta-none');
    await createUser(t.id, { username: 'max', password: PASSWORD, roles: ['MEMBER', 'SUPER_ADMIN'] });
    const max = await signedInCaller(app, t, 'max', PASSWORD);
    expect((await max.call('GET', `/admin/v1/tenants/${t.id}/users`)).status).toBe(403);
    expect((await max.call('GET', '/admin/v1/tenants')).status).toBe(403);
  });
});
