/**
 * OIDC attack cases pinned to the check that refuses them. Several layers refuse most attacks
 * (this adapter, openid-client, our ID token verifier, the OP), so "the login ended in
 * access_denied" alone passes with any one of them removed. The adapter logs why it refused
 * (`reason`, and `step` when the OP or a library refused): each test here asserts that reason, so
 * it fails when its check is removed and another layer refuses instead. Peers as in
 * test/tenant-oidc.test.ts: two live `oidc-provider` OPs (mix-up) and a crafted OP stand-in.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, jwtVerify, SignJWT, type CryptoKey, type JWK } from 'jose';
import { seedBff } from './support/seed.js';
import type { BffClient } from './support/bff.js';
import { startOidcProvider, type OidcAccount, type OidcProviderPeer } from './peers/oidc-provider.js';
import { oidcProviderLogin } from './peers/oidc-provider-login.js';
import {
  bffHelpers,
  idClaims,
  signHs,
  signRs,
  startCraftedOp,
  startLoggedTestApp,
  tokenBody,
  unsigned,
  type Craft,
  type CraftedOp,
  type LoggedTestApp,
  type OidcRefusal,
  type Started,
} from './support/oidc-attack.js';
import { TenantsService } from '../src/tenants/tenants.service.js';
import { BindingsService } from '../src/tenants/bindings.service.js';
import { LoginService } from '../src/login/login.service.js';
import { TenantOidcProvider } from '../src/identity/oidc/tenant-oidc.adapter.js';
import type { CallbackInput, ClaimMappingRules } from '../src/identity/port/identity-provider.port.js';
import { RemoteJwks } from '../src/identity/shared/remote-jwks.js';

const CLIENT_ID = 'auth-service';
const CLIENT_SECRET = 'op-client-secret-0123456789abcdef';
const OP2_CLIENT_SECRET = 'op2-client-secret-0123456789abcdef';

/** What the adapter logs for each check (src/identity/oidc/tenant-oidc.adapter.ts). */
const ADAPTER_REFUSED = 'OIDC login refused';
const OP_REFUSED = 'OIDC provider refused the login';
const ISS_OTHER = 'authorization response iss is another issuer';
const ISS_MISSING = 'authorization response lacks iss';
/**
 * openid-client's ID token claim check (nonce, iss, aud) in the code exchange. The logged reason
 * does not say which claim (openid-client keeps that in the error's cause), so these tests pin
 * the layer that refused, not the claim.
 */
/** openid-client's comparison failure, naming the claim that differed. */
const claimMismatch = (claim: string) =>
  new RegExp(`^OAUTH_JWT_CLAIM_COMPARISON_FAILED: unexpected JWT claim value encountered \\(.*"${claim}".*\\)$`);

