/**
 * Two instances of the service on one database, behind one public URL (what a load balancer in
 * front of several replicas looks like): nothing a login, a grant or a key depends on lives in
 * one replica's memory. The SAML one-time-use assertion IDs across replicas are proven in
 * tenant-saml.test.ts ("refuses one-time-use IDs across replicas").
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { ageRefreshRotation, seedBff, seedNativeTenant } from './support/seed.js';
import {
  authorizeUrl,
  CookieJar,
  formAction,
  get,
  hiddenInput,
  nativeLogin,
  pkcePair,
  postForm,
  tokenRequest,
  type BffClient,
} from './support/bff.js';
import { ClientsService } from '../src/clients/clients.service.js';
import { SigningKeysService } from '../src/tokens/signing-keys.service.js';

const PASSWORD = 'correct horse battery staple';
const LIMITS = { RATE_LIMIT_AUTHORIZE_PER_MINUTE: '1000', RATE_LIMIT_LOGIN_PER_MINUTE: '1000' };

let a: TestApp;
let b: TestApp;
let bff: BffClient;
let machine: { clientId: string; clientSecret: string; redirectUri: string };
let issuer: string;

beforeAll(async () => {
  a = await startTestApp(LIMITS);
  issuer = a.config.issuer;
  // Same database (and so the same key-encryption key), same public URL, its own port.
  b = await startTestApp({ ...LIMITS, PUBLIC_URL: issuer }, a.db);
  expect(b.url).not.toBe(a.url);
  bff = await seedBff(a);
  const { tenant } = await seedNativeTenant(a, 'acme', [
    { username: 'alice@acme.test', password: PASSWORD },
    { username: 'bob@acme.test', password: PASSWORD },
  ]);
  const id = `svc-${randomBytes(3).toString('hex')}`;
  const created = await a.app.get(ClientsService).create({ id, name: 'Machine', kind: 'machine', tenantId: tenant.id, scopes: ['api'] });
  machine = { clientId: id, clientSecret: created.secret, redirectUri: '' };
});

afterAll(async () => {
  await Promise.allSettled([b?.close(), a?.close()]);
});

/** The same path on another replica: what the load balancer does with the browser's next request. */
const on = (replica: TestApp, url: string) => {
  const u = new URL(url);
  return `${replica.url}${u.pathname}${u.search}`;
};

const refresh = (replica: TestApp, token: string) => tokenRequest(replica.url, bff, { grant_type: 'refresh_token', refresh_token: token });
const userinfo = (replica: TestApp, accessToken: string) =>
  fetch(`${replica.url}/oauth2/userinfo`, { headers: { authorization: `Bearer ${accessToken}` } });

/** A login on replica A up to the code (form served by A, posted to B), without exchanging it. */
async function codeAcrossReplicas(username: string) {
  const { verifier, challenge } = pkcePair();
  const state = randomBytes(8).toString('hex');
  const started = await get(authorizeUrl(a.url, bff, { org: 'acme', state, code_challenge: challenge, code_challenge_method: 'S256' }));
  expect(started.status).toBe(302);
  const formUrl = started.headers.get('location')!;
  expect(formUrl.startsWith(`${issuer}/login/native/`)).toBe(true);
  const jar = new CookieJar();
  const page = await get(on(a, formUrl), jar);
  expect(page.status).toBe(200);
  const html = await page.text();
  const done = await postForm(
    on(b, new URL(formAction(html)!, issuer).toString()),
    { csrf: hiddenInput(html, 'csrf')!, username, password: PASSWORD },
    { jar },
  );
  expect(done.status).toBe(302);
  const back = new URL(done.headers.get('location')!);
  expect(`${back.origin}${back.pathname}`).toBe(bff.redirectUri);
  expect(back.searchParams.get('state')).toBe(state);
  expect(back.searchParams.get('iss')).toBe(issuer);
  return { code: back.searchParams.get('code')!, verifier };
}

