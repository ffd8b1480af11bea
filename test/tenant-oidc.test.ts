/**
 * TenantOidcProvider: a tenant bound to a customer's OpenID Provider, end to end through the BFF
 * flow against the real `oidc-provider` peer (two of them, for mix-up), plus attacks. Attacks a
 * live OP cannot be made to produce (alg none, HS256, foreign aud, expired, foreign issuer) use a
 * small local OP stand-in whose token endpoint returns crafted ID tokens ("crafted OP response").
 */
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors as joseErrors,
  decodeJwt,
  exportJWK,
  generateKeyPair,
  jwtVerify,
  SignJWT,
  type CryptoKey,
  type JWK,
} from 'jose';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { seedBff } from './support/seed.js';
import { authorizeUrl, getJson, pkcePair, tokenRequest, type BffClient } from './support/bff.js';
import { startOidcProvider, type OidcAccount, type OidcProviderPeer } from './peers/oidc-provider.js';
import { CookieJar, oidcProviderLogin } from './peers/oidc-provider-login.js';
import { acquireKeycloak, uniqueRealmName, type SharedKeycloak } from './peers/keycloak-shared.js';
import { headlessLogin } from './peers/keycloak-login.js';
import { peerOrSkip } from './peers/peer-unavailable.js';
import {
  bffHelpers,
  idClaims,
  signHs,
  signRs,
  startCraftedOp,
  tokenBody,
  unsigned,
  type Craft,
  type CraftedOp,
  type Started,
} from './support/oidc-attack.js';
import { TenantsService, type Tenant } from '../src/tenants/tenants.service.js';
import { BindingsService } from '../src/tenants/bindings.service.js';
import { NativeCredentialsService } from '../src/identity/native/native-credentials.service.js';
import type { ClaimMappingRules } from '../src/identity/port/identity-provider.port.js';
import { verifyIdToken, type IdTokenExpectations } from '../src/identity/oidc/id-token.verifier.js';
import { UpstreamTokenRejectedError } from '../src/identity/shared/upstream-jwt.js';
import { RemoteJwks } from '../src/identity/shared/remote-jwks.js';
import { InvalidOidcBindingError, resolveOidcBinding } from '../src/identity/oidc/tenant-oidc.config.js';

const CLIENT_ID = 'auth-service';
const CLIENT_SECRET = 'op-client-secret-0123456789abcdef';
const OP2_CLIENT_SECRET = 'op2-client-secret-0123456789abcdef';
const PKJWT_CLIENT_ID = 'auth-service-pkjwt';
const ROLE_RULES: ClaimMappingRules['roles'] = [
  { claim: 'roles', value: 'MY_PROJECT_SUPER_ADMIN', role: 'SUPER_ADMIN' },
  { claim: 'roles', value: 'MY_PROJECT_USER', role: 'USER' },
];

let app: TestApp;
let bff: BffClient;
let callbackUrl: string;
let op1: OidcProviderPeer;
let op2: OidcProviderPeer;
let crafted: CraftedOp;
const tenants: Record<string, Tenant> = {};
const seededUsers: Record<string, string> = {};

const account = (sub: string, claims: Record<string, unknown>): OidcAccount => ({ sub, password: `${sub}-pw`, claims });

// ---------------------------------------------------------------------------------------------
// BFF-side helpers
// ---------------------------------------------------------------------------------------------
const { startLogin, callback, expectOAuthErrorAtBff } = bffHelpers(
  () => app,
  () => bff,
);

async function exchange(code: string, verifier: string) {
  const res = await tokenRequest(app.url, bff, {
    grant_type: 'authorization_code',
    code,
    redirect_uri: bff.redirectUri,
    code_verifier: verifier,
  });
  const body = (await res.json()) as Record<string, string>;
  if (res.status !== 200) throw new Error(`token answered ${res.status}: ${JSON.stringify(body)}`);
  return body as { access_token: string; id_token: string; refresh_token: string };
}

async function platformTokens(started: Started, back: URL | undefined) {
  if (!back || back.origin + back.pathname !== bff.redirectUri) throw new Error(`not sent back to the BFF: ${back}`);
  if (back.searchParams.get('error'))
    throw new Error(`login failed: ${back.searchParams.get('error')}: ${back.searchParams.get('error_description')}`);
  expect(back.searchParams.get('state')).toBe(started.state);
  const tokens = await exchange(back.searchParams.get('code')!, started.verifier);
  const jwks = createRemoteJWKSet(new URL(`${app.url}/.well-known/jwks.json`));
  const { payload } = await jwtVerify(tokens.access_token, jwks, { issuer: app.url, audience: 'platform-api' });
  return { tokens, access: payload };
}

/** The whole BFF login through a live OP: authorize → OP login → our callback → code → token. */
async function oidcLogin(org: string, login: string, op?: { password?: string }) {
  const started = await startLogin(org);
  const cb = await oidcProviderLogin(started.opUrl, { login, password: op?.password ?? `${login}-pw`, callbackPrefix: callbackUrl });
  const { bff: back } = await callback(cb);
  return platformTokens(started, back);
}

/** A login through the crafted OP (no interaction); returns our answer to the callback. */
async function craftedLogin(org: string, craft?: Craft, extra: Record<string, string> = {}) {
  const started = await startLogin(org, extra);
  if (craft) crafted.craft = craft;
  const toCallback = await fetch(started.opUrl, { redirect: 'manual' });
  const { res, bff: back } = await callback(toCallback.headers.get('location')!);
  return { started, res, back };
}

