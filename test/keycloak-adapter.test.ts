/**
 * KeycloakProvider end to end against a real Keycloak 26 (the run's shared instance,
 * test/peers/keycloak-shared.ts, with this file's own copy of keycloak-realm.json as the service's
 * shared realm): the BFF flow through the service's own /oauth2/authorize, Keycloak's
 * identity-first pages and the service's callback; Organizations in the shared realm and a
 * dedicated realm, both provisioned by KeycloakProvisioningService; role mapping;
 * machine-to-machine token exchange; RP-initiated logout; and Keycloak going away mid-run.
 *
 * The service, the browser and the tests reach Keycloak through a TCP proxy of this file's (so
 * every issuer is the proxy's URL): "Keycloak down" cuts that proxy instead of stopping the server
 * other files are using.
 */
import KcAdminClient from '@keycloak/keycloak-admin-client';
import { createRemoteJWKSet, decodeJwt, jwtVerify, type JWTPayload } from 'jose';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { seedBff, seedNativeTenant } from './support/seed.js';
import { authorizeUrl, basic, get, getJson, nativeLogin, pkcePair, postForm, tokenRequest, type BffClient } from './support/bff.js';
import { tenantRows } from './support/tenant-rows.js';
import { acquireKeycloak, startTcpProxy, uniqueRealmName, type SharedKeycloak, type TcpProxy } from './peers/keycloak-shared.js';
import { CookieJar, headlessLogin, type HeadlessLoginResult } from './peers/keycloak-login.js';
import { peerOrSkip } from './peers/peer-unavailable.js';
import {
  clientCredentialsToken,
  createKeycloakUser as createUser,
  organizationId,
  type NewKeycloakUser,
} from './peers/keycloak-realm-helpers.js';
import { TenantsService, type Tenant } from '../src/tenants/tenants.service.js';
import { ClientsService } from '../src/clients/clients.service.js';
import { TOKEN_EXCHANGE_GRANT } from '../src/oauth/token.service.js';
import type { ClaimMappingRules } from '../src/identity/port/identity-provider.port.js';
import { KeycloakProvisioningService } from '../src/identity/keycloak/keycloak-provisioning.service.js';
import { KEYCLOAK_LIMITS } from '../src/identity/keycloak/keycloak-realms.js';
import { DependencyUnavailableError, ProblemError } from '../src/common/errors.js';

const realmFile = fileURLToPath(new URL('../keycloak-realm.json', import.meta.url));
/** The service's shared realm: this file's copy of keycloak-realm.json (the instance is shared with other files). */
const REALM = uniqueRealmName('platform');
const DEDICATED_REALM = uniqueRealmName('initech');
// Development values from keycloak-realm.json (documented there as public dev-only secrets).
const SERVICE_CLIENT_SECRET = 'dev-only-auth-service-secret';
const M2M_ID = 'platform-m2m';
const M2M_SECRET = 'dev-only-platform-m2m-secret';
const OTHER_REALM_M2M_SECRET = 'test-only-initech-m2m-secret';
const PASSWORD = 'test-only-Pa55word-not-real';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

const rolesFor = (org: string): ClaimMappingRules['roles'] => [
  { claim: 'realm_access.roles', value: 'MY_PROJECT_SUPER_ADMIN', role: 'SUPER_ADMIN' },
  { claim: 'realm_access.roles', value: 'MY_PROJECT_USER', role: 'USER' },
  { claim: 'resource_access.auth-service.roles', value: 'billing-admin', role: 'BILLING_ADMIN' },
  { claim: 'organization', value: org, role: `${org.toUpperCase()}_MEMBER` },
];

let kc: SharedKeycloak;
/** Between the service (and this file) and Keycloak; `kcUrl` is its URL. */
let proxy: TcpProxy;
let kcUrl: string;
let app: TestApp;
let bff: BffClient;
let admin: KcAdminClient;
let gateway: { id: string; secret: string };
const tenants: Record<string, Tenant> = {};
const kcUsers: Record<string, string> = {};

