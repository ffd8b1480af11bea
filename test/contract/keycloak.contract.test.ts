/**
 * The adapter contract (identity-provider.contract.ts) for KeycloakProvider: a tenant that is an
 * Organization of the service's shared realm (this file's own copy of keycloak-realm.json in the
 * run's shared Keycloak, test/peers/keycloak-shared.ts), provisioned by KeycloakProvisioningService;
 * Keycloak's login pages walked headlessly (test/peers/keycloak-login.ts); machine-to-machine token
 * exchange with the realm's `platform-m2m` client.
 *
 * The service reaches Keycloak through a TCP proxy of this file's: Keycloak's URL is the service's
 * (KEYCLOAK_URL), not the binding's, so "unreachable" closes that proxy's port for this file only.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, type TestContext } from 'vitest';
import { startTestApp, type TestApp } from '../support/app-harness.js';
import { peerOrSkip } from '../peers/peer-unavailable.js';
import { acquireKeycloak, startTcpProxy, uniqueRealmName, type SharedKeycloak, type TcpProxy } from '../peers/keycloak-shared.js';
import { CookieJar, headlessLogin } from '../peers/keycloak-login.js';
import { clientCredentialsToken, createKeycloakUser } from '../peers/keycloak-realm-helpers.js';
import { TenantsService } from '../../src/tenants/tenants.service.js';
import { KeycloakProvisioningService } from '../../src/identity/keycloak/keycloak-provisioning.service.js';
import { IdentityProviderRegistry } from '../../src/identity/identity-provider.registry.js';
import { OAuthError } from '../../src/common/errors.js';
import type { CallbackInput } from '../../src/identity/port/identity-provider.port.js';
import { identityProviderContract, type ContractSession } from './identity-provider.contract.js';

const realmFile = fileURLToPath(new URL('../../keycloak-realm.json', import.meta.url));
const REALM = uniqueRealmName('platform');
// Development values from keycloak-realm.json (documented there as public dev-only secrets).
const SERVICE_CLIENT_SECRET = 'dev-only-auth-service-secret';
const M2M_ID = 'platform-m2m';
const M2M_SECRET = 'dev-only-platform-m2m-secret';
const PASSWORD = 'test-only-Contract-pa55word';
const SLUG = 'kc-contract';
const USERS = ['ada', 'grace'] as const;

let kc: SharedKeycloak | undefined;
let proxy: TcpProxy | undefined;
let app: TestApp | undefined;
let unavailable: string | undefined;
let session: ContractSession;

const callbackInput = (url: URL): CallbackInput => ({
  method: 'GET',
  query: Object.fromEntries(url.searchParams),
  body: {},
  clientIp: '127.0.0.1',
});

beforeAll(async () => {
  const got = await peerOrSkip('keycloak contract', () => acquireKeycloak('contract/keycloak.contract.test.ts'));
  if (got.unavailable !== undefined) {
    unavailable = got.unavailable;
    return;
  }
  kc = got.peer;
  await kc.importRealmFile(realmFile, REALM);
  const p = (proxy = await startTcpProxy(kc.port));
  const started = (app = await startTestApp({
    KEYCLOAK_URL: p.url,
    KEYCLOAK_REALM: REALM,
    KEYCLOAK_CLIENT_SECRET: SERVICE_CLIENT_SECRET,
    KEYCLOAK_ADMIN_USERNAME: kc.adminUser,
    KEYCLOAK_ADMIN_PASSWORD: kc.adminPassword,
  }));
  const tenant = await app.app.get(TenantsService).create(SLUG, 'Keycloak contract');
  const binding = await app.app
    .get(KeycloakProvisioningService)
    .bindTenant(tenant, { mode: 'organization', config: { machineClients: [M2M_ID] } });
  const admin = await kc.adminClient(REALM, p.url);
  for (const user of USERS) await createKeycloakUser(admin, REALM, user, PASSWORD, { orgs: [SLUG] });
  const callbackUrl = `${app.config.issuer}/login/callback/keycloak`;
  session = {
    app: started,
    adapter: app.app.get(IdentityProviderRegistry).get('keycloak'),
    binding,
    users: USERS,
    expectedIssuer: `${p.url}/realms/${REALM}`,
    upstreamOrigin: p.url,
    async authenticate(redirectUrl, user) {
      // A browser of its own per login: no Keycloak SSO session carried from one login to the next.
      const result = await headlessLogin({
        startUrl: redirectUrl,
        username: user,
        password: PASSWORD,
        stopAt: callbackUrl,
        cookieJar: new CookieJar(),
      });
      return callbackInput(result.callbackUrl);
    },
    // Keycloak's machine identities: a service-account token of a client the binding lists.
    subjectToken: () => clientCredentialsToken(p.url, REALM, M2M_ID, M2M_SECRET),
    async unreachable() {
      await p.down();
      return { binding, restore: () => p.up() };
    },
  };
}, 600_000);

afterAll(async () => {
  await app?.close();
  await proxy?.close();
  await kc?.release();
}, 60_000);

const accessDenied = (err: unknown) => {
  expect(err).toBeInstanceOf(OAuthError);
  expect((err as OAuthError).error).toBe('access_denied');
};
const invalidGrant = (err: unknown) => {
  expect(err).toBeInstanceOf(OAuthError);
  expect((err as OAuthError).error).toBe('invalid_grant');
};
const query = (cb: CallbackInput, name: string, value: string | undefined): CallbackInput => ({
  ...cb,
  query: { ...cb.query, [name]: value },
});
const payloadOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;

identityProviderContract({
  kind: 'keycloak',
  login: 'browser',
  session(ctx: TestContext) {
    if (unavailable) ctx.skip(unavailable);
    return session;
  },
  tamperCallback: {
    'the state altered': { alter: (cb) => query(cb, 'state', `${cb.query['state']}x`), refused: accessDenied },
    'the code altered': { alter: (cb) => query(cb, 'code', `${cb.query['code']}x`), refused: accessDenied },
    'the code removed': { alter: (cb) => query(cb, 'code', undefined), refused: accessDenied },
    'the iss altered (mix-up)': { alter: (cb) => query(cb, 'iss', 'https://keycloak.evil.example/realms/platform'), refused: accessDenied },
  },
  tamperSubjectToken: {
    'the payload altered under the same signature (a day more of life)': {
      alter: (t) => {
        const [header, , signature] = t.split('.');
        const claims = payloadOf(t);
        return [
          header,
          Buffer.from(JSON.stringify({ ...claims, exp: (claims['exp'] as number) + 86_400 })).toString('base64url'),
          signature,
        ].join('.');
      },
      refused: invalidGrant,
    },
    'the signature removed': { alter: (t) => `${t.split('.').slice(0, 2).join('.')}.`, refused: invalidGrant },
  },
  replay: { refused: accessDenied },
  crossTransaction: { refused: accessDenied },
  probe: 'supported',
});
