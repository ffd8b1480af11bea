/**
 * Onboarding a Keycloak tenant through the admin API is configuration only: saving a `keycloak`
 * binding (POST /admin/v1/tenants/{id}/bindings, or a PATCH) provisions the Keycloak side through
 * the admin REST API before the draft is stored — the tenant's Organization in the shared realm
 * (alias = slug, name, domains) with an optional brokered IdP linked to it, or the tenant's
 * dedicated realm and its client. Against a real Keycloak 26 (the run's shared instance,
 * test/peers/keycloak-shared.ts, with this file's own copy of keycloak-realm.json as the service's
 * shared realm): idempotent re-runs, a failure half-way that a retry completes without duplicates,
 * Keycloak's refusals as 422 problems, Keycloak down as a 503 with nothing saved, and a login end to
 * end through each kind of binding (test login → activate → BFF flow).
 *
 * The service, the browser and the tests reach Keycloak through a TCP proxy of this file's (so
 * every issuer is the proxy's URL): "Keycloak down" cuts that proxy instead of stopping the server
 * other files are using.
 */
import KcAdminClient from '@keycloak/keycloak-admin-client';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { adminClient as platformAdmin, type AdminClient } from './support/admin.js';
import { authorizeUrl, get, pkcePair, tokenRequest, type BffClient } from './support/bff.js';
import { seedBff } from './support/seed.js';
import { acquireKeycloak, startTcpProxy, uniqueRealmName, type SharedKeycloak, type TcpProxy } from './peers/keycloak-shared.js';
import { headlessLogin } from './peers/keycloak-login.js';
import { peerOrSkip } from './peers/peer-unavailable.js';
import { KeycloakProvisioningService } from '../src/identity/keycloak/keycloak-provisioning.service.js';

const realmFile = fileURLToPath(new URL('../keycloak-realm.json', import.meta.url));
/** The service's shared realm: this file's copy of keycloak-realm.json (the instance is shared with other files). */
const REALM = uniqueRealmName('platform');
const DEDICATED_REALM = uniqueRealmName('vandelay-industries');
// Development value from keycloak-realm.json (documented there as a public dev-only secret).
const SERVICE_CLIENT_SECRET = 'dev-only-auth-service-secret';
const PASSWORD = 'test-only-Pa55word-not-real';
const BROKER_SECRET = 'test-only-broker-secret-value';

interface BindingView {
  id: string;
  status: string;
  version: number;
  config: Record<string, unknown>;
  secretFields: string[];
}
interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  reason?: string;
}

let kc: SharedKeycloak;
/** Between the service (and this file) and Keycloak. */
let proxy: TcpProxy;
let app: TestApp;
let admin: AdminClient;
let bff: BffClient;
let kcAdmin: KcAdminClient;
let unavailable: string | undefined;

const json = async <T = Record<string, unknown>>(res: Response): Promise<T> => (await res.json()) as T;
const bindingsPath = (tenantId: string) => `/admin/v1/tenants/${tenantId}/bindings`;

async function createTenant(slug: string, displayName: string): Promise<string> {
  const res = await admin.call('POST', '/admin/v1/tenants', { slug, displayName });
  expect(res.status, await res.clone().text()).toBe(201);
  return (await json<{ id: string }>(res)).id;
}

async function createBinding(tenantId: string, body: Record<string, unknown>): Promise<BindingView> {
  const res = await admin.call('POST', bindingsPath(tenantId), body);
  expect(res.status, await res.clone().text()).toBe(201);
  return json<BindingView>(res);
}

const bindingCount = async (tenantId: string): Promise<number> =>
  (await json<{ items: unknown[] }>(await admin.call('GET', bindingsPath(tenantId)))).items.length;

/** POSTs a binding that must be refused with a problem; checks nothing was saved. */
async function refused(tenantId: string, body: Record<string, unknown>, status: number): Promise<{ problem: Problem; res: Response }> {
  const before = await bindingCount(tenantId);
  const res = await admin.call('POST', bindingsPath(tenantId), body);
  const problem = await json<Problem>(res);
  expect(res.status, JSON.stringify(problem)).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
  expect(await bindingCount(tenantId)).toBe(before);
  return { problem, res };
}

