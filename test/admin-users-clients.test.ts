/**
 * The admin API's first native user and client changes: `POST /admin/v1/tenants/{id}/users` (an
 * initial password, so a native binding's test login has someone to sign in), the mapping preview of
 * a native binding against the claims of real tokens, and `PATCH /admin/v1/clients/{id}`.
 */
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { adminClient, type AdminClient } from './support/admin.js';
import { NativeCredentialsService } from '../src/identity/native/native-credentials.service.js';
import { authorizeUrl, get, nativeLogin, pkcePair, submitNativeLogin, type BffClient } from './support/bff.js';

let app: TestApp;
let admin: AdminClient;
const PASSWORD = 'correct horse battery staple';

beforeAll(async () => {
  app = await startTestApp({ RATE_LIMIT_LOGIN_PER_MINUTE: '1000', RATE_LIMIT_AUTHORIZE_PER_MINUTE: '1000' });
  admin = await adminClient(app);
});
afterAll(async () => app?.close());

const json = async <T = Record<string, unknown>>(res: Response) => (await res.json()) as T;

async function createTenant(slug: string): Promise<{ id: string; slug: string }> {
  const res = await admin.call('POST', '/admin/v1/tenants', { slug, displayName: `${slug} Ltd` });
  expect(res.status).toBe(201);
  return json(res);
}

async function nativeBinding(tenantId: string, claimMapping: Record<string, unknown> = {}): Promise<{ id: string; version: number }> {
  const res = await admin.call('POST', `/admin/v1/tenants/${tenantId}/bindings`, { kind: 'native', claimMapping });
  expect(res.status).toBe(201);
  return json(res);
}

async function createClient(id: string, redirectUri: string): Promise<BffClient> {
  const res = await admin.call('POST', '/admin/v1/clients', { id, name: id, kind: 'bff', redirectUris: [redirectUri] });
  expect(res.status).toBe(201);
  return { clientId: id, clientSecret: (await json<{ clientSecret: string }>(res)).clientSecret, redirectUri };
}

async function auditOf(
  tenantId: string | null,
  action: string,
): Promise<Array<{ actor: string; target: string; data: Record<string, unknown> }>> {
  const q = new URLSearchParams({ action, ...(tenantId ? { tenantId } : {}) });
  return (
    await json<{ items: Array<{ actor: string; target: string; data: Record<string, unknown> }> }>(
      await admin.call('GET', `/admin/v1/audit-events?${q}`),
    )
  ).items;
}

