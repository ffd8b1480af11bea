/**
 * Onboarding a customer's IdP through the admin API, end to end against the real peers: the
 * `oidc-provider` OP bound by its discovery URL, Debian's SimpleSAMLphp bound by its metadata.
 * Every binding is checked at the door (discovery, issuer, JWKS; metadata, signing certificates
 * and their expiry) before it is saved; a draft is proven by one real test login, activated, and
 * then serves the BFF flow; rollback returns to the previous IdP and logins follow it.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { DOMParser, XMLSerializer } from '@xmldom/xmldom';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';

import { startTestApp, type TestApp } from './support/app-harness.js';
import { adminClient, type AdminClient } from './support/admin.js';
import { authorizeUrl, get, pkcePair, postForm, tokenRequest, type BffClient } from './support/bff.js';
import { seedBff } from './support/seed.js';
import { freePort } from './support/free-port.js';
import { startOidcProvider, type OidcAccount, type OidcProviderPeer } from './peers/oidc-provider.js';
import { oidcProviderLogin } from './peers/oidc-provider-login.js';
import { startSimpleSamlIdp, type SimpleSamlIdp, type SimpleSamlUser } from './peers/simplesamlphp.js';
import { simpleSamlLogin } from './peers/simplesamlphp-login.js';
import { PeerUnavailableError, peersRequired } from './peers/peer-unavailable.js';
import { BindingHealthRefresher } from '../src/admin/binding-health.refresher.js';
import { BindingsService } from '../src/tenants/bindings.service.js';
import { TenantsService } from '../src/tenants/tenants.service.js';
import { Database } from '../src/database/database.js';

const run = promisify(execFile);

const CLIENT_ID = 'auth-service';
const CLIENT_SECRET = 'onboarding-op-secret-0123456789abcdef';
const EMAIL = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress';
const ROLE = 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role';
const NS_MD = 'urn:oasis:names:tc:SAML:2.0:metadata';
const NS_DS = 'http://www.w3.org/2000/09/xmldsig#';

const OIDC_MAPPING = {
  roles: [
    { claim: 'roles', value: 'MY_PROJECT_SUPER_ADMIN', role: 'SUPER_ADMIN' },
    { claim: 'roles', value: 'MY_PROJECT_USER', role: 'USER' },
  ],
  defaultRoles: ['MEMBER'],
  linkByVerifiedEmail: true,
};
const SAML_MAPPING = {
  email: EMAIL,
  trustEmailVerified: true,
  linkByVerifiedEmail: true,
  roles: [{ claim: ROLE, value: 'MY_PROJECT_SUPER_ADMIN', role: 'SUPER_ADMIN' }],
  defaultRoles: ['MEMBER'],
};

const account = (sub: string, claims: Record<string, unknown>): OidcAccount => ({ sub, password: `${sub}-pw`, claims });
const SAML_ALICE: SimpleSamlUser = {
  username: 'fab-alice',
  password: 'fab-alice-pw',
  attributes: { [EMAIL]: ['alice@fabrikam.example'], [ROLE]: ['MY_PROJECT_SUPER_ADMIN', 'UNMAPPED'] },
};
const SAML_CAROL: SimpleSamlUser = {
  username: 'contoso-carol',
  password: 'contoso-carol-pw',
  attributes: { [EMAIL]: ['carol@contoso.example'], [ROLE]: ['MY_PROJECT_USER'] },
};

let app: TestApp;
let admin: AdminClient;
let bff: BffClient;
let op: OidcProviderPeer;
let callbackUrl: string;
let idp: SimpleSamlIdp | undefined;
let samlStartError: unknown;
let workDir: string;
let crafted: Server;
let craftedOrigin: string;
/** A platform token of a customer tenant's SUPER_ADMIN (from the OIDC onboarding). */
let customerSuperAdminToken: string | undefined;

const json = async <T = Record<string, unknown>>(res: Response): Promise<T> => (await res.json()) as T;

/** The SAML peer, or a skip (outside CI) / a failure (CI) when it cannot run here. */
const samlPeer = (ctx: TestContext): SimpleSamlIdp => {
  if (samlStartError instanceof PeerUnavailableError && !peersRequired()) ctx.skip(samlStartError.message);
  if (samlStartError !== undefined || !idp) throw samlStartError ?? new Error('SimpleSAMLphp IdP not started');
  return idp;
};

