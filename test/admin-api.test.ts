import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { adminClient, type AdminClient } from './support/admin.js';
import { seedBff } from './support/seed.js';
import { authorizeUrl, basic, get, nativeLogin, pkcePair, postForm, submitNativeLogin, type BffClient } from './support/bff.js';
import { NativeCredentialsService } from '../src/identity/native/native-credentials.service.js';
import { ClientsService } from '../src/clients/clients.service.js';
import { TenantsService } from '../src/tenants/tenants.service.js';

let app: TestApp;
let admin: AdminClient;
let bff: BffClient;
const PASSWORD = 'correct horse battery staple';

beforeAll(async () => {
  app = await startTestApp();
  admin = await adminClient(app);
  bff = await seedBff(app);
});
afterAll(async () => app?.close());

interface RouteInfo {
  method: string;
  path: string;
}

/** Every route the running app serves, read from the HTTP server's router. */
function servedRoutes(): RouteInfo[] {
  const express = app.app.getHttpAdapter().getInstance() as {
    router: { stack: Array<{ route?: { path: string; methods: Record<string, boolean> } }> };
  };
  return express.router.stack
    .filter((l) => l.route)
    .flatMap((l) =>
      Object.keys(l.route!.methods)
        .filter((m) => m !== '_all')
        .map((m) => ({ method: m.toUpperCase(), path: l.route!.path })),
    );
}

const json = async <T = Record<string, unknown>>(res: Response) => (await res.json()) as T;

async function createTenant(slug: string) {
  const res = await admin.call('POST', '/admin/v1/tenants', { slug, displayName: `${slug} Ltd` });
  expect(res.status).toBe(201);
  return json<{ id: string; slug: string; version: number }>(res);
}

async function loginThroughForm(url: string, username: string) {
  const res = await submitNativeLogin(app.url, url, username, PASSWORD);
  return res;
}

describe('admin authentication', () => {
  it('guards every admin route: no token is 401 on each one', async () => {
    const routes = servedRoutes().filter((r) => r.path.startsWith('/admin/'));
    expect(routes.length).toBeGreaterThanOrEqual(18);
    for (const r of routes) {
      const path = r.path.replace(/(?<!\\):(\w+)/g, '00000000-0000-4000-8000-000000000000').replace(/\\/g, '');
      const res = await fetch(`${app.url}${path}`, {
        method: r.method,
        headers: { 'content-type': 'application/json' },
        body: r.method === 'GET' ? undefined : '{}',
      });
      expect(res.status, `${r.method} ${r.path}`).toBe(401);
      expect(res.headers.get('content-type')).toMatch(/problem\+json/);
    }
  });

  it('refuses a tenant SUPER_ADMIN or admin-scoped client that is not of the operator tenant (403)', async () => {
    const tenant = await app.app.get(TenantsService).create('customer-x', 'Customer X');
    const { secret } = await app.app
      .get(ClientsService)
      .create({ id: 'customer-x-job', name: 'x', kind: 'machine', tenantId: tenant.id, scopes: ['admin'] });
    const tok = (
      await json<{ access_token: string }>(
        await postForm(
          `${app.url}/oauth2/token`,
          { grant_type: 'client_credentials', scope: 'admin' },
          { headers: { authorization: basic('customer-x-job', secret) } },
        ),
      )
    ).access_token;
    const res = await fetch(`${app.url}/admin/v1/tenants`, { headers: { authorization: `Bearer ${tok}` } });
    expect(res.status).toBe(403);
  });

  it('refuses an operator machine client without the admin scope, and a garbage token', async () => {
    const ops = (await app.app.get(TenantsService).findActiveBySlug('operators'))!;
    const { secret } = await app.app
      .get(ClientsService)
      .create({ id: 'ops-reader', name: 'r', kind: 'machine', tenantId: ops.id, scopes: ['read'] });
    const tok = (
      await json<{ access_token: string }>(
        await postForm(
          `${app.url}/oauth2/token`,
          { grant_type: 'client_credentials' },
          { headers: { authorization: basic('ops-reader', secret) } },
        ),
      )
    ).access_token;
    expect((await fetch(`${app.url}/admin/v1/tenants`, { headers: { authorization: `Bearer ${tok}` } })).status).toBe(403);
    expect((await fetch(`${app.url}/admin/v1/tenants`, { headers: { authorization: 'Bearer not.a.jwt' } })).status).toBe(401);
  });
});

