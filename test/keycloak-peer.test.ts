/**
 * Proves the project's Keycloak setup against a real Keycloak 26 (the run's shared instance,
 * test/peers/keycloak-shared.ts, started by test/peers/keycloak.ts with keycloak-realm.json imported
 * at start-up): the realm file imports, Organizations work through the admin client, a headless
 * authorization code + PKCE login yields the `organization` claim for the requested organisation,
 * what Keycloak does for a non-member, client_credentials for the M2M client, and that data
 * survives a restart. (a) reads the start-up `platform` realm; the rest writes to a copy of the
 * realm file imported under a name of its own, as the instance is shared with other files.
 */
import KcAdminClient from '@keycloak/keycloak-admin-client';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { acquireKeycloak, STARTUP_REALM, uniqueRealmName, type SharedKeycloak } from './peers/keycloak-shared.js';
import { headlessLogin, KeycloakLoginError, pkcePair, type HeadlessLoginResult } from './peers/keycloak-login.js';
import { peerOrSkip } from './peers/peer-unavailable.js';

const realmFile = fileURLToPath(new URL('../keycloak-realm.json', import.meta.url));
/** This file's copy of keycloak-realm.json (the start-up `platform` realm is shared: read only). */
const REALM = uniqueRealmName('platform');
const CLIENT_ID = 'auth-service';
// Development values from keycloak-realm.json (documented there as public dev-only secrets).
const CLIENT_SECRET = 'dev-only-auth-service-secret';
const M2M_ID = 'platform-m2m';
const M2M_SECRET = 'dev-only-platform-m2m-secret';
// Loopback callback on an arbitrary port: the realm registers http://127.0.0.1/* without a port.
const REDIRECT_URI = 'http://127.0.0.1:53682/callback';
const PASSWORD = 'test-only-Pa55word-not-real';

let kc: SharedKeycloak | undefined;
let unavailable: string | undefined;
let admin: KcAdminClient;
const orgIds: Record<string, string> = {};

const issuer = (): string => `${kc!.baseUrl}/realms/${REALM}`;

function requireKeycloak(ctx: TestContext): SharedKeycloak {
  if (!kc) ctx.skip(unavailable ?? 'Keycloak did not start');
  return kc;
}

const adminClient = (instance: SharedKeycloak, realm = REALM): Promise<KcAdminClient> => instance.adminClient(realm);

interface LoginOutcome {
  login: HeadlessLoginResult;
  tokens: { id_token: string; access_token: string; refresh_token?: string; scope: string };
  idToken: JWTPayload;
  accessToken: JWTPayload;
}