const exchange = (replica: TestApp, code: string, verifier: string) =>
  tokenRequest(replica.url, bff, { grant_type: 'authorization_code', code, redirect_uri: bff.redirectUri, code_verifier: verifier });

describe('two replicas on one database', () => {
  it('completes on replica B a login started on replica A, and A exchanges the code B issued', async () => {
    const { code, verifier } = await codeAcrossReplicas('alice@acme.test');
    const res = await exchange(a, code, verifier);
    expect(res.status).toBe(200);
    const tokens = (await res.json()) as { access_token: string; refresh_token: string };
    const jwks = createLocalJWKSet((await (await fetch(`${b.url}/.well-known/jwks.json`)).json()) as JSONWebKeySet);
    const { payload } = await jwtVerify(tokens.access_token, jwks, { issuer, audience: 'platform-api' });
    expect(payload['org']).toBe('acme');
    expect((await userinfo(b, tokens.access_token)).status).toBe(200);
  });

  it('refuses on replica B a login transaction already completed on replica A', async () => {
    const { challenge } = pkcePair();
    const started = await get(
      authorizeUrl(a.url, bff, { org: 'acme', state: 's', code_challenge: challenge, code_challenge_method: 'S256' }),
    );
    const formUrl = started.headers.get('location')!;
    const jar = new CookieJar();
    const html = await (await get(on(b, formUrl), jar)).text();
    const form = { csrf: hiddenInput(html, 'csrf')!, username: 'bob@acme.test', password: PASSWORD };
    const action = new URL(formAction(html)!, issuer).toString();
    expect((await postForm(on(a, action), form, { jar })).status).toBe(302);
    const again = await postForm(on(b, action), form, { jar });
    expect(again.status).toBe(400);
    expect(again.headers.get('location')).toBeNull();
  });

  it('refuses on replica B a refresh token rotated on replica A as reused, and the family is revoked on both', async () => {
    const { tokens } = await nativeLogin(a.url, bff, 'acme', 'bob@acme.test', PASSWORD);
    const rotated = await refresh(a, tokens.refresh_token);
    expect(rotated.status).toBe(200);
    const next = (await rotated.json()) as { refresh_token: string; access_token: string };
    expect((await userinfo(b, next.access_token)).status).toBe(200);

    // Later than the reuse grace (ADR 0012): reuse.
    await ageRefreshRotation(a, tokens.refresh_token, a.config.REFRESH_TOKEN_REUSE_GRACE_SECONDS + 1);
    const reuse = await refresh(b, tokens.refresh_token);
    expect(reuse.status).toBe(400);
    expect(await reuse.json()).toMatchObject({ error: 'invalid_grant' });

    // The newest token of the family is dead on both replicas, and so is the session behind it.
    for (const replica of [a, b]) {
      const newest = await refresh(replica, next.refresh_token);
      expect(newest.status).toBe(400);
      expect(await newest.json()).toMatchObject({ error: 'invalid_grant' });
      const info = await userinfo(replica, next.access_token);
      expect(info.status).toBe(401);
      expect(await info.json()).toMatchObject({ error: 'invalid_token' });
    }
  });

  it('rotates a refresh token presented to both replicas at once exactly once, and both answer the same successor', async () => {
    const { tokens } = await nativeLogin(b.url, bff, 'acme', 'alice@acme.test', PASSWORD);
    const answers = await Promise.all([refresh(a, tokens.refresh_token), refresh(b, tokens.refresh_token)]);
    // Within the reuse grace (ADR 0012): both succeed, with one successor, and the family lives on.
    expect(answers.map((r) => r.status)).toEqual([200, 200]);
    const [fromA, fromB] = (await Promise.all(answers.map((r) => r.json()))) as Array<{ refresh_token: string; access_token: string }>;
    expect(fromB!.refresh_token).toBe(fromA!.refresh_token);
    const { tid, sid } = decodeJwt(tokens.access_token) as { tid: string; sid: string };
    const family = await a.database.transaction({ tenant: tid }, (tx) =>
      tx.query(`SELECT rotated_at FROM refresh_tokens WHERE session_id = $1`, [sid]),
    );
    expect(family.rowCount).toBe(2);
    // The successor rotates once more, on either replica, and the session is alive on both.
    const next = await refresh(b, fromA!.refresh_token);
    expect(next.status).toBe(200);
    const { access_token } = (await next.json()) as { access_token: string };
    for (const replica of [a, b]) expect((await userinfo(replica, access_token)).status).toBe(200);
  });

  it('refuses on replica B an authorization code redeemed on replica A, and revokes what A issued for it', async () => {
    const { code, verifier } = await codeAcrossReplicas('bob@acme.test');
    const first = await exchange(a, code, verifier);
    expect(first.status).toBe(200);
    const issued = (await first.json()) as { refresh_token: string };
    const replay = await exchange(b, code, verifier);
    expect(replay.status).toBe(400);
    expect(await replay.json()).toMatchObject({ error: 'invalid_grant' });
    expect(await (await refresh(a, issued.refresh_token)).json()).toMatchObject({ error: 'invalid_grant' });
  });

  it('redeems an authorization code presented to both replicas at once exactly once', async () => {
    const { code, verifier } = await codeAcrossReplicas('alice@acme.test');
    const answers = await Promise.all([exchange(a, code, verifier), exchange(b, code, verifier)]);
    expect(answers.map((r) => r.status).sort()).toEqual([200, 400]);
  });

  it('serves a key rotated on replica A from replica B after its reload, and tokens from either validate against either JWKS', async () => {
    const keysA = a.app.get(SigningKeysService);
    const keysB = b.app.get(SigningKeysService);
    const jwksOf = async (replica: TestApp) => (await (await fetch(`${replica.url}/.well-known/jwks.json`)).json()) as JSONWebKeySet;
    const machineToken = async (replica: TestApp) => {
      const res = await tokenRequest(replica.url, machine, { grant_type: 'client_credentials' });
      expect(res.status).toBe(200);
      return ((await res.json()) as { access_token: string }).access_token;
    };
    const before = [await machineToken(a), await machineToken(b)];
    const oldKid = decodeProtectedHeader(before[0]!).kid!;
    expect(decodeProtectedHeader(before[1]!).kid).toBe(oldKid);

    // A publishes a new key (pending: in the JWKS, not signing yet); B serves it once it reloaded.
    const t0 = Date.now();
    const pending = await keysA.rotate(60, new Date(t0));
    expect(pending.status).toBe('pending');
    await keysB.maintain();
    expect(keysB.jwksDocument().keys.map((k) => k.kid)).toEqual(expect.arrayContaining([oldKid, pending.kid]));
    expect((await jwksOf(b)).keys.map((k) => k.kid)).toEqual(expect.arrayContaining([oldKid, pending.kid]));

    // Activation on A; B signs with the new key after its next reload.
    await keysA.maintain(new Date(t0 + 61_000));
    const fromA = await machineToken(a);
    expect(decodeProtectedHeader(fromA).kid).toBe(pending.kid);
    await keysB.maintain();
    const fromB = await machineToken(b);
    expect(decodeProtectedHeader(fromB).kid).toBe(pending.kid);

    const sets = [createLocalJWKSet(await jwksOf(a)), createLocalJWKSet(await jwksOf(b))];
    for (const token of [...before, fromA, fromB])
      for (const set of sets) await expect(jwtVerify(token, set, { issuer, audience: 'platform-api' })).resolves.toBeTruthy();

    // And the replicas' own verification (userinfo, logout) accepts each other's tokens.
    const { tokens: userFromA } = await nativeLogin(a.url, bff, 'acme', 'alice@acme.test', PASSWORD);
    const { tokens: userFromB } = await nativeLogin(b.url, bff, 'acme', 'alice@acme.test', PASSWORD);
    expect((await userinfo(b, userFromA.access_token)).status).toBe(200);
    expect((await userinfo(a, userFromB.access_token)).status).toBe(200);
  });
});
