import { randomBytes } from 'node:crypto';
import { decodeJwt, SignJWT, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { adminClient, type AdminClient } from './support/admin.js';
import { seedBff, seedNativeTenant } from './support/seed.js';
import { authorizeUrl, get, getJson, nativeLogin, pkcePair, postForm, tokenRequest, type BffClient } from './support/bff.js';
import { NativeCredentialsService } from '../src/identity/native/native-credentials.service.js';
import { BindingsService } from '../src/tenants/bindings.service.js';
import { TenantsService, type Tenant } from '../src/tenants/tenants.service.js';
import { ClientsService } from '../src/clients/clients.service.js';
import { SigningKeysService } from '../src/tokens/signing-keys.service.js';

/**
 * Issue #13, "Token consumers" and "OAuth": every route that accepts a platform access token goes
 * through one check (signature, typ, iss/aud, time, claim shapes, then session/user/tenant/client
 * still live), reads the token from the Authorization header only, and answers RFC 6750 challenges.
 */
const PASSWORD = 'correct horse battery staple';
let app: TestApp;
let ops: AdminClient;
let bff: BffClient;
let operators: Tenant;

beforeAll(async () => {
  // Many logins from one address within a minute: the per-IP sign-in limits are not what is tested here.
  app = await startTestApp({ RATE_LIMIT_AUTHORIZE_PER_MINUTE: '1000', RATE_LIMIT_LOGIN_PER_MINUTE: '1000' });
  ops = await adminClient(app);
  bff = await seedBff(app);
  operators = (await app.app.get(TenantsService).findActiveBySlug(app.config.OPERATOR_TENANT))!;
  await app.app.get(BindingsService).create(operators, { kind: 'native' });
});
afterAll(async () => {
  await app?.close();
});

let userCount = 0;
/** A fresh operator SUPER_ADMIN user and a login of it: its tokens reach userinfo and the admin API. */
async function operatorLogin(client = bff) {
  const username = `root${++userCount}@ops.test`;
  const userId = await app.app
    .get(NativeCredentialsService)
    .createUser(operators.id, { username, password: PASSWORD, email: username, emailVerified: true, roles: ['SUPER_ADMIN'] });
  const { tokens } = await nativeLogin(app.url, client, app.config.OPERATOR_TENANT, username, PASSWORD, { scope: 'openid email profile' });
  return { userId, ...tokens };
}

const withBearer = (token: string, scheme = 'Bearer') => ({ authorization: `${scheme} ${token}` });
const userinfo = (headers: Record<string, string> = {}, query = '') => fetch(`${app.url}/oauth2/userinfo${query}`, { headers });
const adminList = (headers: Record<string, string> = {}, query = '') => fetch(`${app.url}/admin/v1/tenants${query}`, { headers });
const bearerLogout = (token: string) => fetch(`${app.url}/oauth2/logout`, { method: 'POST', headers: withBearer(token) });

/** The three kinds of route that take a platform token, each in its own error format. */
async function expectRefusedEverywhere(token: string, why: string): Promise<void> {
  const info = await userinfo(withBearer(token));
  expect(info.status, `userinfo: ${why}`).toBe(401);
  expect(await info.json(), `userinfo: ${why}`).toMatchObject({ error: 'invalid_token' });
  expect(info.headers.get('www-authenticate'), `userinfo: ${why}`).toMatch(/^Bearer .*error="invalid_token"/);

  const admin = await adminList(withBearer(token));
  expect(admin.status, `admin: ${why}`).toBe(401);
  expect(admin.headers.get('content-type'), `admin: ${why}`).toMatch(/application\/problem\+json/);
  expect(await admin.json(), `admin: ${why}`).toMatchObject({ status: 401, type: 'urn:auth-service:problem:unauthenticated' });
  expect(admin.headers.get('www-authenticate'), `admin: ${why}`).toMatch(/^Bearer .*error="invalid_token"/);

  const logout = await bearerLogout(token);
  expect(logout.status, `logout: ${why}`).toBe(401);
  expect(await logout.json(), `logout: ${why}`).toMatchObject({ error: 'invalid_token' });
}

async function expectAcceptedEverywhere(token: string): Promise<void> {
  expect((await userinfo(withBearer(token))).status).toBe(200);
  expect((await adminList(withBearer(token))).status).toBe(200);
}

describe('a platform access token stops everywhere at once', () => {
  it('after POST /oauth2/logout with it, on userinfo, the admin API and logout itself', async () => {
    const t = await operatorLogin();
    await expectAcceptedEverywhere(t.access_token);
    expect((await bearerLogout(t.access_token)).status).toBe(204);
    await expectRefusedEverywhere(t.access_token, 'session logged out');
  });

  it('after its refresh token is revoked (RFC 7009)', async () => {
    const t = await operatorLogin();
    await expectAcceptedEverywhere(t.access_token);
    const revoked = await postForm(`${app.url}/oauth2/revoke`, {
      token: t.refresh_token,
      client_id: bff.clientId,
      client_secret: bff.clientSecret,
    });
    expect(revoked.status).toBe(200);
    await expectRefusedEverywhere(t.access_token, 'refresh token revoked');
  });

  it('after RP-initiated logout with its ID token', async () => {
    const t = await operatorLogin();
    const out = await get(`${app.url}/oauth2/logout?id_token_hint=${t.id_token}`);
    expect(out.status).toBe(200);
    await expectRefusedEverywhere(t.access_token, 'RP-initiated logout');
  });

  it('once its user is disabled', async () => {
    const t = await operatorLogin();
    await expectAcceptedEverywhere(t.access_token);
    await app.database.transaction({ tenant: operators.id }, (tx) =>
      tx.query(`UPDATE users SET status = 'disabled' WHERE id = $1`, [t.userId]),
    );
    await expectRefusedEverywhere(t.access_token, 'user disabled');
  });

  it('once its client is disabled', async () => {
    const own = await seedBff(app);
    const t = await operatorLogin(own);
    await expectAcceptedEverywhere(t.access_token);
    expect(await app.app.get(ClientsService).disable(own.clientId)).toBe(true);
    await expectRefusedEverywhere(t.access_token, 'client disabled');
  });

  it('once its tenant is suspended through the admin API', async () => {
    const { tenant } = await seedNativeTenant(app, `susp-${randomBytes(3).toString('hex')}`, [
      { username: 'ann@susp.test', password: PASSWORD },
    ]);
    const { tokens } = await nativeLogin(app.url, bff, tenant.slug, 'ann@susp.test', PASSWORD);
    expect((await userinfo(withBearer(tokens.access_token))).status).toBe(200);
    const suspend = await ops.call('PATCH', `/admin/v1/tenants/${tenant.id}`, { status: 'suspended' }, { 'if-match': '*' });
    expect(suspend.status, await suspend.clone().text()).toBe(200);
    const info = await userinfo(withBearer(tokens.access_token));
    expect(info.status).toBe(401);
    expect(info.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
    expect((await bearerLogout(tokens.access_token)).status).toBe(401);
  });

  it('while its tenant is not active, even with its session untouched (suspended by hand in SQL), and again once it is', async () => {
    // The admin API also ends the tenant's sessions; this isolates the tenant check itself.
    const { tenant } = await seedNativeTenant(app, `sql-${randomBytes(3).toString('hex')}`, [
      { username: 'cy@sql.test', password: PASSWORD },
    ]);
    const { tokens } = await nativeLogin(app.url, bff, tenant.slug, 'cy@sql.test', PASSWORD);
    expect((await userinfo(withBearer(tokens.access_token))).status).toBe(200);
    await app.database.query(`UPDATE tenants SET status = 'suspended' WHERE id = $1`, [tenant.id]);
    // The tenant cache hears the change through the row-change feed (NOTIFY), a moment later.
    await expect.poll(async () => (await userinfo(withBearer(tokens.access_token))).status, { timeout: 10_000 }).toBe(401);
    expect((await bearerLogout(tokens.access_token)).status).toBe(401);
    await app.database.query(`UPDATE tenants SET status = 'active' WHERE id = $1`, [tenant.id]);
    await expect.poll(async () => (await userinfo(withBearer(tokens.access_token))).status, { timeout: 10_000 }).toBe(200);
  });

  it('an admin machine token stops once its client is disabled', async () => {
    const other = await adminClient(app);
    expect((await other.call('GET', '/admin/v1/tenants')).status).toBe(200);
    const clientId = decodeJwt(other.token)['client_id'] as string;
    expect(await app.app.get(ClientsService).disable(clientId)).toBe(true);
    const res = await other.call('GET', '/admin/v1/tenants');
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
  });
});

describe('concurrent requests', () => {
  it('answers every one of 30 concurrent userinfo and admin requests, each with its own verdict', async () => {
    const live = await operatorLogin();
    const dead = await operatorLogin();
    expect((await bearerLogout(dead.access_token)).status).toBe(204);
    const calls = Array.from({ length: 30 }, (_, i) => {
      const token = i % 3 === 2 ? dead.access_token : live.access_token;
      const call = i % 2 === 0 ? userinfo(withBearer(token)) : adminList(withBearer(token));
      return call.then((r) => ({ expected: i % 3 === 2 ? 401 : 200, status: r.status }));
    });
    const answers = await Promise.all(calls);
    expect(answers.map((a) => a.status)).toEqual(answers.map((a) => a.expected));
  });
});

describe('the Bearer token is read from the Authorization header only', () => {
  it('refuses access_token in the query string or the body on the admin API and userinfo (401, a challenge without an error code)', async () => {
    const t = await operatorLogin();
    for (const res of [
      await adminList({}, `?access_token=${t.access_token}`),
      await userinfo({}, `?access_token=${t.access_token}`),
      await fetch(`${app.url}/admin/v1/tenants`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ access_token: t.access_token, slug: 'never-made', displayName: 'x' }),
      }),
      await fetch(`${app.url}/admin/v1/tenants`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `access_token=${t.access_token}&slug=never-made&displayName=x`,
      }),
    ]) {
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="auth-service"');
    }
    expect(await app.app.get(TenantsService).findActiveBySlug('never-made')).toBeUndefined();
  });

  it('takes the scheme in any case, on userinfo and the admin API alike', async () => {
    const t = await operatorLogin();
    for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR']) {
      expect((await userinfo(withBearer(t.access_token, scheme))).status, scheme).toBe(200);
      expect((await adminList(withBearer(t.access_token, scheme))).status, scheme).toBe(200);
    }
  });

  it('answers a missing or malformed credential with 401 and an RFC 6750 challenge', async () => {
    const none = await adminList();
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="auth-service"');
    const basic = await userinfo({ authorization: 'Basic Zm9vOmJhcg==' });
    expect(basic.status).toBe(401);
    expect(basic.headers.get('www-authenticate')).toBe('Bearer realm="auth-service"');
    const garbage = await adminList({ authorization: 'Bearer not a token' });
    expect(garbage.status).toBe(401);
    expect(garbage.headers.get('www-authenticate')).toMatch(/^Bearer realm="auth-service", error="invalid_token"/);
  });
});

