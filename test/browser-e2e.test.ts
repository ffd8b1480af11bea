/**
 * Real-browser end to end, from the example SPA through each adapter's real peer: one service (its
 * PUBLIC_URL on http://localhost, as a browser reaches it), the example BFF of examples/bff-spa
 * started in-process with `createBff` and registered through the admin API as ops register it, and
 * one tenant per adapter, each bound through the admin API (create, test login, activate):
 *
 * - native: the service's hosted form;
 * - tenant OIDC: oidc-provider (test/peers/oidc-provider.ts), its own login page;
 * - tenant SAML: Debian's SimpleSAMLphp (test/peers/simplesamlphp.ts), its own login page and its
 *   auto-POST of the SAMLResponse to the service's ACS;
 * - Keycloak Organizations: the run's shared Keycloak (test/peers/keycloak-shared.ts), a member of
 *   the tenant's Organization on Keycloak's own login pages.
 *
 * Each sign-in runs in headless Chromium (its own browser context: no cookie crosses between
 * adapters) and starts on the SPA page: type the organisation → the upstream's login page → back
 * in the SPA with the right claims (the platform user's `sub`, the email, a mapped role) → the
 * SPA's API call through the BFF (which verifies the access token and calls userinfo with it) →
 * sign out → signed out in the SPA, and the BFF session is gone.
 *
 * With SCREENSHOTS_DIR set (a directory), a PNG of each upstream's login page and of the SPA signed
 * in is written there (`<adapter>-login.png`, `<adapter>-spa-signed-in.png`).
 *
 * Peers that cannot be provisioned skip their test with the reason outside CI; under CI=true
 * nothing skips.
 */
import { mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BrowserContext, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type KcAdminClient from '@keycloak/keycloak-admin-client';
import { createBff } from '../examples/bff-spa/bff.js';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { adminClient, type AdminClient } from './support/admin.js';
import { get, postForm } from './support/bff.js';
import { freePort } from './support/free-port.js';
import { createNativeUser, nativeTenant } from './support/native-tenant.js';
import { startChromium, type ChromiumPeer } from './peers/chromium.js';
import { peerOrSkip } from './peers/peer-unavailable.js';
import { startOidcProvider, type OidcProviderPeer } from './peers/oidc-provider.js';
import { oidcProviderLogin } from './peers/oidc-provider-login.js';
import { startSimpleSamlIdp, type SimpleSamlIdp, type SimpleSamlUser } from './peers/simplesamlphp.js';
import { simpleSamlLogin } from './peers/simplesamlphp-login.js';
import { acquireKeycloak, uniqueRealmName, type SharedKeycloak } from './peers/keycloak-shared.js';
import { headlessLogin } from './peers/keycloak-login.js';
import { createKeycloakUser } from './peers/keycloak-realm-helpers.js';

const realmFile = fileURLToPath(new URL('../keycloak-realm.json', import.meta.url));
/** The service's shared Keycloak realm: this file's copy of keycloak-realm.json (the instance is shared with other files). */
const REALM = uniqueRealmName('platform');
// Development value from keycloak-realm.json (documented there as a public dev-only secret).
const KEYCLOAK_CLIENT_SECRET = 'dev-only-auth-service-secret';
const BFF_CLIENT_ID = 'e2e-spa-bff';
const OP_CLIENT = { id: 'auth-service-e2e', secret: 'e2e-op-client-secret-0123456789abcdef' };
// Claim URIs as Entra ID and ADFS send them.
const SAML_EMAIL = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress';
const SAML_NAME = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name';
const SAML_ROLE = 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role';
/** Long enough for a cold Keycloak page or a first PHP request; never asserted on. */
const STEP_TIMEOUT_MS = 60_000;

const NATIVE = { org: 'e2e-native', username: 'nora', password: 'a long native passphrase 42', email: 'nora@e2e-native.example' };
const OIDC = { org: 'e2e-oidc', sub: 'olaf', password: 'olaf-at-the-op-17', email: 'olaf@e2e-oidc.example' };
const SAML_USER: SimpleSamlUser = {
  username: 'sam',
  password: 'sam-at-simplesaml-9',
  attributes: { [SAML_EMAIL]: ['sam@e2e-saml.example'], [SAML_NAME]: ['Sam Saml'], [SAML_ROLE]: ['MY_PROJECT_SUPER_ADMIN', 'UNMAPPED'] },
};
const SAML = { org: 'e2e-saml' };
const KEYCLOAK = { org: 'e2e-keycloak', username: 'kira', password: 'test-only-Pa55word-not-real' };

let app: TestApp | undefined;
let admin: AdminClient;
let origin = '';
let bffUrl = '';
let bffServer: Server | undefined;
let chromium: ChromiumPeer | undefined;
let browserUnavailable: string | undefined;
let op: OidcProviderPeer | undefined;
let idp: SimpleSamlIdp | undefined;
let samlUnavailable: string | undefined;
let kc: SharedKeycloak | undefined;
let kcAdmin: KcAdminClient | undefined;
let keycloakUnavailable: string | undefined;

const json = async <T>(res: Response): Promise<T> => (await res.json()) as T;
const bindingsPath = (tenantId: string) => `/admin/v1/tenants/${tenantId}/bindings`;

async function createTenant(slug: string, displayName: string): Promise<string> {
  const res = await admin.call('POST', '/admin/v1/tenants', { slug, displayName });
  expect(res.status, await res.clone().text()).toBe(201);
  return (await json<{ id: string }>(res)).id;
}

/** Creates a draft binding, runs its test login (`testLogin` plays the customer's IT admin), activates it. */
async function bindAndActivate(tenantId: string, body: Record<string, unknown>, testLogin: (url: string) => Promise<void>): Promise<void> {
  const created = await admin.call('POST', bindingsPath(tenantId), body);
  expect(created.status, await created.clone().text()).toBe(201);
  const { id } = await json<{ id: string }>(created);
  const started = await admin.call('POST', `${bindingsPath(tenantId)}/${id}/test-login`);
  expect(started.status, await started.clone().text()).toBe(200);
  await testLogin((await json<{ url: string }>(started)).url);
  const current = await admin.call('GET', `${bindingsPath(tenantId)}/${id}`);
  const activated = await admin.call('POST', `${bindingsPath(tenantId)}/${id}/activate`, undefined, {
    'if-match': current.headers.get('etag') ?? '',
  });
  expect(activated.status, await activated.clone().text()).toBe(200);
}

/** The platform user the service made (or had) for this email in the tenant: the `sub` the SPA must show. */
async function platformUserId(tenantId: string, email: string): Promise<string> {
  const res = await admin.call('GET', `/admin/v1/tenants/${tenantId}/users?q=${encodeURIComponent(email)}`);
  expect(res.status).toBe(200);
  const { items } = await json<{ items: { id: string; email: string | null }[] }>(res);
  const user = items.find((u) => u.email === email);
  expect(user, `no platform user with email ${email}: ${JSON.stringify(items)}`).toBeDefined();
  return user!.id;
}

async function screenshot(page: Page, name: string): Promise<void> {
  const dir = process.env['SCREENSHOTS_DIR'];
  if (!dir) return;
  await mkdir(dir, { recursive: true });
  await page.screenshot({ path: `${join(dir, name)}.png`, fullPage: true });
}

interface Me {
  org: string;
  idToken: Record<string, unknown>;
  accessToken: Record<string, unknown>;
  userinfo: Record<string, unknown>;
}

interface Expected {
  sub: string;
  email: string;
  idp: string;
  roles: string[];
  /** What the SPA shows as "signed in as" (the ID token's name, else its email). */
  who: string;
}

/**
 * One person's sign-in in the browser, from the SPA: `upstreamLogin` drives the upstream's own
 * page(s) (the page is on them when it is called) and returns when it has submitted the last one.
 */
async function signInFromSpa(
  adapter: string,
  org: string,
  upstream: { origin: string; pathPrefix?: string },
  upstreamLogin: (page: Page) => Promise<void>,
  expected: () => Promise<Expected>,
  signOut: { via?: string[]; after?: () => Promise<void> } = {},
): Promise<void> {
  const context: BrowserContext = await chromium!.browser.createBrowserContext();
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  page.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
  // Script errors and CSP violations on the SPA's pages (Chromium reports both on the console).
  const problems: string[] = [];
  page.on('pageerror', (err) => {
    if (page.url().startsWith(bffUrl)) problems.push(String(err));
  });
  page.on('console', (m) => {
    const at = m.location().url ?? '';
    if (m.type() === 'error' && at.startsWith(bffUrl) && !(m.text().includes('401') && at.startsWith(`${bffUrl}/api/me`)))
      problems.push(`${m.text()} ${at}`);
  });
  // Every top-level request the browser makes, redirects included: the path it took.
  const visited: string[] = [];
  page.on('request', (r) => {
    if (r.isNavigationRequest() && r.frame() === page.mainFrame()) visited.push(r.url());
  });
  const pathOf = (u: string) => {
    const url = new URL(u);
    return `${url.origin}${url.pathname}`;
  };
  try {
    await page.goto(`${bffUrl}/`);
    await page.waitForSelector('#signed-out:not([hidden])');
    await page.type('#org', org);
    await Promise.all([page.waitForNavigation(), page.click('#signed-out button[type="submit"]')]);
    // The SPA's form → the BFF's /login → auth-service's /oauth2/authorize with the organisation.
    const authorize = visited.map((u) => new URL(u)).find((u) => `${u.origin}${u.pathname}` === `${origin}/oauth2/authorize`);
    expect(authorize, visited.join('\n')).toBeDefined();
    expect(authorize!.searchParams.get('org')).toBe(org);
    expect(authorize!.searchParams.get('client_id')).toBe(BFF_CLIENT_ID);
    // The BFF → auth-service's /oauth2/authorize → the upstream's own login page.
    const atUpstream = new URL(page.url());
    expect(atUpstream.origin, page.url()).toBe(upstream.origin);
    if (upstream.pathPrefix) expect(atUpstream.pathname.startsWith(upstream.pathPrefix), page.url()).toBe(true);
    await screenshot(page, `${adapter}-login`);
    await upstreamLogin(page);

    // Back in the SPA, signed in: what the BFF's /api/me answered, on the page.
    await page.waitForSelector('#signed-in:not([hidden])');
    expect(page.url()).toBe(`${bffUrl}/`);
    const want = await expected();
    expect(await page.$eval('#org-name', (e) => e.textContent)).toBe(org);
    expect(await page.$eval('#who', (e) => e.textContent)).toBe(want.who);
    const idClaims = JSON.parse(await page.$eval('#id-claims', (e) => e.textContent)) as Record<string, unknown>;
    const accessClaims = JSON.parse(await page.$eval('#access-claims', (e) => e.textContent)) as Record<string, unknown>;
    const userinfo = JSON.parse(await page.$eval('#userinfo', (e) => e.textContent)) as Record<string, unknown>;
    expect(idClaims).toMatchObject({ sub: want.sub, iss: origin, aud: BFF_CLIENT_ID, email: want.email });
    expect(accessClaims).toMatchObject({ sub: want.sub, iss: origin, org, idp: want.idp, client_id: BFF_CLIENT_ID });
    expect(accessClaims['roles']).toEqual(expect.arrayContaining(want.roles));
    expect(userinfo).toMatchObject({ sub: want.sub, email: want.email });
    await screenshot(page, `${adapter}-spa-signed-in`);

    // The SPA's API call through the BFF: the access token verified (JWKS) and userinfo called with it.
    const [apiCall] = await Promise.all([
      page.waitForResponse((r) => r.url() === `${bffUrl}/api/me` && r.request().method() === 'GET'),
      page.click('#call-api'),
    ]);
    expect(apiCall.status()).toBe(200);
    const me = (await apiCall.json()) as Me;
    expect(me.org).toBe(org);
    expect(me.accessToken).toMatchObject({ sub: want.sub, org, idp: want.idp });
    expect(me.userinfo).toMatchObject({ sub: want.sub, email: want.email });
    await page.waitForSelector('#signed-in:not([hidden])');
    expect(await page.$eval('#error', (e) => (e as HTMLElement).hidden)).toBe(true);

    // Sign out: the BFF, auth-service's end-session endpoint (and, for Keycloak, Keycloak's), back to the SPA.
    const session = (await context.cookies()).find((c) => c.name === 'bff_session');
    expect(session, 'the BFF session cookie').toMatchObject({ httpOnly: true, sameSite: 'Lax' });
    visited.length = 0;
    await page.click('form[action="/logout"] button');
    await page.waitForSelector('#signed-out:not([hidden])');
    expect(page.url()).toBe(`${bffUrl}/`);
    const expectedPath = [`${bffUrl}/logout`, `${origin}/oauth2/logout`, ...(signOut.via ?? []), `${bffUrl}/`];
    expect(visited.map(pathOf)).toEqual(expectedPath);
    await signOut.after?.();
    const after = await page.evaluate(async () => (await fetch('/api/me', { headers: { accept: 'application/json' } })).status);
    expect(after).toBe(401);
    // The old session cookie is dead at the BFF, not only forgotten by this browser.
    expect((await fetch(`${bffUrl}/api/me`, { headers: { cookie: `bff_session=${session!.value}` } })).status).toBe(401);
    expect(problems).toEqual([]);
  } finally {
    await context.close();
  }
}

/** Types into a field and submits its form with Enter (as a person does), waiting for the next page. */
async function fillAndSubmit(page: Page, fields: Record<string, string>): Promise<void> {
  let last = '';
  for (const [selector, value] of Object.entries(fields)) {
    await page.waitForSelector(selector, { visible: true });
    await page.type(selector, value);
    last = selector;
  }
  await Promise.all([page.waitForNavigation(), page.focus(last).then(() => page.keyboard.press('Enter'))]);
}

beforeAll(async () => {
  const browser = await peerOrSkip('chromium', startChromium);
  chromium = browser.peer;
  browserUnavailable = browser.unavailable;
  if (browserUnavailable) return;

  const port = await freePort();
  origin = `http://localhost:${port}`;
  const bffPort = await freePort();
  bffUrl = `http://localhost:${bffPort}`;

  // The tenant OIDC IdP (in-process: always there).
  op = await startOidcProvider({
    issuerPath: '/e2e-op',
    clients: [{ client_id: OP_CLIENT.id, client_secret: OP_CLIENT.secret, redirect_uris: [`${origin}/login/callback/oidc`] }],
    accounts: [
      {
        sub: OIDC.sub,
        password: OIDC.password,
        claims: { email: OIDC.email, email_verified: true, name: 'Olaf Oidc', groups: ['e2e-admins'] },
      },
    ],
  });
  // The tenant SAML IdP: SimpleSAMLphp knows the service's SP by its entityID and ACS.
  const saml = await peerOrSkip('SimpleSAMLphp', () =>
    startSimpleSamlIdp({ sps: [{ entityId: `${origin}/saml/${SAML.org}`, acsUrl: `${origin}/saml/${SAML.org}/acs` }], users: [SAML_USER] }),
  );
  idp = saml.peer;
  samlUnavailable = saml.unavailable;
  // The run's shared Keycloak, with this file's own copy of the service's realm.
  const keycloak = await peerOrSkip('keycloak', () => acquireKeycloak('browser-e2e.test.ts'));
  kc = keycloak.peer;
  keycloakUnavailable = keycloak.unavailable;
  if (kc) {
    await kc.importRealmFile(realmFile, REALM);
    kcAdmin = await kc.adminClient(REALM);
  }

  app = await startTestApp({
    PORT: String(port),
    PUBLIC_URL: origin,
    RATE_LIMIT_LOGIN_PER_MINUTE: '1000',
    RATE_LIMIT_AUTHORIZE_PER_MINUTE: '1000',
    ...(kc
      ? {
          KEYCLOAK_URL: kc.baseUrl,
          KEYCLOAK_REALM: REALM,
          KEYCLOAK_CLIENT_SECRET,
          KEYCLOAK_ADMIN_USERNAME: kc.adminUser,
          KEYCLOAK_ADMIN_PASSWORD: kc.adminPassword,
        }
      : {}),
  });
  admin = await adminClient(app);

  // The example BFF, registered as examples/bff-spa/README.md says (a client of kind bff, its exact URIs).
  const client = await admin.call('POST', '/admin/v1/clients', {
    id: BFF_CLIENT_ID,
    name: 'Example SPA (browser e2e)',
    kind: 'bff',
    redirectUris: [`${bffUrl}/callback`],
    postLogoutRedirectUris: [`${bffUrl}/`],
  });
  expect(client.status, await client.clone().text()).toBe(201);
  const { clientSecret } = await json<{ clientSecret: string }>(client);
  const bff = await createBff({ issuer: origin, clientId: BFF_CLIENT_ID, clientSecret, publicUrl: bffUrl });
  bffServer = createServer(bff);
  await new Promise<void>((resolve, reject) => bffServer!.listen(bffPort, '127.0.0.1', resolve).once('error', reject));
}, 600_000);

afterAll(async () => {
  // The browser first: it holds connections to the service, the BFF and the peers open.
  await chromium?.close();
  if (bffServer) {
    bffServer.closeAllConnections();
    await new Promise((resolve) => bffServer!.close(resolve));
  }
  await app?.close();
  await Promise.allSettled([op?.stop(), idp?.stop(), kc?.release()]);
}, 60_000);

describe('the example SPA in a real browser, through each adapter’s real peer', { timeout: 300_000 }, () => {
  it('native: the hosted form', async (ctx) => {
    if (browserUnavailable) ctx.skip(browserUnavailable);
    const t = await nativeTenant(app!, admin, NATIVE.org);
    const user = await createNativeUser(admin, t.id, {
      username: NATIVE.username,
      password: NATIVE.password,
      email: NATIVE.email,
      emailVerified: true,
      displayName: 'Nora Native',
      roles: ['E2E_USER'],
    });
    await signInFromSpa(
      'native',
      NATIVE.org,
      { origin, pathPrefix: '/login/native/' },
      async (page) => {
        await fillAndSubmit(page, { '#username': NATIVE.username, '#password': NATIVE.password });
        // An offer to add a passkey after a password sign-in, where the tenant allows passkeys: "Not now".
        const skip = await page.$('form:has(input[value="passkey-skip"]) button');
        if (skip) await Promise.all([page.waitForNavigation(), skip.click()]);
      },
      async () => ({ sub: user.id, email: NATIVE.email, idp: 'native', roles: ['E2E_USER'], who: 'Nora Native' }),
    );
  });

  it('tenant OIDC: oidc-provider’s login page', async (ctx) => {
    if (browserUnavailable) ctx.skip(browserUnavailable);
    const tenantId = await createTenant(OIDC.org, 'E2E OIDC Inc');
    await bindAndActivate(
      tenantId,
      {
        kind: 'oidc',
        config: { issuer: op!.issuer, clientId: OP_CLIENT.id },
        secrets: { clientSecret: OP_CLIENT.secret },
        claimMapping: { defaultRoles: ['MEMBER'], roles: [{ claim: 'groups', value: 'e2e-admins', role: 'E2E_ADMIN' }] },
      },
      async (url) => {
        const callback = await oidcProviderLogin(url, {
          login: OIDC.sub,
          password: OIDC.password,
          callbackPrefix: `${origin}/login/callback/oidc`,
        });
        const done = await get(callback);
        expect(done.headers.get('location')).toBe(`${origin}/login/test-complete?outcome=success`);
      },
    );
    await signInFromSpa(
      'oidc',
      OIDC.org,
      { origin: op!.origin, pathPrefix: '/e2e-op/interaction/' },
      (page) => fillAndSubmit(page, { 'input[name="login"]': OIDC.email, 'input[name="password"]': OIDC.password }),
      async () => ({
        sub: await platformUserId(tenantId, OIDC.email),
        email: OIDC.email,
        idp: 'oidc',
        roles: ['MEMBER', 'E2E_ADMIN'],
        who: 'Olaf Oidc',
      }),
    );
  });

  it('tenant SAML: SimpleSAMLphp’s login page and its POST to the ACS', async (ctx) => {
    if (browserUnavailable) ctx.skip(browserUnavailable);
    if (samlUnavailable) ctx.skip(samlUnavailable);
    const tenantId = await createTenant(SAML.org, 'E2E SAML GmbH');
    const email = SAML_USER.attributes[SAML_EMAIL]![0]!;
    await bindAndActivate(
      tenantId,
      {
        kind: 'saml',
        config: { idpMetadataUrl: idp!.metadataUrl },
        claimMapping: {
          email: SAML_EMAIL,
          name: SAML_NAME,
          trustEmailVerified: true,
          roles: [{ claim: SAML_ROLE, value: 'MY_PROJECT_SUPER_ADMIN', role: 'SUPER_ADMIN' }],
          defaultRoles: ['MEMBER'],
        },
      },
      async (url) => {
        const form = await simpleSamlLogin(url, SAML_USER.username, SAML_USER.password);
        const done = await postForm(form.acsUrl, {
          SAMLResponse: form.SAMLResponse,
          ...(form.RelayState ? { RelayState: form.RelayState } : {}),
        });
        expect(done.headers.get('location')).toBe(`${origin}/login/test-complete?outcome=success`);
      },
    );
    await signInFromSpa(
      'saml',
      SAML.org,
      { origin: new URL(idp!.baseUrl).origin },
      // SimpleSAMLphp's exampleauth page; its next page posts the SAMLResponse to the ACS by itself.
      (page) => fillAndSubmit(page, { 'input[name="username"]': SAML_USER.username, 'input[name="password"]': SAML_USER.password }),
      async () => ({
        sub: await platformUserId(tenantId, email),
        email,
        idp: 'saml',
        roles: ['MEMBER', 'SUPER_ADMIN'],
        who: 'Sam Saml',
      }),
    );
  });

  it('Keycloak Organizations: a member on Keycloak’s login pages', async (ctx) => {
    if (browserUnavailable) ctx.skip(browserUnavailable);
    if (keycloakUnavailable) ctx.skip(keycloakUnavailable);
    const tenantId = await createTenant(KEYCLOAK.org, 'E2E Keycloak Corp');
    const email = `${KEYCLOAK.username}@users.example.test`;
    let kcUserId = '';
    await bindAndActivate(
      tenantId,
      {
        kind: 'keycloak',
        config: { mode: 'organization' },
        claimMapping: { roles: [{ claim: 'organization', value: KEYCLOAK.org, role: 'ORG_MEMBER' }], defaultRoles: ['USER'] },
      },
      async (url) => {
        // Saving the binding made the tenant's Organization in the realm (alias = slug): its member signs in.
        kcUserId = await createKeycloakUser(kcAdmin!, REALM, KEYCLOAK.username, KEYCLOAK.password, { orgs: [KEYCLOAK.org] });
        const kcLogin = await headlessLogin({
          startUrl: url,
          username: KEYCLOAK.username,
          password: KEYCLOAK.password,
          stopAt: `${origin}/login/callback/keycloak`,
        });
        const done = await get(kcLogin.callbackUrl.href);
        expect(done.headers.get('location')).toBe(`${origin}/login/test-complete?outcome=success`);
      },
    );

    // The test login above left a Keycloak session of its own (a headless drive that never signs out).
    const kcSessions = async () => (await kcAdmin!.users.listSessions({ realm: REALM, id: kcUserId })).map((x) => x.id).sort();
    const before = await kcSessions();
    await signInFromSpa(
      'keycloak',
      KEYCLOAK.org,
      { origin: kc!.baseUrl, pathPrefix: `/realms/${REALM}/` },
      async (page) => {
        // With Organizations enabled Keycloak asks for the username first, then the password
        // (identity-first); the classic page asks for both at once.
        await page.waitForSelector('#username', { visible: true });
        if (await page.$('#password')) {
          await fillAndSubmit(page, { '#username': KEYCLOAK.username, '#password': KEYCLOAK.password });
        } else {
          await fillAndSubmit(page, { '#username': KEYCLOAK.username });
          await fillAndSubmit(page, { '#password': KEYCLOAK.password });
        }
      },
      async () => {
        // Signed in: the browser has a Keycloak session of its own.
        expect((await kcSessions()).length).toBe(before.length + 1);
        return {
          sub: await platformUserId(tenantId, email),
          email,
          idp: 'keycloak',
          roles: ['ORG_MEMBER', 'USER'],
          who: 'Kira Tester',
        };
      },
      {
        // auth-service ends Keycloak's session too (RP-initiated logout there), then comes back.
        via: [`${kc!.baseUrl}/realms/${REALM}/protocol/openid-connect/logout`, `${origin}/oauth2/logout/return`],
        // …and the browser's Keycloak session is gone (the test login's is not this browser's).
        after: async () => expect(await kcSessions()).toEqual(before),
      },
    );
  });
});