describe('tenants', () => {
  it('creates idempotently with Idempotency-Key, and refuses the key with another body (422)', async () => {
    const body = { slug: 'idem', displayName: 'Idem' };
    const first = await admin.call('POST', '/admin/v1/tenants', body, { 'idempotency-key': 'k-1' });
    expect(first.status).toBe(201);
    const again = await admin.call('POST', '/admin/v1/tenants', body, { 'idempotency-key': 'k-1' });
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect((await json(again))['id']).toBe((await json(first))['id']);
    const other = await admin.call('POST', '/admin/v1/tenants', { slug: 'idem2', displayName: 'Other' }, { 'idempotency-key': 'k-1' });
    expect(other.status).toBe(422);
  });

  it('refuses a duplicate slug (409), a bad slug (400), a slug change (400)', async () => {
    const t = await createTenant('dup');
    expect((await admin.call('POST', '/admin/v1/tenants', { slug: 'dup', displayName: 'again' })).status).toBe(409);
    const bad = await admin.call('POST', '/admin/v1/tenants', { slug: 'Not A Slug', displayName: 'x' });
    expect(bad.status).toBe(400);
    expect((await json(bad))['detail']).toMatch(/slug must be/);
    const change = await admin.call('PATCH', `/admin/v1/tenants/${t.id}`, { slug: 'renamed' }, { 'if-match': '"v1"' });
    expect(change.status).toBe(400);
    expect((await json(change))['title']).toBe('Slug is immutable');
  });

  it('needs If-Match on updates (428) and refuses a stale ETag (412)', async () => {
    const t = await createTenant('etag');
    expect((await admin.call('PATCH', `/admin/v1/tenants/${t.id}`, { displayName: 'New' })).status).toBe(428);
    const ok = await admin.call('PATCH', `/admin/v1/tenants/${t.id}`, { displayName: 'New' }, { 'if-match': '"v1"' });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('etag')).toBe('"v2"');
    expect((await admin.call('PATCH', `/admin/v1/tenants/${t.id}`, { displayName: 'Newer' }, { 'if-match': '"v1"' })).status).toBe(412);
  });
});

