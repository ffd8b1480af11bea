/**
 * SCIM users are platform users: adoption of users who logged in first, linking of a later
 * OIDC login to the SCIM user, deprovisioning that ends sessions and refresh tokens, re-activation,
 * and the mass-deprovisioning guard.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { seedBff, seedNativeTenant } from './support/seed.js';
import { authorizeUrl, get, nativeLogin, pkcePair, tokenRequest, type BffClient } from './support/bff.js';
import { startOidcProvider, type OidcProviderPeer } from './peers/oidc-provider.js';
import { oidcProviderLogin } from './peers/oidc-provider-login.js';
import { TenantsService } from '../src/tenants/tenants.service.js';
import { BindingsService } from '../src/tenants/bindings.service.js';
import { ScimSettingsService } from '../src/scim/scim-tokens.service.js';
import { ScimHeldOperationsService } from '../src/scim/scim-held-operations.service.js';
import { ERROR_SCHEMA, PATCH_OP, type ListBody, type ScimClient, entraUser, oktaUser, scimClient } from './support/scim.js';
import { tenantRows } from './support/tenant-rows.js';

const PASSWORD = 'correct horse battery staple';

let app: TestApp;
let bff: BffClient;

beforeAll(async () => {
  app = await startTestApp({ RATE_LIMIT_AUTHORIZE_PER_MINUTE: '10000', RATE_LIMIT_LOGIN_PER_MINUTE: '10000' });
  bff = await seedBff(app);
});

afterAll(async () => {
  await app?.close();
});

const deactivate = (scim: ScimClient, id: string) =>
  scim.patch(`/Users/${id}`, { schemas: [PATCH_OP], Operations: [{ op: 'Replace', path: 'active', value: 'False' }] });
const reactivate = (scim: ScimClient, id: string) =>
  scim.patch(`/Users/${id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', value: { active: true } }] });
const refresh = (token: string) => tokenRequest(app.url, bff, { grant_type: 'refresh_token', refresh_token: token });

async function query<T>(tenantId: string, sql: string, params: unknown[] = []): Promise<T[]> {
  return tenantRows<T>(app, tenantId, sql, params);
}

describe('deprovisioning a user who logged in natively', () => {
  let tenantId: string;
  let scim: ScimClient;
  let aliceId: string;
  let bobId: string;

  beforeAll(async () => {
    const seeded = await seedNativeTenant(app, 'acme-scim', [
      { username: 'alice@acme-scim.test', password: PASSWORD },
      { username: 'bob@acme-scim.test', password: PASSWORD },
    ]);
    tenantId = seeded.tenant.id;
    [aliceId, bobId] = seeded.userIds as [string, string];
    scim = await scimClient(app, tenantId);
  });

  it('adopts the existing platform user with the same verified email instead of creating a second one', async () => {
    const res = await scim.post('/Users', entraUser('Alice@acme-scim.test', randomUUID()));
    expect(res.status).toBe(201);
    expect(res.body['id']).toBe(aliceId);
    const bob = await scim.post('/Users', oktaUser('bob@acme-scim.test', '00u-bob'));
    expect(bob.body['id']).toBe(bobId);
    const { n } = (await query<{ n: number }>(tenantId, `SELECT count(*)::int AS n FROM users`))[0]!;
    expect(n).toBe(2);
  });

  it('revokes the refresh tokens on active=false: the next refresh fails, and so do userinfo and a new login', async () => {
    const { tokens } = await nativeLogin(app.url, bff, 'acme-scim', 'alice@acme-scim.test', PASSWORD);
    const rotated = await refresh(tokens.refresh_token);
    expect(rotated.status).toBe(200);
    const current = ((await rotated.json()) as { refresh_token: string }).refresh_token;

    expect((await deactivate(scim, aliceId)).status).toBe(200);

    const after = await refresh(current);
    expect(after.status).toBe(400);
    expect(await after.json()).toMatchObject({ error: 'invalid_grant' });
    const info = await fetch(`${app.url}/oauth2/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(info.status).toBe(401);
    await expect(nativeLogin(app.url, bff, 'acme-scim', 'alice@acme-scim.test', PASSWORD)).rejects.toThrow();

    const sessions = await query<{ revoked_reason: string | null }>(tenantId, `SELECT revoked_reason FROM sessions WHERE user_id = $1`, [
      aliceId,
    ]);
    expect(sessions.length).toBeGreaterThan(0);
    expect(sessions.every((s) => s.revoked_reason === 'scim_deactivated')).toBe(true);
    const [event] = await query<{ actor: string; data: { sessionsRevoked: number } }>(
      tenantId,
      `SELECT actor, data FROM audit_events WHERE action = 'scim.user_deactivated' AND target = $1`,
      [aliceId],
    );
    expect(event!.actor).toMatch(/^scim:/);
    expect(event!.data.sessionsRevoked).toBeGreaterThan(0);
  });

  it('ends every session at once, so even a re-activation does not revive an old refresh token', async () => {
    const { tokens } = await nativeLogin(app.url, bff, 'acme-scim', 'bob@acme-scim.test', PASSWORD);
    const second = await nativeLogin(app.url, bff, 'acme-scim', 'bob@acme-scim.test', PASSWORD);
    expect((await deactivate(scim, bobId)).status).toBe(200);
    // No refresh is attempted while disabled: the session revocation alone must have ended them.
    expect((await reactivate(scim, bobId)).status).toBe(200);
    expect((await refresh(tokens.refresh_token)).status).toBe(400);
    expect((await refresh(second.tokens.refresh_token)).status).toBe(400);
    // Re-activated: a fresh login works again.
    const again = await nativeLogin(app.url, bff, 'acme-scim', 'bob@acme-scim.test', PASSWORD);
    expect((await refresh(again.tokens.refresh_token)).status).toBe(200);
    const [re] = await query(tenantId, `SELECT 1 FROM audit_events WHERE action = 'scim.user_reactivated' AND target = $1`, [bobId]);
    expect(re).toBeDefined();
  });

  it('DELETE disables the user, ends the sessions, and the userName can be provisioned again as a new user', async () => {
    const { tokens } = await nativeLogin(app.url, bff, 'acme-scim', 'bob@acme-scim.test', PASSWORD);
    expect((await scim.delete(`/Users/${bobId}`)).status).toBe(204);
    expect((await refresh(tokens.refresh_token)).status).toBe(400);
    expect((await scim.get(`/Users/${bobId}`)).status).toBe(404);
    const [row] = await query<{ status: string; user_name: string | null }>(tenantId, `SELECT status, user_name FROM users WHERE id = $1`, [
      bobId,
    ]);
    expect(row).toEqual({ status: 'disabled', user_name: null });
    const again = await scim.post('/Users', oktaUser('bob@acme-scim.test', '00u-bob'));
    expect(again.status).toBe(201);
    expect(again.body['id']).not.toBe(bobId);
  });
});

describe('linking a later OIDC login to the SCIM user', () => {
  const CLIENT_ID = 'auth-service';
  const CLIENT_SECRET = 'umbrella-op-secret-0123456789abcdef';
  let op: OidcProviderPeer;
  let tenantId: string;
  let scim: ScimClient;

  beforeAll(async () => {
    const callbackUrl = `${app.url}/login/callback/oidc`;
    op = await startOidcProvider({
      issuerPath: '/umbrella',
      clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [callbackUrl] }],
      accounts: [
        {
          sub: '00u-linda',
          password: 'linda-pw',
          claims: { email: 'linda@umbrella.example', email_verified: true, name: 'Linda From The OP', upn: 'linda@umbrella.example' },
        },
        {
          sub: 'pairwise-mike',
          password: 'mike-pw',
          claims: { email: 'mike@umbrella.example', email_verified: true, upn: 'MIKE@umbrella.example' },
        },
        {
          sub: 'pairwise-nobody',
          password: 'nobody-pw',
          claims: { email: 'nobody@umbrella.example', email_verified: true, upn: 'nobody@umbrella.example' },
        },
      ],
    });
    const tenant = await app.app.get(TenantsService).create('umbrella', 'Umbrella');
    tenantId = tenant.id;
    await app.app.get(BindingsService).create(tenant, {
      kind: 'oidc',
      config: { issuer: op.issuer, clientId: CLIENT_ID },
      secrets: { clientSecret: CLIENT_SECRET },
      // Okta-style: externalId is the OP subject (the default); Entra-style: userName is the UPN claim.
      claimMapping: { scimLink: { userNameClaim: 'upn' } },
    });
    scim = await scimClient(app, tenantId);
  });

  afterAll(async () => {
    await op?.stop();
  });

  async function oidcLogin(login: string, password: string): Promise<{ sub?: string; error?: string }> {
    const { verifier, challenge } = pkcePair();
    const state = randomBytes(8).toString('hex');
    const start = await get(
      authorizeUrl(app.url, bff, { org: 'umbrella', state, code_challenge: challenge, code_challenge_method: 'S256', nonce: `n-${state}` }),
    );
    if (start.status !== 302) throw new Error(`authorize answered ${start.status}: ${await start.text()}`);
    const cb = await oidcProviderLogin(start.headers.get('location')!, {
      login,
      password,
      callbackPrefix: `${app.url}/login/callback/oidc`,
    });
    const back = new URL((await get(cb)).headers.get('location')!);
    if (back.searchParams.get('error')) return { error: back.searchParams.get('error')! };
    const res = await tokenRequest(app.url, bff, {
      grant_type: 'authorization_code',
      code: back.searchParams.get('code')!,
      redirect_uri: bff.redirectUri,
      code_verifier: verifier,
    });
    const tokens = (await res.json()) as { access_token: string };
    const { payload } = await jwtVerify(tokens.access_token, createRemoteJWKSet(new URL(`${app.url}/.well-known/jwks.json`)), {
      issuer: app.url,
      audience: 'platform-api',
    });
    return { sub: payload.sub! };
  }

  it('links by externalId = upstream subject, keeps the SCIM profile, and refuses the login once deprovisioned', async () => {
    const created = await scim.post('/Users', oktaUser('linda.scim@umbrella.example', '00u-linda', { displayName: 'Linda From SCIM' }));
    const id = created.body['id'] as string;
    expect((await oidcLogin('00u-linda', 'linda-pw')).sub).toBe(id);
    expect((await oidcLogin('00u-linda', 'linda-pw')).sub).toBe(id);
    const after = await scim.get(`/Users/${id}`);
    expect(after.body['displayName']).toBe('Linda From SCIM');
    expect(after.headers.get('etag')).toBe(created.headers.get('etag'));

    expect((await deactivate(scim, id)).status).toBe(200);
    expect(await oidcLogin('00u-linda', 'linda-pw')).toEqual({ error: 'access_denied' });
  });

  it('links by userName when the binding names the claim that carries it (case-insensitive)', async () => {
    const created = await scim.post('/Users', entraUser('mike@umbrella.example', 'entra-object-id-of-mike'));
    expect((await oidcLogin('pairwise-mike', 'mike-pw')).sub).toBe(created.body['id']);
  });

  it('does not link to anyone when no SCIM user matches (a JIT user is created instead)', async () => {
    const { sub } = await oidcLogin('pairwise-nobody', 'nobody-pw');
    expect(sub).toBeDefined();
    const listed = await scim.get<ListBody>('/Users?count=100');
    expect(listed.body.Resources.map((r) => r['id'])).not.toContain(sub);
  });
});

describe('mass-deprovisioning guard', () => {
  async function guardedTenant(slug: string, users: number, settings = { guardPercent: 10, guardMinCount: 3, guardWindowSeconds: 600 }) {
    const tenantId = (await app.app.get(TenantsService).create(slug, slug)).id;
    await app.app.get(ScimSettingsService).update(tenantId, settings);
    const scim = await scimClient(app, tenantId);
    const ids: string[] = [];
    for (let i = 0; i < users; i++) {
      const res = await scim.post('/Users', entraUser(`u${i}@${slug}.test`, randomUUID()));
      ids.push(res.body['id'] as string);
    }
    return { tenantId, scim, ids };
  }
  const statusOf = async (tenantId: string, id: string) =>
    (await query<{ status: string }>(tenantId, `SELECT status FROM users WHERE id = $1`, [id]))[0]!.status;
  const held = () => app.app.get(ScimHeldOperationsService);

  it('holds the deactivations beyond the limit, answers a clear 503, audits them, and releases them on request', async () => {
    const { tenantId, scim, ids } = await guardedTenant('guarded', 20);
    // limit = max(3, 10% of 20) = 3 deprovisionings per 10 minutes
    for (const id of ids.slice(0, 3)) expect((await deactivate(scim, id)).status).toBe(200);

    const fourth = await deactivate(scim, ids[3]!);
    expect(fourth.status).toBe(503);
    expect(fourth.headers.get('retry-after')).toBe('3600');
    expect(fourth.body).toMatchObject({ schemas: [ERROR_SCHEMA], status: '503' });
    expect(fourth.body['detail']).toMatch(/mass-deprovisioning guard.*3 user\(s\) were deactivated or deleted.*limit is 3/);
    expect(await statusOf(tenantId, ids[3]!)).toBe('active');

    // Okta's whole-object PUT with active=false and Entra's DELETE are held too; a retry refreshes its hold.
    const current = (await scim.get(`/Users/${ids[4]}`)).body;
    expect((await scim.put(`/Users/${ids[4]}`, { ...current, active: false })).status).toBe(503);
    expect((await scim.delete(`/Users/${ids[5]}`)).status).toBe(503);
    expect((await deactivate(scim, ids[3]!)).status).toBe(503);
    expect((await scim.get(`/Users/${ids[5]}`)).status).toBe(200);
    expect(await statusOf(tenantId, ids[4]!)).toBe('active');

    const pending = await held().list(tenantId);
    expect(pending.map((h) => [h.userId, h.action, h.method]).sort()).toEqual(
      [
        [ids[3], 'deactivate', 'PATCH'],
        [ids[4], 'deactivate', 'PUT'],
        [ids[5], 'delete', 'DELETE'],
      ].sort(),
    );
    expect(pending.find((h) => h.userId === ids[3])!.attempts).toBe(2);
    const audit = await query<{ action: string }>(
      tenantId,
      `SELECT action FROM audit_events WHERE action LIKE 'scim.deprovision%' ORDER BY id`,
    );
    expect(audit.map((a) => a.action)).toEqual([
      'scim.deprovision_guard_tripped',
      'scim.deprovision_held',
      'scim.deprovision_held',
      'scim.deprovision_held',
    ]);

    const result = await held().release(tenantId, 'admin:test');
    expect(result.failed).toEqual([]);
    expect(result.released).toHaveLength(3);
    expect(await statusOf(tenantId, ids[3]!)).toBe('disabled');
    expect(await statusOf(tenantId, ids[4]!)).toBe('disabled');
    expect((await scim.get(`/Users/${ids[5]}`)).status).toBe(404);
    expect(await held().list(tenantId)).toEqual([]);
    const released = await query(tenantId, `SELECT 1 FROM audit_events WHERE action = 'scim.deprovision_released'`);
    expect(released).toHaveLength(3);
  });

  it('discards what the administrator rejects, and a later explicit active=true supersedes a hold', async () => {
    const { tenantId, scim, ids } = await guardedTenant('guarded-two', 20);
    for (const id of ids.slice(0, 3)) await deactivate(scim, id);
    expect((await deactivate(scim, ids[10]!)).status).toBe(503);
    expect((await deactivate(scim, ids[11]!)).status).toBe(503);
    // The IdP's admin fixed the scoping: user 11 is asserted active again.
    expect((await reactivate(scim, ids[11]!)).status).toBe(200);
    expect((await held().list(tenantId)).map((h) => h.userId)).toEqual([ids[10]]);

    expect(await held().discard(tenantId, 'admin:test')).toHaveLength(1);
    expect(await held().list(tenantId)).toEqual([]);
    expect(await held().release(tenantId, 'admin:test')).toEqual({ released: [], failed: [] });
    expect(await statusOf(tenantId, ids[10]!)).toBe('active');
    expect(await statusOf(tenantId, ids[11]!)).toBe('active');
    const all = await held().list(tenantId, 'all');
    expect(all.map((h) => h.status).sort()).toEqual(['discarded', 'superseded']);
  });

  it('lets exactly the allowed number through when deactivations arrive concurrently', async () => {
    const { tenantId, scim, ids } = await guardedTenant('guarded-race', 12);
    const results = await Promise.all(ids.map((id) => deactivate(scim, id)));
    expect(results.filter((r) => r.status === 200)).toHaveLength(3);
    expect(results.filter((r) => r.status === 503)).toHaveLength(9);
    const { n } = (await query<{ n: number }>(tenantId, `SELECT count(*)::int AS n FROM users WHERE status = 'disabled'`))[0]!;
    expect(n).toBe(3);
  });

  it('stays out of the way below the minimum count and when disabled for the tenant', async () => {
    const small = await guardedTenant('guard-small', 4, { guardPercent: 10, guardMinCount: 10, guardWindowSeconds: 600 });
    for (const id of small.ids) expect((await deactivate(small.scim, id)).status).toBe(200);
    const off = await guardedTenant('guard-off', 4, { guardPercent: 10, guardMinCount: 0, guardWindowSeconds: 600 });
    await app.app.get(ScimSettingsService).update(off.tenantId, { guardEnabled: false });
    for (const id of off.ids) expect((await off.scim.delete(`/Users/${id}`)).status).toBe(204);
  });
});