describe('time claims and claim shapes of a validly signed token', () => {
  /** Re-signs a real token's claims, changed, with the service's own active key. */
  async function forge(base: string, change: (c: JWTPayload) => JWTPayload): Promise<string> {
    const { kid, key } = app.app.get(SigningKeysService).currentSigner();
    return new SignJWT(change({ ...decodeJwt(base) })).setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid }).sign(key);
  }
  const now = () => Math.floor(Date.now() / 1000);

  it('accepts the re-signed token unchanged (so the refusals below are about the change alone)', async () => {
    const t = await operatorLogin();
    await expectAcceptedEverywhere(await forge(t.access_token, (c) => c));
  });

  it('refuses an iat in the future beyond the clock skew', async () => {
    const t = await operatorLogin();
    const ahead = now() + app.config.CLOCK_SKEW_SECONDS + 120;
    await expectRefusedEverywhere(await forge(t.access_token, (c) => ({ ...c, iat: ahead, exp: ahead + 60 })), 'iat in the future');
    // Within the skew is fine: clocks of two hosts differ a little.
    const near = now() + Math.floor(app.config.CLOCK_SKEW_SECONDS / 2);
    const nearToken = await forge(t.access_token, (c) => ({ ...c, iat: near, exp: near + 60 }));
    expect((await userinfo(withBearer(nearToken))).status).toBe(200);
  });

  it('refuses a lifetime longer than any this service issues', async () => {
    const t = await operatorLogin();
    const iat = now() - 10;
    await expectRefusedEverywhere(
      await forge(t.access_token, (c) => ({ ...c, iat, exp: iat + app.config.ACCESS_TOKEN_TTL_SECONDS + 3600 })),
      'lifetime too long',
    );
  });

  it('refuses a token without iat', async () => {
    const t = await operatorLogin();
    await expectRefusedEverywhere(await forge(t.access_token, ({ iat: _iat, ...c }) => c), 'no iat');
  });

  it('answers 401, never 500, for a tid, sid or sub that is not in the expected form', async () => {
    const t = await operatorLogin();
    const cases: Array<[string, (c: JWTPayload) => JWTPayload]> = [
      ['tid not a uuid', (c) => ({ ...c, tid: "x' OR '1'='1" })],
      ['tid a number', (c) => ({ ...c, tid: 42 })],
      ['sid not a uuid', (c) => ({ ...c, sid: 'not-a-session' })],
      ['sid missing on a user token', ({ sid: _sid, ...c }) => c],
      ['sub not a uuid', (c) => ({ ...c, sub: 'alice' })],
      ['sub an object', (c) => ({ ...c, sub: { id: 1 } as unknown as string })],
      ['client_id missing', ({ client_id: _c, ...c }) => c],
      ['roles not a list', (c) => ({ ...c, roles: 'SUPER_ADMIN' })],
      ['another user in the same session', (c) => ({ ...c, sub: '00000000-0000-4000-8000-000000000000' })],
      ['an unknown tenant', (c) => ({ ...c, tid: '00000000-0000-4000-8000-000000000000' })],
    ];
    for (const [why, change] of cases) await expectRefusedEverywhere(await forge(t.access_token, change), why);
  });
});