async function storedHealth(tenantId: string, bindingId: string): Promise<Record<string, string>> {
  const res = await admin.call('GET', `${bindingsPath(tenantId)}/${bindingId}/health?refresh=false`);
  expect(res.status).toBe(200);
  return (await json<{ health: { checks: Record<string, string> } }>(res)).health.checks;
}

/** Every organisation of the shared realm with this alias (full representations). */
async function orgsWithAlias(alias: string) {
  const all = await kcAdmin.organizations.find({ realm: REALM, first: 0, max: 1000 });
  return Promise.all(all.filter((o) => o.alias === alias).map((o) => kcAdmin.organizations.findOne({ realm: REALM, id: o.id! })));
}

async function createKeycloakUser(realm: string, username: string, orgAlias?: string): Promise<string> {
  const { id } = await kcAdmin.users.create({
    realm,
    username,
    // Not an organisation's domain: identity-first login must not route these users to a broker.
    email: `${username}@users.example.test`,
    firstName: username[0]!.toUpperCase() + username.slice(1),
    lastName: 'Tester',
    enabled: true,
    emailVerified: true,
    credentials: [{ type: 'password', value: PASSWORD, temporary: false }],
  });
  if (orgAlias) {
    const [org] = await orgsWithAlias(orgAlias);
    await kcAdmin.organizations.addMember({ realm, orgId: org!.id!, userId: id });
  }
  return id;
}

/** The customer's IT admin completes a test login through the draft, then it is activated. */
async function testLoginAndActivate(tenantId: string, bindingId: string, username: string): Promise<void> {
  const started = await admin.call('POST', `${bindingsPath(tenantId)}/${bindingId}/test-login`);
  expect(started.status, await started.clone().text()).toBe(200);
  const { url } = await json<{ url: string }>(started);
  const kcLogin = await headlessLogin({ startUrl: url, username, password: PASSWORD, stopAt: `${app.url}/login/callback/keycloak` });
  const done = await get(kcLogin.callbackUrl.href);
  expect(done.status).toBe(302);
  expect(done.headers.get('location')).toBe(`${app.url}/login/test-complete?outcome=success`);
  const current = await admin.call('GET', `${bindingsPath(tenantId)}/${bindingId}`);
  const activated = await admin.call('POST', `${bindingsPath(tenantId)}/${bindingId}/activate`, undefined, {
    'if-match': current.headers.get('etag')!,
  });
  expect(activated.status, await activated.clone().text()).toBe(200);
}

/** The BFF flow through the service and Keycloak's pages; returns the platform access token's claims. */
async function bffLogin(
  org: string,
  username: string,
): Promise<{ keycloakUrl: URL; claims: JWTPayload & { tid: string; org: string; roles: string[]; idp: string } }> {
  const { verifier, challenge } = pkcePair();
  const state = randomBytes(8).toString('hex');
  const start = await get(
    authorizeUrl(app.url, bff, { org, state, nonce: `n-${state}`, code_challenge: challenge, code_challenge_method: 'S256' }),
  );
  expect(start.status, await start.clone().text()).toBe(302);
  const keycloakUrl = new URL(start.headers.get('location')!);
  const kcLogin = await headlessLogin({
    startUrl: keycloakUrl,
    username,
    password: PASSWORD,
    stopAt: `${app.url}/login/callback/keycloak`,
  });
  const callback = await get(kcLogin.callbackUrl.href);
  expect(callback.status).toBe(302);
  const back = new URL(callback.headers.get('location')!);
  const code = back.searchParams.get('code');
  expect(code, `${back.searchParams.get('error')}: ${back.searchParams.get('error_description')}`).toBeTruthy();
  const res = await tokenRequest(app.url, bff, {
    grant_type: 'authorization_code',
    code: code!,
    redirect_uri: bff.redirectUri,
    code_verifier: verifier,
  });
  const body = await json<{ access_token: string }>(res);
  expect(res.status, JSON.stringify(body)).toBe(200);
  const { payload } = await jwtVerify(body.access_token, createRemoteJWKSet(new URL(`${app.url}/.well-known/jwks.json`)), {
    issuer: app.config.issuer,
    audience: app.config.ACCESS_TOKEN_AUDIENCE,
  });
  return { keycloakUrl, claims: payload as JWTPayload & { tid: string; org: string; roles: string[]; idp: string } };
}