describe('POST /admin/v1/tenants/{tenantId}/users', () => {
  it('creates a native user (201, never the password), audited, who then signs in with that password', async () => {
    const t = await createTenant('first-user');
    const b = await nativeBinding(t.id);
    const res = await admin.call('POST', `/admin/v1/tenants/${t.id}/users`, {
      username: 'Ann@First.example',
      password: PASSWORD,
      email: 'Ann@First.example',
      emailVerified: true,
      displayName: 'Ann First',
      roles: ['MEMBER'],
    });
    expect(res.status).toBe(201);
    const text = await res.text();
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toMatch(/argon2|password/i);
    const user = JSON.parse(text) as { id: string };
    expect(user).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      tenantId: t.id,
      username: 'Ann@First.example',
      email: 'ann@first.example',
      emailVerified: true,
      displayName: 'Ann First',
      status: 'active',
      managedBy: null,
      lockedUntil: null,
      roles: ['MEMBER'],
      manualRoles: ['MEMBER'],
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    expect(res.headers.get('location')).toBe(`/admin/v1/tenants/${t.id}/users/${user.id}`);

    const audit = await auditOf(t.id, 'user.created');
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({
      target: user.id,
      actor: expect.stringMatching(/^client:/),
      data: { credential: 'native', roles: ['MEMBER'], emailVerified: true },
    });
    expect(JSON.stringify(audit)).not.toContain(PASSWORD);
    expect(JSON.stringify(audit)).not.toContain('ann@first.example');

    // The draft binding's test login now has someone to sign in.
    const test = await json<{ url: string }>(await admin.call('POST', `/admin/v1/tenants/${t.id}/bindings/${b.id}/test-login`));
    const done = await submitNativeLogin(app.url, test.url, 'ann@first.example', PASSWORD);
    expect(done.headers.get('location')).toContain('/login/test-complete?outcome=success');
  });

  it('refuses a taken username (409, case-insensitive), a short password or one equal to the username or email (400), an unknown tenant (404)', async () => {
    const t = await createTenant('user-refusals');
    const path = `/admin/v1/tenants/${t.id}/users`;
    expect((await admin.call('POST', path, { username: 'bob', password: PASSWORD })).status).toBe(201);

    const taken = await admin.call('POST', path, { username: 'BOB', password: PASSWORD });
    expect(taken.status).toBe(409);
    expect(taken.headers.get('content-type')).toMatch(/problem\+json/);
    expect(await json(taken)).toMatchObject({ title: 'Username taken' });

    const short = await admin.call('POST', path, { username: 'carol', password: 'short' });
    expect(short.status).toBe(400);
    expect(short.headers.get('content-type')).toMatch(/problem\+json/);
    expect(await json(short)).toMatchObject({ title: 'Invalid password' });
    const asUsername = await admin.call('POST', path, { username: 'carol-the-admin', password: 'Carol-The-Admin' });
    expect(asUsername.status).toBe(400);
    expect(await json(asUsername)).toMatchObject({ title: 'Weak password' });
    const asEmail = await admin.call('POST', path, {
      username: 'carol',
      email: 'carol@refusals.example',
      password: 'carol@refusals.example',
    });
    expect(asEmail.status).toBe(400);
    expect(await json(asEmail)).toMatchObject({ title: 'Weak password' });

    for (const bad of [
      { password: PASSWORD },
      { username: ' padded ', password: PASSWORD },
      { username: 'dan', password: PASSWORD, email: 'not-an-email' },
      { username: 'dan', password: PASSWORD, roles: ['has space'] },
      { username: 'dan', password: PASSWORD, extra: 1 },
    ]) {
      const res = await admin.call('POST', path, bad);
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/problem\+json/);
    }
    // None of the refused requests created a user.
    expect((await auditOf(t.id, 'user.created')).length).toBe(1);

    const unknown = await admin.call('POST', '/admin/v1/tenants/00000000-0000-4000-8000-000000000000/users', {
      username: 'x',
      password: PASSWORD,
    });
    expect(unknown.status).toBe(404);
  });

  it('commits the user and its audit row together: when the audit row cannot be written, no user exists', async () => {
    const t = await createTenant('user-atomic');
    const creds = app.app.get(NativeCredentialsService);
    // PostgreSQL refuses a NUL in text: the audit insert fails inside the user's transaction.
    await expect(creds.createUser(t.id, { username: 'gil', password: PASSWORD }, { actor: 'client:\u0000' })).rejects.toThrow();
    expect((await admin.call('POST', `/admin/v1/tenants/${t.id}/users`, { username: 'gil', password: PASSWORD })).status).toBe(201);
  });

  it('replays a retried create with the same Idempotency-Key instead of answering 409', async () => {
    const t = await createTenant('user-idem');
    const body = { username: 'erin', password: PASSWORD };
    const first = await admin.call('POST', `/admin/v1/tenants/${t.id}/users`, body, { 'idempotency-key': 'user-1' });
    expect(first.status).toBe(201);
    const again = await admin.call('POST', `/admin/v1/tenants/${t.id}/users`, body, { 'idempotency-key': 'user-1' });
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect((await json(again))['id']).toBe((await json(first))['id']);
  });
});