/** A tiny OP stand-in that publishes what a live OP cannot be made to publish. */
async function startCraftedDiscovery(): Promise<void> {
  crafted = createServer((req, res) => {
    const url = new URL(req.url ?? '/', craftedOrigin);
    const [, name, rest] = /^\/([^/]+)(\/.*)$/.exec(url.pathname) ?? [];
    const issuer = `${craftedOrigin}/${name}`;
    const send = (body: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    if (rest === '/.well-known/openid-configuration')
      return send({
        issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/jwks`,
        response_types_supported: name === 'implicit-only' ? ['id_token', 'id_token token'] : ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
      });
    // Only a symmetric key: nothing an ID token's signature could be checked against.
    if (rest === '/jwks') return send({ keys: [{ kty: 'oct', k: randomBytes(32).toString('base64url'), kid: 'shared' }] });
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => crafted.listen(0, '127.0.0.1', resolve));
  craftedOrigin = `http://127.0.0.1:${(crafted.address() as AddressInfo).port}`;
}

/** A self-signed certificate that expired in 2020 (`openssl ca` accepts explicit validity dates; `req -days` does not go negative). */
async function expiredCertificate(dir: string): Promise<string> {
  const key = join(dir, 'expired.key');
  const csr = join(dir, 'expired.csr');
  const cert = join(dir, 'expired.crt');
  await writeFile(join(dir, 'index.txt'), '');
  await writeFile(join(dir, 'serial'), '01\n');
  await writeFile(
    join(dir, 'ca.cnf'),
    [
      '[ca]',
      'default_ca = d',
      '[d]',
      `database = ${join(dir, 'index.txt')}`,
      `new_certs_dir = ${dir}`,
      `serial = ${join(dir, 'serial')}`,
      'default_md = sha256',
      'policy = p',
      'unique_subject = no',
      '[p]',
      'commonName = supplied',
      '',
    ].join('\n'),
  );
  await run('openssl', ['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=expired IdP signer', '-keyout', key, '-out', csr]);
  await run('openssl', [
    'ca',
    '-batch',
    '-config',
    join(dir, 'ca.cnf'),
    '-selfsign',
    '-keyfile',
    key,
    '-in',
    csr,
    '-startdate',
    '20200101000000Z',
    '-enddate',
    '20200201000000Z',
    '-notext',
    '-out',
    cert,
  ]);
  return readFile(cert, 'utf8');
}

/** The peer's metadata with its signing certificates removed, or replaced by `certPem`. */
function withCertificates(metadataXml: string, certPem: string | undefined): string {
  const doc = new DOMParser().parseFromString(metadataXml, 'text/xml');
  const descriptors = Array.from(doc.getElementsByTagNameNS(NS_MD, 'KeyDescriptor'));
  for (const kd of descriptors) {
    if (certPem === undefined) kd.parentNode!.removeChild(kd);
    else
      for (const c of Array.from(kd.getElementsByTagNameNS(NS_DS, 'X509Certificate')))
        c.textContent = certPem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, '');
  }
  return new XMLSerializer().serializeToString(doc);
}

// ---- admin API helpers --------------------------------------------------------------------------

interface BindingView {
  id: string;
  kind: string;
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
  check?: string;
}

async function createTenant(slug: string): Promise<{ id: string }> {
  const res = await admin.call('POST', '/admin/v1/tenants', { slug, displayName: `${slug} Ltd` });
  expect(res.status).toBe(201);
  return json(res);
}

const bindingsPath = (tenantId: string) => `/admin/v1/tenants/${tenantId}/bindings`;

async function createBinding(tenantId: string, body: Record<string, unknown>): Promise<BindingView> {
  const res = await admin.call('POST', bindingsPath(tenantId), body);
  if (res.status !== 201) throw new Error(`binding create answered ${res.status}: ${await res.text()}`);
  return json(res);
}

/** POSTs a binding that must be refused; returns the problem and checks nothing was saved. */
async function refused(tenantId: string, body: Record<string, unknown>, status = 422): Promise<Problem> {
  const count = async () => (await json<{ items: unknown[] }>(await admin.call('GET', bindingsPath(tenantId)))).items.length;
  const before = await count();
  const res = await admin.call('POST', bindingsPath(tenantId), body);
  const problem = await json<Problem>(res);
  expect(res.status, JSON.stringify(problem)).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
  expect(await count()).toBe(before);
  return problem;
}

async function activate(tenantId: string, bindingId: string): Promise<BindingView> {
  const current = await admin.call('GET', `${bindingsPath(tenantId)}/${bindingId}`);
  const res = await admin.call('POST', `${bindingsPath(tenantId)}/${bindingId}/activate`, undefined, {
    'if-match': current.headers.get('etag')!,
  });
  if (res.status !== 200) throw new Error(`activate answered ${res.status}: ${await res.text()}`);
  return json(res);
}

async function testLoginUrl(tenantId: string, bindingId: string): Promise<string> {
  const res = await admin.call('POST', `${bindingsPath(tenantId)}/${bindingId}/test-login`);
  expect(res.status).toBe(200);
  return (await json<{ url: string }>(res)).url;
}

/** The customer's IT admin opens the test-login link and signs in at their OP; the service shows the result page. */
async function oidcTestLogin(tenantId: string, bindingId: string, login: string): Promise<void> {
  const url = await testLoginUrl(tenantId, bindingId);
  expect(url.startsWith(`${op.issuer}/`)).toBe(true);
  const cb = await oidcProviderLogin(url, { login, password: `${login}-pw`, callbackPrefix: callbackUrl });
  const done = await get(cb);
  expect(done.status).toBe(302);
  expect(done.headers.get('location')).toBe(`${app.url}/login/test-complete?outcome=success`);
  expect((await get(done.headers.get('location')!)).status).toBe(200);
}

async function samlTestLogin(peer: SimpleSamlIdp, tenantId: string, bindingId: string, user: SimpleSamlUser): Promise<void> {
  const url = await testLoginUrl(tenantId, bindingId);
  expect(url.startsWith(peer.ssoUrl)).toBe(true);
  const form = await simpleSamlLogin(url, user.username, user.password);
  const done = await postForm(form.acsUrl, {
    SAMLResponse: form.SAMLResponse,
    ...(form.RelayState ? { RelayState: form.RelayState } : {}),
  });
  expect(done.status).toBe(303);
  expect(done.headers.get('location')).toBe(`${app.url}/login/test-complete?outcome=success`);
}

// ---- BFF helpers --------------------------------------------------------------------------------

async function startBffLogin(org: string) {
  const { verifier, challenge } = pkcePair();
  const state = randomBytes(8).toString('hex');
  const res = await get(
    authorizeUrl(app.url, bff, { org, state, code_challenge: challenge, code_challenge_method: 'S256', nonce: `n-${state}` }),
  );
  if (res.status !== 302) throw new Error(`authorize answered ${res.status}: ${await res.text()}`);
  return { verifier, state, upstreamUrl: res.headers.get('location')! };
}

async function finishBffLogin(
  started: { verifier: string; state: string },
  back: string | null,
): Promise<{ access: JWTPayload; accessToken: string }> {
  const url = new URL(back ?? 'about:blank');
  expect(`${url.origin}${url.pathname}`).toBe(bff.redirectUri);
  expect(url.searchParams.get('error')).toBeNull();
  expect(url.searchParams.get('state')).toBe(started.state);
  const res = await tokenRequest(app.url, bff, {
    grant_type: 'authorization_code',
    code: url.searchParams.get('code')!,
    redirect_uri: bff.redirectUri,
    code_verifier: started.verifier,
  });
  const tokens = await json<{ access_token: string }>(res);
  expect(res.status).toBe(200);
  const { payload } = await jwtVerify(tokens.access_token, createRemoteJWKSet(new URL(`${app.url}/.well-known/jwks.json`)), {
    issuer: app.url,
    audience: 'platform-api',
  });
  return { access: payload, accessToken: tokens.access_token };
}

/** A user of the tenant's OP logs in through the BFF flow: authorize → OP → callback → code → platform JWT. */
async function bffOidcLogin(org: string, login: string) {
  const started = await startBffLogin(org);
  expect(started.upstreamUrl.startsWith(`${op.issuer}/`)).toBe(true);
  const cb = await oidcProviderLogin(started.upstreamUrl, { login, password: `${login}-pw`, callbackPrefix: callbackUrl });
  const back = await get(cb);
  expect(back.status).toBe(302);
  return finishBffLogin(started, back.headers.get('location'));
}

/** The same through the tenant's SAML IdP: authorize → SimpleSAMLphp → ACS → code → platform JWT. */
async function bffSamlLogin(peer: SimpleSamlIdp, org: string, user: SimpleSamlUser) {
  const started = await startBffLogin(org);
  expect(started.upstreamUrl.startsWith(peer.ssoUrl)).toBe(true);
  const form = await simpleSamlLogin(started.upstreamUrl, user.username, user.password);
  const back = await postForm(form.acsUrl, { SAMLResponse: form.SAMLResponse, RelayState: form.RelayState ?? '' });
  expect(back.status).toBe(303);
  return finishBffLogin(started, back.headers.get('location'));
}

// -------------------------------------------------------------------------------------------------

beforeAll(async () => {
  app = await startTestApp({ RATE_LIMIT_AUTHORIZE_PER_MINUTE: '1000' });
  admin = await adminClient(app);
  bff = await seedBff(app);
  callbackUrl = `${app.url}/login/callback/oidc`;
  workDir = await mkdtemp(join(tmpdir(), 'admin-onboarding-'));
  op = await startOidcProvider({
    issuerPath: '/customer-op',
    clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [callbackUrl] }],
    accounts: [
      account('nw-alice', {
        email: 'alice@northwind.example',
        email_verified: true,
        name: 'Alice Northwind',
        roles: ['MY_PROJECT_SUPER_ADMIN', 'UNMAPPED_ROLE'],
        groups: ['sales'],
      }),
      account('nw-bob', { email: 'bob@northwind.example', email_verified: true, roles: ['MY_PROJECT_USER'] }),
      account('contoso-carol', { email: 'carol@contoso.example', email_verified: true, roles: ['MY_PROJECT_USER'] }),
    ],
  });
  await startCraftedDiscovery();
  try {
    const sp = (slug: string) => ({ entityId: `${app.url}/saml/${slug}`, acsUrl: `${app.url}/saml/${slug}/acs` });
    idp = await startSimpleSamlIdp({ sps: [sp('fabrikam'), sp('contoso')], users: [SAML_ALICE, SAML_CAROL] });
  } catch (err) {
    samlStartError = err;
  }
}, 240_000);

afterAll(async () => {
  await Promise.allSettled([
    op?.stop(),
    idp?.stop(),
    new Promise<void>((resolve) => (crafted ? crafted.close(() => resolve()) : resolve())),
  ]);
  await app?.close();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

describe('onboarding an OIDC IdP by discovery URL', () => {
  let tenantId: string;
  let bindingId: string;

  it('create tenant → bind by discovery URL (checked) → test login → mapping preview → activate → a user logs in through the BFF with mapped roles', async () => {
    tenantId = (await createTenant('northwind')).id;

    const created = await admin.call('POST', bindingsPath(tenantId), {
      kind: 'oidc',
      config: { discoveryUrl: op.discoveryUrl, clientId: CLIENT_ID },
      secrets: { clientSecret: CLIENT_SECRET },
      claimMapping: OIDC_MAPPING,
    });
    expect(created.status).toBe(201);
    const binding = await json<BindingView>(created);
    bindingId = binding.id;
    expect(binding).toMatchObject({
      kind: 'oidc',
      status: 'draft',
      secretFields: ['clientSecret'],
      config: { discoveryUrl: op.discoveryUrl, clientId: CLIENT_ID },
    });

    // What the check at the door found is the binding's first health report.
    const health = await json<{ health: { ok: boolean; checks: Record<string, string> } }>(
      await admin.call('GET', `${bindingsPath(tenantId)}/${bindingId}/health?refresh=false`),
    );
    expect(health.health.ok).toBe(true);
    expect(health.health.checks).toMatchObject({
      discovery: 'ok',
      issuer: 'ok',
      endpoints: 'ok',
      responseTypes: 'ok',
      jwks: expect.stringMatching(/^ok \(\d+ signing keys?\)$/),
    });

    // A draft is activated only after a real login through it.
    const early = await admin.call('POST', `${bindingsPath(tenantId)}/${bindingId}/activate`, undefined, {
      'if-match': `"v${binding.version}"`,
    });
    expect(early.status).toBe(409);
    expect((await json<Problem>(early)).title).toBe('Test login required');

    await oidcTestLogin(tenantId, bindingId, 'nw-alice');

    // Mapping dry-run on the identity the test login captured: mapped roles only, nothing issued.
    const preview = await admin.call('POST', `${bindingsPath(tenantId)}/${bindingId}/mapping:preview`, {});
    expect(preview.status).toBe(200);
    const p = await json<{ source: string; platformClaims: Record<string, unknown>; droppedClaims: string[] }>(preview);
    expect(p.source).toBe('test-login');
    expect(p.platformClaims).toMatchObject({
      tid: tenantId,
      org: 'northwind',
      email: 'alice@northwind.example',
      email_verified: true,
      idp: 'oidc',
      idp_sub: 'nw-alice',
    });
    expect([...(p.platformClaims['roles'] as string[])].sort()).toEqual(['MEMBER', 'SUPER_ADMIN']);
    expect(p.droppedClaims).toContain('groups');

    expect((await activate(tenantId, bindingId)).status).toBe('active');

    const { access, accessToken } = await bffOidcLogin('northwind', 'nw-alice');
    expect(access).toMatchObject({ tid: tenantId, org: 'northwind', idp: 'oidc', idp_sub: 'nw-alice' });
    expect([...(access['roles'] as string[])].sort()).toEqual(['MEMBER', 'SUPER_ADMIN']);
    expect(JSON.stringify(access)).not.toMatch(/MY_PROJECT_SUPER_ADMIN|UNMAPPED_ROLE|sales/);
    customerSuperAdminToken = accessToken;

    const bob = await bffOidcLogin('northwind', 'nw-bob');
    expect([...(bob.access['roles'] as string[])].sort()).toEqual(['MEMBER', 'USER']);

    const after = await json<{ lastLoginSucceededAt: string | null; health: { ok: boolean } }>(
      await admin.call('GET', `${bindingsPath(tenantId)}/${bindingId}/health`),
    );
    expect(after.health.ok).toBe(true);
    expect(after.lastLoginSucceededAt).not.toBeNull();
  });

  it('refuses admin calls without a token (401) and with a customer tenant’s SUPER_ADMIN platform token (403)', async () => {
    expect(customerSuperAdminToken, 'set by the onboarding test').toBeDefined();
    const none = await fetch(`${app.url}${bindingsPath(tenantId)}`);
    expect(none.status).toBe(401);
    expect(none.headers.get('content-type')).toMatch(/problem\+json/);
    const customer = await fetch(`${app.url}${bindingsPath(tenantId)}`, {
      headers: { authorization: `Bearer ${customerSuperAdminToken}` },
    });
    expect(customer.status).toBe(403);
    const create = await fetch(`${app.url}${bindingsPath(tenantId)}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${customerSuperAdminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'native' }),
    });
    expect(create.status).toBe(403);
  });
});

describe('onboarding a SAML IdP by metadata', () => {
  it('create tenant → bind by metadata URL (checked, entityID pinned) → SP metadata for the IT admin → test login → activate → a user logs in through the BFF', async (ctx) => {
    const peer = samlPeer(ctx);
    const tenantId = (await createTenant('fabrikam')).id;
    const binding = await createBinding(tenantId, {
      kind: 'saml',
      config: { idpMetadataUrl: peer.metadataUrl },
      claimMapping: SAML_MAPPING,
    });
    expect(binding.status).toBe('draft');
    // The URL stays (refreshed on a schedule, certificate rollover included); the IdP's entityID is pinned.
    expect(binding.config).toEqual({ idpMetadataUrl: peer.metadataUrl, idpEntityId: peer.entityId });

    // The peer's certificate is valid for 30 days: saved, with a warning in the binding's health.
    const health = await json<{ health: { ok: boolean; checks: Record<string, string>; certificateExpiresInDays: number } }>(
      await admin.call('GET', `${bindingsPath(tenantId)}/${binding.id}/health?refresh=false`),
    );
    expect(health.health.ok).toBe(true);
    expect(health.health.certificateExpiresInDays).toBeGreaterThanOrEqual(28);
    expect(health.health.certificateExpiresInDays).toBeLessThan(30);
    expect(health.health.checks['certificates']).toMatch(/^warning: the signing certificate .* expires in 2\d days/);
    expect(health.health.checks).toMatchObject({ metadata: 'ok (url)', entityId: 'ok', sso: 'ok (HTTP-Redirect)' });

    // What the customer's IT admin imports into their IdP, available while the binding is a draft.
    const spMetadata = await get(`${app.url}/saml/fabrikam/metadata`);
    expect(spMetadata.status).toBe(200);
    const xml = await spMetadata.text();
    expect(xml).toContain(`entityID="${app.url}/saml/fabrikam"`);
    expect(xml).toContain(`Location="${app.url}/saml/fabrikam/acs"`);

    await samlTestLogin(peer, tenantId, binding.id, SAML_ALICE);
    expect((await activate(tenantId, binding.id)).status).toBe('active');

    const { access } = await bffSamlLogin(peer, 'fabrikam', SAML_ALICE);
    expect(access).toMatchObject({ tid: tenantId, org: 'fabrikam', idp: 'saml', idp_sub: 'alice@fabrikam.example' });
    expect([...(access['roles'] as string[])].sort()).toEqual(['MEMBER', 'SUPER_ADMIN']);
    expect(JSON.stringify(access)).not.toContain('UNMAPPED');
  });

  it('stores pasted metadata as its parts (entityID, HTTP-Redirect SSO URL, signing certificates)', async (ctx) => {
    const peer = samlPeer(ctx);
    const tenantId = (await createTenant('pasted-metadata')).id;
    const binding = await createBinding(tenantId, {
      kind: 'saml',
      config: { idpMetadataXml: peer.metadataXml, wantAssertionsSigned: true },
      claimMapping: SAML_MAPPING,
    });
    expect(binding.config['idpMetadataXml']).toBeUndefined();
    expect(binding.config).toMatchObject({ idpEntityId: peer.entityId, idpSsoUrl: peer.ssoUrl, wantAssertionsSigned: true });
    const pem = (s: string) => s.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, '');
    expect((binding.config['idpCertificates'] as string[]).map(pem)).toEqual([pem(peer.signingCertPem)]);
  });
});

describe('bad input is refused before anything is saved', () => {
  let tenantId: string;
  beforeAll(async () => {
    tenantId = (await createTenant('bad-input')).id;
  });
  const oidc = (config: Record<string, unknown>, secrets: Record<string, unknown> = { clientSecret: CLIENT_SECRET }) => ({
    kind: 'oidc',
    config: { clientId: CLIENT_ID, ...config },
    secrets,
  });

  it('refuses a discovery URL nobody answers (422 oidc-discovery naming the URL)', async () => {
    const dead = `http://127.0.0.1:${await freePort()}/op/.well-known/openid-configuration`;
    const p = await refused(tenantId, oidc({ discoveryUrl: dead }));
    expect(p.type).toBe('urn:auth-service:problem:oidc-discovery');
    expect(p.detail).toBe(`the discovery document at ${dead} is unreachable (connection refused)`);
  });

  it('refuses an issuer mismatch (422: expected X, discovery says Y)', async () => {
    const other = `${op.origin}/someone-else`;
    const p = await refused(tenantId, oidc({ issuer: other, discoveryUrl: op.discoveryUrl }));
    expect(p).toMatchObject({
      type: 'urn:auth-service:problem:oidc-discovery',
      check: 'issuer',
      detail: `issuer mismatch: expected ${other}, discovery says ${op.issuer}`,
    });
    // The classic near miss: a trailing slash the OP does not put in its issuer.
    const slash = await refused(tenantId, oidc({ issuer: `${op.issuer}/` }));
    expect(slash.detail).toBe(`issuer mismatch: expected ${op.issuer}/, discovery says ${op.issuer}`);
  });

  it('refuses an OP without the authorization code flow, and a JWKS without a public signing key', async () => {
    const implicit = await refused(tenantId, oidc({ issuer: `${craftedOrigin}/implicit-only` }));
    expect(implicit).toMatchObject({ type: 'urn:auth-service:problem:oidc-discovery', check: 'responseTypes' });
    expect(implicit.detail).toMatch(/does not support the authorization code flow/);
    const noKeys = await refused(tenantId, oidc({ issuer: `${craftedOrigin}/symmetric-only` }));
    expect(noKeys).toMatchObject({
      type: 'urn:auth-service:problem:oidc-jwks',
      detail: `the JWKS at ${craftedOrigin}/symmetric-only/jwks holds no public signing key`,
    });
  });

  it('refuses an OIDC binding without the secret its client authentication needs (422 oidc-config)', async () => {
    const p = await refused(tenantId, oidc({ discoveryUrl: op.discoveryUrl }, {}));
    expect(p).toMatchObject({
      type: 'urn:auth-service:problem:oidc-config',
      detail: 'secrets: clientSecret is required for client_secret_basic',
    });
  });

  it('refuses metadata without a signing certificate (422)', async (ctx) => {
    const peer = samlPeer(ctx);
    const p = await refused(tenantId, { kind: 'saml', config: { idpMetadataXml: withCertificates(peer.metadataXml, undefined) } });
    expect(p).toMatchObject({ type: 'urn:auth-service:problem:saml-metadata', detail: 'IDPSSODescriptor has no signing certificate' });
  });

  it('refuses an expired signing certificate, in metadata or configured (422 saml-certificate)', async (ctx) => {
    const peer = samlPeer(ctx);
    const expired = await expiredCertificate(workDir);
    const inMetadata = await refused(tenantId, { kind: 'saml', config: { idpMetadataXml: withCertificates(peer.metadataXml, expired) } });
    expect(inMetadata.type).toBe('urn:auth-service:problem:saml-certificate');
    expect(inMetadata.detail).toMatch(
      /^the IdP signing certificate CN=expired IdP signer \(SHA-256 [0-9a-f]{16}…\) expired on 2020-02-01T00:00:00.000Z/,
    );
    // A valid metadata certificate does not make an expired extra (rollover) certificate acceptable.
    const extra = await refused(tenantId, { kind: 'saml', config: { idpMetadataXml: peer.metadataXml, idpCertificates: [expired] } });
    expect(extra.type).toBe('urn:auth-service:problem:saml-certificate');
  });

  it('refuses metadata with a DTD, and a metadata URL nobody answers (422)', async (ctx) => {
    const peer = samlPeer(ctx);
    const dtd = peer.metadataXml.replace(
      /^(<\?xml[^>]*\?>)?/,
      '$1<!DOCTYPE md:EntityDescriptor [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
    );
    expect((await refused(tenantId, { kind: 'saml', config: { idpMetadataXml: dtd } })).detail).toBe('metadata with a DTD is refused');
    const dead = `http://127.0.0.1:${await freePort()}/metadata.xml`;
    const p = await refused(tenantId, { kind: 'saml', config: { idpMetadataUrl: dead } });
    expect(p).toMatchObject({
      type: 'urn:auth-service:problem:saml-metadata',
      detail: `the metadata URL ${dead} is unreachable (connection refused)`,
    });
  });

  it('refuses an unknown kind (400)', async () => {
    const p = await refused(tenantId, { kind: 'ldap', config: {} }, 400);
    expect(p.detail).toMatch(/kind must be one of/);
  });
});

describe('secrets are write-only', () => {
  it('never echoes a secret back: POST, replayed POST, GET, list, PATCH, health, audit, and a refusal', async () => {
    const tenantId = (await createTenant('secretive')).id;
    const secret2 = `rotated-${randomBytes(12).toString('hex')}`;
    const responses: Response[] = [];
    const body = { kind: 'oidc', config: { issuer: op.issuer, clientId: CLIENT_ID }, secrets: { clientSecret: CLIENT_SECRET } };
    const created = await admin.call('POST', bindingsPath(tenantId), body, { 'idempotency-key': 'secretive-1' });
    expect(created.status).toBe(201);
    const binding = (await created.clone().json()) as BindingView;
    expect(binding.secretFields).toEqual(['clientSecret']);
    responses.push(created);
    const replayed = await admin.call('POST', bindingsPath(tenantId), body, { 'idempotency-key': 'secretive-1' });
    expect(replayed.headers.get('idempotent-replayed')).toBe('true');
    responses.push(replayed);
    responses.push(await admin.call('GET', `${bindingsPath(tenantId)}/${binding.id}`));
    responses.push(await admin.call('GET', bindingsPath(tenantId)));
    const patched = await admin.call(
      'PATCH',
      `${bindingsPath(tenantId)}/${binding.id}`,
      { secrets: { clientSecret: secret2 } },
      { 'if-match': `"v${binding.version}"` },
    );
    expect(patched.status).toBe(200);
    responses.push(patched);
    responses.push(await admin.call('GET', `${bindingsPath(tenantId)}/${binding.id}/health`));
    responses.push(await admin.call('GET', `/admin/v1/audit-events?tenantId=${tenantId}`));
    const refusedRes = await admin.call('POST', bindingsPath(tenantId), { ...body, config: { ...body.config, issuer: `${op.issuer}/` } });
    expect(refusedRes.status).toBe(422);
    responses.push(refusedRes);
    for (const res of responses) {
      const text = await res.text();
      expect(text).not.toContain(CLIENT_SECRET);
      expect(text).not.toContain(secret2);
    }
    // The rotated secret was stored (encrypted): what the adapter gets is the new one.
    const tenant = (await app.app.get(TenantsService).findById(tenantId))!;
    const stored = await app.app
      .get(Database)
      .transaction({ tenant: tenantId }, (tx) => app.app.get(BindingsService).get(tenant, binding.id, tx));
    expect(stored.secrets).toEqual({ clientSecret: secret2 });
  });
});

describe('concurrency and idempotency', () => {
  let tenantId: string;
  beforeAll(async () => {
    tenantId = (await createTenant('careful')).id;
  });

  it('refuses a stale ETag on update and on activation (412)', async () => {
    const b = await createBinding(tenantId, {
      kind: 'oidc',
      config: { issuer: op.issuer, clientId: CLIENT_ID },
      secrets: { clientSecret: CLIENT_SECRET },
    });
    const path = `${bindingsPath(tenantId)}/${b.id}`;
    const first = await admin.call('PATCH', path, { claimMapping: { defaultRoles: ['A'] } }, { 'if-match': `"v${b.version}"` });
    expect(first.status).toBe(200);
    expect(first.headers.get('etag')).toBe(`"v${b.version + 1}"`);
    const stale = await admin.call('PATCH', path, { claimMapping: { defaultRoles: ['B'] } }, { 'if-match': `"v${b.version}"` });
    expect(stale.status).toBe(412);
    expect((await json<Problem>(stale)).type).toBe('urn:auth-service:problem:stale-etag');
    expect((await admin.call('POST', `${path}/activate`, undefined, { 'if-match': `"v${b.version}"` })).status).toBe(412);
    expect((await json<BindingView & { claimMapping: unknown }>(await admin.call('GET', path))).claimMapping).toEqual({
      defaultRoles: ['A'],
    });
  });

  it('replays a create with the same Idempotency-Key and body, and refuses the key with another body (422)', async () => {
    const body = { kind: 'oidc', config: { issuer: op.issuer, clientId: CLIENT_ID }, secrets: { clientSecret: CLIENT_SECRET } };
    const first = await admin.call('POST', bindingsPath(tenantId), body, { 'idempotency-key': 'careful-oidc' });
    expect(first.status).toBe(201);
    const again = await admin.call('POST', bindingsPath(tenantId), body, { 'idempotency-key': 'careful-oidc' });
    expect(again.status).toBe(201);
    expect((await json<BindingView>(again)).id).toBe((await json<BindingView>(first)).id);
    const other = await admin.call(
      'POST',
      bindingsPath(tenantId),
      { ...body, claimMapping: { defaultRoles: ['X'] } },
      { 'idempotency-key': 'careful-oidc' },
    );
    expect(other.status).toBe(422);
    expect((await json<Problem>(other)).type).toBe('urn:auth-service:problem:idempotency-key-reused');
  });
});

describe('rollback', () => {
  it('OIDC → SAML → rollback → OIDC: logins follow the active binding, and the user keeps their platform sub', async (ctx) => {
    const peer = samlPeer(ctx);
    const tenantId = (await createTenant('contoso')).id;

    const oidcBinding = await createBinding(tenantId, {
      kind: 'oidc',
      config: { issuer: op.issuer, clientId: CLIENT_ID },
      secrets: { clientSecret: CLIENT_SECRET },
      claimMapping: OIDC_MAPPING,
    });
    await oidcTestLogin(tenantId, oidcBinding.id, 'contoso-carol');
    await activate(tenantId, oidcBinding.id);
    const viaOidc = await bffOidcLogin('contoso', 'contoso-carol');
    expect(viaOidc.access).toMatchObject({ org: 'contoso', idp: 'oidc', idp_sub: 'contoso-carol' });

    const samlBinding = await createBinding(tenantId, {
      kind: 'saml',
      config: { idpMetadataXml: peer.metadataXml },
      claimMapping: SAML_MAPPING,
    });
    // While the SAML binding is a draft, logins still go to the OP.
    expect((await startBffLogin('contoso')).upstreamUrl.startsWith(`${op.issuer}/`)).toBe(true);
    await samlTestLogin(peer, tenantId, samlBinding.id, SAML_CAROL);
    await activate(tenantId, samlBinding.id);
    expect((await json<BindingView>(await admin.call('GET', `${bindingsPath(tenantId)}/${oidcBinding.id}`))).status).toBe('retired');

    const viaSaml = await bffSamlLogin(peer, 'contoso', SAML_CAROL);
    expect(viaSaml.access).toMatchObject({ org: 'contoso', idp: 'saml', idp_sub: 'carol@contoso.example' });
    // Linked by verified email: moving the tenant to another IdP does not make a new user.
    expect(viaSaml.access.sub).toBe(viaOidc.access.sub);

    const rolled = await admin.call('POST', `${bindingsPath(tenantId)}/rollback`);
    expect(rolled.status).toBe(200);
    expect(await json(rolled)).toMatchObject({ id: oidcBinding.id, status: 'active' });
    expect((await json<BindingView>(await admin.call('GET', `${bindingsPath(tenantId)}/${samlBinding.id}`))).status).toBe('retired');

    const back = await bffOidcLogin('contoso', 'contoso-carol');
    expect(back.access).toMatchObject({ org: 'contoso', idp: 'oidc', idp_sub: 'contoso-carol', sub: viaOidc.access.sub });
  });
});

describe('background health refresh', () => {
  it('is off in tests unless enabled, probes every due active binding of every tenant, stores the result, and skips bindings checked recently', async () => {
    const refresher = app.app.get(BindingHealthRefresher);
    expect(refresher.enabled).toBe(false);

    // Bindings saved without the admin API have never been checked: due.
    const tenants = app.app.get(TenantsService);
    const bindings = app.app.get(BindingsService);
    const healthy = await bindings.create(await tenants.create('healthy-co', 'Healthy'), {
      kind: 'oidc',
      config: { issuer: op.issuer, clientId: CLIENT_ID },
      secrets: { clientSecret: CLIENT_SECRET },
    });
    const downTenant = await tenants.create('down-co', 'Down');
    const down = await bindings.create(downTenant, {
      kind: 'oidc',
      config: { issuer: `http://127.0.0.1:${await freePort()}/gone`, clientId: CLIENT_ID },
      secrets: { clientSecret: CLIENT_SECRET },
    });
    const draft = await bindings.create(downTenant, {
      kind: 'oidc',
      status: 'draft',
      priority: 1,
      config: { issuer: op.issuer, clientId: CLIENT_ID },
      secrets: { clientSecret: CLIENT_SECRET },
    });
    const expiring = idp
      ? await bindings.create(await tenants.create('expiring-co', 'Expiring'), {
          kind: 'saml',
          config: { idpMetadataUrl: idp.metadataUrl },
        })
      : undefined;

    const first = await refresher.refreshAll();
    const outcome = (id: string) => first.probed.find((o) => o.bindingId === id);
    expect(outcome(healthy.id)).toMatchObject({ ok: true, kind: 'oidc' });
    expect(outcome(down.id)).toMatchObject({ ok: false, kind: 'oidc' });
    expect(outcome(draft.id), 'drafts are not probed').toBeUndefined();
    if (expiring) expect(outcome(expiring.id)?.certificateExpiresInDays).toBeLessThan(30);
    // Bindings the admin API checked when they were saved (earlier in this file) are not due yet.
    const northwind = await tenants.findActiveBySlug('northwind');
    if (northwind) {
      const { rows } = await app.app
        .get(Database)
        .transaction({ tenant: northwind.id }, (tx) =>
          tx.query<{ id: string }>(`SELECT id FROM tenant_identity_providers WHERE status = 'active'`),
        );
      const nw = rows[0];
      expect(outcome(nw!.id)).toBeUndefined();
    }

    const stored = await json<{ health: { ok: boolean; checks: Record<string, string> }; checkedAt: string }>(
      await admin.call('GET', `/admin/v1/tenants/${downTenant.id}/bindings/${down.id}/health?refresh=false`),
    );
    expect(stored.health.ok).toBe(false);
    expect(stored.health.checks['discovery']).toMatch(/^failed: the discovery document at .* is unreachable \(connection refused\)$/);
    expect(stored.checkedAt).not.toBeNull();

    // Right after a round (this replica's, or another's), nothing is due.
    const second = await refresher.refreshAll();
    expect(second.probed.map((o) => o.bindingId)).not.toContain(down.id);
    expect(second.probed.map((o) => o.bindingId)).not.toContain(healthy.id);

    // Once a binding's last check is older than the interval, the next round probes it again.
    await app.app
      .get(Database)
      .transaction({ tenant: downTenant.id }, (tx) =>
        tx.query(`UPDATE tenant_identity_providers SET health_checked_at = now() - interval '1 day' WHERE id = $1`, [down.id]),
      );
    const third = await refresher.refreshAll();
    expect(third.probed.map((o) => o.bindingId)).toEqual([down.id]);
  });
});