describe('through the service (BFF flow, refusal reasons from the adapter log)', () => {
  let app: LoggedTestApp;
  let bff: BffClient;
  let callbackUrl: string;
  let op1: OidcProviderPeer;
  let op2: OidcProviderPeer;
  let crafted: CraftedOp;
  const bindingIds: Record<string, string> = {};
  const h = bffHelpers(
    () => app,
    () => bff,
  );
  const account = (sub: string, claims: Record<string, unknown>): OidcAccount => ({ sub, password: `${sub}-pw`, claims });
  const loginAt = (opUrl: string | URL, login = 'okta-bob') =>
    oidcProviderLogin(opUrl, { login, password: `${login}-pw`, callbackPrefix: callbackUrl });

  /** Our callback for `url`; returns where the browser went and the adapter's refusals meanwhile. */
  const refusedCallback = async (org: string, url: string | URL): Promise<{ back?: URL; refusals: OidcRefusal[] }> => {
    let back: URL | undefined;
    const refusals = await app.refusalsDuring(bindingIds[org]!, async () => {
      back = (await h.callback(url.toString())).bff;
    });
    return { back, refusals };
  };

  /** A login through the crafted OP (no interaction) whose token endpoint answers `craft`. */
  const craftedAttack = async (craft: Craft): Promise<{ started: Started; back?: URL; refusals: OidcRefusal[] }> => {
    const started = await h.startLogin('crafted');
    crafted.craft = craft;
    const toCallback = await fetch(started.opUrl, { redirect: 'manual' });
    return { started, ...(await refusedCallback('crafted', toCallback.headers.get('location')!)) };
  };

  const bindOidc = async (
    slug: string,
    config: Record<string, unknown>,
    secrets: Record<string, unknown>,
    claimMapping: ClaimMappingRules = {},
  ) => {
    const tenant = await app.app.get(TenantsService).create(slug, `${slug} Inc.`);
    bindingIds[slug] = (await app.app.get(BindingsService).create(tenant, { kind: 'oidc', config, secrets, claimMapping })).id;
  };

  beforeAll(async () => {
    app = await startLoggedTestApp({ RATE_LIMIT_AUTHORIZE_PER_MINUTE: '10000' });
    bff = await seedBff(app);
    callbackUrl = `${app.url}/login/callback/oidc`;
    op1 = await startOidcProvider({
      issuerPath: '/op1',
      clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [callbackUrl] }],
      accounts: [account('okta-bob', { email: 'bob@acme.example', email_verified: true })],
    });
    // Another tenant's OP, where the same client_id is registered too (mix-up).
    op2 = await startOidcProvider({
      issuerPath: '/op2',
      clients: [{ client_id: CLIENT_ID, client_secret: OP2_CLIENT_SECRET, redirect_uris: [callbackUrl] }],
      accounts: [account('okta-bob', { email: 'bob@globex.example', email_verified: true })],
    });
    crafted = await startCraftedOp(CLIENT_SECRET);
    await bindOidc('acme', { issuer: op1.issuer, clientId: CLIENT_ID }, { clientSecret: CLIENT_SECRET });
    await bindOidc('globex', { issuer: op2.issuer, clientId: CLIENT_ID }, { clientSecret: OP2_CLIENT_SECRET });
    await bindOidc('crafted', { issuer: crafted.issuer, clientId: CLIENT_ID }, { clientSecret: CLIENT_SECRET });
  });

  afterAll(async () => {
    await Promise.allSettled([op1?.stop(), op2?.stop(), crafted?.stop()]);
    await app?.close();
  });

  describe('RFC 9207: the iss parameter of the authorization response', () => {
    it('has an OP that advertises authorization_response_iss_parameter_supported and sends iss (precondition)', async () => {
      const metadata = (await (await fetch(op1.discoveryUrl)).json()) as Record<string, unknown>;
      expect(metadata['authorization_response_iss_parameter_supported']).toBe(true);
      const cb = new URL(await loginAt((await h.startLogin('acme')).opUrl));
      expect(cb.searchParams.get('iss')).toBe(op1.issuer);
    });

    it("refuses a callback with the binding OP's own redeemable code whose iss names another issuer", async () => {
      const started = await h.startLogin('acme');
      const cb = new URL(await loginAt(started.opUrl));
      cb.searchParams.set('iss', op2.issuer);
      const { back, refusals } = await refusedCallback('acme', cb);
      h.expectOAuthErrorAtBff(started, back, 'access_denied');
      expect(refusals).toEqual([{ msg: ADAPTER_REFUSED, reason: ISS_OTHER }]);
    });

    it("refuses a callback with the binding OP's own redeemable code and iss stripped, since the OP advertises iss", async () => {
      const started = await h.startLogin('acme');
      const cb = new URL(await loginAt(started.opUrl));
      cb.searchParams.delete('iss');
      const { back, refusals } = await refusedCallback('acme', cb);
      h.expectOAuthErrorAtBff(started, back, 'access_denied');
      expect(refusals).toEqual([{ msg: ADAPTER_REFUSED, reason: ISS_MISSING }]);
    });

    it("adapter: refuses the foreign and the missing iss for one transaction, then redeems the same code with the OP's own iss", async () => {
      const started = await h.startLogin('acme');
      const cb = new URL(await loginAt(started.opUrl));
      const login = app.app.get(LoginService);
      const txn = await login.load(cb.searchParams.get('state')!);
      const binding = await login.binding(txn);
      const adapter = app.app.get(TenantOidcProvider);
      const input = (u: URL): CallbackInput => ({
        method: 'GET',
        query: Object.fromEntries(u.searchParams),
        body: {},
        clientIp: '127.0.0.1',
      });
      const refusalOf = (u: URL) =>
        app.refusalsDuring(binding.id, () =>
          expect(adapter.completeLogin(binding, input(u), txn.providerState)).rejects.toMatchObject({ error: 'access_denied' }),
        );

      const foreign = new URL(cb);
      foreign.searchParams.set('iss', op2.issuer);
      expect(await refusalOf(foreign)).toEqual([{ msg: ADAPTER_REFUSED, reason: ISS_OTHER }]);
      const stripped = new URL(cb);
      stripped.searchParams.delete('iss');
      expect(await refusalOf(stripped)).toEqual([{ msg: ADAPTER_REFUSED, reason: ISS_MISSING }]);
      // Control: the code was good all along; only iss made the difference.
      await expect(adapter.completeLogin(binding, input(cb), txn.providerState)).resolves.toMatchObject({
        issuer: op1.issuer,
        subject: 'okta-bob',
      });
    });

    it("refuses an authorization response from another OP (mix-up: OP2's code and iss sent to OP1's binding)", async () => {
      const started = await h.startLogin('acme');
      const cb = await loginAt(started.opUrl.replace(op1.issuer, op2.issuer));
      expect(new URL(cb).searchParams.get('iss')).toBe(op2.issuer);
      const { back, refusals } = await refusedCallback('acme', cb);
      h.expectOAuthErrorAtBff(started, back, 'access_denied');
      expect(refusals).toEqual([{ msg: ADAPTER_REFUSED, reason: ISS_OTHER }]);
    });
  });

  describe('other attacks through the live OP, with the reason', () => {
    it("refuses a callback without state that names its transaction another way (RelayState): the adapter's state check", async () => {
      const started = await h.startLogin('acme');
      const cb = new URL(await loginAt(started.opUrl));
      // The callback route also finds a transaction by RelayState (SAML's name for it).
      cb.searchParams.set('RelayState', cb.searchParams.get('state')!);
      cb.searchParams.delete('state');
      const { back, refusals } = await refusedCallback('acme', cb);
      h.expectOAuthErrorAtBff(started, back, 'access_denied');
      expect(refusals).toEqual([{ msg: ADAPTER_REFUSED, reason: 'state does not match the transaction' }]);
    });

    it('refuses a code injected into another live transaction: the OP refuses it (PKCE of the other login)', async () => {
      const victim = await h.startLogin('acme');
      const attacker = await h.startLogin('acme');
      const cb = new URL(await loginAt(attacker.opUrl));
      cb.searchParams.set('state', new URL(victim.opUrl).searchParams.get('state')!);
      const { back, refusals } = await refusedCallback('acme', cb);
      h.expectOAuthErrorAtBff(victim, back, 'access_denied');
      expect(refusals).toEqual([{ msg: OP_REFUSED, step: 'token', reason: 'OP error invalid_grant' }]);
    });

    it('refuses an ID token whose nonce is not the one this login sent', async () => {
      const started = await h.startLogin('acme');
      const tampered = new URL(started.opUrl);
      tampered.searchParams.set('nonce', 'attacker-chosen-nonce');
      const { back, refusals } = await refusedCallback('acme', await loginAt(tampered));
      h.expectOAuthErrorAtBff(started, back, 'access_denied');
      expect(refusals).toEqual([{ msg: ADAPTER_REFUSED, step: 'token', reason: expect.stringMatching(claimMismatch('nonce')) }]);
    });

    it('refuses an already redeemed OP code replayed into a fresh transaction: the OP refuses it', async () => {
      const first = await h.startLogin('acme');
      const cb = new URL(await loginAt(first.opUrl));
      h.expectCodeAtBff(first, (await h.callback(cb.toString())).bff);
      const second = await h.startLogin('acme');
      cb.searchParams.set('state', new URL(second.opUrl).searchParams.get('state')!);
      const { back, refusals } = await refusedCallback('acme', cb);
      h.expectOAuthErrorAtBff(second, back, 'access_denied');
      expect(refusals).toEqual([{ msg: OP_REFUSED, step: 'token', reason: 'OP error invalid_grant' }]);
    });
  });

  describe('attacks with a crafted OP response, with the reason', () => {
    it('accepts a correct ID token from the crafted OP (control)', async () => {
      const { started, back, refusals } = await craftedAttack(async (c) => ({ body: tokenBody(await signRs(crafted, idClaims(c))) }));
      h.expectCodeAtBff(started, back);
      expect(refusals).toEqual([]);
    });

    it('refuses an ID token with alg "none", even though the OP advertises it', async () => {
      const { started, back, refusals } = await craftedAttack(async (c) => ({ body: tokenBody(unsigned(idClaims(c))) }));
      h.expectOAuthErrorAtBff(started, back, 'access_denied');
      expect(refusals).toEqual([{ msg: ADAPTER_REFUSED, step: 'id_token', reason: expect.stringMatching(/alg not allowed/) }]);
    });

    it('refuses an HS256 ID token keyed with the client secret when HS256 is not configured', async () => {
      const { started, back, refusals } = await craftedAttack(async (c) => ({ body: tokenBody(await signHs(idClaims(c), CLIENT_SECRET)) }));
      h.expectOAuthErrorAtBff(started, back, 'access_denied');
      expect(refusals).toEqual([{ msg: ADAPTER_REFUSED, step: 'id_token', reason: expect.stringMatching(/alg not allowed/) }]);
    });

    it('refuses an ID token from another issuer', async () => {
      const { started, back, refusals } = await craftedAttack(async (c) => ({
        body: tokenBody(await signRs(crafted, idClaims(c, { iss: op1.issuer }))),
      }));
      h.expectOAuthErrorAtBff(started, back, 'access_denied');
      expect(refusals).toEqual([{ msg: ADAPTER_REFUSED, step: 'token', reason: expect.stringMatching(claimMismatch('iss')) }]);
    });

    it('refuses an expired ID token', async () => {
      const { started, back, refusals } = await craftedAttack(async (c) => ({
        body: tokenBody(await signRs(crafted, idClaims(c, { iat: c.now - 400, exp: c.now - app.config.CLOCK_SKEW_SECONDS - 60 }))),
      }));
      h.expectOAuthErrorAtBff(started, back, 'access_denied');
      expect(refusals).toEqual([
        { msg: ADAPTER_REFUSED, step: 'token', reason: expect.stringMatching(/^OAUTH_JWT_TIMESTAMP_CHECK_FAILED:/) },
      ]);
    });

    it('refuses an ID token whose aud is another client', async () => {
      const { started, back, refusals } = await craftedAttack(async (c) => ({
        body: tokenBody(await signRs(crafted, idClaims(c, { aud: 'another-client' }))),
      }));
      h.expectOAuthErrorAtBff(started, back, 'access_denied');
      expect(refusals).toEqual([{ msg: ADAPTER_REFUSED, step: 'token', reason: expect.stringMatching(claimMismatch('aud')) }]);
    });

    it('refuses an ID token signed by a key the OP does not publish', async () => {
      const { privateKey } = await generateKeyPair('RS256');
      const { started, back, refusals } = await craftedAttack(async (c) => ({
        body: tokenBody(await signRs({ kid: crafted.kid, privateKey }, idClaims(c))),
      }));
      h.expectOAuthErrorAtBff(started, back, 'access_denied');
      expect(refusals).toEqual([{ msg: ADAPTER_REFUSED, step: 'id_token', reason: expect.stringMatching(/bad signature/) }]);
    });
  });
});