async function bindOidc(
  slug: string,
  config: Record<string, unknown>,
  secrets: Record<string, unknown>,
  claimMapping: ClaimMappingRules,
  priority = 0,
) {
  tenants[slug] ??= await app.app.get(TenantsService).create(slug, `${slug} Inc.`);
  return app.app.get(BindingsService).create(tenants[slug], { kind: 'oidc', config, secrets, claimMapping, priority });
}

async function seedUser(slug: string, email: string, emailVerified = true): Promise<string> {
  const id = await app.app
    .get(NativeCredentialsService)
    .createUser(tenants[slug]!.id, { username: email, password: 'seeded-password-123', email, emailVerified });
  seededUsers[email] = id;
  return id;
}

// ---------------------------------------------------------------------------------------------

beforeAll(async () => {
  app = await startTestApp({ RATE_LIMIT_AUTHORIZE_PER_MINUTE: '10000' });
  bff = await seedBff(app);
  callbackUrl = `${app.url}/login/callback/oidc`;
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const pkJwtPublic: JWK = { ...(await exportJWK(publicKey)), kid: 'rp-key-1', alg: 'RS256', use: 'sig' };
  const pkJwtPrivate: JWK = { ...(await exportJWK(privateKey)), kid: 'rp-key-1', alg: 'RS256' };

  op1 = await startOidcProvider({
    issuerPath: '/op1',
    clients: [
      { client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [callbackUrl] },
      {
        client_id: 'auth-service-post',
        client_secret: CLIENT_SECRET,
        redirect_uris: [callbackUrl],
        token_endpoint_auth_method: 'client_secret_post',
      },
    ],
    accounts: [
      account('okta-alice', {
        email: 'alice@acme.example',
        email_verified: true,
        name: 'Alice Example',
        roles: ['MY_PROJECT_SUPER_ADMIN', 'tenant-admin'],
        groups: ['engineering'],
      }),
      account('okta-bob', { email: 'bob@acme.example', email_verified: true, roles: ['MY_PROJECT_USER'] }),
      account('okta-carol', { email: 'carol@acme.example', email_verified: true }),
      account('okta-mover', { email: 'mover-old@initech.example', email_verified: true }),
      account('okta-dana', { email: 'dana@initech.example', email_verified: true }),
      account('okta-erin', { email: 'erin@initech.example', email_verified: false }),
      account('okta-bruce', { email: 'bruce@wayne.example', email_verified: true }),
    ],
  });
  // A second OP: another tenant's IdP (mix-up), in OIDC conform mode (claims only via userinfo).
  op2 = await startOidcProvider({
    issuerPath: '/op2',
    idTokenIncludesClaims: false,
    clients: [
      { client_id: CLIENT_ID, client_secret: OP2_CLIENT_SECRET, redirect_uris: [callbackUrl] },
      {
        client_id: PKJWT_CLIENT_ID,
        token_endpoint_auth_method: 'private_key_jwt',
        jwks: { keys: [pkJwtPublic] },
        redirect_uris: [callbackUrl],
      },
    ],
    accounts: [
      account('okta-alice', { email: 'alice@globex.example', email_verified: true, roles: ['MY_PROJECT_SUPER_ADMIN'] }),
      account('entra-hank', { email: 'hank@hooli.example', email_verified: true, name: 'Hank Hooli', roles: ['MY_PROJECT_USER'] }),
    ],
  });
  crafted = await startCraftedOp(CLIENT_SECRET);

  const acmeMapping: ClaimMappingRules = { roles: ROLE_RULES, defaultRoles: ['MEMBER'] };
  await bindOidc('acme', { issuer: op1.issuer, clientId: CLIENT_ID }, { clientSecret: CLIENT_SECRET }, acmeMapping);
  await seedUser('acme', 'carol@acme.example');
  await bindOidc(
    'initech',
    { discoveryUrl: op1.discoveryUrl, clientId: 'auth-service-post', tokenEndpointAuthMethod: 'client_secret_post' },
    { clientSecret: CLIENT_SECRET },
    {
      linkByVerifiedEmail: true,
    },
  );
  await seedUser('initech', 'mover-new@initech.example');
  await seedUser('initech', 'dana@initech.example');
  await seedUser('initech', 'erin@initech.example');
  await bindOidc(
    'globex',
    { issuer: op2.issuer, clientId: CLIENT_ID, useUserinfo: true },
    { clientSecret: OP2_CLIENT_SECRET },
    { roles: ROLE_RULES },
  );
  await bindOidc(
    'hooli',
    {
      issuer: op2.issuer,
      clientId: PKJWT_CLIENT_ID,
      tokenEndpointAuthMethod: 'private_key_jwt',
      useUserinfo: true,
      emailDomainHint: 'hooli.example',
    },
    { privateJwk: pkJwtPrivate },
    { roles: ROLE_RULES },
  );
  await bindOidc('crafted', { issuer: crafted.issuer, clientId: CLIENT_ID }, { clientSecret: CLIENT_SECRET }, {});
  await bindOidc(
    'crafted-hs',
    { issuer: crafted.issuer, clientId: CLIENT_ID, allowedAlgorithms: ['HS256'] },
    { clientSecret: CLIENT_SECRET },
    {},
  );
  // Nothing listens there: the OP is down.
  const dead = createServer();
  await new Promise<void>((resolve) => dead.listen(0, '127.0.0.1', resolve));
  const deadPort = (dead.address() as AddressInfo).port;
  await new Promise<void>((resolve) => dead.close(() => resolve()));
  await bindOidc('downco', { issuer: `http://127.0.0.1:${deadPort}/op`, clientId: CLIENT_ID }, { clientSecret: CLIENT_SECRET }, {});
});

