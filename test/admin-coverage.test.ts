/**
 * Issue #7 requirements that were implemented but not asserted elsewhere: audit-event filters
 * (actor, action, since, until) with cursor paging; an audit event with before/after for every admin
 * change; tenant suspend/resume; SCIM token list (prefix + last use); SAML metadata without an
 * entityID or an HTTP-Redirect SSO endpoint (422); operator users with and without SUPER_ADMIN.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { adminClient, type AdminClient } from './support/admin.js';
import { seedBff, seedNativeTenant } from './support/seed.js';
import { authorizeUrl, get, nativeLogin, pkcePair, submitNativeLogin, tokenRequest, type BffClient } from './support/bff.js';
import { ScimClient } from './support/scim.js';
import { tenantRows } from './support/tenant-rows.js';
import { NativeCredentialsService } from '../src/identity/native/native-credentials.service.js';
import { BindingsService } from '../src/tenants/bindings.service.js';
import { TenantsService } from '../src/tenants/tenants.service.js';

const PASSWORD = 'correct horse battery staple';

let app: TestApp;
let admin: AdminClient;
let admin2: AdminClient;
let bff: BffClient;
let workDir: string;

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'auth-service-admin-coverage-'));
  app = await startTestApp();
  admin = await adminClient(app);
  admin2 = await adminClient(app);
  bff = await seedBff(app);
});
afterAll(async () => {
  await app?.close();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

const json = async <T = Record<string, unknown>>(res: Response) => (await res.json()) as T;
const claimsOf = (jwt: string) =>
  JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as { sub: string; roles: string[]; tid: string };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface AuditEvent {
  id: string;
  tenantId: string | null;
  actor: string;
  action: string;
  target: string | null;
  data: Record<string, unknown>;
  createdAt: string;
}
type AuditPage = { items: AuditEvent[]; nextCursor: string | null };

const audit = async (query: Record<string, string>, caller = admin): Promise<AuditPage> => {
  const res = await caller.call('GET', `/admin/v1/audit-events?${new URLSearchParams(query).toString()}`);
  expect(res.status, await res.clone().text()).toBe(200);
  return json<AuditPage>(res);
};

/** Every page of a filtered audit query, following nextCursor with the same filters. */
async function allPages(query: Record<string, string>): Promise<{ pages: AuditEvent[][]; items: AuditEvent[] }> {
  const pages: AuditEvent[][] = [];
  let cursor: string | null = null;
  do {
    const page = await audit({ ...query, ...(cursor ? { cursor } : {}) });
    pages.push(page.items);
    cursor = page.nextCursor;
    expect(pages.length).toBeLessThan(50);
  } while (cursor);
  return { pages, items: pages.flat() };
}

async function createTenant(slug: string, caller = admin): Promise<{ id: string; slug: string; version: number }> {
  const res = await caller.call('POST', '/admin/v1/tenants', { slug, displayName: `${slug} Ltd` });
  expect(res.status, await res.clone().text()).toBe(201);
  return json(res);
}

async function patchTenant(id: string, body: Record<string, unknown>, caller = admin): Promise<Response> {
  const current = await caller.call('GET', `/admin/v1/tenants/${id}`);
  return caller.call('PATCH', `/admin/v1/tenants/${id}`, body, { 'if-match': current.headers.get('etag')! });
}

/** The audit actor of an operator machine client: its token's subject (`client:<id>`). */
const actorOf = (caller: AdminClient) => claimsOf(caller.token).sub;

/** created_at of audit events as stored (microseconds), ISO 8601 in UTC. */
async function exactTimes(ids: string[]): Promise<Record<string, string>> {
  const { rows } = await app.database.transaction('audit-reader', (tx) =>
    tx.query<{ id: string; at: string }>(
      `SELECT id::text, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at FROM audit_events WHERE id = ANY($1::bigint[])`,
      [ids],
    ),
  );
  return Object.fromEntries(rows.map((r) => [r.id, r.at]));
}