// ---------------------------------------------------------------------------------------------
// Helpers

const adminClient = (): Promise<KcAdminClient> => kc.adminClient(REALM, kcUrl);

const orgId = (alias: string): Promise<string> => organizationId(admin, REALM, alias);

async function createKeycloakUser(realm: string, username: string, opts: NewKeycloakUser = {}): Promise<string> {
  const id = await createUser(admin, realm, username, PASSWORD, opts);
  kcUsers[username] = id;
  return id;
}

interface BffLogin {
  /** Where the service finally sent the browser (the BFF's redirect URI, with a code or an error). */
  back: URL;
  state: string;
  verifier: string;
  /** The Keycloak authorization request the service built. */
  keycloakUrl: URL;
  keycloak: HeadlessLoginResult;
}

/** The whole browser leg: service /authorize → Keycloak pages → service callback → BFF redirect. */
async function bffLogin(
  org: string,
  username: string,
  opts: { tamper?: (keycloakUrl: URL) => void; jar?: CookieJar; params?: Record<string, string> } = {},
): Promise<BffLogin> {
  const { verifier, challenge } = pkcePair();
  const state = randomBytes(8).toString('hex');
  const start = await get(
    authorizeUrl(app.url, bff, {
      org,
      state,
      nonce: `n-${state}`,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      ...opts.params,
    }),
  );
  expect(start.status, await start.clone().text()).toBe(302);
  const keycloakUrl = new URL(start.headers.get('location')!);
  opts.tamper?.(keycloakUrl);
  const keycloak = await headlessLogin({
    startUrl: keycloakUrl,
    username,
    password: PASSWORD,
    stopAt: `${app.url}/login/callback/keycloak`,
    cookieJar: opts.jar,
  });
  const callback = await get(keycloak.callbackUrl.href);
  expect(callback.status, await callback.clone().text()).toBe(302);
  const back = new URL(callback.headers.get('location')!);
  expect(back.href.startsWith(bff.redirectUri)).toBe(true);
  expect(back.searchParams.get('state')).toBe(state);
  return { back, state, verifier, keycloakUrl, keycloak };
}

interface PlatformTokens {
  access_token: string;
  id_token: string;
  refresh_token: string;
  claims: JWTPayload & { tid: string; org: string; roles: string[]; idp: string; idp_sub: string; sub: string };
}

async function platformTokens(login: BffLogin): Promise<PlatformTokens> {
  const code = login.back.searchParams.get('code');
  expect(code, `${login.back.searchParams.get('error')}: ${login.back.searchParams.get('error_description')}`).toBeTruthy();
  const res = await tokenRequest(app.url, bff, {
    grant_type: 'authorization_code',
    code: code!,
    redirect_uri: bff.redirectUri,
    code_verifier: login.verifier,
  });
  const body = (await res.json()) as Omit<PlatformTokens, 'claims'>;
  expect(res.status, JSON.stringify(body)).toBe(200);
  return { ...body, claims: await verifyPlatformToken(body.access_token) };
}

async function verifyPlatformToken(token: string): Promise<PlatformTokens['claims']> {
  const jwks = createRemoteJWKSet(new URL(`${app.url}/.well-known/jwks.json`));
  const { payload } = await jwtVerify(token, jwks, {
    issuer: app.config.issuer,
    audience: app.config.ACCESS_TOKEN_AUDIENCE,
    typ: 'at+jwt',
  });
  return payload as PlatformTokens['claims'];
}

const keycloakClientCredentials = (realm: string, clientId: string, secret: string): Promise<string> =>
  clientCredentialsToken(kcUrl, realm, clientId, secret);

async function exchange(subjectToken: string, org: string, scope?: string): Promise<{ status: number; body: Record<string, string> }> {
  const form: Record<string, string> = {
    grant_type: TOKEN_EXCHANGE_GRANT,
    subject_token: subjectToken,
    subject_token_type: ACCESS_TOKEN_TYPE,
    org,
  };
  if (scope) form['scope'] = scope;
  const res = await postForm(`${app.url}/oauth2/token`, form, { headers: { authorization: basic(gateway.id, gateway.secret) } });
  return { status: res.status, body: (await res.json()) as Record<string, string> };
}