// ---------------------------------------------------------------------------------------------
// The JWKS refresh bound with misses that arrive one after another (not all at once): concurrent
// misses share one fetch with or without the cooldown; staggered ones do not.
// ---------------------------------------------------------------------------------------------
describe('OP JWKS refresh rate', () => {
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

  it('fetches at most once per cooldown period when unknown-kid misses arrive one after another', async () => {
    const COOLDOWN_MS = 3_000;
    const MISSES = 8;
    const a = await signer('a');
    published = [a.jwk];
    fetches = 0;
    const jwks = new RemoteJwks(jwksUrl, { cooldownMs: COOLDOWN_MS, maxAgeMs: 600_000, timeoutMs: 2000 });
    await jwtVerify(await es(a), jwks.getKey);
    expect(fetches).toBe(1);
    const stranger = await es(await signer('never-published'));

    // Each miss starts once the previous one has failed, or after 40 ms if it is still waiting:
    // without a cooldown every miss would fetch on its own; with it, they all wait for one fetch.
    const misses: Array<Promise<unknown>> = [];
    const fetchesSeenAtEachStart: number[] = [];
    for (let i = 0; i < MISSES; i++) {
      fetchesSeenAtEachStart.push(fetches);
      const miss = jwtVerify(stranger, jwks.getKey).then(
        () => 'accepted',
        () => 'refused',
      );
      misses.push(miss);
      await Promise.race([miss, new Promise((resolve) => setTimeout(resolve, 40))]);
    }
    // Every miss arrived inside the cooldown that began with the first fetch: none fetched yet.
    expect(fetchesSeenAtEachStart).toEqual(Array(MISSES).fill(1));
    expect(fetches).toBe(1);
    expect(await Promise.all(misses)).toEqual(Array(MISSES).fill('refused'));
    // One fetch for the whole burst, after the cooldown.
    expect(fetches).toBe(2);
    expect(jwks.fetches).toBe(2);
  }, 20_000);
});
