import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import pg from 'pg';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { ageRefreshRotation, seedBff, seedNativeTenant } from './support/seed.js';
import { basic, get, nativeLogin, postForm, tokenRequest, type BffClient } from './support/bff.js';
import { ensurePyJwt, validateLikeGateway } from './support/gateway.js';
import { peersRequired, PeerUnavailableError } from './peers/peer-unavailable.js';
import { SigningKeysService } from '../src/tokens/signing-keys.service.js';

let app: TestApp;
let bff: BffClient;
let acmeId: string;
let aliceId: string;
let pyJwt: string | undefined;

const PASSWORD = 'correct horse battery staple';

beforeAll(async () => {
  app = await startTestApp();
  bff = await seedBff(app);
  const acme = await seedNativeTenant(
    app,
    'acme',
    [
      { username: 'alice@acme.test', password: PASSWORD, roles: ['SUPER_ADMIN'] },
      { username: 'bob@acme.test', password: PASSWORD },
      { username: 'carol@acme.test', password: PASSWORD },
    ],
    { defaultRoles: ['USER'] },
  );
  acmeId = acme.tenant.id;
  aliceId = acme.userIds[0]!;
  await seedNativeTenant(app, 'globex', [{ username: 'gina@globex.test', password: PASSWORD }]);
  try {
    ensurePyJwt();
  } catch (err) {
    if (!(err instanceof PeerUnavailableError) || peersRequired()) throw err;
    pyJwt = err.message;
  }
});

afterAll(async () => {
  await app?.close();
});