/** Full authorization code + PKCE login with the given scope, then the code exchange. */
async function loginWithScope(username: string, scope: string, selectOrganization?: string): Promise<LoginOutcome> {
  const { verifier, challenge } = pkcePair();
  const state = crypto.randomUUID();
  const nonce = crypto.randomUUID();
  const authorize = new URL(`${issuer()}/protocol/openid-connect/auth`);
  authorize.search = new URLSearchParams({
    client_id: CLIENT_ID,
    response_type: 'code',
    redirect_uri: REDIRECT_URI,
    scope,
    state,
    nonce,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }).toString();

  const login = await headlessLogin({ startUrl: authorize, username, password: PASSWORD, stopAt: REDIRECT_URI, selectOrganization });
  expect(login.error, `${login.error}: ${login.errorDescription}`).toBeNull();
  expect(login.state).toBe(state);
  expect(login.iss).toBe(issuer());
  expect(login.code).toBeTruthy();

  const res = await fetch(`${issuer()}/protocol/openid-connect/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: login.code!, redirect_uri: REDIRECT_URI, code_verifier: verifier }),
  });
  const tokens = (await res.json()) as LoginOutcome['tokens'];
  expect(res.status, JSON.stringify(tokens)).toBe(200);

  const jwks = createRemoteJWKSet(new URL(`${issuer()}/protocol/openid-connect/certs`));
  const { payload: idToken } = await jwtVerify(tokens.id_token, jwks, { issuer: issuer(), audience: CLIENT_ID });
  expect(idToken.nonce).toBe(nonce);
  const { payload: accessToken } = await jwtVerify(tokens.access_token, jwks, { issuer: issuer() });
  return { login, tokens, idToken, accessToken };
}

beforeAll(async () => {
  const got = await peerOrSkip('keycloak-peer', () => acquireKeycloak('keycloak-peer.test.ts'));
  if (got.unavailable !== undefined) {
    unavailable = got.unavailable;
    return;
  }
  kc = got.peer;
  console.info(`[keycloak-peer] shared Keycloak at ${kc.baseUrl} (its start took ${kc.startDurationMs} ms)`);
  await kc.importRealmFile(realmFile, REALM);
  admin = await adminClient(kc);
  // Generous: on a clean clone this includes the Maven download and the one-time re-augmentation.
}, 600_000);

afterAll(async () => {
  await kc?.release();
}, 60_000);

describe('Keycloak peer', () => {
  it('(a) imports keycloak-realm.json cleanly', async (ctx) => {
    const instance = requireKeycloak(ctx);
    // The realm Keycloak imported at start-up (--import-realm, as docker-compose runs it): read only.
    const admin = await adminClient(instance, STARTUP_REALM);
    const issuer = (): string => `${instance.baseUrl}/realms/${STARTUP_REALM}`;
    const realm = await admin.realms.findOne({ realm: STARTUP_REALM });
    expect(realm?.organizationsEnabled).toBe(true);
    expect(realm?.bruteForceProtected).toBe(true);
    expect(realm?.accessTokenLifespan).toBe(300);

    const roles = (await admin.roles.find()).map((r) => r.name);
    expect(roles).toEqual(expect.arrayContaining(['MY_PROJECT_SUPER_ADMIN', 'MY_PROJECT_USER', 'default-roles-platform']));
    const defaultRole = await admin.roles.getCompositeRolesForRealm({
      id: (await admin.roles.findOneByName({ name: 'default-roles-platform' }))!.id!,
    });
    expect(defaultRole.map((r) => r.name)).toContain('MY_PROJECT_USER');

    const [client] = await admin.clients.find({ clientId: CLIENT_ID });
    expect(client).toMatchObject({
      publicClient: false,
      standardFlowEnabled: true,
      implicitFlowEnabled: false,
      directAccessGrantsEnabled: false,
      serviceAccountsEnabled: false,
    });
    expect(client!.attributes?.['pkce.code.challenge.method']).toBe('S256');
    expect(client!.optionalClientScopes).toContain('organization');

    const [m2m] = await admin.clients.find({ clientId: M2M_ID });
    expect(m2m).toMatchObject({ serviceAccountsEnabled: true, standardFlowEnabled: false, directAccessGrantsEnabled: false });

    // The organization scope Keycloak 26 creates for a realm, and how it maps the claim.
    const orgScope = (await admin.clientScopes.find()).find((s) => s.name === 'organization');
    expect(orgScope?.protocolMappers?.map((m) => m.protocolMapper)).toContain('oidc-organization-membership-mapper');
    expect(orgScope?.protocolMappers?.[0]?.config?.['claim.name']).toBe('organization');

    // The import logged no error-level line (server output up to the moment it was ready).
    const startupLog = (await instance.startupLog()).join('\n');
    expect(startupLog).toMatch(/Realm 'platform' imported/);
    expect(startupLog).not.toMatch(/^\S+ \S+ ERROR /m);

    // Port-less loopback redirect URIs accept any port on loopback, and nothing else. These requests
    // carry no code_challenge: an accepted redirect_uri gets Keycloak's PKCE error sent back to it
    // (proving PKCE is required), a rejected one gets a 400 error page.
    const probe = async (redirectUri: string): Promise<{ status: number; location: URL | null }> => {
      const url = new URL(`${issuer()}/protocol/openid-connect/auth`);
      url.search = new URLSearchParams({
        client_id: CLIENT_ID,
        response_type: 'code',
        scope: 'openid',
        redirect_uri: redirectUri,
      }).toString();
      const res = await fetch(url, { redirect: 'manual' });
      await res.arrayBuffer();
      const location = res.headers.get('location');
      return { status: res.status, location: location ? new URL(location) : null };
    };
    for (const accepted of ['http://127.0.0.1:41234/cb', 'http://localhost:3000/any/path']) {
      const { status, location } = await probe(accepted);
      expect(status).toBe(302);
      expect(location?.href.startsWith(accepted)).toBe(true);
      expect(location?.searchParams.get('error')).toBe('invalid_request');
      expect(location?.searchParams.get('error_description')).toMatch(/code_challenge/);
    }
    expect((await probe('http://evil.example:41234/cb')).status).toBe(400);
  });

  it('(b) creates organisations and members with the admin client', async (ctx) => {
    requireKeycloak(ctx);
    for (const [alias, name] of [
      ['acme', 'Acme Corp'],
      ['globex', 'Globex Corporation'],
    ] as const) {
      const { id } = await admin.organizations.create({
        name,
        alias,
        enabled: true,
        domains: [{ name: `${alias}.example`, verified: false }],
      });
      orgIds[alias] = id;
    }
    const users: Record<string, string> = {};
    for (const [username, first] of [
      ['alice', 'Alice'],
      ['bob', 'Bob'],
    ] as const) {
      const { id } = await admin.users.create({
        username,
        email: `${username}@acme.example`,
        firstName: first,
        lastName: 'Tester',
        enabled: true,
        emailVerified: true,
        credentials: [{ type: 'password', value: PASSWORD, temporary: false }],
      });
      users[username] = id;
    }
    await admin.organizations.addMember({ orgId: orgIds.acme!, userId: users.alice! });
    await admin.organizations.addMember({ orgId: orgIds.globex!, userId: users.alice! });
    await admin.organizations.addMember({ orgId: orgIds.acme!, userId: users.bob! });

    const acmeMembers = (await admin.organizations.listMembers({ orgId: orgIds.acme! })).map((u) => u.username).sort();
    const globexMembers = (await admin.organizations.listMembers({ orgId: orgIds.globex! })).map((u) => u.username);
    expect(acmeMembers).toEqual(['alice', 'bob']);
    expect(globexMembers).toEqual(['alice']);
    const found = await admin.organizations.find({ search: 'acme', exact: false });
    expect(found.map((o) => o.alias)).toContain('acme');
  });

  it('(c) headless code + PKCE login with organization:acme yields the acme claim', async (ctx) => {
    requireKeycloak(ctx);
    const { login, tokens, idToken, accessToken } = await loginWithScope('bob', 'openid organization:acme');
    // Organizations turn the login page into identity-first: username first, then password.
    expect(login.pages).toEqual(['username', 'password']);
    expect(tokens.scope.split(' ')).toContain('organization:acme');
    expect(idToken.organization).toEqual(['acme']);
    expect(accessToken.organization).toEqual(['acme']);
    expect((accessToken.realm_access as { roles: string[] }).roles).toContain('MY_PROJECT_USER');
  });

  it('(d) a member of two organisations requesting organization:globex gets globex only', async (ctx) => {
    requireKeycloak(ctx);
    const { tokens, idToken, accessToken } = await loginWithScope('alice', 'openid organization:globex');
    expect(tokens.scope.split(' ')).toContain('organization:globex');
    expect(idToken.organization).toEqual(['globex']);
    expect(accessToken.organization).toEqual(['globex']);
  });

  it('(d2) plain organization scope asks a two-organisation member to pick one; organization:* gives all', async (ctx) => {
    requireKeycloak(ctx);
    // Plain `organization`: after the username, Keycloak shows its organisation picker (buttons named
    // kc.org), then the password page; the claim names the picked organisation only.
    const picked = await loginWithScope('alice', 'openid organization', 'acme');
    expect(picked.login.pages).toEqual(['username', 'select-organization', 'password']);
    expect(picked.idToken.organization).toEqual(['acme']);
    expect(picked.tokens.scope.split(' ')).toContain('organization');

    // `organization:*`: no picker, every membership in the claim (order not guaranteed).
    const all = await loginWithScope('alice', 'openid organization:*');
    expect(all.login.pages).toEqual(['username', 'password']);
    expect((all.idToken.organization as string[]).slice().sort()).toEqual(['acme', 'globex']);
    expect(all.tokens.scope.split(' ')).toContain('organization:*');
  });

  it('(e) a non-member requesting organization:globex logs in, but gets no organization claim', async (ctx) => {
    requireKeycloak(ctx);
    // Keycloak 26.7 neither refuses the login nor shows an error: the organisation scope is silently
    // dropped. The granted `scope` lacks organization:globex and neither token has the claim, so the
    // broker must check the claim itself and never trust the scope it asked for.
    const { login, tokens, idToken, accessToken } = await loginWithScope('bob', 'openid organization:globex');
    expect(login.pages).toEqual(['username', 'password']);
    expect(tokens.scope.split(' ')).not.toContain('organization:globex');
    expect(tokens.scope.split(' ').some((s) => s.startsWith('organization'))).toBe(false);
    expect(idToken).not.toHaveProperty('organization');
    expect(accessToken).not.toHaveProperty('organization');
  });

  it("(e2) a wrong password surfaces as KeycloakLoginError with Keycloak's message", async (ctx) => {
    requireKeycloak(ctx);
    const { challenge } = pkcePair();
    const authorize = new URL(`${issuer()}/protocol/openid-connect/auth`);
    authorize.search = new URLSearchParams({
      client_id: CLIENT_ID,
      response_type: 'code',
      redirect_uri: REDIRECT_URI,
      scope: 'openid organization:acme',
      code_challenge: challenge,
      code_challenge_method: 'S256',
    }).toString();
    const attempt = headlessLogin({ startUrl: authorize, username: 'bob', password: 'wrong-password-123', stopAt: REDIRECT_URI });
    await expect(attempt).rejects.toBeInstanceOf(KeycloakLoginError);
    const err = (await attempt.catch((e: unknown) => e)) as KeycloakLoginError;
    expect(err.reason).toBe('invalid-credentials');
    expect(err.page?.message).toMatch(/invalid (username or )?password/i);
  });

  it('(f) client_credentials for platform-m2m', async (ctx) => {
    requireKeycloak(ctx);
    const res = await fetch(`${issuer()}/protocol/openid-connect/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${M2M_ID}:${M2M_SECRET}`).toString('base64')}`,
      },
      body: new URLSearchParams({ grant_type: 'client_credentials' }),
    });
    const body = (await res.json()) as { access_token: string; token_type: string; expires_in: number; refresh_token?: string };
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body.token_type).toBe('Bearer');
    // Keycloak computes expires_in from the token's exp at response time: 300 s, or a second less under load.
    expect(body.expires_in).toBeGreaterThanOrEqual(299);
    expect(body.expires_in).toBeLessThanOrEqual(300);
    expect(body.refresh_token).toBeUndefined();
    const jwks = createRemoteJWKSet(new URL(`${issuer()}/protocol/openid-connect/certs`));
    const { payload } = await jwtVerify(body.access_token, jwks, { issuer: issuer(), audience: CLIENT_ID });
    expect(payload.azp).toBe(M2M_ID);
    expect(payload.client_id).toBe(M2M_ID);
    expect(payload.sub).toBeTruthy();
  });

  // The shared server really stops and starts: it waits until no other file is using it (their
  // leases released), and keeps new ones waiting meanwhile, hence the long timeout.
  it('(g) data survives a stop and restart of the same instance', async (ctx) => {
    const instance = requireKeycloak(ctx);
    const { refusedWhileStopped, startDurationsMs } = await instance.restartExclusive();
    // Really down in between: connections were refused.
    expect(refusedWhileStopped).toBe(true);
    console.info(`[keycloak-peer] shared Keycloak start durations (ms): ${startDurationsMs.join(', ')}`);
    admin = await adminClient(instance);
    const orgs = (await admin.organizations.find({})).map((o) => o.alias).sort();
    expect(orgs).toEqual(['acme', 'globex']);
    const { idToken } = await loginWithScope('bob', 'openid organization:acme');
    expect(idToken.organization).toEqual(['acme']);
  }, 660_000);
});