const count = async (tenant: Tenant, table: 'users' | 'sessions' | 'login_transactions'): Promise<number> => {
  const [row] = await tenantRows<{ n: number }>(app, tenant.id, `SELECT count(*)::int AS n FROM ${table}`);
  return row!.n;
};

// ---------------------------------------------------------------------------------------------
// The run's Keycloak and one service for the file

let unavailable: string | undefined;

beforeAll(async () => {
  const got = await peerOrSkip('keycloak-adapter', () => acquireKeycloak('keycloak-adapter.test.ts'));
  if (got.unavailable !== undefined) {
    unavailable = got.unavailable;
    return;
  }
  kc = got.peer;
  console.info(`[keycloak-adapter] shared Keycloak at ${kc.baseUrl} (its start took ${kc.startDurationMs} ms)`);
  await kc.importRealmFile(realmFile, REALM);
  kc.deleteOnRelease(DEDICATED_REALM);
  proxy = await startTcpProxy(kc.port);
  kcUrl = proxy.url;
  app = await startTestApp({
    KEYCLOAK_URL: kcUrl,
    KEYCLOAK_REALM: REALM,
    KEYCLOAK_CLIENT_SECRET: SERVICE_CLIENT_SECRET,
    KEYCLOAK_ADMIN_USERNAME: kc.adminUser,
    KEYCLOAK_ADMIN_PASSWORD: kc.adminPassword,
    RATE_LIMIT_AUTHORIZE_PER_MINUTE: '1000',
  });
  bff = await seedBff(app);
  const created = await app.app.get(ClientsService).create({
    id: `gateway-${randomBytes(3).toString('hex')}`,
    name: 'Gateway (token exchange)',
    kind: 'machine',
    grantTypes: [TOKEN_EXCHANGE_GRANT],
    scopes: ['orders.read', 'orders.write'],
  });
  gateway = { id: created.client.id, secret: created.secret };
  admin = await adminClient();

  const tenantsService = app.app.get(TenantsService);
  const provisioning = app.app.get(KeycloakProvisioningService);
  for (const [slug, name] of [
    ['acme', 'Acme Corp'],
    ['globex', 'Globex Corporation'],
    ['initech', 'Initech (regulated)'],
  ] as const)
    tenants[slug] = await tenantsService.create(slug, name);
  await provisioning.bindTenant(tenants['acme']!, {
    mode: 'organization',
    organization: { domains: ['acme.example'] },
    claimMapping: { roles: rolesFor('acme') },
    config: { machineClients: [M2M_ID] },
  });
  await provisioning.bindTenant(tenants['globex']!, { mode: 'organization', claimMapping: { roles: rolesFor('globex') } });
  await provisioning.bindTenant(tenants['initech']!, {
    mode: 'dedicated_realm',
    realm: { realm: DEDICATED_REALM },
    claimMapping: { defaultRoles: ['USER'] },
    config: { machineClients: [M2M_ID] },
  });

  // Shared realm: an unmapped realm role and a client role, next to the realm file's roles.
  await admin.roles.create({ name: 'UNMAPPED_AUDITOR' });
  const [serviceClient] = await admin.clients.find({ clientId: 'auth-service' });
  await admin.clients.createRole({ id: serviceClient!.id!, name: 'billing-admin' });
  await createKeycloakUser(REALM, 'alice', { orgs: ['acme', 'globex'] });
  await createKeycloakUser(REALM, 'bob', { orgs: ['acme'] });
  await createKeycloakUser(REALM, 'carol', {
    orgs: ['acme'],
    realmRoles: ['MY_PROJECT_SUPER_ADMIN', 'UNMAPPED_AUDITOR'],
    clientRoles: ['billing-admin'],
  });
  await createKeycloakUser(REALM, 'erin', { orgs: ['acme'] });
  // Dedicated realm: a user, and a machine client with the same client id as the shared realm's.
  await createKeycloakUser(DEDICATED_REALM, 'dave');
  await admin.clients.create({
    realm: DEDICATED_REALM,
    clientId: M2M_ID,
    publicClient: false,
    secret: OTHER_REALM_M2M_SECRET,
    serviceAccountsEnabled: true,
    standardFlowEnabled: false,
    directAccessGrantsEnabled: false,
    protocolMappers: [
      {
        name: 'audience auth-service',
        protocol: 'openid-connect',
        protocolMapper: 'oidc-audience-mapper',
        config: { 'included.custom.audience': 'auth-service', 'access.token.claim': 'true', 'id.token.claim': 'false' },
      },
    ],
  });
}, 600_000);