type Connect = { connect: (s: unknown) => Promise<KcAdminClient> };

// ---------------------------------------------------------------------------------------------

beforeAll(async () => {
  const got = await peerOrSkip('admin-keycloak', () => acquireKeycloak('admin-keycloak.test.ts'));
  if (got.unavailable !== undefined) {
    unavailable = got.unavailable;
    return;
  }
  kc = got.peer;
  console.info(`[admin-keycloak] shared Keycloak at ${kc.baseUrl} (its start took ${kc.startDurationMs} ms)`);
  await kc.importRealmFile(realmFile, REALM);
  kc.deleteOnRelease(DEDICATED_REALM);
  proxy = await startTcpProxy(kc.port);
  app = await startTestApp({
    KEYCLOAK_URL: proxy.url,
    KEYCLOAK_REALM: REALM,
    KEYCLOAK_CLIENT_SECRET: SERVICE_CLIENT_SECRET,
    KEYCLOAK_ADMIN_USERNAME: kc.adminUser,
    KEYCLOAK_ADMIN_PASSWORD: kc.adminPassword,
    RATE_LIMIT_AUTHORIZE_PER_MINUTE: '1000',
  });
  admin = await platformAdmin(app);
  bff = await seedBff(app);
  kcAdmin = await kc.adminClient(REALM, proxy.url);
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

const tenants: Record<string, string> = {};
const HOOLI_MAPPING = { roles: [{ claim: 'organization', value: 'hooli', role: 'HOOLI_MEMBER' }], defaultRoles: ['USER'] };
const hooliIdp = {
  alias: 'hooli-entra',
  displayName: 'Hooli Entra ID',
  providerId: 'oidc',
  domain: 'hooli.example',
  config: {
    clientId: 'kc-broker',
    authorizationUrl: 'https://login.hooli.example/authorize',
    tokenUrl: 'https://login.hooli.example/token',
    clientAuthMethod: 'client_secret_post',
  },
};

describe('organization mode through the admin API', () => {
  itKc(
    'creating a keycloak binding creates the tenant’s Organization (alias = slug, name, domains, tenant id) before the draft is saved',
    async () => {
      tenants['hooli'] = await createTenant('hooli', 'Hooli XYZ');
      expect(await orgsWithAlias('hooli')).toHaveLength(0);

      const binding = await createBinding(tenants['hooli'], {
        kind: 'keycloak',
        config: { mode: 'organization', organizationDomains: ['hooli.example'] },
        claimMapping: HOOLI_MAPPING,
      });
      expect(binding).toMatchObject({ status: 'draft', config: { mode: 'organization', organizationDomains: ['hooli.example'] } });

      const [org, ...more] = await orgsWithAlias('hooli');
      expect(more).toHaveLength(0);
      expect(org).toMatchObject({ alias: 'hooli', name: 'Hooli XYZ', enabled: true });
      expect(org!.domains?.map((d) => d.name)).toEqual(['hooli.example']);
      expect(org!.attributes?.['platform_tenant_id']).toEqual([tenants['hooli']]);
      expect(await storedHealth(tenants['hooli'], binding.id)).toMatchObject({ organization: 'created (hooli)', discovery: 'ok' });
    },
  );

  itKc('is idempotent: a second create and an update leave one organisation, completing its domains', async () => {
    const again = await createBinding(tenants['hooli']!, {
      kind: 'keycloak',
      config: { mode: 'organization', organizationDomains: ['hooli.example'] },
      claimMapping: HOOLI_MAPPING,
    });
    expect(await storedHealth(tenants['hooli']!, again.id)).toMatchObject({ organization: 'exists (hooli)' });
    expect(await orgsWithAlias('hooli')).toHaveLength(1);

    const patched = await admin.call(
      'PATCH',
      `${bindingsPath(tenants['hooli']!)}/${again.id}`,
      { config: { mode: 'organization', organizationDomains: ['hooli.example', 'hooli.test'] } },
      { 'if-match': `"v${again.version}"` },
    );
    expect(patched.status, await patched.clone().text()).toBe(200);
    expect(await storedHealth(tenants['hooli']!, again.id)).toMatchObject({ organization: 'updated (hooli)' });
    const orgs = await orgsWithAlias('hooli');
    expect(orgs).toHaveLength(1);
    expect(orgs[0]!.domains?.map((d) => d.name).sort()).toEqual(['hooli.example', 'hooli.test']);
    expect(orgs[0]!.attributes?.['platform_tenant_id']).toEqual([tenants['hooli']]);
  });

  itKc(
    'links a brokered IdP named in the config; a failure half-way saves nothing, leaves no provider, and the retry completes it without duplicates',
    async () => {
      const body = {
        kind: 'keycloak',
        config: { mode: 'organization', organizationDomains: ['hooli.example'], identityProvider: hooliIdp },
        secrets: { identityProviderClientSecret: BROKER_SECRET },
        claimMapping: HOOLI_MAPPING,
      };
      // Keycloak fails between creating the provider and linking it to the organisation.
      const provisioning = app.app.get(KeycloakProvisioningService);
      const connect = (provisioning as unknown as Connect).connect.bind(provisioning);
      const spy = vi.spyOn(provisioning as unknown as Connect, 'connect').mockImplementation(async (s) => {
        const client = await connect(s);
        client.organizations.linkIdp = () => Promise.reject(new Error('simulated failure between creating and linking'));
        return client;
      });
      try {
        const { problem, res } = await refused(tenants['hooli']!, body, 503);
        expect(problem.type).toBe('urn:auth-service:problem:dependency-unavailable');
        expect(problem.detail).toMatch(/link identity provider.*safe to retry/);
        expect(res.headers.get('retry-after')).toBe('5');
      } finally {
        spy.mockRestore();
      }
      expect(await kcAdmin.identityProviders.findOne({ realm: REALM, alias: 'hooli-entra' })).toBeNull();
      expect(await orgsWithAlias('hooli')).toHaveLength(1);

      const created = await createBinding(tenants['hooli']!, body);
      expect(created.secretFields).toEqual(['identityProviderClientSecret']);
      expect(JSON.stringify(created)).not.toContain(BROKER_SECRET);
      expect(await storedHealth(tenants['hooli']!, created.id)).toMatchObject({
        organization: 'exists (hooli)',
        identityProvider: 'created and linked (hooli-entra)',
      });

      const again = await createBinding(tenants['hooli']!, body);
      expect(await storedHealth(tenants['hooli']!, again.id)).toMatchObject({ identityProvider: 'linked (hooli-entra)' });

      const [org, ...more] = await orgsWithAlias('hooli');
      expect(more).toHaveLength(0);
      const linked = await kcAdmin.organizations.listIdentityProviders({ realm: REALM, orgId: org!.id! });
      expect(linked.map((i) => i.alias)).toEqual(['hooli-entra']);
      expect(linked[0]).toMatchObject({ providerId: 'oidc', displayName: 'Hooli Entra ID', organizationId: org!.id });
      expect(linked[0]!.config).toMatchObject({
        'kc.org.domain': 'hooli.example',
        clientId: 'kc-broker',
        tokenUrl: 'https://login.hooli.example/token',
      });
      // The secret went to Keycloak (which masks it on read), not into the binding's config.
      expect(linked[0]!.config?.['clientSecret']).toBeTruthy();
      expect((await kcAdmin.identityProviders.find({ realm: REALM })).filter((i) => i.alias === 'hooli-entra')).toHaveLength(1);
    },
  );

  itKc('answers 422 problems when the configuration or Keycloak says no, and saves nothing', async () => {
    const raviga = await createTenant('raviga', 'Raviga Capital');
    tenants['raviga'] = raviga;
    // Checked before Keycloak is asked.
    const domain = await refused(
      raviga,
      {
        kind: 'keycloak',
        config: {
          mode: 'organization',
          organizationDomains: ['raviga.example'],
          identityProvider: { ...hooliIdp, alias: 'raviga-okta', domain: 'other.example' },
        },
      },
      422,
    );
    expect(domain.problem.detail).toMatch(/identityProvider.domain must be one of organizationDomains/);
    const secretInConfig = await refused(
      raviga,
      {
        kind: 'keycloak',
        config: {
          mode: 'organization',
          identityProvider: { ...hooliIdp, alias: 'raviga-okta', domain: undefined, config: { clientSecret: 'x' } },
        },
      },
      422,
    );
    expect(secretInConfig.problem.detail).toMatch(/secrets.identityProviderClientSecret/);
    expect(secretInConfig.problem.detail).not.toMatch(/"x"/);

    // Another tenant's organisation.
    const taken = await refused(raviga, { kind: 'keycloak', config: { mode: 'organization', organizationAlias: 'hooli' } }, 422);
    expect(taken.problem).toMatchObject({
      type: 'urn:auth-service:problem:binding-invalid',
      reason: 'urn:auth-service:problem:keycloak-conflict',
    });
    expect(taken.problem.detail).toMatch(/another tenant/);
    // A domain another organisation holds: Keycloak refuses (409); nothing is half-made.
    const domainTaken = await refused(
      raviga,
      { kind: 'keycloak', config: { mode: 'organization', organizationDomains: ['hooli.example'] } },
      422,
    );
    expect(domainTaken.problem.type).toBe('urn:auth-service:problem:binding-invalid');
    expect(await orgsWithAlias('raviga')).toHaveLength(0);
    // Keycloak refuses an invalid provider setting (plain HTTP to a remote host in a realm that
    // requires TLS for external requests: 400): a 422 naming the step, and no provider left behind.
    const insecure = {
      alias: 'raviga-okta',
      providerId: 'oidc',
      config: {
        clientId: 'kc-broker',
        authorizationUrl: 'https://login.raviga.example/authorize',
        tokenUrl: 'http://login.raviga.example/token',
      },
    };
    const badIdp = await refused(raviga, { kind: 'keycloak', config: { mode: 'organization', identityProvider: insecure } }, 422);
    expect(badIdp.problem.detail).toMatch(/Keycloak refused to link identity provider \(HTTP 400\)/);
    expect(await kcAdmin.identityProviders.findOne({ realm: REALM, alias: 'raviga-okta' })).toBeNull();
    // The organisation made before that step stays (the retry reuses it).
    expect(await orgsWithAlias('raviga')).toHaveLength(1);
    // The same display name as another tenant's organisation: Keycloak's names are unique.
    const twin = await createTenant('hooli-twin', 'Hooli XYZ');
    const named = await refused(twin, { kind: 'keycloak', config: { mode: 'organization' } }, 422);
    expect(named.problem.detail).toMatch(/another organisation has its name/);
    await createBinding(twin, { kind: 'keycloak', config: { mode: 'organization', organizationName: 'Hooli XYZ (twin)' } });
    expect((await orgsWithAlias('hooli-twin'))[0]).toMatchObject({ name: 'Hooli XYZ (twin)' });
  });

  itKc('a member signs in end to end through the binding made by the admin API (test login, activate, BFF flow)', async () => {
    const res = await admin.call('GET', bindingsPath(tenants['hooli']!));
    const [latest] = (await json<{ items: BindingView[] }>(res)).items;
    await createKeycloakUser(REALM, 'gavin', 'hooli');
    await testLoginAndActivate(tenants['hooli']!, latest!.id, 'gavin');
    const { keycloakUrl, claims } = await bffLogin('hooli', 'gavin');
    expect(keycloakUrl.pathname).toBe(`/realms/${REALM}/protocol/openid-connect/auth`);
    expect(keycloakUrl.searchParams.get('scope')).toContain('organization:hooli');
    expect(claims).toMatchObject({ tid: tenants['hooli'], org: 'hooli', idp: 'keycloak' });
    expect(claims.roles).toEqual(['HOOLI_MEMBER', 'USER']);
  });
});

describe('dedicated-realm mode through the admin API', () => {
  const secret = `test-only-${randomBytes(16).toString('hex')}`;

  itKc(
    'creating the binding creates the realm and this service’s client with the binding’s secret; a second create is idempotent',
    async () => {
      tenants['vandelay'] = await createTenant('vandelay', 'Vandelay Industries');
      expect(await kcAdmin.realms.findOne({ realm: DEDICATED_REALM })).toBeNull();
      const body = {
        kind: 'keycloak',
        config: { mode: 'dedicated_realm', realm: DEDICATED_REALM },
        secrets: { clientSecret: secret },
        claimMapping: { defaultRoles: ['USER'] },
      };
      const binding = await createBinding(tenants['vandelay'], body);
      expect(await storedHealth(tenants['vandelay'], binding.id)).toMatchObject({ realm: `created (${DEDICATED_REALM})`, discovery: 'ok' });

      const realm = await kcAdmin.realms.findOne({ realm: DEDICATED_REALM });
      expect(realm).toMatchObject({ realm: DEDICATED_REALM, enabled: true, displayName: 'Vandelay Industries' });
      expect(realm!.attributes?.['platform_tenant_id']).toBe(tenants['vandelay']);
      const clients = await kcAdmin.clients.find({ realm: DEDICATED_REALM, clientId: 'auth-service' });
      expect(clients).toHaveLength(1);
      expect((await kcAdmin.clients.getClientSecret({ realm: DEDICATED_REALM, id: clients[0]!.id! })).value).toBe(secret);
      expect(clients[0]!.redirectUris).toEqual([`${app.url}/login/callback/keycloak`]);

      const again = await createBinding(tenants['vandelay'], body);
      expect(await storedHealth(tenants['vandelay'], again.id)).toMatchObject({ realm: `exists (${DEDICATED_REALM})` });
      expect(await kcAdmin.clients.find({ realm: DEDICATED_REALM, clientId: 'auth-service' })).toHaveLength(1);
      expect((await kcAdmin.realms.find()).filter((r) => r.realm === DEDICATED_REALM)).toHaveLength(1);
    },
  );

  itKc('refuses (422) another secret for the existing realm client, and another tenant’s realm, without changing them', async () => {
    const wrong = await refused(
      tenants['vandelay']!,
      {
        kind: 'keycloak',
        config: { mode: 'dedicated_realm', realm: DEDICATED_REALM },
        secrets: { clientSecret: 'not-the-realm-client-secret' },
      },
      422,
    );
    expect(wrong.problem.detail).toMatch(/exists with another secret/);
    expect(wrong.problem.detail).not.toContain('not-the-realm-client-secret');
    const [client] = await kcAdmin.clients.find({ realm: DEDICATED_REALM, clientId: 'auth-service' });
    expect((await kcAdmin.clients.getClientSecret({ realm: DEDICATED_REALM, id: client!.id! })).value).toBe(secret);

    const other = await refused(
      tenants['raviga']!,
      { kind: 'keycloak', config: { mode: 'dedicated_realm', realm: DEDICATED_REALM }, secrets: { clientSecret: secret } },
      422,
    );
    expect(other.problem.detail).toMatch(/another tenant/);
  });

  itKc('a user of the dedicated realm signs in end to end through it', async () => {
    const [latest] = (await json<{ items: BindingView[] }>(await admin.call('GET', bindingsPath(tenants['vandelay']!)))).items;
    await createKeycloakUser(DEDICATED_REALM, 'kramer');
    await testLoginAndActivate(tenants['vandelay']!, latest!.id, 'kramer');
    const { keycloakUrl, claims } = await bffLogin('vandelay', 'kramer');
    expect(keycloakUrl.pathname).toBe(`/realms/${DEDICATED_REALM}/protocol/openid-connect/auth`);
    expect(keycloakUrl.searchParams.get('scope')).not.toMatch(/organization/);
    expect(claims).toMatchObject({ tid: tenants['vandelay'], org: 'vandelay', idp: 'keycloak', roles: ['USER'] });
  });
});

describe('Keycloak unavailable', () => {
  itKc(
    'answers 503 problem+json when Keycloak cannot be reached, and saves nothing',
    async () => {
      const tenantId = await createTenant('bachmanity', 'Bachmanity');
      // Keycloak gone for this service: every connection to it refused, as with a stopped server
      // (the shared server itself keeps running for the other files).
      await proxy.down();
      const { problem, res } = await refused(tenantId, { kind: 'keycloak', config: { mode: 'organization' } }, 503);
      expect(problem).toMatchObject({ type: 'urn:auth-service:problem:dependency-unavailable', title: 'Keycloak unavailable' });
      expect(problem.detail).toMatch(/safe to retry/);
      expect(res.headers.get('retry-after')).toBe('5');
      expect(JSON.stringify(problem)).not.toMatch(/ECONNREFUSED|fetch failed|at .*\.ts/);
    },
    120_000,
  );
});
