/**
 * The revocation feed (`GET /oauth2/revocations`): the `sid`s of sessions ended by logout,
 * refresh-token reuse, SCIM deprovisioning and tenant deletion, since a cursor, for gateways that
 * must stop a disabled user's live access tokens before they expire. Not public; a tenant's own
 * client sees only its tenant; a revocation that commits late is never skipped by the cursor.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { adminClient, type AdminClient } from './support/admin.js';
import { ageRefreshRotation, seedBff, seedNativeTenant } from './support/seed.js';
import { basic, nativeLogin, tokenRequest, type BffClient } from './support/bff.js';
import { PATCH_OP, entraUser, scimClient } from './support/scim.js';
import { TenantsService } from '../src/tenants/tenants.service.js';

const PASSWORD = 'correct horse battery staple';

interface Entry {
  sid: string;
  tid: string;
  revoked_at: string;
  reason: string | null;
  not_after: string;
}
interface Page {
  revocations: Entry[];
  next_cursor: string;
  has_more: boolean;
}

let app: TestApp;
let admin: AdminClient;
let bff: BffClient;
let gateway: { id: string; secret: string };
let acme: { tenantId: string; userIds: string[] };
let globex: { tenantId: string };

const feed = (creds: { id: string; secret: string }, since?: string, limit?: number) => {
  const url = new URL('/oauth2/revocations', app.url);
  if (since) url.searchParams.set('since', since);
  if (limit) url.searchParams.set('limit', String(limit));
  return fetch(url, { headers: { authorization: basic(creds.id, creds.secret) } });
};

/** A gateway's poll loop: follows the cursor, collects entries, until `done` or a deadline. */
class Poller {
  cursor?: string;
  readonly seen: Entry[] = [];
  constructor(private readonly creds: { id: string; secret: string }) {}

  async pollOnce(limit?: number): Promise<Page> {
    const res = await feed(this.creds, this.cursor, limit);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const page = (await res.json()) as Page;
    this.seen.push(...page.revocations);
    this.cursor = page.next_cursor;
    return page;
  }

  async until(done: (seen: Entry[]) => boolean, timeoutMs = 10_000): Promise<Entry[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const page = await this.pollOnce();
      if (done(this.seen)) return this.seen;
      if (Date.now() > deadline) throw new Error(`feed never showed the expected entries; saw ${JSON.stringify(this.seen)}`);
      if (!page.has_more) await new Promise((r) => setTimeout(r, 100));
    }
  }

  has(sid: string): boolean {
    return this.seen.some((e) => e.sid === sid);
  }
}

const sidOf = (accessToken: string) => decodeJwt(accessToken)['sid'] as string;

async function createClient(body: Record<string, unknown>): Promise<{ id: string; secret: string }> {
  const res = await admin.call('POST', '/admin/v1/clients', body);
  expect(res.status).toBe(201);
  const created = (await res.json()) as { id: string; clientSecret: string };
  return { id: created.id, secret: created.clientSecret };
}

beforeAll(async () => {
  app = await startTestApp({ RATE_LIMIT_AUTHORIZE_PER_MINUTE: '10000', RATE_LIMIT_LOGIN_PER_MINUTE: '10000' });
  admin = await adminClient(app);
  bff = await seedBff(app);
  const operators = (await app.app.get(TenantsService).findActiveBySlug(app.config.OPERATOR_TENANT))!;
  gateway = await createClient({
    id: 'kong-revocations',
    name: 'Kong revocation poller',
    kind: 'machine',
    tenantId: operators.id,
    scopes: ['revocations:read'],
  });
  const seeded = await seedNativeTenant(app, 'acme-feed', [
    { username: 'alice@acme-feed.test', password: PASSWORD },
    { username: 'bob@acme-feed.test', password: PASSWORD },
    { username: 'carol@acme-feed.test', password: PASSWORD },
    { username: 'erin@acme-feed.test', password: PASSWORD },
  ]);
  acme = { tenantId: seeded.tenant.id, userIds: seeded.userIds };
  globex = {
    tenantId: (await seedNativeTenant(app, 'globex-feed', [{ username: 'dave@globex-feed.test', password: PASSWORD }])).tenant.id,
  };
});

afterAll(async () => app?.close());

describe('who may read the feed', () => {
  it('refuses a caller without client authentication, with a wrong secret, or without the revocations:read scope', async () => {
    const anonymous = await fetch(`${app.url}/oauth2/revocations`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Basic/);
    expect(await anonymous.json()).toMatchObject({ error: 'invalid_client' });
    expect((await feed({ id: gateway.id, secret: 'not-the-secret' })).status).toBe(401);
    const operators = (await app.app.get(TenantsService).findActiveBySlug(app.config.OPERATOR_TENANT))!;
    const noScope = await createClient({
      id: 'ops-without-feed',
      name: 'no feed',
      kind: 'machine',
      tenantId: operators.id,
      scopes: ['admin'],
    });
    const refused = await feed(noScope);
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ error: 'unauthorized_client' });
    expect((await feed({ id: bff.clientId, secret: bff.clientSecret })).status).toBe(403);
  });

  it('rejects a cursor it did not issue', async () => {
    const res = await feed(gateway, 'bm90LWEtY3Vyc29y');
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_request' });
  });
});