describe('bindings: staged activation, preview, rollback', () => {
  it('onboards a native tenant: draft → test login → activate → a user logs in through the BFF flow', async () => {
    const t = await createTenant('onboard');
    const tenant = (await app.app.get(TenantsService).findById(t.id))!;
    await app.app
      .get(NativeCredentialsService)
      .createUser(tenant.id, { username: 'ann@onboard.test', password: PASSWORD, email: 'ann@onboard.test' });

    const unknownKind = await admin.call('POST', `/admin/v1/tenants/${t.id}/bindings`, { kind: 'ldap' });
    expect(unknownKind.status).toBe(400);

    const created = await admin.call('POST', `/admin/v1/tenants/${t.id}/bindings`, {
      kind: 'native',
      claimMapping: { defaultRoles: ['V1'] },
      secrets: { pepper: 'never-echo-me' },
    });
    expect(created.status).toBe(201);
    const text = await created.text();
    expect(text).not.toContain('never-echo-me');
    const binding = JSON.parse(text) as { id: string; status: string; secretFields: string[]; version: number };
    expect(binding).toMatchObject({ status: 'draft', secretFields: ['pepper'] });
    expect(await (await admin.call('GET', `/admin/v1/tenants/${t.id}/bindings/${binding.id}`)).text()).not.toContain('never-echo-me');

    // A draft serves no logins.
    const { challenge } = pkcePair();
    const early = await get(
      authorizeUrl(app.url, bff, { org: 'onboard', state: 's', code_challenge: challenge, code_challenge_method: 'S256' }),
    );
    expect(new URL(early.headers.get('location')!).searchParams.get('error')).toBe('temporarily_unavailable');

    const refused = await admin.call('POST', `/admin/v1/tenants/${t.id}/bindings/${binding.id}/activate`, undefined, {
      'if-match': `"v${binding.version}"`,
    });
    expect(refused.status).toBe(409);
    expect((await json(refused))['title']).toBe('Test login required');

    const test = await json<{ url: string }>(await admin.call('POST', `/admin/v1/tenants/${t.id}/bindings/${binding.id}/test-login`));
    const done = await loginThroughForm(test.url.replace(app.config.issuer, app.url), 'ann@onboard.test');
    expect(done.status).toBe(302);
    expect(done.headers.get('location')).toContain('/login/test-complete?outcome=success');

    const preview = await json<{ source: string; platformClaims: { roles: string[]; org: string } }>(
      await admin.call('POST', `/admin/v1/tenants/${t.id}/bindings/${binding.id}/mapping:preview`, {}),
    );
    expect(preview).toMatchObject({ source: 'test-login', platformClaims: { roles: ['V1'], org: 'onboard' } });

    const activated = await admin.call('POST', `/admin/v1/tenants/${t.id}/bindings/${binding.id}/activate`, undefined, {
      'if-match': `"v${binding.version}"`,
    });
    expect(activated.status).toBe(200);
    expect((await json(activated))['status']).toBe('active');

    const { tokens } = await nativeLogin(app.url, bff, 'onboard', 'ann@onboard.test', PASSWORD);
    expect(JSON.parse(Buffer.from(tokens.access_token.split('.')[1]!, 'base64url').toString())).toMatchObject({
      org: 'onboard',
      roles: ['V1'],
    });

    // A change to the active binding becomes a new draft; logins keep the active one until activation.
    const current = await json<{ version: number }>(await admin.call('GET', `/admin/v1/tenants/${t.id}/bindings/${binding.id}`));
    const changed = await admin.call(
      'PATCH',
      `/admin/v1/tenants/${t.id}/bindings/${binding.id}`,
      { claimMapping: { defaultRoles: ['V2'] } },
      { 'if-match': `"v${current.version}"` },
    );
    expect(changed.status).toBe(201);
    const draft = await json<{ id: string; version: number; status: string }>(changed);
    expect(draft.status).toBe('draft');
    const stillV1 = await nativeLogin(app.url, bff, 'onboard', 'ann@onboard.test', PASSWORD);
    expect(JSON.parse(Buffer.from(stillV1.tokens.access_token.split('.')[1]!, 'base64url').toString())['roles']).toEqual(['V1']);

    const test2 = await json<{ url: string }>(await admin.call('POST', `/admin/v1/tenants/${t.id}/bindings/${draft.id}/test-login`));
    expect((await loginThroughForm(test2.url.replace(app.config.issuer, app.url), 'ann@onboard.test')).status).toBe(302);
    expect(
      (
        await admin.call('POST', `/admin/v1/tenants/${t.id}/bindings/${draft.id}/activate`, undefined, {
          'if-match': `"v${draft.version}"`,
        })
      ).status,
    ).toBe(200);
    const v2 = await nativeLogin(app.url, bff, 'onboard', 'ann@onboard.test', PASSWORD);
    expect(JSON.parse(Buffer.from(v2.tokens.access_token.split('.')[1]!, 'base64url').toString())['roles']).toEqual(['V2']);

    // Rollback: one call, and logins follow it.
    const rolled = await admin.call('POST', `/admin/v1/tenants/${t.id}/bindings/rollback`);
    expect(rolled.status).toBe(200);
    expect((await json(rolled))['id']).toBe(binding.id);
    const back = await nativeLogin(app.url, bff, 'onboard', 'ann@onboard.test', PASSWORD);
    expect(JSON.parse(Buffer.from(back.tokens.access_token.split('.')[1]!, 'base64url').toString())['roles']).toEqual(['V1']);

    const health = await json<{ lastLoginSucceededAt: string | null }>(
      await admin.call('GET', `/admin/v1/tenants/${t.id}/bindings/${binding.id}/health`),
    );
    expect(health.lastLoginSucceededAt).not.toBeNull();
  });

  it('previews a mapping on a sample identity without issuing anything', async () => {
    const t = await createTenant('preview');
    const b = await json<{ id: string }>(
      await admin.call('POST', `/admin/v1/tenants/${t.id}/bindings`, {
        kind: 'native',
        claimMapping: { roles: [{ claim: 'groups', value: 'MY_PROJECT_SUPER_ADMIN', role: 'SUPER_ADMIN' }] },
      }),
    );
    const res = await admin.call('POST', `/admin/v1/tenants/${t.id}/bindings/${b.id}/mapping:preview`, {
      claims: { email: 'X@Y.test', email_verified: true, groups: ['MY_PROJECT_SUPER_ADMIN', 'OTHER'], secret_thing: 1 },
    });
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({
      source: 'sample',
      platformClaims: {
        tid: t.id,
        org: 'preview',
        email: 'x@y.test',
        email_verified: true,
        name: null,
        roles: ['SUPER_ADMIN'],
        idp: 'native',
        idp_sub: 'sample-subject',
      },
      droppedClaims: ['secret_thing'],
    });
  });
});