describe('audit events: filters and cursor paging', () => {
  it('filters by actor, action, since and until (since inclusive, until exclusive), and pages with the filters kept', async () => {
    const [a1, a2] = [actorOf(admin), actorOf(admin2)];
    expect(a1).toMatch(/^client:ops-/);
    expect(a1).not.toBe(a2);
    // Five changes to one tenant by two operators, far enough apart to tell their times apart.
    const t = await createTenant('audit-filters', admin); // e1 (a1)
    await sleep(25);
    expect((await patchTenant(t.id, { displayName: 'Renamed once' }, admin2)).status).toBe(200); // e2 (a2)
    await sleep(25);
    expect((await admin.call('POST', `/admin/v1/tenants/${t.id}/bindings`, { kind: 'native' })).status).toBe(201); // e3 (a1)
    await sleep(25);
    expect((await patchTenant(t.id, { displayName: 'Renamed twice' }, admin2)).status).toBe(200); // e4 (a2)
    await sleep(25);
    expect((await admin.call('POST', `/admin/v1/tenants/${t.id}/scim-tokens`, { name: 'Okta' })).status).toBe(201); // e5 (a1)

    const all = await audit({ tenantId: t.id });
    expect(all.items.map((e) => [e.action, e.actor])).toEqual([
      ['scim.token_created', a1],
      ['tenant.updated', a2],
      ['binding.created', a1],
      ['tenant.updated', a2],
      ['tenant.created', a1],
    ]);
    const [e5, e4, e3, e2, e1] = all.items as [AuditEvent, AuditEvent, AuditEvent, AuditEvent, AuditEvent];
    const ids = (p: AuditPage | { items: AuditEvent[] }) => p.items.map((e) => e.id);

    // actor
    expect(ids(await audit({ tenantId: t.id, actor: a1 }))).toEqual([e5.id, e3.id, e1.id]);
    expect(ids(await audit({ tenantId: t.id, actor: a2 }))).toEqual([e4.id, e2.id]);
    const byA2Everywhere = await audit({ actor: a2, limit: '500' });
    expect(byA2Everywhere.items.every((e) => e.actor === a2)).toBe(true);
    expect(ids(byA2Everywhere)).toEqual(expect.arrayContaining([e4.id, e2.id]));
    expect((await audit({ actor: 'client:nobody-at-all' })).items).toEqual([]);
    // action
    expect(ids(await audit({ tenantId: t.id, action: 'tenant.updated' }))).toEqual([e4.id, e2.id]);
    const createdAnywhere = await audit({ action: 'tenant.created', limit: '500' });
    expect(createdAnywhere.items.every((e) => e.action === 'tenant.created')).toBe(true);
    expect(ids(createdAnywhere)).toContain(e1.id);
    // since (inclusive) and until (exclusive), at the database's microsecond precision...
    const exact = await exactTimes([e2.id, e3.id]);
    expect(ids(await audit({ tenantId: t.id, since: exact[e3.id]! }))).toEqual([e5.id, e4.id, e3.id]);
    expect(ids(await audit({ tenantId: t.id, until: exact[e3.id]! }))).toEqual([e2.id, e1.id]);
    expect(ids(await audit({ tenantId: t.id, since: exact[e2.id]!, until: exact[e3.id]! }))).toEqual([e2.id]);
    // ...and with the millisecond times the API shows.
    expect(ids(await audit({ tenantId: t.id, since: e3.createdAt }))).toEqual([e5.id, e4.id, e3.id]);
    expect(ids(await audit({ tenantId: t.id, until: e3.createdAt }))).toEqual([e2.id, e1.id]);
    expect(ids(await audit({ tenantId: t.id, since: e2.createdAt, until: e4.createdAt }))).toEqual([e3.id, e2.id]);
    expect(ids(await audit({ since: new Date(Date.now() + 3_600_000).toISOString() }))).toEqual([]);
    // combined
    expect(ids(await audit({ tenantId: t.id, actor: a1, since: e2.createdAt }))).toEqual([e5.id, e3.id]);
    expect(ids(await audit({ tenantId: t.id, actor: a2, action: 'tenant.updated', until: e4.createdAt }))).toEqual([e2.id]);
    // Malformed filters are refused, not ignored.
    expect((await admin.call('GET', `/admin/v1/audit-events?since=yesterday`)).status).toBe(400);

    // Cursor paging keeps the filters: one event per page, only the filtered ones, none twice.
    const byActor = await allPages({ tenantId: t.id, actor: a1, limit: '1' });
    expect(byActor.pages.map((p) => p.map((e) => e.id))).toEqual([[e5.id], [e3.id], [e1.id]]);
    const inWindow = await allPages({ tenantId: t.id, since: e2.createdAt, limit: '2' });
    expect(inWindow.pages.map((p) => p.map((e) => e.id))).toEqual([
      [e5.id, e4.id],
      [e3.id, e2.id],
    ]);
    const untilPages = await allPages({ tenantId: t.id, until: e5.createdAt, action: 'tenant.updated', limit: '1' });
    expect(untilPages.pages.map((p) => p.map((e) => e.id))).toEqual([[e4.id], [e2.id]]);
  });
});