describe('native login through the BFF flow', () => {
  it('issues an RFC 9068 access token that a JWKS-fetching validator (jose) accepts', async () => {
    const { tokens } = await nativeLogin(app.url, bff, 'acme', 'alice@acme.test', PASSWORD);
    expect(decodeProtectedHeader(tokens.access_token)).toMatchObject({ alg: 'RS256', typ: 'at+jwt' });
    const jwks = createRemoteJWKSet(new URL(`${app.url}/.well-known/jwks.json`));
    const { payload, protectedHeader } = await jwtVerify(tokens.access_token, jwks, {
      issuer: app.url,
      audience: 'platform-api',
      typ: 'at+jwt',
    });
    expect(protectedHeader.kid).toBeTruthy();
    expect(payload).toMatchObject({
      sub: aliceId,
      tid: acmeId,
      org: 'acme',
      idp: 'native',
      idp_sub: aliceId,
      client_id: bff.clientId,
      scope: 'openid email profile',
    });
    expect(payload['roles']).toEqual(['SUPER_ADMIN', 'USER']);
    for (const claim of ['exp', 'iat', 'jti', 'auth_time', 'sid']) expect(payload[claim]).toBeDefined();
    expect(tokens.refresh_token).toMatch(/^rt_/);
    const id = await jwtVerify(tokens.id_token, jwks, { issuer: app.url, audience: bff.clientId });
    expect(id.payload['email']).toBe('alice@acme.test');
  });

  it('issues tokens that Debian python3-jwt, fetching the JWKS like a gateway, accepts', async (ctx) => {
    if (pyJwt) ctx.skip(pyJwt);
    const { tokens } = await nativeLogin(app.url, bff, 'acme', 'bob@acme.test', PASSWORD);
    const [verdict] = await validateLikeGateway(`${app.url}/.well-known/jwks.json`, app.url, 'platform-api', [tokens.access_token]);
    expect(verdict).toMatchObject({ ok: true, tid: acmeId });
    const [forged] = await validateLikeGateway(`${app.url}/.well-known/jwks.json`, app.url, 'platform-api', [
      tokens.access_token.slice(0, -4) + 'AAAA',
    ]);
    expect(forged!.ok).toBe(false);
  });

  it('serves userinfo for a live session and refuses it after logout', async () => {
    const { tokens } = await nativeLogin(app.url, bff, 'acme', 'carol@acme.test', PASSWORD);
    const info = await fetch(`${app.url}/oauth2/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(info.status).toBe(200);
    expect(await info.json()).toMatchObject({ email: 'carol@acme.test', org: 'acme', roles: ['USER'] });
    const out = await fetch(`${app.url}/oauth2/logout`, { method: 'POST', headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(out.status).toBe(204);
    const after = await fetch(`${app.url}/oauth2/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    expect(after.status).toBe(401);
    expect(await after.json()).toMatchObject({ error: 'invalid_token' });
    const refresh = await tokenRequest(app.url, bff, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
    expect(refresh.status).toBe(400);
  });

  it('logs out with id_token_hint and redirects only to a registered post-logout URI', async () => {
    const { tokens } = await nativeLogin(app.url, bff, 'acme', 'carol@acme.test', PASSWORD);
    const bad = await get(
      `${app.url}/oauth2/logout?id_token_hint=${tokens.id_token}&post_logout_redirect_uri=${encodeURIComponent('https://evil.test/')}`,
    );
    expect(bad.status).toBe(400);
    const ok = await get(
      `${app.url}/oauth2/logout?id_token_hint=${tokens.id_token}&state=s1&post_logout_redirect_uri=${encodeURIComponent('http://127.0.0.1:9/bff/signed-out')}`,
    );
    expect(ok.status).toBe(302);
    expect(ok.headers.get('location')).toBe('http://127.0.0.1:9/bff/signed-out?state=s1');
    const refresh = await tokenRequest(app.url, bff, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
    expect(await refresh.json()).toMatchObject({ error: 'invalid_grant' });
  });
});

describe('refresh tokens', () => {
  it('rotates on every use, and a rotated token presented after the reuse grace revokes the whole family', async () => {
    const { tokens } = await nativeLogin(app.url, bff, 'acme', 'bob@acme.test', PASSWORD);
    const first = await tokenRequest(app.url, bff, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
    expect(first.status).toBe(200);
    const rotated = (await first.json()) as { refresh_token: string; access_token: string };
    expect(rotated.refresh_token).not.toBe(tokens.refresh_token);
    // The old one again, later than the reuse grace (ADR 0012): reuse.
    await ageRefreshRotation(app, tokens.refresh_token, app.config.REFRESH_TOKEN_REUSE_GRACE_SECONDS + 1);
    const reuse = await tokenRequest(app.url, bff, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
    expect(reuse.status).toBe(400);
    expect(await reuse.json()).toMatchObject({ error: 'invalid_grant' });
    // The family is gone: even the newest token stops working.
    const newest = await tokenRequest(app.url, bff, { grant_type: 'refresh_token', refresh_token: rotated.refresh_token });
    expect(newest.status).toBe(400);
  });

  it('stops refreshing once revoked (RFC 7009)', async () => {
    const { tokens } = await nativeLogin(app.url, bff, 'acme', 'bob@acme.test', PASSWORD);
    const revoke = await postForm(
      `${app.url}/oauth2/revoke`,
      { token: tokens.refresh_token },
      { headers: { authorization: basic(bff.clientId, bff.clientSecret) } },
    );
    expect(revoke.status).toBe(200);
    const refresh = await tokenRequest(app.url, bff, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
    expect(await refresh.json()).toMatchObject({ error: 'invalid_grant' });
    const unknown = await postForm(
      `${app.url}/oauth2/revoke`,
      { token: 'not-a-token' },
      { headers: { authorization: basic(bff.clientId, bff.clientSecret) } },
    );
    expect(unknown.status).toBe(200);
  });

  it('refuses a refresh token presented by another client', async () => {
    const other = await seedBff(app);
    const { tokens } = await nativeLogin(app.url, bff, 'acme', 'bob@acme.test', PASSWORD);
    const res = await tokenRequest(app.url, other, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
    expect(await res.json()).toMatchObject({ error: 'invalid_grant' });
  });
});

describe('key rotation', () => {
  it('publishes the new key before it signs, keeps the retired key until its tokens expired', async () => {
    const keys = app.app.get(SigningKeysService);
    const jwksKids = async () =>
      ((await (await fetch(`${app.url}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid);
    const before = await nativeLogin(app.url, bff, 'acme', 'alice@acme.test', PASSWORD);
    const oldKid = decodeProtectedHeader(before.tokens.access_token).kid!;

    const t0 = Date.now();
    const pending = await keys.rotate(60, new Date(t0));
    expect(pending.status).toBe('pending');
    expect(await jwksKids()).toEqual(expect.arrayContaining([oldKid, pending.kid]));
    const stillOld = await nativeLogin(app.url, bff, 'acme', 'alice@acme.test', PASSWORD);
    expect(decodeProtectedHeader(stillOld.tokens.access_token).kid).toBe(oldKid);

    await keys.maintain(new Date(t0 + 61_000));
    const after = await nativeLogin(app.url, bff, 'acme', 'alice@acme.test', PASSWORD);
    expect(decodeProtectedHeader(after.tokens.access_token).kid).toBe(pending.kid);

    const jwks = createRemoteJWKSet(new URL(`${app.url}/.well-known/jwks.json`));
    for (const t of [before, after]) await expect(jwtVerify(t.tokens.access_token, jwks, { issuer: app.url })).resolves.toBeTruthy();
    if (!pyJwt) {
      const verdicts = await validateLikeGateway(`${app.url}/.well-known/jwks.json`, app.url, 'platform-api', [
        before.tokens.access_token,
        after.tokens.access_token,
      ]);
      expect(verdicts.map((v) => v.ok)).toEqual([true, true]);
      expect(verdicts.map((v) => v.kid)).toEqual([oldKid, pending.kid]);
    }

    const lifetimeMs = (app.config.ACCESS_TOKEN_TTL_SECONDS + app.config.CLOCK_SKEW_SECONDS) * 1000;
    await keys.maintain(new Date(t0 + 61_000 + lifetimeMs - 1_000));
    expect(await jwksKids()).toContain(oldKid);
    await keys.maintain(new Date(t0 + 61_000 + lifetimeMs + 1_000));
    const finalKids = await jwksKids();
    expect(finalKids).not.toContain(oldKid);
    expect(finalKids).toContain(pending.kid);
  });

  it('answers JWKS revalidation with 304 for an unchanged ETag', async () => {
    const first = await fetch(`${app.url}/.well-known/jwks.json`);
    const etag = first.headers.get('etag')!;
    expect(first.headers.get('cache-control')).toMatch(/max-age=\d+/);
    const again = await fetch(`${app.url}/.well-known/jwks.json`, { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
  });
});

describe('row-level security', () => {
  it('hides every tenant row from a query that did not set its tenant, with the service role', async () => {
    const client = new pg.Client({ connectionString: app.db.url });
    await client.connect();
    try {
      const [role] = (await client.query('SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user')).rows;
      expect(role).toEqual({ rolsuper: false, rolbypassrls: false });
      const none = await client.query('SELECT count(*)::int AS n FROM users');
      expect(none.rows[0].n).toBe(0);
      await client.query('BEGIN');
      await client.query(`SELECT set_config('app.tenant_id', $1, true)`, [acmeId]);
      const own = await client.query('SELECT DISTINCT tenant_id FROM users');
      expect(own.rows.map((r) => r.tenant_id)).toEqual([acmeId]);
      const forgotFilter = await client.query(`SELECT count(*)::int AS n FROM native_credentials WHERE username = 'gina@globex.test'`);
      expect(forgotFilter.rows[0].n).toBe(0);
      await expect(client.query(`INSERT INTO roles (tenant_id, name) SELECT id, 'X' FROM tenants WHERE slug = 'globex'`)).rejects.toThrow(
        /row-level security/,
      );
      await client.query('ROLLBACK');
    } finally {
      await client.end();
    }
  });
});

describe('query plans under row-level security', () => {
  it('finds a password credential through the index, not by scanning the tenant', async () => {
    const client = new pg.Client({ connectionString: app.db.url });
    await client.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SELECT set_config('app.tenant_id', $1, true)`, [acmeId]);
      await client.query('SET LOCAL enable_seqscan = off');
      const plan = (
        await client.query(`EXPLAIN SELECT user_id FROM native_credentials WHERE tenant_id = $1 AND username_ci = lower($2)`, [
          acmeId,
          'Alice@Acme.test',
        ])
      ).rows
        .map((r: Record<string, string>) => r['QUERY PLAN'])
        .join('\n');
      expect(plan).toMatch(/Index (Only )?Scan using native_credentials_username_key/);
      expect(plan).toMatch(/Index Cond: .*username_ci/);
      await client.query('ROLLBACK');
    } finally {
      await client.end();
    }
  });
});