afterAll(async () => {
  await app?.close();
  await proxy?.close();
  await kc?.release();
}, 60_000);

const itKc = (name: string, fn: () => Promise<void>, timeout?: number) =>
  it(
    name,
    async (ctx) => {
      if (unavailable) ctx.skip(unavailable);
      await fn();
    },
    timeout,
  );

// ---------------------------------------------------------------------------------------------

describe('Organizations in the shared realm', () => {
  itKc('an acme member signing in with org=acme gets a platform JWT for acme with mapped roles and idp=keycloak', async () => {
    const login = await bffLogin('acme', 'bob');
    // What the service asked Keycloak for: the shared realm, PKCE S256, a nonce, the organisation.
    expect(login.keycloakUrl.pathname).toBe(`/realms/${REALM}/protocol/openid-connect/auth`);
    expect(login.keycloakUrl.searchParams.get('scope')!.split(' ')).toEqual(expect.arrayContaining(['openid', 'organization:acme']));
    expect(login.keycloakUrl.searchParams.get('code_challenge_method')).toBe('S256');
    expect(login.keycloakUrl.searchParams.get('nonce')).toBeTruthy();
    expect(login.keycloak.pages).toEqual(['username', 'password']);

    const { claims, id_token } = await platformTokens(login);
    expect(claims.tid).toBe(tenants['acme']!.id);
    expect(claims.org).toBe('acme');
    expect(claims.idp).toBe('keycloak');
    expect(claims.idp_sub).toBe(kcUsers['bob']);
    expect(claims.sub).not.toBe(kcUsers['bob']);
    expect(claims.roles).toEqual(['ACME_MEMBER', 'USER']);
    expect(decodeJwt(id_token)['email']).toBe('bob@users.example.test');
  });

  itKc(
    'refuses an ID token whose nonce is not the one the service sent (swapped in the Keycloak request) with access_denied, and creates nothing',
    async () => {
      const sessionsBefore = await count(tenants['acme']!, 'sessions');
      const usersBefore = await count(tenants['acme']!, 'users');
      // Keycloak echoes whatever nonce the request carries into the ID token it signs.
      const login = await bffLogin('acme', 'bob', {
        tamper: (url) => url.searchParams.set('nonce', `swapped-${randomBytes(8).toString('hex')}`),
      });
      expect(login.keycloak.code).toBeTruthy();
      expect(login.back.searchParams.get('code')).toBeNull();
      expect(login.back.searchParams.get('error')).toBe('access_denied');
      expect(login.back.searchParams.get('error_description')).toMatch(/could not be verified/);
      expect(await count(tenants['acme']!, 'sessions')).toBe(sessionsBefore);
      expect(await count(tenants['acme']!, 'users')).toBe(usersBefore);
    },
  );

  itKc('refuses a user who is not a member of the organisation with access_denied, and creates nothing', async () => {
    const usersBefore = await count(tenants['globex']!, 'users');
    const sessionsBefore = await count(tenants['globex']!, 'sessions');
    // Keycloak itself lets bob in (without an organization claim): the refusal is the service's.
    const login = await bffLogin('globex', 'bob');
    expect(login.keycloak.code).toBeTruthy();
    expect(login.back.searchParams.get('code')).toBeNull();
    expect(login.back.searchParams.get('error')).toBe('access_denied');
    expect(login.back.searchParams.get('error_description')).toMatch(/not a member of this organisation/);
    expect(await count(tenants['globex']!, 'users')).toBe(usersBefore);
    expect(await count(tenants['globex']!, 'sessions')).toBe(sessionsBefore);
  });

  itKc('refuses a member of acme who rewrites the Keycloak request to organization:acme while signing in to globex', async () => {
    const login = await bffLogin('globex', 'bob', {
      tamper: (url) => url.searchParams.set('scope', url.searchParams.get('scope')!.replace('organization:globex', 'organization:acme')),
    });
    expect(login.keycloak.code).toBeTruthy();
    expect(login.back.searchParams.get('code')).toBeNull();
    expect(login.back.searchParams.get('error')).toBe('access_denied');
    expect(login.back.searchParams.get('error_description')).toMatch(/not a member/);
  });

  itKc('gives a member of two organisations a token for the one she signed in to, each time', async () => {
    const acme = await platformTokens(await bffLogin('acme', 'alice'));
    const globex = await platformTokens(await bffLogin('globex', 'alice'));
    expect(acme.claims.tid).toBe(tenants['acme']!.id);
    expect(acme.claims.roles).toContain('ACME_MEMBER');
    expect(acme.claims.roles).not.toContain('GLOBEX_MEMBER');
    expect(globex.claims.tid).toBe(tenants['globex']!.id);
    expect(globex.claims.org).toBe('globex');
    expect(globex.claims.roles).toContain('GLOBEX_MEMBER');
    expect(globex.claims.roles).not.toContain('ACME_MEMBER');
    // One Keycloak user, two tenants: two platform users.
    expect(acme.claims.idp_sub).toBe(globex.claims.idp_sub);
    expect(acme.claims.sub).not.toBe(globex.claims.sub);
  });

  itKc('maps realm and client roles through the binding rules and lets no unmapped upstream role through', async () => {
    const realmRoles = (await admin.users.listRealmRoleMappings({ id: kcUsers['carol']! })).map((r) => r.name);
    expect(realmRoles).toEqual(expect.arrayContaining(['MY_PROJECT_SUPER_ADMIN', 'UNMAPPED_AUDITOR']));
    const { claims } = await platformTokens(await bffLogin('acme', 'carol'));
    expect(claims.roles).toEqual(['ACME_MEMBER', 'BILLING_ADMIN', 'SUPER_ADMIN', 'USER']);
    for (const leaked of [
      'UNMAPPED_AUDITOR',
      'MY_PROJECT_SUPER_ADMIN',
      'MY_PROJECT_USER',
      'billing-admin',
      'offline_access',
      'default-roles-platform',
    ])
      expect(claims.roles).not.toContain(leaked);
  });
});