describe('clients, keys, audit, delete', () => {
  it('creates a client showing its secret once, lists without it, and disables it', async () => {
    const created = await json<{ id: string; clientSecret: string }>(
      await admin.call('POST', '/admin/v1/clients', {
        id: 'spa-bff',
        name: 'SPA BFF',
        kind: 'bff',
        redirectUris: ['https://app.example/cb'],
      }),
    );
    expect(created.clientSecret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await (await admin.call('GET', '/admin/v1/clients/spa-bff')).text()).not.toContain(created.clientSecret);
    expect((await admin.call('DELETE', '/admin/v1/clients/spa-bff')).status).toBe(204);
    expect((await admin.call('GET', '/admin/v1/clients/spa-bff')).status).toBe(404);
  });

  it('rotates the signing key through the API', async () => {
    const key = await json<{ kid: string; status: string }>(
      await admin.call('POST', '/admin/v1/signing-keys/rotate', { publishDelaySeconds: 3600 }),
    );
    expect(key.status).toBe('pending');
    const jwks = await json<{ keys: Array<{ kid: string }> }>(await fetch(`${app.url}/.well-known/jwks.json`));
    expect(jwks.keys.map((k) => k.kid)).toContain(key.kid);
  });

  it('soft-deletes a tenant: logins stop at once, the audit trail records who did it', async () => {
    const t = await createTenant('leaving');
    const b = await json<{ id: string; version: number }>(
      await admin.call('POST', `/admin/v1/tenants/${t.id}/bindings`, { kind: 'native' }),
    );
    const tenant = (await app.app.get(TenantsService).findById(t.id))!;
    await app.app.get(NativeCredentialsService).createUser(tenant.id, { username: 'lee@leaving.test', password: PASSWORD });
    const test = await json<{ url: string }>(await admin.call('POST', `/admin/v1/tenants/${t.id}/bindings/${b.id}/test-login`));
    await loginThroughForm(test.url.replace(app.config.issuer, app.url), 'lee@leaving.test');
    await admin.call('POST', `/admin/v1/tenants/${t.id}/bindings/${b.id}/activate`, undefined, { 'if-match': `"v${b.version}"` });
    const { tokens } = await nativeLogin(app.url, bff, 'leaving', 'lee@leaving.test', PASSWORD);

    expect((await admin.call('DELETE', `/admin/v1/tenants/${t.id}`)).status).toBe(204);
    const { challenge } = pkcePair();
    const after = await get(
      authorizeUrl(app.url, bff, { org: 'leaving', state: 's', code_challenge: challenge, code_challenge_method: 'S256' }),
    );
    expect(new URL(after.headers.get('location')!).searchParams.get('error')).toBe('unknown_organization');
    const refresh = await postForm(
      `${app.url}/oauth2/token`,
      { grant_type: 'refresh_token', refresh_token: tokens.refresh_token },
      { headers: { authorization: basic(bff.clientId, bff.clientSecret) } },
    );
    expect(refresh.status).toBe(400);

    const events = await json<{ items: Array<{ action: string; actor: string }>; nextCursor: string | null }>(
      await admin.call('GET', `/admin/v1/audit-events?tenantId=${t.id}&limit=2`),
    );
    expect(events.items).toHaveLength(2);
    expect(events.items[0]).toMatchObject({ action: 'tenant.deleted' });
    expect(events.items[0]!.actor).toMatch(/^client:ops-/);
    expect(events.nextCursor).not.toBeNull();
    const page2 = await json<{ items: Array<{ action: string }> }>(
      await admin.call('GET', `/admin/v1/audit-events?tenantId=${t.id}&cursor=${events.nextCursor}`),
    );
    expect(page2.items.map((e) => e.action)).toContain('tenant.created');
  });
});

describe('OpenAPI', () => {
  it('documents exactly the routes the app serves', async () => {
    const doc = await json<{ paths: Record<string, Record<string, unknown>> }>(await fetch(`${app.url}/docs/openapi.json`));
    const documented = new Set(Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`)));
    // Browser pages and the tenants' logos they show, Swagger itself, the Prometheus scrape target, the
    // router's not-found catch-all, and deliberate "method not allowed / not implemented" answers are not API operations.
    const hidden = /^\/(login|saml|docs|branding)\b|^\/account\/(?!v1\/)|^\{\/\*splat\}$|^\/scim\/v2\/(Bulk|Me)$|^\/metrics$/;
    const undocumented = new Set(['GET /oauth2/token']);
    const served = new Set(
      servedRoutes()
        .filter(
          (r) =>
            ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].includes(r.method) &&
            !hidden.test(r.path) &&
            !undocumented.has(`${r.method} ${r.path}`),
        )
        .map((r) => `${r.method} ${r.path.replace(/(?<!\\):(\w+)/g, '{$1}').replace(/\\/g, '')}`),
    );
    expect([...served].filter((r) => !documented.has(r)).sort()).toEqual([]);
    expect([...documented].filter((r) => !served.has(r) && !hidden.test(r.split(' ')[1]!)).sort()).toEqual([]);
  });
});