describe('what appears in the feed', () => {
  let poller: Poller;

  beforeAll(async () => {
    poller = new Poller(gateway);
    await poller.pollOnce();
  });

  it('a logged-out session’s sid', async () => {
    const { tokens } = await nativeLogin(app.url, bff, 'acme-feed', 'alice@acme-feed.test', PASSWORD);
    const logout = await fetch(`${app.url}/oauth2/logout`, { method: 'POST', headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(logout.status).toBe(204);
    const sid = sidOf(tokens.access_token);
    await poller.until(() => poller.has(sid));
    const entry = poller.seen.find((e) => e.sid === sid)!;
    expect(entry).toMatchObject({ tid: acme.tenantId, reason: 'logout' });
    expect(new Date(entry.not_after).getTime() - new Date(entry.revoked_at).getTime()).toBe(
      (app.config.ACCESS_TOKEN_TTL_SECONDS + app.config.CLOCK_SKEW_SECONDS) * 1000,
    );
  });

  it('a user disabled by SCIM deprovisioning: the sid of their still-unexpired access token', async () => {
    const { tokens } = await nativeLogin(app.url, bff, 'acme-feed', 'bob@acme-feed.test', PASSWORD);
    const scim = await scimClient(app, acme.tenantId);
    const adopted = await scim.post('/Users', entraUser('bob@acme-feed.test', randomUUID()));
    expect(adopted.status).toBe(201);
    const patched = await scim.patch(`/Users/${adopted.body['id'] as string}`, {
      schemas: [PATCH_OP],
      Operations: [{ op: 'replace', path: 'active', value: false }],
    });
    expect(patched.status).toBe(200);
    const sid = sidOf(tokens.access_token);
    expect(decodeJwt(tokens.access_token).exp! * 1000).toBeGreaterThan(Date.now()); // the token itself is still "valid"
    await poller.until(() => poller.has(sid));
    expect(poller.seen.find((e) => e.sid === sid)!.reason).toBe('scim_deactivated');
  });

  it('a session whose rotated refresh token was replayed', async () => {
    const { tokens } = await nativeLogin(app.url, bff, 'acme-feed', 'carol@acme-feed.test', PASSWORD);
    expect((await tokenRequest(app.url, bff, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token })).status).toBe(200);
    // Replayed later than the reuse grace (ADR 0012).
    await ageRefreshRotation(app, tokens.refresh_token, app.config.REFRESH_TOKEN_REUSE_GRACE_SECONDS + 1);
    expect((await tokenRequest(app.url, bff, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token })).status).toBe(400);
    const sid = sidOf(tokens.access_token);
    await poller.until(() => poller.has(sid));
    expect(poller.seen.find((e) => e.sid === sid)!.reason).toBe('refresh_token_reused');
  });

  it('every session of a deleted tenant', async () => {
    const { tokens } = await nativeLogin(app.url, bff, 'globex-feed', 'dave@globex-feed.test', PASSWORD);
    expect((await admin.call('DELETE', `/admin/v1/tenants/${globex.tenantId}`)).status).toBe(204);
    const sid = sidOf(tokens.access_token);
    await poller.until(() => poller.has(sid));
    expect(poller.seen.find((e) => e.sid === sid)).toMatchObject({ tid: globex.tenantId, reason: 'tenant_deleted' });
  });

  it('lists each revocation once across polls, and nothing new when nothing happened', async () => {
    const sids = poller.seen.map((e) => e.sid);
    expect(new Set(sids).size).toBe(sids.length);
    const page = await poller.pollOnce();
    expect(page.revocations).toEqual([]);
    expect(page.has_more).toBe(false);
  });

  it('pages with has_more when more entries are ready than the limit', async () => {
    const fresh = new Poller(gateway);
    let pages = 0;
    for (;;) {
      const page = await fresh.pollOnce(1);
      pages++;
      expect(page.revocations.length).toBeLessThanOrEqual(1);
      if (!page.has_more) break;
    }
    expect(pages).toBeGreaterThanOrEqual(4);
    expect(fresh.seen.map((e) => e.sid).sort()).toEqual(poller.seen.map((e) => e.sid).sort());
  });
});

describe('tenancy and ordering', () => {
  it('a client of one tenant reads only that tenant’s revocations', async () => {
    const own = await createClient({
      id: 'acme-feed-reader',
      name: 'acme gateway',
      kind: 'machine',
      tenantId: acme.tenantId,
      scopes: ['revocations:read'],
    });
    const p = new Poller(own);
    await p.until((seen) => seen.length >= 3);
    expect(new Set(p.seen.map((e) => e.tid))).toEqual(new Set([acme.tenantId]));
  });

  it('does not skip a revocation whose transaction commits after a later one was already served', async () => {
    const poller = new Poller(gateway);
    await poller.pollOnce();
    const first = await nativeLogin(app.url, bff, 'acme-feed', 'erin@acme-feed.test', PASSWORD);
    const second = await nativeLogin(app.url, bff, 'acme-feed', 'erin@acme-feed.test', PASSWORD);
    const slowSid = sidOf(first.tokens.access_token);
    const fastSid = sidOf(second.tokens.access_token);

    // A slow transaction revokes the first session and has not committed yet...
    const slow = app.database.dataSource.createQueryRunner();
    await slow.connect();
    try {
      await slow.startTransaction();
      await slow.query(`SELECT set_config('app.tenant_id', $1, true)`, [acme.tenantId]);
      await slow.query(`UPDATE sessions SET revoked_at = now(), revoked_reason = 'logout' WHERE id = $1`, [slowSid]);
      // ...while a later one revokes the second session and commits at once.
      const logout = await fetch(`${app.url}/oauth2/logout`, {
        method: 'POST',
        headers: { authorization: `Bearer ${second.tokens.access_token}` },
      });
      expect(logout.status).toBe(204);
      for (let i = 0; i < 3; i++) await poller.pollOnce();
      // The later revocation waits behind the open transaction instead of moving the cursor past it.
      expect(poller.has(fastSid)).toBe(false);
      await slow.commitTransaction();
    } finally {
      await slow.release();
    }
    await poller.until(() => poller.has(slowSid) && poller.has(fastSid));
  });
});