describe('max_age and prompt=login (OIDC Core §3.1.2.1)', () => {
  itKc(
    'passes max_age=0 to Keycloak with prompt=login: despite its session the user signs in again, and the ID token has auth_time',
    async () => {
      const jar = new CookieJar();
      await platformTokens(await bffLogin('acme', 'bob', { jar }));
      // Keycloak's session suffices without max_age: no page is shown.
      const sso = await bffLogin('acme', 'bob', { jar });
      expect(sso.keycloak.pages).toEqual([]);
      expect(sso.keycloakUrl.searchParams.get('max_age')).toBeNull();

      const fresh = await bffLogin('acme', 'bob', { jar, params: { max_age: '0' } });
      expect(fresh.keycloakUrl.searchParams.get('max_age')).toBe('0');
      expect(fresh.keycloakUrl.searchParams.get('prompt')).toBe('login');
      expect(fresh.keycloak.pages.some((p) => p.includes('password'))).toBe(true);
      const { id_token, claims } = await platformTokens(fresh);
      expect(typeof decodeJwt(id_token)['auth_time']).toBe('number');
      expect(claims['auth_time']).toBe(decodeJwt(id_token)['auth_time']);
    },
  );
});

describe('dedicated realm', () => {
  itKc('signs a dedicated-realm tenant in through its own realm, without an organisation', async () => {
    const login = await bffLogin('initech', 'dave');
    expect(login.keycloakUrl.pathname).toBe(`/realms/${DEDICATED_REALM}/protocol/openid-connect/auth`);
    expect(login.keycloakUrl.searchParams.get('scope')).not.toMatch(/organization/);
    expect(login.keycloak.iss).toBe(`${kcUrl}/realms/${DEDICATED_REALM}`);
    const { claims } = await platformTokens(login);
    expect(claims.tid).toBe(tenants['initech']!.id);
    expect(claims.org).toBe('initech');
    expect(claims.idp).toBe('keycloak');
    expect(claims.roles).toEqual(['USER']);
  });
});