describe('audit trail of every admin change', () => {
  it('stamps each audit event with the id of the request that made the change', async () => {
    const requestId = `audit-${randomBytes(6).toString('hex')}`;
    const res = await admin.call(
      'POST',
      '/admin/v1/tenants',
      { slug: `req-${randomBytes(3).toString('hex')}`, displayName: 'Request id' },
      { 'x-request-id': requestId },
    );
    expect(res.status).toBe(201);
    expect(res.headers.get('x-request-id')).toBe(requestId);
    const { id } = await json<{ id: string }>(res);
    const rows = await tenantRows<{ action: string; request_id: string | null }>(
      app,
      id,
      `SELECT action, request_id FROM audit_events WHERE tenant_id = $1`,
      [id],
    );
    expect(rows).toContainEqual({ action: 'tenant.created', request_id: requestId });
  });

  it('records actor, target and before/after (secrets redacted) for each change', async () => {
    const actor = actorOf(admin);
    const BINDING_SECRET = `binding-secret-${randomBytes(8).toString('hex')}`;
    const t = await createTenant('audited');
    const renamed = await patchTenant(t.id, { displayName: 'Audited Renamed' });
    expect(renamed.status).toBe(200);

    const created = await json<{ id: string; version: number }>(
      await admin.call('POST', `/admin/v1/tenants/${t.id}/bindings`, {
        kind: 'native',
        claimMapping: { defaultRoles: ['V1'] },
        secrets: { clientSecret: BINDING_SECRET },
      }),
    );
    const updated = await admin.call(
      'PATCH',
      `/admin/v1/tenants/${t.id}/bindings/${created.id}`,
      { claimMapping: { defaultRoles: ['V2'] } },
      { 'if-match': `"v${created.version}"` },
    );
    expect(updated.status).toBe(200);
    const draft = await json<{ version: number }>(updated);
    await app.app.get(NativeCredentialsService).createUser(t.id, { username: 'amy@audited.test', password: PASSWORD });
    const test = await json<{ url: string }>(await admin.call('POST', `/admin/v1/tenants/${t.id}/bindings/${created.id}/test-login`));
    expect((await submitNativeLogin(app.url, test.url.replace(app.config.issuer, app.url), 'amy@audited.test', PASSWORD)).status).toBe(302);
    const activated = await admin.call('POST', `/admin/v1/tenants/${t.id}/bindings/${created.id}/activate`, undefined, {
      'if-match': `"v${draft.version}"`,
    });
    expect(activated.status).toBe(200);
    const active = await json<{ version: number }>(activated);
    expect(
      (
        await admin.call('POST', `/admin/v1/tenants/${t.id}/bindings/${created.id}/retire`, undefined, {
          'if-match': `"v${active.version}"`,
        })
      ).status,
    ).toBe(200);
    expect((await admin.call('POST', `/admin/v1/tenants/${t.id}/bindings/rollback`)).status).toBe(200);

    const scimToken = await json<{ id: string; token: string }>(
      await admin.call('POST', `/admin/v1/tenants/${t.id}/scim-tokens`, { name: 'Entra' }),
    );
    expect((await admin.call('DELETE', `/admin/v1/tenants/${t.id}/scim-tokens/${scimToken.id}`)).status).toBe(204);
    const client = await json<{ id: string; clientSecret: string }>(
      await admin.call('POST', '/admin/v1/clients', {
        id: `audited-job-${randomBytes(2).toString('hex')}`,
        name: 'Job',
        kind: 'machine',
        tenantId: t.id,
      }),
    );
    expect((await admin.call('DELETE', `/admin/v1/clients/${client.id}`)).status).toBe(204);
    const key = await json<{ kid: string }>(await admin.call('POST', '/admin/v1/signing-keys/rotate', { publishDelaySeconds: 3600 }));
    expect((await admin.call('DELETE', `/admin/v1/tenants/${t.id}`)).status).toBe(204);

    const mine = (await allPages({ actor, limit: '500' })).items;
    const one = (action: string, target: string) => {
      const found = mine.filter((e) => e.action === action && e.target === target);
      expect(found, `${action} on ${target}`).toHaveLength(1);
      return found[0]!.data as { before?: Record<string, unknown>; after?: Record<string, unknown> } & Record<string, unknown>;
    };
    expect(one('tenant.created', t.id).after).toMatchObject({ id: t.id, slug: 'audited', displayName: 'audited Ltd', status: 'active' });
    const tenantUpdate = one('tenant.updated', t.id);
    expect(tenantUpdate.before).toMatchObject({ displayName: 'audited Ltd', version: 1 });
    expect(tenantUpdate.after).toMatchObject({ displayName: 'Audited Renamed', version: 2 });
    expect(one('binding.created', created.id).after).toMatchObject({
      id: created.id,
      status: 'draft',
      secretFields: ['clientSecret'],
      claimMapping: { defaultRoles: ['V1'] },
    });
    const bindingUpdate = one('binding.updated', created.id);
    expect(bindingUpdate.before).toMatchObject({ claimMapping: { defaultRoles: ['V1'] } });
    expect(bindingUpdate.after).toMatchObject({ claimMapping: { defaultRoles: ['V2'] }, secretFields: ['clientSecret'] });
    expect(one('binding.test_login_started', created.id)).toBeDefined();
    expect(one('binding.activated', created.id)).toMatchObject({ replaced: [], after: { status: 'active' } });
    const retired = one('binding.retired', created.id);
    expect(retired.before).toMatchObject({ status: 'active' });
    expect(retired.after).toMatchObject({ status: 'retired' });
    expect(one('binding.rolled_back', created.id)).toMatchObject({ activated: [created.id], retired: [], after: { status: 'active' } });
    expect(one('scim.token_created', scimToken.id)).toMatchObject({ name: 'Entra', prefix: scimToken.token.slice(0, 42) });
    expect(one('scim.token_revoked', scimToken.id)).toBeDefined();
    expect(one('client.created', client.id).after).toMatchObject({ id: client.id, kind: 'machine', tenantId: t.id });
    expect(one('client.disabled', client.id)).toBeDefined();
    expect(one('signing_key.rotated', key.kid)).toHaveProperty('activatesAt');
    expect(one('tenant.deleted', t.id).before).toMatchObject({ id: t.id, status: 'active' });

    // Secrets are redacted: none of them is anywhere in the audit trail.
    const trail = JSON.stringify(mine);
    for (const secret of [BINDING_SECRET, scimToken.token, client.clientSecret, PASSWORD]) expect(trail).not.toContain(secret);
  });
});