describe('a client bound to a tenant only ever gets its own tenant', () => {
  let a: Tenant;
  let b: Tenant;
  let boundA: BffClient;
  beforeAll(async () => {
    a = (await seedNativeTenant(app, `bound-a-${randomBytes(2).toString('hex')}`, [{ username: 'ann@a.test', password: PASSWORD }])).tenant;
    b = (await seedNativeTenant(app, `bound-b-${randomBytes(2).toString('hex')}`, [{ username: 'bob@b.test', password: PASSWORD }])).tenant;
    const id = `bff-a-${randomBytes(3).toString('hex')}`;
    const { secret } = await app.app
      .get(ClientsService)
      .create({ id, name: 'A only', kind: 'bff', tenantId: a.id, redirectUris: ['http://127.0.0.1:9/a/callback'] });
    boundA = { clientId: id, clientSecret: secret, redirectUri: 'http://127.0.0.1:9/a/callback' };
  });

  it('refuses at authorize, to the redirect URI, for another tenant and for an unknown slug alike', async () => {
    for (const org of [b.slug, 'no-such-org-anywhere']) {
      const { challenge } = pkcePair();
      const res = await get(authorizeUrl(app.url, boundA, { org, state: 's1', code_challenge: challenge, code_challenge_method: 'S256' }));
      expect(res.status, org).toBe(302);
      const back = new URL(res.headers.get('location')!);
      expect(`${back.origin}${back.pathname}`).toBe(boundA.redirectUri);
      expect(back.searchParams.get('error'), org).toBe('unauthorized_client');
      expect(back.searchParams.get('state')).toBe('s1');
      expect(back.searchParams.get('code')).toBeNull();
    }
    // Its own tenant signs in.
    const { tokens } = await nativeLogin(app.url, boundA, a.slug, 'ann@a.test', PASSWORD);
    expect(decodeJwt(tokens.access_token)).toMatchObject({ tid: a.id, client_id: boundA.clientId });
  });

  it('refuses at the token endpoint a code and a refresh token of another tenant (the client was bound after they were issued)', async () => {
    const id = `bff-late-${randomBytes(3).toString('hex')}`;
    const { secret } = await app.app
      .get(ClientsService)
      .create({ id, name: 'Bound later', kind: 'bff', redirectUris: ['http://127.0.0.1:9/late/callback'] });
    const late: BffClient = { clientId: id, clientSecret: secret, redirectUri: 'http://127.0.0.1:9/late/callback' };
    const { tokens } = await nativeLogin(app.url, late, b.slug, 'bob@b.test', PASSWORD);
    // A second login stops at the code, to redeem it once the client is bound to A.
    const { verifier, challenge } = pkcePair();
    const start = await get(
      authorizeUrl(app.url, late, { org: b.slug, state: 's2', code_challenge: challenge, code_challenge_method: 'S256' }),
    );
    const { submitNativeLogin } = await import('./support/bff.js');
    const done = await submitNativeLogin(app.url, start.headers.get('location')!, 'bob@b.test', PASSWORD);
    const code = new URL(done.headers.get('location')!).searchParams.get('code')!;

    await app.database.query(`UPDATE clients SET tenant_id = $2 WHERE id = $1`, [id, a.id]);
    app.database.rowsChanged('clients');

    const redeemed = await tokenRequest(app.url, late, {
      grant_type: 'authorization_code',
      code,
      redirect_uri: late.redirectUri,
      code_verifier: verifier,
    });
    expect(redeemed.status).toBe(400);
    expect(await redeemed.json()).toMatchObject({ error: 'invalid_grant' });
    const refreshed = await tokenRequest(app.url, late, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
    expect(refreshed.status).toBe(400);
    expect(await refreshed.json()).toMatchObject({ error: 'invalid_grant' });
    // And the token it holds for B stops too: the one check knows the client is A's now.
    expect((await userinfo(withBearer(tokens.access_token))).status).toBe(401);
  });
});

describe('logout validates before it changes anything', () => {
  it('a refused RP-initiated logout (post_logout_redirect_uri not registered) leaves the session live', async () => {
    const t = await operatorLogin();
    const res = await getJson(
      `${app.url}/oauth2/logout?id_token_hint=${t.id_token}&post_logout_redirect_uri=${encodeURIComponent('https://evil.example/')}`,
    );
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_request' });
    await expectAcceptedEverywhere(t.access_token);
    const refreshed = await tokenRequest(app.url, bff, { grant_type: 'refresh_token', refresh_token: t.refresh_token });
    expect(refreshed.status).toBe(200);
  });

  it('a refused logout (id_token_hint of another client) leaves the session live', async () => {
    const t = await operatorLogin();
    const other = await seedBff(app);
    const res = await get(`${app.url}/oauth2/logout?id_token_hint=${t.id_token}&client_id=${other.clientId}`);
    expect(res.status).toBe(400);
    await expectAcceptedEverywhere(t.access_token);
  });

  it('answers 400, not 500, for an ID token hint whose sid or tid is not in the expected form', async () => {
    const t = await operatorLogin();
    const { kid, key } = app.app.get(SigningKeysService).currentSigner();
    for (const change of [{ sid: 'not-a-session' }, { tid: 'not-a-tenant' }]) {
      const hint = await new SignJWT({ ...decodeJwt(t.id_token), ...change })
        .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid })
        .sign(key);
      const res = await getJson(`${app.url}/oauth2/logout?id_token_hint=${hint}`);
      expect(res.status, JSON.stringify(change)).toBe(400);
      expect(await res.json()).toMatchObject({ error: 'invalid_request' });
    }
    await expectAcceptedEverywhere(t.access_token);
  });
});