describe('machine to machine (RFC 8693)', () => {
  itKc('exchanges a Keycloak client-credentials token for a platform JWT carrying the tenant and scopes', async () => {
    const kcToken = await keycloakClientCredentials(REALM, M2M_ID, M2M_SECRET);
    const { status, body } = await exchange(kcToken, 'acme', 'orders.read');
    expect(status, JSON.stringify(body)).toBe(200);
    expect(body['issued_token_type']).toBe(ACCESS_TOKEN_TYPE);
    expect(body['refresh_token']).toBeUndefined();
    expect(body['scope']).toBe('orders.read');
    const claims = await verifyPlatformToken(body['access_token']!);
    expect(claims.sub).toBe(`client:${M2M_ID}`);
    expect(claims.tid).toBe(tenants['acme']!.id);
    expect(claims.org).toBe('acme');
    expect(claims.idp).toBe('keycloak');
    expect(claims['client_id']).toBe(gateway.id);
    expect(claims['scope']).toBe('orders.read');
  });

  itKc('refuses scopes the calling client does not have', async () => {
    const kcToken = await keycloakClientCredentials(REALM, M2M_ID, M2M_SECRET);
    const { status, body } = await exchange(kcToken, 'acme', 'orders.read admin.everything');
    expect(status).toBe(400);
    expect(body['error']).toBe('invalid_scope');
  });

  itKc('refuses a token from another realm, even from a client with the same client id', async () => {
    const otherRealm = await keycloakClientCredentials(DEDICATED_REALM, M2M_ID, OTHER_REALM_M2M_SECRET);
    expect(decodeJwt(otherRealm)['azp']).toBe(M2M_ID);
    expect([decodeJwt(otherRealm).aud].flat()).toContain('auth-service');
    const { status, body } = await exchange(otherRealm, 'acme');
    expect(status).toBe(400);
    expect(body['error']).toBe('invalid_grant');
    expect(body['access_token']).toBeUndefined();
  });

  itKc('refuses a token whose signature does not match its content', async () => {
    const [header, payload, signature] = (await keycloakClientCredentials(REALM, M2M_ID, M2M_SECRET)).split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>;
    const forged = Buffer.from(JSON.stringify({ ...claims, exp: (claims['exp'] as number) + 86_400 })).toString('base64url');
    const { status, body } = await exchange(`${header}.${forged}.${signature}`, 'acme');
    expect(status).toBe(400);
    expect(body['error']).toBe('invalid_grant');
  });

  itKc('refuses a machine client the tenant’s binding does not list', async () => {
    const kcToken = await keycloakClientCredentials(REALM, M2M_ID, M2M_SECRET);
    const { status, body } = await exchange(kcToken, 'globex');
    expect(status).toBe(400);
    expect(body['error']).toBe('invalid_grant');
  });
});