describe('tenant suspend and resume through the admin API', () => {
  it('refuses logins (new, in flight, refresh) while suspended and lets them work again after resume', async () => {
    const { tenant } = await seedNativeTenant(app, 'pausable', [{ username: 'pat@pausable.test', password: PASSWORD }]);
    const before = await nativeLogin(app.url, bff, 'pausable', 'pat@pausable.test', PASSWORD);
    // A sign-in already on the login form when the tenant is suspended.
    const { challenge } = pkcePair();
    const inFlight = await get(
      authorizeUrl(app.url, bff, { org: 'pausable', state: 'in-flight', code_challenge: challenge, code_challenge_method: 'S256' }),
    );
    expect(inFlight.status).toBe(302);
    const formUrl = inFlight.headers.get('location')!;
    expect(formUrl).toMatch(/\/login\/native\//);

    const suspended = await patchTenant(tenant.id, { status: 'suspended' });
    expect(suspended.status, await suspended.clone().text()).toBe(200);
    expect(await json(suspended)).toMatchObject({ id: tenant.id, status: 'suspended' });
    expect(await json(await admin.call('GET', `/admin/v1/tenants/${tenant.id}`))).toMatchObject({ status: 'suspended' });

    const { challenge: c2 } = pkcePair();
    const refused = await get(
      authorizeUrl(app.url, bff, { org: 'pausable', state: 's', code_challenge: c2, code_challenge_method: 'S256' }),
    );
    expect(refused.status).toBe(302);
    expect(new URL(refused.headers.get('location')!).searchParams.get('error')).toBe('unknown_organization');
    await expect(nativeLogin(app.url, bff, 'pausable', 'pat@pausable.test', PASSWORD)).rejects.toThrow();
    const page = await get(formUrl);
    expect(page.status).toBe(400);
    const refresh = await tokenRequest(app.url, bff, { grant_type: 'refresh_token', refresh_token: before.tokens.refresh_token });
    expect(refresh.status).toBe(400);
    expect(await json(refresh)).toMatchObject({ error: 'invalid_grant' });

    const resumed = await patchTenant(tenant.id, { status: 'active' });
    expect(resumed.status).toBe(200);
    expect(await json(resumed)).toMatchObject({ status: 'active' });
    const after = await nativeLogin(app.url, bff, 'pausable', 'pat@pausable.test', PASSWORD);
    expect(claimsOf(after.tokens.access_token)).toMatchObject({ tid: tenant.id });
    // Sessions ended by the suspension stay ended.
    expect((await tokenRequest(app.url, bff, { grant_type: 'refresh_token', refresh_token: before.tokens.refresh_token })).status).toBe(
      400,
    );

    const trail = await audit({ tenantId: tenant.id, action: 'tenant.updated' });
    expect(
      trail.items.map((e) => [(e.data['before'] as { status: string }).status, (e.data['after'] as { status: string }).status]),
    ).toEqual([
      ['suspended', 'active'],
      ['active', 'suspended'],
    ]);
  });
});

describe('SCIM tokens: list shows prefix and last use', () => {
  it('lists each token by its prefix, with lastUsedAt set once a SCIM request used it', async () => {
    const t = await createTenant('scim-last-use');
    const used = await json<{ id: string; token: string; prefix: string }>(
      await admin.call('POST', `/admin/v1/tenants/${t.id}/scim-tokens`, { name: 'Used' }),
    );
    const idle = await json<{ id: string; token: string }>(
      await admin.call('POST', `/admin/v1/tenants/${t.id}/scim-tokens`, { name: 'Idle' }),
    );
    type Info = { id: string; name: string; prefix: string; createdAt: string; lastUsedAt: string | null; revokedAt: string | null };
    const list = async () => {
      const res = await admin.call('GET', `/admin/v1/tenants/${t.id}/scim-tokens`);
      const text = await res.text();
      for (const secret of [used.token, idle.token]) expect(text).not.toContain(secret);
      return new Map((JSON.parse(text) as { items: Info[] }).items.map((i) => [i.id, i]));
    };
    const fresh = await list();
    for (const [id, token] of [
      [used.id, used.token],
      [idle.id, idle.token],
    ] as const) {
      const info = fresh.get(id)!;
      expect(info.prefix).toMatch(/^st_[0-9a-f]{32}_[A-Za-z0-9_-]{6}$/);
      expect(token.startsWith(info.prefix)).toBe(true);
      expect(token.length).toBeGreaterThan(info.prefix.length + 20);
      expect(info).toMatchObject({ lastUsedAt: null, revokedAt: null });
    }

    const start = Date.now() - 1000;
    expect((await ScimClient.for(app, used.token).get('/Users')).status).toBe(200);
    const later = await list();
    const lastUsed = later.get(used.id)!.lastUsedAt;
    expect(lastUsed).not.toBeNull();
    expect(Date.parse(lastUsed!)).toBeGreaterThanOrEqual(start);
    expect(Date.parse(lastUsed!)).toBeLessThanOrEqual(Date.now() + 1000);
    expect(later.get(idle.id)!.lastUsedAt).toBeNull();
  });
});

describe('SAML binding from metadata', () => {
  const REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
  const POST = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST';
  let cert: string;
  const metadata = (entityId: string | undefined, ssoBindings: string[]) =>
    `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#"${entityId === undefined ? '' : ` entityID="${entityId}"`}>` +
    `<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">` +
    `<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>` +
    ssoBindings
      .map(
        (b) =>
          `<md:SingleSignOnService Binding="${b}" Location="https://idp.initech.example/sso/${b === REDIRECT ? 'redirect' : 'post'}"/>`,
      )
      .join('') +
    `</md:IDPSSODescriptor></md:EntityDescriptor>`;
  const saml = (xml: string) => ({ kind: 'saml', config: { idpMetadataXml: xml }, claimMapping: { defaultRoles: ['MEMBER'] } });

  beforeAll(() => {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        join(workDir, 'idp.key'),
        '-out',
        join(workDir, 'idp.crt'),
        '-days',
        '365',
        '-subj',
        '/CN=idp.initech.example',
      ],
      {
        stdio: 'ignore',
      },
    );
    cert = readFileSync(join(workDir, 'idp.crt'), 'utf8').replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, '');
  });

  it('refuses (422) metadata without an entityID or without an HTTP-Redirect SSO endpoint, and saves nothing', async () => {
    const t = await createTenant('initech');
    const bindings = async () => (await json<{ items: unknown[] }>(await admin.call('GET', `/admin/v1/tenants/${t.id}/bindings`))).items;

    for (const [what, xml, detail] of [
      ['no entityID attribute', metadata(undefined, [REDIRECT, POST]), /entityID/],
      ['an empty entityID', metadata('', [REDIRECT]), /entityID/],
      ['HTTP-POST SSO only', metadata('https://idp.initech.example/saml', [POST]), /HTTP-Redirect/],
      ['no SSO endpoint at all', metadata('https://idp.initech.example/saml', []), /HTTP-Redirect/],
    ] as const) {
      const res = await admin.call('POST', `/admin/v1/tenants/${t.id}/bindings`, saml(xml));
      expect(res.status, `${what}: ${await res.clone().text()}`).toBe(422);
      expect(res.headers.get('content-type')).toMatch(/problem\+json/);
      const problem = await json<{ type: string; detail: string; check: string }>(res);
      expect(problem.type, what).toMatch(/saml-metadata$/);
      expect(problem.check, what).toBe('metadata');
      expect(problem.detail, what).toMatch(detail);
    }
    expect(await bindings()).toEqual([]);

    // The same metadata with both is accepted: the refusals above are about those two elements.
    const ok = await admin.call(
      'POST',
      `/admin/v1/tenants/${t.id}/bindings`,
      saml(metadata('https://idp.initech.example/saml', [POST, REDIRECT])),
    );
    expect(ok.status, await ok.clone().text()).toBe(201);
    expect((await json<{ config: Record<string, unknown> }>(ok)).config).toMatchObject({
      idpEntityId: 'https://idp.initech.example/saml',
      idpSsoUrl: 'https://idp.initech.example/sso/redirect',
    });
    expect(await bindings()).toHaveLength(1);
  });
});