describe('mapping preview of a native binding', () => {
  it('shows exactly the email, email_verified, name and roles the tokens of a real login carry', async () => {
    const t = await createTenant('preview-native');
    const b = await nativeBinding(t.id, { defaultRoles: ['MEMBER'] });
    const bff = await createClient('preview-native-bff', 'http://127.0.0.1:9/cb');
    expect(
      (
        await admin.call('POST', `/admin/v1/tenants/${t.id}/users`, {
          username: 'fay',
          password: PASSWORD,
          email: 'fay@preview.example',
          emailVerified: true,
          displayName: 'Fay P',
          roles: ['EDITOR'],
        })
      ).status,
    ).toBe(201);
    const test = await json<{ url: string }>(await admin.call('POST', `/admin/v1/tenants/${t.id}/bindings/${b.id}/test-login`));
    expect((await submitNativeLogin(app.url, test.url, 'fay', PASSWORD)).headers.get('location')).toContain('outcome=success');

    const preview = await json<{ source: string; platformClaims: Record<string, unknown> }>(
      await admin.call('POST', `/admin/v1/tenants/${t.id}/bindings/${b.id}/mapping:preview`, {}),
    );
    expect(preview.source).toBe('test-login');

    const current = await admin.call('GET', `/admin/v1/tenants/${t.id}/bindings/${b.id}`);
    expect(
      (
        await admin.call('POST', `/admin/v1/tenants/${t.id}/bindings/${b.id}/activate`, undefined, {
          'if-match': current.headers.get('etag')!,
        })
      ).status,
    ).toBe(200);
    const { tokens } = await nativeLogin(app.url, bff, 'preview-native', 'fay', PASSWORD);
    const access = decodeJwt(tokens.access_token);
    const id = decodeJwt(tokens.id_token);
    expect(preview.platformClaims).toEqual({
      tid: access['tid'],
      org: access['org'],
      email: id['email'],
      email_verified: id['email_verified'],
      name: id['name'],
      roles: access['roles'],
      idp: access['idp'],
      idp_sub: access['idp_sub'],
    });
    expect(preview.platformClaims).toMatchObject({
      email: 'fay@preview.example',
      email_verified: true,
      name: 'Fay P',
      roles: ['EDITOR', 'MEMBER'],
    });
  });
});

describe('PATCH /admin/v1/clients/{clientId}', () => {
  it('replaces redirect URIs, post-logout redirect URIs and scopes with If-Match; audited; the token endpoints see it at once', async () => {
    const bff = await createClient('patch-me', 'http://127.0.0.1:9/old');
    const path = '/admin/v1/clients/patch-me';
    const read = await admin.call('GET', path);
    const etag = read.headers.get('etag')!;
    expect(etag).toMatch(/^"c[\w-]+"$/);

    const change = {
      redirectUris: ['http://127.0.0.1:9/new'],
      postLogoutRedirectUris: ['http://127.0.0.1:9/bye'],
      scopes: ['openid', 'email'],
    };
    expect((await admin.call('PATCH', path, change)).status).toBe(428);
    const ok = await admin.call('PATCH', path, change, { 'if-match': etag });
    expect(ok.status).toBe(200);
    expect(await json(ok)).toMatchObject({ id: 'patch-me', ...change });
    expect(ok.headers.get('etag')).not.toBe(etag);
    // A second operator's edit from the same read is refused.
    expect((await admin.call('PATCH', path, { scopes: ['openid'] }, { 'if-match': etag })).status).toBe(412);

    const audit = (await auditOf(null, 'client.updated')).filter((e) => e.target === 'patch-me');
    expect(audit).toHaveLength(1);
    expect(audit[0]!.data).toMatchObject({ before: { redirectUris: ['http://127.0.0.1:9/old'] }, after: change });

    // /oauth2/authorize matches the new redirect URI exactly, and no longer the old one.
    const t = await createTenant('patched-client');
    await nativeBinding(t.id);
    const { challenge } = pkcePair();
    const authorize = (redirectUri: string) =>
      get(
        authorizeUrl(
          app.url,
          { ...bff, redirectUri },
          { org: 'patched-client', state: 's', code_challenge: challenge, code_challenge_method: 'S256', scope: 'openid' },
        ),
      );
    expect((await authorize('http://127.0.0.1:9/old')).status).toBe(400);
    expect((await authorize('http://127.0.0.1:9/new')).status).toBe(302);
  });

  it('refuses a relative or fragment redirect URI (400, nothing changed), an unknown client (404)', async () => {
    await createClient('patch-refusals', 'http://127.0.0.1:9/cb');
    const path = '/admin/v1/clients/patch-refusals';
    const etag = (await admin.call('GET', path)).headers.get('etag')!;
    for (const uris of [
      { redirectUris: ['/relative'] },
      { postLogoutRedirectUris: ['http://127.0.0.1:9/x#frag'] },
      { scopes: ['has space'] },
      { grantTypes: ['password'] },
    ]) {
      const res = await admin.call('PATCH', path, uris, { 'if-match': etag });
      expect(res.status, JSON.stringify(uris)).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/problem\+json/);
    }
    expect((await admin.call('GET', path)).headers.get('etag')).toBe(etag);
    expect((await admin.call('PATCH', '/admin/v1/clients/no-such-client', { scopes: ['openid'] }, { 'if-match': '*' })).status).toBe(404);
  });
});