describe('logout', () => {
  itKc('ends the platform session and its refresh tokens, then the Keycloak session, and returns to the BFF', async () => {
    const jar = new CookieJar();
    const login = await bffLogin('acme', 'erin', { jar });
    const tokens = await platformTokens(login);
    expect(await admin.users.listSessions({ id: kcUsers['erin']! })).toHaveLength(1);

    const logout = await get(
      `${app.url}/oauth2/logout?${new URLSearchParams({ id_token_hint: tokens.id_token, post_logout_redirect_uri: 'http://127.0.0.1:9/bff/signed-out', state: 'bye' })}`,
    );
    expect(logout.status).toBe(302);
    const atKeycloak = new URL(logout.headers.get('location')!);
    expect(`${atKeycloak.origin}${atKeycloak.pathname}`).toBe(`${kcUrl}/realms/${REALM}/protocol/openid-connect/logout`);
    expect(atKeycloak.searchParams.get('id_token_hint')).toBeTruthy();
    expect(atKeycloak.searchParams.get('post_logout_redirect_uri')).toBe(`${app.url}/oauth2/logout/return`);

    // The platform side has already ended: the refresh token family is dead.
    const refresh = await tokenRequest(app.url, bff, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
    expect(refresh.status).toBe(400);
    expect(((await refresh.json()) as { error: string }).error).toBe('invalid_grant');

    // The browser at Keycloak: its logout, then back through the service to the BFF.
    const kcRes = await fetch(atKeycloak, { redirect: 'manual', headers: { cookie: jar.header(atKeycloak) ?? '' } });
    expect(kcRes.status).toBe(302);
    const returned = new URL(kcRes.headers.get('location')!);
    expect(`${returned.origin}${returned.pathname}`).toBe(`${app.url}/oauth2/logout/return`);
    const final = await get(returned.href);
    expect(final.status).toBe(302);
    expect(final.headers.get('location')).toBe('http://127.0.0.1:9/bff/signed-out?state=bye');
    expect(await admin.users.listSessions({ id: kcUsers['erin']! })).toHaveLength(0);
  });

  itKc('refuses a forged return state after the upstream logout', async () => {
    const res = await get(`${app.url}/oauth2/logout/return?state=${Buffer.from('https://evil.example/').toString('base64url')}`);
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
  });
});

describe('provisioning', () => {
  itKc('binding a tenant twice leaves one organisation and one binding', async () => {
    const provisioning = app.app.get(KeycloakProvisioningService);
    const input = {
      mode: 'organization' as const,
      organization: { domains: ['acme.example'] },
      claimMapping: { roles: rolesFor('acme') },
      config: { machineClients: [M2M_ID] },
    };
    const first = await provisioning.bindTenant(tenants['acme']!, input);
    const second = await provisioning.bindTenant(tenants['acme']!, input);
    expect(second.id).toBe(first.id);
    expect((await admin.organizations.find({ first: 0, max: 1000 })).filter((o) => o.alias === 'acme')).toHaveLength(1);
    const [row] = await tenantRows<{ n: number }>(
      app,
      tenants['acme']!.id,
      `SELECT count(*)::int AS n FROM tenant_identity_providers WHERE kind = 'keycloak'`,
    );
    expect(row!.n).toBe(1);

    const realmAgain = await provisioning.ensureDedicatedRealm(tenants['initech']!, { realm: DEDICATED_REALM });
    expect(realmAgain.created).toBe(false);
    expect(realmAgain.clientSecret).toBeTruthy();
  });

  itKc(
    'links a brokered identity provider to the organisation; a failure half-way leaves nothing behind and a re-run completes it',
    async () => {
      const provisioning = app.app.get(KeycloakProvisioningService);
      const input = {
        alias: 'acme-entra',
        displayName: 'Acme Entra ID',
        providerId: 'oidc',
        domain: 'acme.example',
        config: {
          clientId: 'broker-client',
          clientSecret: 'test-only-broker-secret',
          authorizationUrl: 'https://login.acme.example/authorize',
          tokenUrl: 'https://login.acme.example/token',
        },
      };
      const connect = (provisioning as unknown as { connect: (s: unknown) => Promise<KcAdminClient> }).connect.bind(provisioning);
      const spy = vi
        .spyOn(provisioning as unknown as { connect: (s: unknown) => Promise<KcAdminClient> }, 'connect')
        .mockImplementationOnce(async (s) => {
          const client = await connect(s);
          client.organizations.linkIdp = () => Promise.reject(new Error('simulated failure between creating and linking'));
          return client;
        });
      await expect(provisioning.linkIdentityProvider(tenants['acme']!, input)).rejects.toBeInstanceOf(DependencyUnavailableError);
      spy.mockRestore();
      expect(await admin.identityProviders.findOne({ alias: 'acme-entra' })).toBeNull();

      const done = await provisioning.linkIdentityProvider(tenants['acme']!, input);
      expect(done).toEqual({ alias: 'acme-entra', created: true, linked: true });
      const again = await provisioning.linkIdentityProvider(tenants['acme']!, input);
      expect(again).toEqual({ alias: 'acme-entra', created: false, linked: true });
      const linked = await admin.organizations.listIdentityProviders({ orgId: await orgId('acme') });
      expect(linked.map((i) => i.alias)).toEqual(['acme-entra']);
      expect(linked[0]!.config?.['kc.org.domain']).toBe('acme.example');

      // Keycloak would accept a domain the organisation does not own; the service does not.
      await expect(
        provisioning.linkIdentityProvider(tenants['globex']!, { ...input, alias: 'globex-entra', domain: 'acme.example' }),
      ).rejects.toMatchObject({ status: 400 });
      expect(await admin.identityProviders.findOne({ alias: 'globex-entra' })).toBeNull();
      // A provider already linked to one organisation is not moved to another.
      await expect(provisioning.linkIdentityProvider(tenants['globex']!, { ...input, domain: undefined })).rejects.toBeInstanceOf(
        ProblemError,
      );
    },
  );
});

describe('Keycloak unavailable', () => {
  itKc(
    'answers 503 at the login start while Keycloak is down, writes nothing, reports it, and recovers without a restart',
    async () => {
      // Taken while Keycloak is up: the realm keys are cached for verification.
      const m2mToken = await keycloakClientCredentials(REALM, M2M_ID, M2M_SECRET);
      const native = await seedNativeTenant(app, 'umbrella', [{ username: 'ada@umbrella.example', password: 'native-password-123' }]);
      const before = await count(tenants['acme']!, 'login_transactions');

      // Keycloak gone for this service: every connection to it refused, as with a stopped server
      // (the shared server itself keeps running for the other files).
      await proxy.down();
      // Older than a login start's freshness window: the start must ask Keycloak again.
      await new Promise((r) => setTimeout(r, KEYCLOAK_LIMITS.loginStartFreshMs + 100));

      const { challenge } = pkcePair();
      const res = await getJson(
        authorizeUrl(app.url, bff, { org: 'acme', state: 'down', code_challenge: challenge, code_challenge_method: 'S256' }),
      );
      expect(res.status).toBe(503);
      expect(res.headers.get('location')).toBeNull();
      expect(res.headers.get('retry-after')).toBe('5');
      const body = await res.text();
      expect(JSON.parse(body)).toMatchObject({ error: 'temporarily_unavailable' });
      expect(body).not.toMatch(/ECONNREFUSED|fetch failed|at .*\.ts/);
      expect(await count(tenants['acme']!, 'login_transactions')).toBe(before);

      const ready = await get(`${app.url}/health/ready`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ status: 'ok', checks: { database: 'up', keycloak: 'down' } });

      // Other tenants are unaffected; machine tokens verify against the cached realm keys.
      const nativeTokens = await nativeLogin(app.url, bff, 'umbrella', 'ada@umbrella.example', 'native-password-123');
      expect((await verifyPlatformToken(nativeTokens.tokens.access_token)).tid).toBe(native.tenant.id);
      expect((await exchange(m2mToken, 'acme')).status).toBe(200);

      await proxy.up();
      expect(await (await get(`${app.url}/health/ready`)).json()).toMatchObject({ checks: { keycloak: 'up' } });
      const { claims } = await platformTokens(await bffLogin('acme', 'bob'));
      expect(claims.tid).toBe(tenants['acme']!.id);
    },
    180_000,
  );
});