describe('admin authentication with a platform JWT of an operator user', () => {
  it('accepts an operator SUPER_ADMIN user, refuses (403) an operator user without it and a customer SUPER_ADMIN', async () => {
    const tenants = app.app.get(TenantsService);
    const operators = (await tenants.findActiveBySlug(app.config.OPERATOR_TENANT))!;
    expect(operators).toBeDefined();
    await app.app.get(BindingsService).create(operators, { kind: 'native' });
    const creds = app.app.get(NativeCredentialsService);
    await creds.createUser(operators.id, { username: 'root@ops.test', password: PASSWORD, email: 'root@ops.test', roles: ['SUPER_ADMIN'] });
    await creds.createUser(operators.id, {
      username: 'support@ops.test',
      password: PASSWORD,
      email: 'support@ops.test',
      roles: ['SUPPORT'],
    });
    await seedNativeTenant(app, 'customer-y', [{ username: 'boss@customer-y.test', password: PASSWORD, roles: ['SUPER_ADMIN'] }]);

    const rootToken = (await nativeLogin(app.url, bff, app.config.OPERATOR_TENANT, 'root@ops.test', PASSWORD)).tokens.access_token;
    const supportToken = (await nativeLogin(app.url, bff, app.config.OPERATOR_TENANT, 'support@ops.test', PASSWORD)).tokens.access_token;
    const customerToken = (await nativeLogin(app.url, bff, 'customer-y', 'boss@customer-y.test', PASSWORD)).tokens.access_token;
    expect(claimsOf(rootToken)).toMatchObject({ tid: operators.id, roles: ['SUPER_ADMIN'] });
    expect(claimsOf(supportToken)).toMatchObject({ tid: operators.id, roles: ['SUPPORT'] });
    expect(claimsOf(customerToken).roles).toEqual(['SUPER_ADMIN']);

    const call = (token: string, method: string, path: string, body?: unknown) =>
      fetch(`${app.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });

    expect((await call(rootToken, 'GET', '/admin/v1/tenants')).status).toBe(200);
    const created = await call(rootToken, 'POST', '/admin/v1/tenants', { slug: 'made-by-user', displayName: 'Made by a user' });
    expect(created.status).toBe(201);
    const { id } = await json<{ id: string }>(created);
    const [event] = (await audit({ tenantId: id, action: 'tenant.created' })).items;
    expect(event!.actor).toBe(`user:${claimsOf(rootToken).sub}`);

    for (const [who, token] of [
      ['operator without SUPER_ADMIN', supportToken],
      ['customer SUPER_ADMIN', customerToken],
    ] as const) {
      const list = await call(token, 'GET', '/admin/v1/tenants');
      expect(list.status, who).toBe(403);
      expect(list.headers.get('content-type'), who).toMatch(/problem\+json/);
      expect((await call(token, 'POST', '/admin/v1/tenants', { slug: `refused-${who.length}`, displayName: 'no' })).status, who).toBe(403);
      expect(await tenants.findActiveBySlug(`refused-${who.length}`), who).toBeUndefined();
    }
  });
});