afterAll(async () => {
  await Promise.allSettled([op1?.stop(), op2?.stop(), crafted?.stop()]);
  await app?.close();
});

describe('a tenant bound to a customer OP logs in through the BFF flow', () => {
  it('issues a platform JWT with idp=oidc, the OP subject, and only the mapped roles', async () => {
    const started = await startLogin('acme');
    const opUrl = new URL(started.opUrl);
    expect(`${opUrl.origin}${opUrl.pathname}`).toBe(`${op1.issuer}/auth`);
    expect(opUrl.searchParams.get('state')).not.toBe(started.state); // our transaction handle, not the BFF's state
    expect(opUrl.searchParams.get('code_challenge_method')).toBe('S256');
    expect(opUrl.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(opUrl.searchParams.get('nonce')).toBeTruthy();
    expect(opUrl.searchParams.get('redirect_uri')).toBe(callbackUrl);
    expect(opUrl.searchParams.get('scope')).toBe('openid email profile');

    const cb = await oidcProviderLogin(started.opUrl, { login: 'okta-alice', password: 'okta-alice-pw', callbackPrefix: callbackUrl });
    expect(new URL(cb).searchParams.get('iss')).toBe(op1.issuer);
    const { bff: back } = await callback(cb);
    const { tokens, access } = await platformTokens(started, back);
    expect(access).toMatchObject({ tid: tenants['acme']!.id, org: 'acme', idp: 'oidc', idp_sub: 'okta-alice', client_id: bff.clientId });
    expect(access['sub']).not.toBe('okta-alice'); // the platform sub is ours, never the upstream one
    expect(access['roles']).toEqual(['MEMBER', 'SUPER_ADMIN']);
    // Unmapped upstream roles and claims never reach the platform token.
    expect(JSON.stringify(access)).not.toMatch(/MY_PROJECT_SUPER_ADMIN|tenant-admin|engineering/);
    const id = decodeJwt(tokens.id_token);
    expect(id).toMatchObject({ email: 'alice@acme.example', aud: bff.clientId });
  });

  it('maps a second role rule and gives a user without a matching upstream role only the defaults', async () => {
    const bob = await oidcLogin('acme', 'okta-bob');
    expect(bob.access['roles']).toEqual(['MEMBER', 'USER']);
    const carol = await oidcLogin('acme', 'okta-carol');
    expect(carol.access['roles']).toEqual(['MEMBER']);
  });

  it('keeps the same platform sub on the next login of the same OP subject', async () => {
    const first = await oidcLogin('acme', 'okta-bob');
    const second = await oidcLogin('acme', 'okta-bob');
    expect(second.access['sub']).toBe(first.access['sub']);
  });

  it('works with client_secret_post and a binding configured by discovery URL', async () => {
    const { access } = await oidcLogin('initech', 'okta-dana');
    expect(access).toMatchObject({ org: 'initech', idp: 'oidc', idp_sub: 'okta-dana' });
  });

  it('authenticates with private_key_jwt and merges userinfo claims the ID token lacks (OP in conform mode)', async () => {
    const started = await startLogin('hooli');
    expect(new URL(started.opUrl).searchParams.get('domain_hint')).toBe('hooli.example');
    const cb = await oidcProviderLogin(started.opUrl, { login: 'entra-hank', password: 'entra-hank-pw', callbackPrefix: callbackUrl });
    const { bff: back } = await callback(cb);
    const { tokens, access } = await platformTokens(started, back);
    expect(access).toMatchObject({ org: 'hooli', idp_sub: 'entra-hank', roles: ['USER'] });
    expect(decodeJwt(tokens.id_token)).toMatchObject({ email: 'hank@hooli.example', name: 'Hank Hooli' });
  });
});

describe('account linking', () => {
  it('does not move the account when the upstream email changes to another user’s email', async () => {
    const first = await oidcLogin('initech', 'okta-mover');
    op1.upsertAccount(account('okta-mover', { email: 'mover-new@initech.example', email_verified: true }));
    const second = await oidcLogin('initech', 'okta-mover');
    expect(second.access['sub']).toBe(first.access['sub']);
    expect(second.access['sub']).not.toBe(seededUsers['mover-new@initech.example']);
  });

  it('links a first login to the existing user with the same verified email when the binding allows it', async () => {
    const { access } = await oidcLogin('initech', 'okta-dana');
    expect(access['sub']).toBe(seededUsers['dana@initech.example']);
  });

  it('does not link when the upstream email is not verified', async () => {
    const { access } = await oidcLogin('initech', 'okta-erin');
    expect(access['sub']).not.toBe(seededUsers['erin@initech.example']);
  });

  it('does not link by email when the binding does not allow it', async () => {
    const { access } = await oidcLogin('acme', 'okta-carol');
    expect(access['sub']).not.toBe(seededUsers['carol@acme.example']);
  });

  it('keeps the platform sub when a tenant moves from the native form to its OIDC IdP', async () => {
    const tenant = await app.app.get(TenantsService).create('wayne', 'Wayne Inc.');
    tenants['wayne'] = tenant;
    await app.app.get(BindingsService).create(tenant, { kind: 'native' });
    const nativeId = await seedUser('wayne', 'bruce@wayne.example');
    await bindOidc(
      'wayne',
      { issuer: op1.issuer, clientId: CLIENT_ID },
      { clientSecret: CLIENT_SECRET },
      { linkByVerifiedEmail: true },
      10,
    );
    const { access } = await oidcLogin('wayne', 'okta-bruce');
    expect(access).toMatchObject({ sub: nativeId, idp: 'oidc', idp_sub: 'okta-bruce' });
  });
});

describe('upstream key rotation', () => {
  it('keeps logins working when the OP rotates its signing key and drops the old one', async () => {
    const before = await oidcLogin('acme', 'okta-bob');
    const oldKid = op1.currentKid;
    await op1.rotateKeys({ keepPrevious: false });
    expect(op1.currentKid).not.toBe(oldKid);
    // Right after a fetch, inside the refresh cooldown: the login waits for the cooldown, then
    // refetches the JWKS once; it never fails.
    const t0 = Date.now();
    const results = await Promise.all([oidcLogin('acme', 'okta-bob'), oidcLogin('acme', 'okta-alice')]);
    expect(Date.now() - t0).toBeLessThan(20_000);
    for (const r of results) expect(r.access['idp']).toBe('oidc');
    expect(results[0].access['sub']).toBe(before.access['sub']);
  });
});

describe('attacks through the live OP are refused', () => {
  it('refuses a callback without state (error page, no redirect, no code)', async () => {
    const started = await startLogin('acme');
    const cb = new URL(await oidcProviderLogin(started.opUrl, { login: 'okta-bob', password: 'okta-bob-pw', callbackPrefix: callbackUrl }));
    cb.searchParams.delete('state');
    const { res } = await callback(cb.toString());
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
    expect(await res.text()).toMatch(/sign-in/i);
  });

  it('refuses a callback whose state names no transaction', async () => {
    const started = await startLogin('acme');
    const cb = new URL(await oidcProviderLogin(started.opUrl, { login: 'okta-bob', password: 'okta-bob-pw', callbackPrefix: callbackUrl }));
    const state = cb.searchParams.get('state')!;
    cb.searchParams.set('state', `${state.slice(0, -4)}AAAA`);
    const { res } = await callback(cb.toString());
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
  });

  it('refuses a replayed callback (the same code and state a second time)', async () => {
    const started = await startLogin('acme');
    const cb = await oidcProviderLogin(started.opUrl, { login: 'okta-bob', password: 'okta-bob-pw', callbackPrefix: callbackUrl });
    const first = await callback(cb);
    await platformTokens(started, first.bff);
    const replay = await callback(cb);
    expect(replay.res.status).toBe(400);
    expect(replay.res.headers.get('location')).toBeNull();
  });
  // Code injection, nonce, mix-up (iss), a redeemed code replayed, and the crafted-response attacks
  // (alg none, HS256, foreign iss/aud, expired, unpublished key) are in tenant-oidc-attacks.test.ts,
  // which also asserts why each was refused.
});

describe('the crafted OP: caching and an explicitly allowed HS256', () => {
  it('caches discovery and the JWKS per binding: further logins fetch neither again', async () => {
    const loginOnce = async () => {
      const { started, back } = await craftedLogin('crafted');
      await platformTokens(started, back);
    };
    await loginOnce();
    const before = { discovery: crafted.discoveryFetches, jwks: crafted.jwksFetches };
    for (let i = 0; i < 3; i++) await loginOnce();
    expect({ discovery: crafted.discoveryFetches, jwks: crafted.jwksFetches }).toEqual(before);
  });

  it('accepts that HS256 ID token when the binding explicitly allows HS256 (crafted OP response)', async () => {
    const { started, back } = await craftedLogin('crafted-hs', async (c) => ({
      body: tokenBody(await signHs(idClaims(c), CLIENT_SECRET)),
    }));
    const { access } = await platformTokens(started, back);
    expect(access['org']).toBe('crafted-hs');
  });
});

describe('upstream failures end at the BFF with an OAuth error, never a token or a stack trace', () => {
  it('sends access_denied to the BFF when the user cancels at the OP', async () => {
    const started = await startLogin('acme');
    const cb = await oidcProviderLogin(started.opUrl, { login: 'okta-bob', abort: true, callbackPrefix: callbackUrl });
    const { bff: back } = await callback(cb);
    expect(expectOAuthErrorAtBff(started, back, 'access_denied')).toMatch(/cancelled/);
  });

  it('answers 502 temporarily_unavailable at authorize when the OP cannot be reached, without redirecting to it', async () => {
    const { challenge } = pkcePair();
    const res = await getJson(
      authorizeUrl(app.url, bff, { org: 'downco', state: 's', code_challenge: challenge, code_challenge_method: 'S256' }),
    );
    expect(res.status).toBe(502);
    expect(res.headers.get('retry-after')).toBe('5');
    expect(res.headers.get('location')).toBeNull();
    const body = await res.text();
    expect(JSON.parse(body)).toMatchObject({
      error: 'temporarily_unavailable',
      error_description: expect.stringMatching(/identity provider could not be reached/),
    });
    expect(body).not.toMatch(/ECONNREFUSED|at .*\.ts|fetch failed/);
  });

  it('sends temporarily_unavailable to the BFF when the token endpoint drops the connection (crafted OP response)', async () => {
    const { started, back } = await craftedLogin('crafted', async () => ({ destroy: true }));
    expectOAuthErrorAtBff(started, back, 'temporarily_unavailable');
  });

  it('sends temporarily_unavailable to the BFF when the token endpoint answers 503 (crafted OP response)', async () => {
    const { started, back } = await craftedLogin('crafted', async () => ({ status: 503, body: 'upstream maintenance' }));
    expectOAuthErrorAtBff(started, back, 'temporarily_unavailable');
  });

  it('sends access_denied to the BFF for an invalid token response (crafted OP response)', async () => {
    const { started, back } = await craftedLogin('crafted', async () => ({ body: { hello: 'world' } }));
    expectOAuthErrorAtBff(started, back, 'access_denied');
  });

  it('sends access_denied to the BFF when the OP refuses the code (crafted OP response)', async () => {
    const { started, back } = await craftedLogin('crafted', async () => ({
      status: 400,
      body: { error: 'invalid_grant', error_description: 'grant expired' },
    }));
    expectOAuthErrorAtBff(started, back, 'access_denied');
  });
});

describe('max_age and prompt=login (OIDC Core §3.1.2.1)', () => {
  const FRESH_PW = 'okta-fresh-pw';
  beforeAll(async () => {
    op1.upsertAccount(account('okta-fresh', { email: 'fresh@freshco.example', email_verified: true }));
    await bindOidc('freshco', { issuer: op1.issuer, clientId: CLIENT_ID }, { clientSecret: CLIENT_SECRET }, {});
  });

  /** A login at the live OP with the browser's cookie jar (its OP session); returns the callback URL. */
  const atOp = (started: Started, jar: CookieJar, password = FRESH_PW) =>
    oidcProviderLogin(started.opUrl, { login: 'okta-fresh', password, callbackPrefix: callbackUrl, jar });

  it('refuses a max_age that is not a non-negative integer with invalid_request at the BFF, before any upstream', async () => {
    for (const maxAge of ['-1', 'abc', '1.5', '', ' 5', '1e3']) {
      const started = { state: `bad-max-age-${maxAge.length}`, verifier: '', opUrl: '' };
      const { challenge } = pkcePair();
      const res = await fetch(
        authorizeUrl(app.url, bff, {
          org: 'freshco',
          state: started.state,
          code_challenge: challenge,
          code_challenge_method: 'S256',
          max_age: maxAge,
        }),
        { redirect: 'manual' },
      );
      expect(res.status, maxAge).toBe(302);
      const back = new URL(res.headers.get('location')!);
      expect(expectOAuthErrorAtBff(started, back, 'invalid_request'), maxAge).toMatch(/max_age/);
    }
  });

  it('passes max_age=0 on to the OP with prompt=login: the OP makes the user sign in again despite its session', async () => {
    const jar = new CookieJar();
    // A first login opens the session at the OP.
    const first = await startLogin('freshco');
    expect(new URL(first.opUrl).searchParams.get('max_age')).toBeNull();
    expect(new URL(first.opUrl).searchParams.get('prompt')).toBeNull();
    await platformTokens(first, (await callback(await atOp(first, jar))).bff);
    // Without max_age the OP's session suffices: no password is asked (a wrong one is never checked).
    const sso = await startLogin('freshco');
    await platformTokens(sso, (await callback(await atOp(sso, jar, 'not-the-password'))).bff);

    // With max_age=0 the OP asks for the password again: the wrong one is refused there.
    const forced = await startLogin('freshco', { max_age: '0' });
    const opUrl = new URL(forced.opUrl);
    expect(opUrl.searchParams.get('max_age')).toBe('0');
    expect(opUrl.searchParams.get('prompt')).toBe('login');
    await expect(atOp(forced, jar, 'not-the-password')).rejects.toThrow(/login rejected/);
    // And with the right one the login goes through, the ID token saying when the user signed in.
    const again = await startLogin('freshco', { max_age: '0' });
    const { tokens, access } = await platformTokens(again, (await callback(await atOp(again, jar))).bff);
    const id = decodeJwt(tokens.id_token);
    expect(typeof id['auth_time']).toBe('number');
    expect(access['auth_time']).toBe(id['auth_time']);
  });

  it('passes prompt=login on, and a max_age the OP session satisfies lets single sign-on through with auth_time in the ID token', async () => {
    const jar = new CookieJar();
    const first = await startLogin('freshco');
    await platformTokens(first, (await callback(await atOp(first, jar))).bff);

    const prompted = await startLogin('freshco', { prompt: 'login' });
    expect(new URL(prompted.opUrl).searchParams.get('prompt')).toBe('login');
    expect(new URL(prompted.opUrl).searchParams.get('max_age')).toBeNull();
    await expect(atOp(prompted, jar, 'not-the-password')).rejects.toThrow(/login rejected/);

    // An hour is far more than this session's age: the OP does not ask again, and we accept its auth_time.
    const bounded = await startLogin('freshco', { max_age: '3600' });
    expect(new URL(bounded.opUrl).searchParams.get('max_age')).toBe('3600');
    expect(new URL(bounded.opUrl).searchParams.get('prompt')).toBeNull();
    const { tokens } = await platformTokens(bounded, (await callback(await atOp(bounded, jar, 'not-the-password'))).bff);
    expect(typeof decodeJwt(tokens.id_token)['auth_time']).toBe('number');
  });

  it('discovery lists auth_time among the claims', async () => {
    const meta = (await (await fetch(`${app.url}/.well-known/openid-configuration`)).json()) as { claims_supported: string[] };
    expect(meta.claims_supported).toContain('auth_time');
  });

  // An OP that ignores max_age (or prompt=login) is the crafted one: its auth_time is whatever the test says.
  const withAuthTime =
    (authTime: (now: number) => number | undefined): Craft =>
    async (c) => ({ body: tokenBody(await signRs(crafted, idClaims(c, { auth_time: authTime(c.now) }))) });

  it('sends login_required to the BFF when the upstream auth_time is older than max_age allows (crafted OP response)', async () => {
    // An hour old against max_age=60 (and the 60 s clock skew allowed): far outside, however slow the machine.
    const { started, back } = await craftedLogin(
      'crafted',
      withAuthTime((now) => now - 3600),
      { max_age: '60' },
    );
    expectOAuthErrorAtBff(started, back, 'login_required');
  });

  it('sends login_required to the BFF when max_age was asked and the upstream gives no auth_time (crafted OP response)', async () => {
    const { started, back } = await craftedLogin(
      'crafted',
      withAuthTime(() => undefined),
      { max_age: '600' },
    );
    expectOAuthErrorAtBff(started, back, 'login_required');
  });

  it('sends login_required to the BFF when prompt=login was asked and the upstream reports an earlier sign-in (crafted OP response)', async () => {
    const { started, back } = await craftedLogin(
      'crafted',
      withAuthTime((now) => now - 3600),
      { prompt: 'login' },
    );
    expectOAuthErrorAtBff(started, back, 'login_required');
  });

  it('accepts an upstream auth_time within max_age and keeps it in the ID token; without max_age an old one is accepted as before', async () => {
    let sent: number | undefined;
    const recent = await craftedLogin(
      'crafted',
      withAuthTime((now) => (sent = now - 5)),
      { max_age: '600' },
    );
    const { tokens } = await platformTokens(recent.started, recent.back);
    expect(decodeJwt(tokens.id_token)['auth_time']).toBe(sent);

    const old = await craftedLogin(
      'crafted',
      withAuthTime((now) => (sent = now - 86_400)),
    );
    const { tokens: oldTokens } = await platformTokens(old.started, old.back);
    expect(decodeJwt(oldTokens.id_token)['auth_time']).toBe(sent);
  });
});

// ---------------------------------------------------------------------------------------------
// The verifier and the JWKS cache on their own: each check, with the others satisfied, so a test
// fails when exactly that check is removed (openid-client repeats some claim checks in the flow).
// ---------------------------------------------------------------------------------------------
describe('ID token verifier', () => {
  const ISS = 'https://op.example/tenant';
  let key: { kid: string; privateKey: CryptoKey };
  let keys: ReturnType<typeof createLocalJWKSet>;
  const now = () => Math.floor(Date.now() / 1000);
  const expect_ = (over: Partial<IdTokenExpectations> = {}): IdTokenExpectations => ({
    issuer: ISS,
    clientId: CLIENT_ID,
    nonce: 'the-nonce',
    allowedAlgorithms: ['RS256', 'ES256', 'PS256'],
    clockSkewSeconds: 60,
    maxAgeSeconds: 600,
    clientSecret: CLIENT_SECRET,
    ...over,
  });
  const claims = (over: Record<string, unknown> = {}) =>
    idClaims({ issuer: ISS, clientId: CLIENT_ID, nonce: 'the-nonce', now: now() }, over);
  const rejects = async (token: string, reason: RegExp, x = expect_()) => {
    const err = await verifyIdToken(token, keys, x).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UpstreamTokenRejectedError);
    expect((err as UpstreamTokenRejectedError).reason).toMatch(reason);
  };

  beforeAll(async () => {
    const pair = await generateKeyPair('RS256');
    key = { kid: 'k1', privateKey: pair.privateKey };
    keys = createLocalJWKSet({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256' }] });
  });

  it('accepts a correct token', async () => {
    const v = await verifyIdToken(await signRs(key, claims()), keys, expect_());
    expect(v.claims.sub).toBe('crafted-user-1');
  });
  it('refuses alg none', () => rejects(unsigned(claims()), /alg not allowed/));
  it('refuses HS256 keyed with the client secret unless HS256 is allowed', async () => {
    const token = await signHs(claims(), CLIENT_SECRET);
    await rejects(token, /alg not allowed/);
    await expect(verifyIdToken(token, keys, expect_({ allowedAlgorithms: ['HS256'] }))).resolves.toBeTruthy();
  });
  it('refuses a signature by another key', async () => {
    const other = await generateKeyPair('RS256');
    await rejects(await signRs({ kid: 'k1', privateKey: other.privateKey }, claims()), /bad signature/);
  });
  it('refuses another issuer', async () => rejects(await signRs(key, claims({ iss: 'https://evil.example' })), /"iss"/));
  it('refuses another audience', async () => rejects(await signRs(key, claims({ aud: 'another-client' })), /"aud"/));
  it('refuses several audiences without azp, and an azp of another client', async () => {
    await rejects(await signRs(key, claims({ aud: [CLIENT_ID, 'other'] })), /azp/);
    await rejects(await signRs(key, claims({ aud: [CLIENT_ID, 'other'], azp: 'other' })), /azp/);
    await expect(
      verifyIdToken(await signRs(key, claims({ aud: [CLIENT_ID, 'other'], azp: CLIENT_ID })), keys, expect_()),
    ).resolves.toBeTruthy();
  });
  it('refuses an expired token beyond the clock skew, accepts one within it', async () => {
    await rejects(await signRs(key, claims({ iat: now() - 300, exp: now() - 61 })), /expired/);
    await expect(verifyIdToken(await signRs(key, claims({ iat: now() - 300, exp: now() - 30 })), keys, expect_())).resolves.toBeTruthy();
  });
  it('refuses a token issued in the future or too long ago', async () => {
    await rejects(await signRs(key, claims({ iat: now() + 120 })), /"iat"/);
    await rejects(await signRs(key, claims({ iat: now() - 3600, exp: now() + 300 })), /"iat"/);
  });
  it('refuses a token without exp or iat', async () => {
    await rejects(await signRs(key, claims({ exp: undefined })), /"exp"/);
    await rejects(await signRs(key, claims({ iat: undefined })), /"iat"/);
  });
  it('refuses a wrong or missing nonce', async () => {
    await rejects(await signRs(key, claims({ nonce: 'other-nonce' })), /nonce/);
    await rejects(await signRs(key, claims({ nonce: undefined })), /nonce/);
  });
});

describe('OP JWKS cache', () => {
  let server: Server;
  let jwksUrl: URL;
  let published: JWK[] = [];
  let fetches = 0;
  const signer = async (kid: string) => {
    const pair = await generateKeyPair('ES256');
    return { kid, privateKey: pair.privateKey, jwk: { ...(await exportJWK(pair.publicKey)), kid, alg: 'ES256' } as JWK };
  };
  const es = (s: { kid: string; privateKey: CryptoKey }) =>
    new SignJWT({ sub: 'x' }).setProtectedHeader({ alg: 'ES256', kid: s.kid }).sign(s.privateKey);
  const verify = (jwks: RemoteJwks, token: string) => jwtVerify(token, jwks.getKey);

  beforeAll(async () => {
    server = createServer((_req, res) => {
      fetches += 1;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: published }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    jwksUrl = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`);
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('refetches once for a new kid, waiting out the cooldown instead of failing', async () => {
    const a = await signer('a');
    const b = await signer('b');
    published = [a.jwk];
    fetches = 0;
    const jwks = new RemoteJwks(jwksUrl, { cooldownMs: 800, maxAgeMs: 60_000, timeoutMs: 2000 });
    await verify(jwks, await es(a));
    expect(fetches).toBe(1);
    published = [b.jwk]; // rotation right after our fetch
    const t0 = Date.now();
    const tokenB = await es(b);
    await Promise.all([verify(jwks, tokenB), verify(jwks, tokenB), verify(jwks, tokenB)]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(700);
    expect(fetches).toBe(2); // concurrent misses shared one fetch
  });

  it('bounds the refresh rate when tokens keep naming unknown keys', async () => {
    const a = await signer('a');
    published = [a.jwk];
    fetches = 0;
    const jwks = new RemoteJwks(jwksUrl, { cooldownMs: 500, maxAgeMs: 60_000, timeoutMs: 2000 });
    await verify(jwks, await es(a));
    const stranger = await es(await signer('never-published'));
    const t0 = Date.now();
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => verify(jwks, stranger)));
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    const elapsed = Date.now() - t0;
    // One initial fetch, then at most one per cooldown period while the misses lasted.
    expect(fetches).toBeLessThanOrEqual(1 + Math.ceil(elapsed / 500) + 1);
    expect(fetches).toBeLessThanOrEqual(4);
  });

  it('for client-presented tokens, fails an unknown kid at once during the cooldown and refetches after it', async () => {
    const a = await signer('a');
    const b = await signer('b');
    published = [a.jwk];
    fetches = 0;
    // A cooldown no test run outlasts: a miss inside it must not wait for it.
    const held = new RemoteJwks(jwksUrl, { cooldownMs: 3_600_000, maxAgeMs: 3_600_000, timeoutMs: 2000 });
    await jwtVerify(await es(a), held.getKeyWithoutWaiting);
    published = [b.jwk];
    await expect(jwtVerify(await es(b), held.getKeyWithoutWaiting)).rejects.toBeInstanceOf(joseErrors.JWKSNoMatchingKey);
    expect(fetches).toBe(1);
    // Without a cooldown the same miss refetches once and finds the new key.
    fetches = 0;
    published = [a.jwk];
    const open = new RemoteJwks(jwksUrl, { cooldownMs: 0, maxAgeMs: 3_600_000, timeoutMs: 2000 });
    await jwtVerify(await es(a), open.getKeyWithoutWaiting);
    published = [b.jwk];
    await expect(jwtVerify(await es(b), open.getKeyWithoutWaiting)).resolves.toMatchObject({ payload: { sub: 'x' } });
    expect(fetches).toBe(2);
  });
});

describe('binding configuration', () => {
  const base = { issuer: 'https://login.example.com/tenant', clientId: 'c1' };
  const problems = (config: unknown, secrets: unknown, allowHttp = false) => {
    try {
      resolveOidcBinding(config, secrets, { allowHttp });
      return [];
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidOidcBindingError);
      return (err as InvalidOidcBindingError).problems;
    }
  };

  it('applies safe defaults', () => {
    const r = resolveOidcBinding(base, { clientSecret: 's' }, { allowHttp: false });
    expect(r).toMatchObject({ tokenEndpointAuthMethod: 'client_secret_basic', scopes: ['openid', 'email', 'profile'], useUserinfo: false });
    expect(r.allowedAlgorithms).toEqual(expect.arrayContaining(['RS256', 'ES256', 'PS256']));
    expect(r.allowedAlgorithms.some((a) => a.startsWith('HS') || a === 'none')).toBe(false);
  });
  it('never allows alg none', () =>
    expect(problems({ ...base, allowedAlgorithms: ['none'] }, { clientSecret: 's' }).join()).toMatch(/allowedAlgorithms/));
  it('allows HS256 only with a client secret', () => {
    expect(
      problems(
        { ...base, tokenEndpointAuthMethod: 'private_key_jwt', allowedAlgorithms: ['HS256'] },
        { privateJwk: { kty: 'RSA', d: 'x', alg: 'RS256' } },
      ).join(),
    ).toMatch(/HS\*/);
  });
  it('requires an issuer or discovery URL, https outside development, and the secret the auth method needs', () => {
    expect(problems({ clientId: 'c1' }, { clientSecret: 's' }).join()).toMatch(/issuer or discoveryUrl/);
    expect(problems({ ...base, issuer: 'http://login.example.com' }, { clientSecret: 's' }).join()).toMatch(/https/);
    expect(problems({ ...base, issuer: 'http://127.0.0.1:1' }, { clientSecret: 's' }, true)).toEqual([]);
    expect(problems(base, {}).join()).toMatch(/clientSecret/);
    expect(problems({ ...base, tokenEndpointAuthMethod: 'private_key_jwt' }, { clientSecret: 's' }).join()).toMatch(/privateJwk/);
  });
  it('refuses unknown fields', () =>
    expect(problems({ ...base, skipSignatureCheck: true }, { clientSecret: 's' }).join()).toMatch(/skipSignatureCheck/));
});

// ---------------------------------------------------------------------------------------------
// Keycloak as a customer's OIDC IdP (its own realm, a confidential client, realm roles in `roles`),
// a realm of this file's in the run's shared Keycloak (test/peers/keycloak-shared.ts).
// ---------------------------------------------------------------------------------------------
describe('Keycloak acting as a customer OIDC IdP', () => {
  const REALM = uniqueRealmName('customer-corp');
  const KC_CLIENT = 'auth-service-customer';
  const KC_SECRET = 'test-only-customer-client-secret';
  const KC_PASSWORD = 'test-only-Customer-pa55';
  let kc: SharedKeycloak | undefined;
  let unavailable: string | undefined;

  const requireKeycloak = (ctx: TestContext) => {
    if (!kc) ctx.skip(unavailable ?? 'Keycloak did not start');
    return kc;
  };

  beforeAll(async () => {
    const got = await peerOrSkip('tenant-oidc', () => acquireKeycloak('tenant-oidc.test.ts'));
    if (got.unavailable !== undefined) {
      unavailable = got.unavailable;
      return;
    }
    kc = got.peer;
    await kc.importRealm({
      realm: REALM,
      enabled: true,
      sslRequired: 'none',
      roles: { realm: [{ name: 'MY_PROJECT_SUPER_ADMIN' }, { name: 'unrelated-upstream-role' }] },
      clients: [
        {
          clientId: KC_CLIENT,
          enabled: true,
          protocol: 'openid-connect',
          publicClient: false,
          clientAuthenticatorType: 'client-secret',
          secret: KC_SECRET,
          standardFlowEnabled: true,
          directAccessGrantsEnabled: false,
          redirectUris: [callbackUrl],
          attributes: { 'pkce.code.challenge.method': 'S256' },
          protocolMappers: [
            {
              name: 'realm roles as roles',
              protocol: 'openid-connect',
              protocolMapper: 'oidc-usermodel-realm-role-mapper',
              config: {
                'claim.name': 'roles',
                multivalued: 'true',
                'jsonType.label': 'String',
                'id.token.claim': 'true',
                'access.token.claim': 'true',
                'userinfo.token.claim': 'true',
              },
            },
          ],
        },
      ],
      users: [
        {
          username: 'kc-alice',
          enabled: true,
          email: 'alice@customer-corp.example',
          emailVerified: true,
          firstName: 'Alice',
          lastName: 'Customer',
          credentials: [{ type: 'password', value: KC_PASSWORD, temporary: false }],
          realmRoles: ['MY_PROJECT_SUPER_ADMIN', 'unrelated-upstream-role'],
        },
      ],
    });
    await bindOidc(
      'kc-customer',
      { issuer: `${kc.baseUrl}/realms/${REALM}`, clientId: KC_CLIENT },
      { clientSecret: KC_SECRET },
      { roles: ROLE_RULES },
    );
  }, 600_000);

  afterAll(async () => {
    await kc?.release();
  }, 60_000);

  it('logs a tenant user in through Keycloak with the mapped role only', async (ctx) => {
    const instance = requireKeycloak(ctx);
    const started = await startLogin('kc-customer');
    expect(started.opUrl.startsWith(`${instance.baseUrl}/realms/${REALM}/protocol/openid-connect/auth?`)).toBe(true);
    const login = await headlessLogin({ startUrl: started.opUrl, username: 'kc-alice', password: KC_PASSWORD, stopAt: callbackUrl });
    expect(login.iss).toBe(`${instance.baseUrl}/realms/${REALM}`);
    const { bff: back } = await callback(login.callbackUrl.toString());
    const { tokens, access } = await platformTokens(started, back);
    expect(access).toMatchObject({ org: 'kc-customer', idp: 'oidc', roles: ['SUPER_ADMIN'] });
    expect(access['idp_sub']).toMatch(/^[0-9a-f-]{36}$/); // Keycloak's user id
    expect(JSON.stringify(access)).not.toMatch(/unrelated-upstream-role|MY_PROJECT/);
    expect(decodeJwt(tokens.id_token)).toMatchObject({ email: 'alice@customer-corp.example', name: 'Alice Customer' });
  });

  it('refuses a Keycloak ID token whose nonce was swapped in the authorization request', async (ctx) => {
    requireKeycloak(ctx);
    const started = await startLogin('kc-customer');
    const tampered = new URL(started.opUrl);
    tampered.searchParams.set('nonce', 'attacker-chosen-nonce');
    const login = await headlessLogin({ startUrl: tampered, username: 'kc-alice', password: KC_PASSWORD, stopAt: callbackUrl });
    const { bff: back } = await callback(login.callbackUrl.toString());
    expectOAuthErrorAtBff(started, back, 'access_denied');
  });
});
