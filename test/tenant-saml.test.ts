/**
 * TenantSamlProvider against a real IdP: Debian's SimpleSAMLphp on loopback, driven through the
 * BFF flow (authorize → IdP → ACS → code → token). Attack cases start from a real SimpleSAMLphp
 * response captured mid-flow and modify it; "crafted fixture" tests re-sign the modified assertion
 * with the fixture key, which the `acme` binding trusts as its second (rollover) certificate, so
 * each of them reaches exactly the check it is about. Each refusal is pinned to the reason the
 * service records in the audit log, so a test fails if its check is removed (another layer would
 * refuse with another reason).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateRawSync, inflateRawSync } from 'node:zlib';

import { DOMParser, XMLSerializer } from '@xmldom/xmldom';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { SignedXml } from 'xml-crypto';

import { startTestApp, type TestApp } from './support/app-harness.js';
import { authorizeUrl, get, pkcePair, postForm, tokenRequest, type BffClient } from './support/bff.js';
import { seedBff } from './support/seed.js';
import { tenantRows } from './support/tenant-rows.js';
import { PeerUnavailableError, peersRequired } from './peers/peer-unavailable.js';
import { CookieJar as IdpJar, simpleSamlIdpInitiatedLogin, simpleSamlLogin, type SamlPostForm } from './peers/simplesamlphp-login.js';
import { selfSignedCert, startSimpleSamlIdp, type SimpleSamlIdp } from './peers/simplesamlphp.js';
import { TenantsService, type Tenant } from '../src/tenants/tenants.service.js';
import { BindingsService } from '../src/tenants/bindings.service.js';
import { LoginService } from '../src/login/login.service.js';
import type { BindingContext, ClaimMappingRules } from '../src/identity/port/identity-provider.port.js';
import { TenantSamlProvider } from '../src/identity/saml/tenant-saml.adapter.js';
import { SamlResponseRejectedError } from '../src/identity/saml/saml-errors.js';
import { SamlMessageIdStore } from '../src/identity/saml/saml-message-ids.js';
import { parseSamlBinding, SamlConfigError } from '../src/identity/saml/saml-config.js';
import { MetadataError, parseIdpMetadata } from '../src/identity/saml/saml-xml.js';

// Claim URIs as Entra ID and ADFS send them.
const EMAIL = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress';
const NAME = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name';
const GIVEN_NAME = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname';
const SURNAME = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname';
const ROLE = 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role';
const GROUPS = 'http://schemas.microsoft.com/ws/2008/06/identity/claims/groups';

const NS_ASSERTION = 'urn:oasis:names:tc:SAML:2.0:assertion';
const NS_PROTOCOL = 'urn:oasis:names:tc:SAML:2.0:protocol';
const NS_DSIG = 'http://www.w3.org/2000/09/xmldsig#';
const CLOCK_SKEW_SECONDS = 30;
const BFF_LOGIN_URL = 'http://127.0.0.1:9/bff/login?org=acme';

interface IdpUser {
  username: string;
  password: string;
  attributes: Record<string, string[]>;
}

const ALICE: IdpUser = {
  username: 'alice',
  password: 'alice-pw',
  attributes: {
    [EMAIL]: ['alice@acme.example'],
    [NAME]: ['Alice Example'],
    [GIVEN_NAME]: ['Alice'],
    [SURNAME]: ['Example'],
    [ROLE]: ['MY_PROJECT_SUPER_ADMIN', 'SOME_UNMAPPED_ROLE'],
    [GROUPS]: ['engineering', 'admins'],
  },
};
const BOB: IdpUser = { username: 'bob', password: 'bob-pw', attributes: { [EMAIL]: ['bob@acme.example'], [NAME]: ['Bob Example'] } };
const VICTIM: IdpUser = { username: 'victim', password: 'victim-pw', attributes: { [EMAIL]: ['user@evil.com'] } };
const ATTACKER: IdpUser = { username: 'attacker', password: 'attacker-pw', attributes: { [EMAIL]: ['user@evil.com.example.com'] } };

const ACME_MAPPING: ClaimMappingRules = {
  email: EMAIL,
  name: NAME,
  givenName: GIVEN_NAME,
  familyName: SURNAME,
  trustEmailVerified: true,
  roles: [
    { claim: ROLE, value: 'MY_PROJECT_SUPER_ADMIN', role: 'SUPER_ADMIN' },
    { claim: GROUPS, value: 'engineering', role: 'ENGINEER' },
  ],
  defaultRoles: ['USER'],
};

let app: TestApp;
let bff: BffClient;
let idp: SimpleSamlIdp | undefined;
let startError: unknown;
let keyDir: string;
let fixtureKey: { keyPem: string; certPem: string };
let tenants: Record<'acme' | 'globex' | 'initech' | 'hooli', Tenant>;
const jars = new Map<string, IdpJar>();

const sp = (slug: string) => ({ entityId: `${app.url}/saml/${slug}`, acsUrl: `${app.url}/saml/${slug}/acs` });

/** Re-raises a start failure in every test; a missing peer is a skip outside CI. */
const peer = (ctx: TestContext): SimpleSamlIdp => {
  if (startError instanceof PeerUnavailableError && !peersRequired()) ctx.skip(startError.message);
  if (startError !== undefined || !idp) throw startError ?? new Error('SimpleSAMLphp IdP not started');
  return idp;
};

beforeAll(async () => {
  // Every test starts real authorization requests from one IP: lift the per-IP authorize limit.
  app = await startTestApp({ CLOCK_SKEW_SECONDS: String(CLOCK_SKEW_SECONDS), RATE_LIMIT_AUTHORIZE_PER_MINUTE: '1000' });
  bff = await seedBff(app);
  const tenantsService = app.app.get(TenantsService);
  tenants = {
    acme: await tenantsService.create('acme', 'Acme'),
    globex: await tenantsService.create('globex', 'Globex'),
    initech: await tenantsService.create('initech', 'Initech'),
    hooli: await tenantsService.create('hooli', 'Hooli'),
  };
  try {
    keyDir = await mkdtemp(join(tmpdir(), 'tenant-saml-'));
    fixtureKey = await selfSignedCert(keyDir, 'fixture', 'crafted fixture signer (acme rollover cert)');
    const acmeSigning = await selfSignedCert(keyDir, 'acme-sp', 'acme SP signing');
    const hooliEncryption = await selfSignedCert(keyDir, 'hooli-sp', 'hooli SP encryption');
    idp = await startSimpleSamlIdp({
      sps: [
        sp('acme'),
        sp('globex'),
        { ...sp('initech'), signAssertion: false, signResponse: true },
        { ...sp('hooli'), encryptAssertion: true, spCertPem: hooliEncryption.certPem },
      ],
      users: [ALICE, BOB, VICTIM, ATTACKER],
    });
    const bindings = app.app.get(BindingsService);
    await bindings.create(tenants.acme, {
      kind: 'saml',
      config: {
        idpMetadataUrl: idp.metadataUrl,
        idpCertificates: [fixtureKey.certPem],
        allowIdpInitiated: true,
        idpInitiatedLoginUrl: BFF_LOGIN_URL,
        signAuthnRequests: true,
        spSigningCertificate: acmeSigning.certPem,
      },
      secrets: { spSigningKey: acmeSigning.keyPem },
      claimMapping: ACME_MAPPING,
    });
    await bindings.create(tenants.globex, {
      kind: 'saml',
      config: { idpMetadataXml: idp.metadataXml },
      claimMapping: { email: EMAIL, trustEmailVerified: true },
    });
    await bindings.create(tenants.initech, { kind: 'saml', config: { idpMetadataXml: idp.metadataXml }, claimMapping: { email: EMAIL } });
    await bindings.create(tenants.hooli, {
      kind: 'saml',
      config: { idpMetadataXml: idp.metadataXml, encryptedAssertions: true, spEncryptionCertificate: hooliEncryption.certPem },
      secrets: { spDecryptionKey: hooliEncryption.keyPem },
      claimMapping: { ...ACME_MAPPING },
    });
  } catch (err) {
    startError = err;
  }
}, 240_000);

afterAll(async () => {
  await idp?.stop();
  await app?.close();
  if (keyDir) await rm(keyDir, { recursive: true, force: true });
});

// ---- BFF + IdP helpers ------------------------------------------------------------------------

interface Flow {
  org: string;
  verifier: string;
  state: string;
  idpUrl: string;
  relayState: string;
}

async function startFlow(org: string, extra: Record<string, string> = {}): Promise<Flow> {
  const { verifier, challenge } = pkcePair();
  const state = randomBytes(8).toString('hex');
  const res = await get(
    authorizeUrl(app.url, bff, { org, state, code_challenge: challenge, code_challenge_method: 'S256', nonce: `n-${state}`, ...extra }),
  );
  if (res.status !== 302) throw new Error(`authorize answered ${res.status}: ${await res.text()}`);
  const idpUrl = res.headers.get('location')!;
  if (!idpUrl.startsWith(idp!.ssoUrl)) throw new Error(`authorize did not send the browser to the IdP: ${idpUrl}`);
  return { org, verifier, state, idpUrl, relayState: new URL(idpUrl).searchParams.get('RelayState')! };
}

const jarOf = (user: IdpUser): IdpJar => {
  let jar = jars.get(user.username);
  if (!jar) jars.set(user.username, (jar = new IdpJar()));
  return jar;
};

/** Logs in at SimpleSAMLphp and returns the auto-POST form it would send to the ACS (not posted). */
const capture = (flow: Flow, user: IdpUser = ALICE): Promise<SamlPostForm> =>
  simpleSamlLogin(flow.idpUrl, user.username, user.password, { jar: jarOf(user) });

const postAcs = (slug: string, fields: Record<string, string | undefined>): Promise<Response> =>
  postForm(
    `${app.url}/saml/${slug}/acs`,
    Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as Record<string, string>,
  );

const decode = (b64: string): string => Buffer.from(b64, 'base64').toString('utf8');
const encode = (xml: string): string => Buffer.from(xml, 'utf8').toString('base64');

/** The ACS answered with the BFF redirect carrying a code. */
function expectCode(res: Response, flow: Flow): string {
  expect(res.status).toBe(303);
  const back = new URL(res.headers.get('location')!);
  expect(`${back.origin}${back.pathname}`).toBe(bff.redirectUri);
  expect(back.searchParams.get('error')).toBeNull();
  expect(back.searchParams.get('state')).toBe(flow.state);
  expect(back.searchParams.get('iss')).toBe(app.url);
  return back.searchParams.get('code')!;
}

/** The ACS refused: the browser goes back to the BFF with access_denied and no code. */
function expectBffError(res: Response, flow: Flow): void {
  expect(res.status).toBe(303);
  const back = new URL(res.headers.get('location')!);
  expect(`${back.origin}${back.pathname}`).toBe(bff.redirectUri);
  expect(back.searchParams.get('code')).toBeNull();
  expect(back.searchParams.get('error')).toBe('access_denied');
  expect(back.searchParams.get('state')).toBe(flow.state);
}

async function redeem(flow: Flow, code: string): Promise<{ access: JWTPayload; id: JWTPayload }> {
  const res = await tokenRequest(app.url, bff, {
    grant_type: 'authorization_code',
    code,
    redirect_uri: bff.redirectUri,
    code_verifier: flow.verifier,
  });
  const body = (await res.json()) as Record<string, string>;
  expect(res.status, JSON.stringify(body)).toBe(200);
  const jwks = createRemoteJWKSet(new URL(`${app.url}/.well-known/jwks.json`));
  const access = await jwtVerify(body['access_token']!, jwks, { issuer: app.url, audience: 'platform-api', typ: 'at+jwt' });
  const id = await jwtVerify(body['id_token']!, jwks, { issuer: app.url, audience: bff.clientId });
  return { access: access.payload, id: id.payload };
}

/** authorize → SimpleSAMLphp → ACS → code → token. */
async function fullLogin(org: string, user: IdpUser): Promise<{ access: JWTPayload; id: JWTPayload }> {
  const flow = await startFlow(org);
  const form = await capture(flow, user);
  const res = await postAcs(org, { SAMLResponse: form.SAMLResponse, RelayState: form.RelayState });
  return redeem(flow, expectCode(res, flow));
}

async function rejectionReasons(tenant: Tenant): Promise<string[]> {
  const rows = await tenantRows<{ reason: string }>(
    app,
    tenant.id,
    `SELECT data->>'reason' AS reason FROM audit_events WHERE action = 'saml.response_rejected' ORDER BY id`,
  );
  return rows.map((r) => r.reason);
}

/** Runs `act` and expects exactly one new refusal recorded for the tenant, with this reason. */
async function expectRefusal<T>(tenant: Tenant, reason: string, act: () => Promise<T>): Promise<T> {
  const before = (await rejectionReasons(tenant)).length;
  const result = await act();
  const after = await rejectionReasons(tenant);
  expect(after.slice(before)).toEqual([reason]);
  return result;
}

// ---- XML fixture helpers ---------------------------------------------------------------------

const parse = (xml: string): Document => new DOMParser().parseFromString(xml, 'text/xml');
const serialize = (doc: Document): string => new XMLSerializer().serializeToString(doc);
const assertionOf = (doc: Document): Element => doc.getElementsByTagNameNS(NS_ASSERTION, 'Assertion')[0]!;
const el = (root: Element | Document, ns: string, name: string): Element => (root as Element).getElementsByTagNameNS(ns, name)[0]!;
const signatureOf = (assertion: Element): Element | undefined =>
  Array.from({ length: assertion.childNodes.length }, (_, i) => assertion.childNodes[i] as Node).find(
    (n): n is Element => n.nodeType === 1 && (n as Element).localName === 'Signature' && (n as Element).namespaceURI === NS_DSIG,
  );

/**
 * Crafted fixture: removes the IdP's signature from the assertion, applies `edit`, and signs the
 * assertion again (enveloped, exclusive C14N, RSA-SHA256) with the fixture key.
 */
function resign(responseXml: string, edit: (assertion: Element, doc: Document) => void = () => undefined): string {
  const doc = parse(responseXml);
  const assertion = assertionOf(doc);
  const signature = signatureOf(assertion);
  if (signature) assertion.removeChild(signature);
  edit(assertion, doc);
  const signer = new SignedXml({
    privateKey: fixtureKey.keyPem,
    publicCert: fixtureKey.certPem,
    signatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    canonicalizationAlgorithm: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  });
  signer.addReference({
    xpath: "//*[local-name(.)='Assertion']",
    transforms: ['http://www.w3.org/2000/09/xmldsig#enveloped-signature', 'http://www.w3.org/2001/10/xml-exc-c14n#'],
    digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256',
  });
  signer.computeSignature(serialize(doc), {
    prefix: 'ds',
    location: { reference: "//*[local-name(.)='Assertion']/*[local-name(.)='Issuer']", action: 'after' },
  });
  return signer.getSignedXml();
}

/**
 * Crafted fixture: applies `edit` to the Response envelope and signs the envelope (enveloped,
 * exclusive C14N, RSA-SHA256) with the fixture key; the assertion inside keeps its own signature.
 */
function signEnvelope(responseXml: string, edit: (response: Element) => void = () => undefined): string {
  const doc = parse(responseXml);
  edit(doc.documentElement);
  const signer = new SignedXml({
    privateKey: fixtureKey.keyPem,
    publicCert: fixtureKey.certPem,
    signatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    canonicalizationAlgorithm: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  });
  signer.addReference({
    xpath: "/*[local-name(.)='Response']",
    transforms: ['http://www.w3.org/2000/09/xmldsig#enveloped-signature', 'http://www.w3.org/2001/10/xml-exc-c14n#'],
    digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256',
  });
  signer.computeSignature(serialize(doc), {
    prefix: 'ds',
    location: { reference: "/*[local-name(.)='Response']/*[local-name(.)='Issuer']", action: 'after' },
  });
  return signer.getSignedXml();
}

/** Runs `act` with `patch` merged into the tenant's SAML binding config, then takes those keys out again. */
async function withBindingConfig<T>(tenant: Tenant, patch: Record<string, unknown>, act: () => Promise<T>): Promise<T> {
  const update = (sql: string, value: unknown) =>
    app.database.transaction({ tenant: tenant.id }, (tx) =>
      tx.query(`UPDATE tenant_identity_providers SET config = ${sql} WHERE tenant_id = $1 AND kind = 'saml'`, [tenant.id, value]),
    );
  await update('config || $2::jsonb', JSON.stringify(patch));
  try {
    return await act();
  } finally {
    await update('config - $2::text[]', Object.keys(patch));
  }
}

/** Sets the assertion's Conditions validity window (what node-saml checks). */
function setConditions(assertion: Element, notBefore: Date, notOnOrAfter: Date): void {
  const conditions = el(assertion, NS_ASSERTION, 'Conditions');
  conditions.setAttribute('NotBefore', notBefore.toISOString());
  conditions.setAttribute('NotOnOrAfter', notOnOrAfter.toISOString());
}

/** Sets the bearer SubjectConfirmationData's NotOnOrAfter (what the adapter checks itself). */
const setConfirmationEnd = (assertion: Element, notOnOrAfter: Date): void =>
  el(assertion, NS_ASSERTION, 'SubjectConfirmationData').setAttribute('NotOnOrAfter', notOnOrAfter.toISOString());

// ================================================================================================

describe('configuration and metadata parsing (no peer)', () => {
  it('refuses unknown keys, missing IdP information and a binding that requires no signature at all', () => {
    expect(() => parseSamlBinding({ idpMetadataUrl: 'https://idp.example/metadata', allowIdpInitated: true }, {})).toThrow(SamlConfigError);
    expect(() => parseSamlBinding({ nameIdFormat: 'x' }, {})).toThrow(/idpEntityId, idpSsoUrl and idpCertificates/);
    expect(() => parseSamlBinding({ idpMetadataUrl: 'https://idp.example/m', wantAssertionsSigned: false }, {})).toThrow(
      /at least one of wantAssertionsSigned/,
    );
    expect(() => parseSamlBinding({ idpMetadataUrl: 'http://idp.example/m' }, {})).toThrow(/https/);
    expect(() => parseSamlBinding({ idpMetadataUrl: 'https://idp.example/m', allowIdpInitiated: true }, {})).toThrow(
      /idpInitiatedLoginUrl/,
    );
    const ok = parseSamlBinding({ idpMetadataUrl: 'https://idp.example/m' }, {});
    expect(ok.config).toMatchObject({
      wantAssertionsSigned: true,
      wantResponseSigned: false,
      allowIdpInitiated: false,
      encryptedAssertions: false,
    });
  });

  it('refuses IdP metadata that carries a DTD', () => {
    const xml = `<?xml version="1.0"?><!DOCTYPE md:EntityDescriptor [<!ENTITY x SYSTEM "file:///etc/passwd">]><md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="&x;"/>`;
    expect(() => parseIdpMetadata(xml)).toThrow(MetadataError);
    expect(() => parseIdpMetadata(xml)).toThrow(/DTD/);
  });
});

describe('tenant SAML login through the BFF flow (SimpleSAMLphp)', () => {
  it('logs a tenant in end to end: signed AuthnRequest, metadata URL, Entra/ADFS claim URIs mapped to platform roles', async (ctx) => {
    peer(ctx);
    const flow = await startFlow('acme');
    const redirect = new URL(flow.idpUrl);
    expect(`${redirect.origin}${redirect.pathname}`).toBe(idp!.ssoUrl);
    expect(redirect.searchParams.get('SAMLRequest')).toBeTruthy();
    expect(redirect.searchParams.get('SigAlg')).toBe('http://www.w3.org/2001/04/xmldsig-more#rsa-sha256');
    expect(redirect.searchParams.get('Signature')).toBeTruthy();
    const request = inflateRawSync(Buffer.from(redirect.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8');
    expect(request).toContain(`AssertionConsumerServiceURL="${app.url}/saml/acme/acs"`);
    expect(request).toContain(`>${app.url}/saml/acme</saml:Issuer>`);

    const form = await capture(flow, ALICE);
    expect(form.acsUrl).toBe(`${app.url}/saml/acme/acs`);
    expect(form.RelayState).toBe(flow.relayState);
    const res = await postAcs('acme', { SAMLResponse: form.SAMLResponse, RelayState: form.RelayState });
    const { access, id } = await redeem(flow, expectCode(res, flow));
    expect(access).toMatchObject({
      org: 'acme',
      tid: tenants.acme.id,
      idp: 'saml',
      idp_sub: 'alice@acme.example',
      client_id: bff.clientId,
    });
    // Mapped roles only: SOME_UNMAPPED_ROLE and the `admins` group never reach the platform token.
    expect(access['roles']).toEqual(['ENGINEER', 'SUPER_ADMIN', 'USER']);
    expect(id).toMatchObject({ email: 'alice@acme.example', email_verified: true, name: 'Alice Example' });

    // The same IdP user again (IdP session reused): the same platform user.
    const again = await fullLogin('acme', ALICE);
    expect(again.access.sub).toBe(access.sub);
  });

  it('serves SP metadata at a stable URL whose entityID and ACS do not change when the SP key rotates', async (ctx) => {
    const idpPeer = peer(ctx);
    const bindings = app.app.get(BindingsService);
    const umbrella = await app.app.get(TenantsService).create('umbrella', 'Umbrella');
    const fetchMetadata = async () => {
      const res = await fetch(`${app.url}/saml/umbrella/metadata`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^application\/samlmetadata\+xml/);
      return res.text();
    };
    // Onboarding: a draft binding without IdP metadata already has SP metadata to hand to the customer.
    await bindings.create(umbrella, { kind: 'saml', status: 'draft', config: {} });
    const draft = await fetchMetadata();
    expect(draft).toContain(`entityID="${app.url}/saml/umbrella"`);
    expect(draft).toContain(`Location="${app.url}/saml/umbrella/acs"`);
    expect(draft).toContain('WantAssertionsSigned="true"');

    const keyA = await selfSignedCert(keyDir, 'umbrella-a', 'umbrella SP key A');
    const keyB = await selfSignedCert(keyDir, 'umbrella-b', 'umbrella SP key B');
    const body = (pem: string) => pem.replace(/-----[A-Z ]+-----|\s/g, '');
    const first = await bindings.create(umbrella, {
      kind: 'saml',
      config: { idpMetadataXml: idpPeer.metadataXml, signAuthnRequests: true, spSigningCertificate: keyA.certPem },
      secrets: { spSigningKey: keyA.keyPem },
    });
    const withA = await fetchMetadata();
    await app.database.transaction({ tenant: umbrella.id }, (tx) =>
      tx.query(`UPDATE tenant_identity_providers SET status = 'retired' WHERE id = $1`, [first.id]),
    );
    await bindings.create(umbrella, {
      kind: 'saml',
      config: { idpMetadataXml: idpPeer.metadataXml, signAuthnRequests: true, spSigningCertificate: keyB.certPem },
      secrets: { spSigningKey: keyB.keyPem },
    });
    const withB = await fetchMetadata();
    expect(withA.replace(/\s/g, '')).toContain(body(keyA.certPem));
    expect(withB.replace(/\s/g, '')).toContain(body(keyB.certPem));
    expect(withB.replace(/\s/g, '')).not.toContain(body(keyA.certPem));
    for (const xml of [withA, withB]) {
      expect(xml).toContain(`entityID="${app.url}/saml/umbrella"`);
      expect(xml).toContain(`Location="${app.url}/saml/umbrella/acs"`);
      expect(xml).toContain('AuthnRequestsSigned="true"');
    }

    const unknown = await fetch(`${app.url}/saml/no-such-tenant/metadata`, { headers: { accept: 'application/json' } });
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  });

  it('accepts a response signed by either configured IdP certificate (rollover), and refuses one signed by a certificate the binding does not trust', async (ctx) => {
    peer(ctx);
    // acme trusts the IdP's metadata certificate and the fixture certificate: the first test showed
    // the former; here the IdP's assertion is re-signed, unchanged, with the latter (crafted fixture).
    const flow = await startFlow('acme');
    const form = await capture(flow, BOB);
    const res = await postAcs('acme', { SAMLResponse: encode(resign(decode(form.SAMLResponse))), RelayState: form.RelayState });
    const { access } = await redeem(flow, expectCode(res, flow));
    expect(access).toMatchObject({ idp: 'saml', idp_sub: 'bob@acme.example', roles: ['USER'] });

    // globex trusts only the IdP's metadata certificate.
    const other = await startFlow('globex');
    const otherForm = await capture(other, BOB);
    const refused = await expectRefusal(tenants.globex, 'signature', () =>
      postAcs('globex', { SAMLResponse: encode(resign(decode(otherForm.SAMLResponse))), RelayState: otherForm.RelayState }),
    );
    expectBffError(refused, other);
  });

  it("decrypts encrypted assertions with the binding's SP key and logs the user in", async (ctx) => {
    peer(ctx);
    const flow = await startFlow('hooli');
    const form = await capture(flow, ALICE);
    const xml = decode(form.SAMLResponse);
    expect(xml).toContain('EncryptedAssertion');
    expect(xml).not.toContain('alice@acme.example');
    const res = await postAcs('hooli', { SAMLResponse: form.SAMLResponse, RelayState: form.RelayState });
    const { access } = await redeem(flow, expectCode(res, flow));
    expect(access).toMatchObject({ org: 'hooli', idp: 'saml', idp_sub: 'alice@acme.example', roles: ['ENGINEER', 'SUPER_ADMIN', 'USER'] });
  });

  it('refuses a plaintext assertion for a binding that requires encrypted assertions', async (ctx) => {
    peer(ctx);
    const flow = await startFlow('hooli');
    const plain = await capture(await startFlow('acme'), ALICE);
    const res = await expectRefusal(tenants.hooli, 'unencrypted', () =>
      postAcs('hooli', { SAMLResponse: plain.SAMLResponse, RelayState: flow.relayState }),
    );
    expectBffError(res, flow);
  });

  it('accepts an IdP-initiated response only when allowed, then sends the browser to the BFF, which starts a normal PKCE flow', async (ctx) => {
    const idpPeer = peer(ctx);
    const unsolicited = await simpleSamlIdpInitiatedLogin(idpPeer, sp('acme').entityId, ALICE.username, ALICE.password, {
      jar: jarOf(ALICE),
    });
    expect(decode(unsolicited.SAMLResponse)).not.toContain('InResponseTo');
    const res = await postAcs('acme', { SAMLResponse: unsolicited.SAMLResponse, RelayState: unsolicited.RelayState });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe(BFF_LOGIN_URL);

    // The BFF's login URL begins an ordinary authorization request; the IdP session answers at once.
    const { access } = await fullLogin('acme', ALICE);
    expect(access).toMatchObject({ org: 'acme', idp: 'saml', idp_sub: 'alice@acme.example' });
  });

  it('refuses an IdP-initiated response for a binding that does not allow it (the default)', async (ctx) => {
    const idpPeer = peer(ctx);
    const unsolicited = await simpleSamlIdpInitiatedLogin(idpPeer, sp('globex').entityId, BOB.username, BOB.password, { jar: jarOf(BOB) });
    const res = await expectRefusal(tenants.globex, 'idp_initiated_disabled', () =>
      postAcs('globex', { SAMLResponse: unsolicited.SAMLResponse }),
    );
    expect(res.status).toBe(403);
    expect(res.headers.get('location')).toBeNull();
    expect(await res.text()).toContain('Start from the application');
  });

  it("reports the IdP certificates' days to expiry and the metadata source for a health endpoint", async (ctx) => {
    peer(ctx);
    const binding = await app.app.get(BindingsService).activeOfKind(tenants.acme, 'saml');
    const health = await app.app.get(TenantSamlProvider).health(binding!);
    expect(health.metadata.source).toBe('url');
    expect(health.metadata.refreshedAt).toBeTruthy();
    expect(health.metadata.lastError).toBeUndefined();
    expect(health.certificates).toHaveLength(2); // the metadata's and the rollover fixture's
    for (const cert of health.certificates) {
      expect(cert.daysUntilExpiry).toBeGreaterThanOrEqual(28);
      expect(cert.daysUntilExpiry).toBeLessThanOrEqual(30);
    }
    // The test certificates live 30 days: inside the 30-day warning window.
    expect(health.status).toBe('warning');
    expect(health.minDaysUntilExpiry).toBe(Math.min(...health.certificates.map((c) => c.daysUntilExpiry)));

    const unreachable: BindingContext = {
      ...binding!,
      id: '00000000-0000-4000-8000-000000000001',
      config: { idpMetadataUrl: 'http://127.0.0.1:9/metadata' },
    };
    const down = await app.app.get(TenantSamlProvider).health(unreachable);
    expect(down.status).toBe('error');
    expect(down.metadata.lastError).toMatch(/unreachable/);

    const broken = await app.app.get(TenantSamlProvider).health({ ...binding!, config: { idpMetadataXml: 'x', allowIdpInitated: true } });
    expect(broken).toMatchObject({ status: 'error', certificates: [], minDaysUntilExpiry: null });
    expect(broken.metadata.lastError).toMatch(/allowIdpInitated/);
  });

  it('accepts a response-signed, assertion-unsigned response only when the binding says so', async (ctx) => {
    peer(ctx);
    // initech's IdP entry signs the Response, not the Assertion; wantAssertionsSigned is on by default.
    const flow = await startFlow('initech');
    const form = await capture(flow, BOB);
    const xml = decode(form.SAMLResponse);
    expect(signatureOf(assertionOf(parse(xml)))).toBeUndefined();
    expect(signatureOf(parse(xml).documentElement as unknown as Element)).toBeDefined();
    const res = await expectRefusal(tenants.initech, 'signature', () =>
      postAcs('initech', { SAMLResponse: form.SAMLResponse, RelayState: form.RelayState }),
    );
    expectBffError(res, flow);

    await app.database.transaction({ tenant: tenants.initech.id }, (tx) =>
      tx.query(
        `UPDATE tenant_identity_providers SET config = config || '{"wantAssertionsSigned": false, "wantResponseSigned": true}' WHERE tenant_id = $1`,
        [tenants.initech.id],
      ),
    );
    try {
      const { access } = await fullLogin('initech', BOB);
      expect(access).toMatchObject({ org: 'initech', idp: 'saml', idp_sub: 'bob@acme.example' });
    } finally {
      await app.database.transaction({ tenant: tenants.initech.id }, (tx) =>
        tx.query(
          `UPDATE tenant_identity_providers SET config = config - 'wantAssertionsSigned' - 'wantResponseSigned' WHERE tenant_id = $1`,
          [tenants.initech.id],
        ),
      );
    }
  });
});

describe('max_age and prompt=login over SAML (ForceAuthn, AuthnInstant)', () => {
  const authnRequestOf = (flow: Flow): string =>
    inflateRawSync(Buffer.from(new URL(flow.idpUrl).searchParams.get('SAMLRequest')!, 'base64')).toString('utf8');
  const setAuthnInstant = (assertion: Element, at: Date): void =>
    el(assertion, NS_ASSERTION, 'AuthnStatement').setAttribute('AuthnInstant', at.toISOString());

  it('asks the IdP for a fresh authentication (ForceAuthn) when the client bounds its age or sends prompt=login, not otherwise', async (ctx) => {
    peer(ctx);
    expect(authnRequestOf(await startFlow('globex'))).not.toContain('ForceAuthn="true"');
    for (const extra of [{ max_age: '0' }, { max_age: '600' }, { prompt: 'login' }] as Record<string, string>[])
      expect(authnRequestOf(await startFlow('globex', extra)), JSON.stringify(extra)).toContain('ForceAuthn="true"');
  });

  it('logs in with max_age=0 through SimpleSAMLphp: its AuthnInstant is fresh, and becomes the ID token auth_time', async (ctx) => {
    peer(ctx);
    const flow = await startFlow('acme', { max_age: '0' });
    const form = await capture(flow, BOB);
    const instant = el(assertionOf(parse(decode(form.SAMLResponse))), NS_ASSERTION, 'AuthnStatement').getAttribute('AuthnInstant')!;
    const res = await postAcs('acme', { SAMLResponse: form.SAMLResponse, RelayState: form.RelayState });
    const { id } = await redeem(flow, expectCode(res, flow));
    expect(id['auth_time']).toBe(Math.floor(Date.parse(instant) / 1000));
  });

  it('sends login_required to the BFF when the AuthnInstant is older than max_age allows (crafted fixture)', async (ctx) => {
    peer(ctx);
    const flow = await startFlow('acme', { max_age: '600' });
    const form = await capture(flow, BOB);
    // Two hours old against max_age=600 and the clock skew: far outside, however slow the machine.
    const crafted = resign(decode(form.SAMLResponse), (a) => setAuthnInstant(a, new Date(Date.now() - 7_200_000)));
    const res = await postAcs('acme', { SAMLResponse: encode(crafted), RelayState: form.RelayState });
    expect(res.status).toBe(303);
    const back = new URL(res.headers.get('location')!);
    expect(`${back.origin}${back.pathname}`).toBe(bff.redirectUri);
    expect(back.searchParams.get('error')).toBe('login_required');
    expect(back.searchParams.get('code')).toBeNull();
    expect(back.searchParams.get('state')).toBe(flow.state);
  });
});

describe('refused SAML responses (attacks)', () => {
  it('refuses a tampered signed assertion (a role added without re-signing)', async (ctx) => {
    peer(ctx);
    const flow = await startFlow('acme');
    const form = await capture(flow, BOB);
    const xml = decode(form.SAMLResponse);
    const tampered = xml.replace(
      '</saml:AttributeStatement>',
      `<saml:Attribute Name="${ROLE}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri"><saml:AttributeValue xsi:type="xs:string">MY_PROJECT_SUPER_ADMIN</saml:AttributeValue></saml:Attribute></saml:AttributeStatement>`,
    );
    expect(tampered).not.toBe(xml);
    const res = await expectRefusal(tenants.acme, 'signature', () =>
      postAcs('acme', { SAMLResponse: encode(tampered), RelayState: form.RelayState }),
    );
    expectBffError(res, flow);
  });

  const wrap = (variant: 'sibling-before' | 'sibling-after' | 'around' | 'signature-moved', xml: string): string => {
    const doc = parse(xml);
    const response = doc.documentElement as unknown as Element;
    const signed = assertionOf(doc);
    const evil = signed.cloneNode(true) as Element;
    const evilSignature = signatureOf(evil);
    if (evilSignature) evil.removeChild(evilSignature);
    evil.setAttribute('ID', `_evil${randomBytes(8).toString('hex')}`);
    el(evil, NS_ASSERTION, 'NameID').textContent = 'ceo@acme.example';
    const values = evil.getElementsByTagNameNS(NS_ASSERTION, 'AttributeValue');
    for (const v of Array.from({ length: values.length }, (_, i) => values[i]!))
      if (v.textContent === 'bob@acme.example') v.textContent = 'ceo@acme.example';
    if (variant === 'sibling-before') response.insertBefore(evil, signed);
    if (variant === 'sibling-after') response.appendChild(evil);
    if (variant === 'around') {
      // The evil assertion takes the signed one's place and carries it inside (in its Advice).
      response.replaceChild(evil, signed);
      const advice = doc.createElementNS(NS_ASSERTION, 'saml:Advice');
      advice.appendChild(signed);
      evil.insertBefore(advice, el(evil, NS_ASSERTION, 'AttributeStatement'));
    }
    if (variant === 'signature-moved') {
      // The signed assertion hides in the Response's Extensions; the evil one carries its signature.
      response.replaceChild(evil, signed);
      const extensions = doc.createElementNS(NS_PROTOCOL, 'samlp:Extensions');
      response.insertBefore(extensions, el(response, NS_PROTOCOL, 'Status'));
      const signature = signatureOf(signed)!;
      signed.removeChild(signature);
      evil.insertBefore(signature, el(evil, NS_ASSERTION, 'Subject'));
      extensions.appendChild(signed);
    }
    return serialize(doc);
  };

  it.for(['sibling-before', 'sibling-after', 'around', 'signature-moved'] as const)(
    'refuses XML signature wrapping: an unsigned assertion %s the signed one',
    async (variant, ctx) => {
      peer(ctx);
      const flow = await startFlow('acme');
      const form = await capture(flow, BOB);
      const wrapped = wrap(variant, decode(form.SAMLResponse));
      expect(wrapped).toContain('ceo@acme.example');
      const res = await expectRefusal(tenants.acme, 'signature', () =>
        postAcs('acme', { SAMLResponse: encode(wrapped), RelayState: form.RelayState }),
      );
      expectBffError(res, flow);
    },
  );

  it('reads a NameID with an injected comment as the whole signed value (user@evil.com<!---->.example.com is not user@evil.com)', async (ctx) => {
    peer(ctx);
    const victim = await fullLogin('acme', VICTIM);
    expect(victim.access['idp_sub']).toBe('user@evil.com');

    const flow = await startFlow('acme');
    const form = await capture(flow, ATTACKER);
    const xml = decode(form.SAMLResponse);
    const injected = xml.replaceAll('>user@evil.com.example.com<', '>user@evil.com<!---->.example.com<');
    expect(injected.split('<!---->').length).toBe(3); // the NameID and the email attribute
    // Comments are outside exclusive C14N: the IdP's signature still verifies, so the login
    // succeeds, as the attacker's own identity and never as the victim's.
    const res = await postAcs('acme', { SAMLResponse: encode(injected), RelayState: form.RelayState });
    const { access, id } = await redeem(flow, expectCode(res, flow));
    expect(access['idp_sub']).toBe('user@evil.com.example.com');
    expect(access.sub).not.toBe(victim.access.sub);
    expect(id['email']).toBe('user@evil.com.example.com');
  });

  it('refuses an assertion without a signature when the binding requires signed assertions (crafted fixture)', async (ctx) => {
    peer(ctx);
    const flow = await startFlow('acme');
    const form = await capture(flow, BOB);
    const doc = parse(decode(form.SAMLResponse));
    const assertion = assertionOf(doc);
    assertion.removeChild(signatureOf(assertion)!);
    const res = await expectRefusal(tenants.acme, 'signature', () =>
      postAcs('acme', { SAMLResponse: encode(serialize(doc)), RelayState: form.RelayState }),
    );
    expectBffError(res, flow);
  });

  it('refuses a replayed assertion (IdP-initiated response posted twice)', async (ctx) => {
    const idpPeer = peer(ctx);
    const unsolicited = await simpleSamlIdpInitiatedLogin(idpPeer, sp('acme').entityId, BOB.username, BOB.password, { jar: jarOf(BOB) });
    const first = await postAcs('acme', { SAMLResponse: unsolicited.SAMLResponse });
    expect(first.status).toBe(303);
    const replay = await expectRefusal(tenants.acme, 'replay', () => postAcs('acme', { SAMLResponse: unsolicited.SAMLResponse }));
    expect(replay.status).toBe(400);
    expect(replay.headers.get('location')).toBeNull();
  });

  it('refuses a replayed assertion to the adapter even for the same login transaction', async (ctx) => {
    peer(ctx);
    const flow = await startFlow('acme');
    const form = await capture(flow, BOB);
    const login = app.app.get(LoginService);
    const txn = await login.load(flow.relayState);
    const binding = await login.binding(txn);
    const adapter = app.app.get(TenantSamlProvider);
    const callback = { method: 'POST' as const, query: {}, body: { SAMLResponse: form.SAMLResponse }, clientIp: '127.0.0.1' };
    await expect(adapter.completeLogin(binding, callback, txn.providerState)).resolves.toMatchObject({ subject: 'bob@acme.example' });
    const again = adapter.completeLogin(binding, callback, txn.providerState);
    await expect(again).rejects.toBeInstanceOf(SamlResponseRejectedError);
    await expect(again).rejects.toMatchObject({ reason: 'replay' });
  });

  it('refuses one-time-use IDs across replicas: the same assertion posted to two instances at once is accepted once', async (ctx) => {
    const idpPeer = peer(ctx);
    // A second instance of the service on the same database, behind the same public URL.
    const replica = await startTestApp(
      { PUBLIC_URL: app.url, KEY_ENCRYPTION_KEY: app.config.KEY_ENCRYPTION_KEY!, CLOCK_SKEW_SECONDS: String(CLOCK_SKEW_SECONDS) },
      app.db,
    );
    try {
      const unsolicited = await simpleSamlIdpInitiatedLogin(idpPeer, sp('acme').entityId, BOB.username, BOB.password, { jar: jarOf(BOB) });
      const post = (base: string) => postForm(`${base}/saml/acme/acs`, { SAMLResponse: unsolicited.SAMLResponse });
      const answers = await Promise.all([post(app.url), post(replica.url)]);
      expect(answers.map((r) => r.status).sort()).toEqual([303, 400]);
    } finally {
      await replica.close();
    }
  });

  it("refuses a response for another tenant's SP (Audience), even signed by the real IdP and answering this tenant's request", async (ctx) => {
    peer(ctx);
    // acme's AuthnRequest, re-issued under globex's entityID: SimpleSAMLphp answers for globex
    // (Audience and Recipient globex) with InResponseTo = acme's request ID.
    const flow = await startFlow('acme');
    const url = new URL(flow.idpUrl);
    const request = inflateRawSync(Buffer.from(url.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8');
    const forGlobex = request
      .replaceAll(sp('acme').acsUrl, sp('globex').acsUrl)
      .replaceAll(`>${sp('acme').entityId}<`, `>${sp('globex').entityId}<`);
    expect(forGlobex).not.toBe(request);
    url.searchParams.delete('Signature');
    url.searchParams.delete('SigAlg');
    url.searchParams.set('SAMLRequest', deflateRawSync(Buffer.from(forGlobex, 'utf8')).toString('base64'));
    const form = await simpleSamlLogin(url.toString(), BOB.username, BOB.password, { jar: jarOf(BOB) });
    expect(form.acsUrl).toBe(sp('globex').acsUrl);
    expect(decode(form.SAMLResponse)).toContain(`<saml:Audience>${sp('globex').entityId}</saml:Audience>`);
    const res = await expectRefusal(tenants.acme, 'audience', () =>
      postAcs('acme', { SAMLResponse: form.SAMLResponse, RelayState: flow.relayState }),
    );
    expectBffError(res, flow);
  });

  it('refuses a response whose Destination is another endpoint', async (ctx) => {
    peer(ctx);
    const flow = await startFlow('acme');
    const form = await capture(flow, BOB);
    // The Response envelope is not signed by this IdP: the attribute changes without re-signing.
    const moved = decode(form.SAMLResponse).replace(`Destination="${sp('acme').acsUrl}"`, `Destination="${sp('globex').acsUrl}"`);
    expect(moved).toContain(`Destination="${sp('globex').acsUrl}"`);
    const res = await expectRefusal(tenants.acme, 'destination', () =>
      postAcs('acme', { SAMLResponse: encode(moved), RelayState: form.RelayState }),
    );
    expectBffError(res, flow);
  });

  it('refuses an assertion whose SubjectConfirmation Recipient is another endpoint (crafted fixture)', async (ctx) => {
    peer(ctx);
    const flow = await startFlow('acme');
    const form = await capture(flow, BOB);
    const crafted = resign(decode(form.SAMLResponse), (a) =>
      el(a, NS_ASSERTION, 'SubjectConfirmationData').setAttribute('Recipient', 'https://elsewhere.example/acs'),
    );
    const res = await expectRefusal(tenants.acme, 'recipient', () =>
      postAcs('acme', { SAMLResponse: encode(crafted), RelayState: form.RelayState }),
    );
    expectBffError(res, flow);
  });

  it("refuses an assertion issued by another entity than the binding's IdP (crafted fixture)", async (ctx) => {
    peer(ctx);
    const flow = await startFlow('acme');
    const form = await capture(flow, BOB);
    const crafted = resign(decode(form.SAMLResponse), (a) => {
      el(a, NS_ASSERTION, 'Issuer').textContent = 'https://other-idp.example/metadata';
    });
    const res = await expectRefusal(tenants.acme, 'issuer', () =>
      postAcs('acme', { SAMLResponse: encode(crafted), RelayState: form.RelayState }),
    );
    expectBffError(res, flow);
  });

  it("refuses a response whose InResponseTo is another transaction's request", async (ctx) => {
    peer(ctx);
    const first = await startFlow('acme');
    const form = await capture(first, BOB);
    const second = await startFlow('acme');
    const res = await expectRefusal(tenants.acme, 'in_response_to', () =>
      postAcs('acme', { SAMLResponse: form.SAMLResponse, RelayState: second.relayState }),
    );
    expectBffError(res, second);
  });

  it('refuses a response whose envelope InResponseTo names no request of ours (crafted fixture)', async (ctx) => {
    peer(ctx);
    const flow = await startFlow('acme');
    const form = await capture(flow, BOB);
    // The envelope is unsigned: only its InResponseTo changes; the signed assertion still answers our request.
    const doc = parse(decode(form.SAMLResponse));
    (doc.documentElement as unknown as Element).setAttribute('InResponseTo', `_${randomBytes(20).toString('hex')}`);
    const res = await expectRefusal(tenants.acme, 'in_response_to', () =>
      postAcs('acme', { SAMLResponse: encode(serialize(doc)), RelayState: form.RelayState }),
    );
    expectBffError(res, flow);
  });

  it('refuses a solicited assertion replayed as unsolicited (InResponseTo stripped from the envelope)', async (ctx) => {
    peer(ctx);
    const flow = await startFlow('acme');
    const form = await capture(flow, BOB);
    const doc = parse(decode(form.SAMLResponse));
    (doc.documentElement as unknown as Element).removeAttribute('InResponseTo');
    // Posted without RelayState: the IdP-initiated path, which acme allows. The signed
    // SubjectConfirmationData still names the request it answered.
    const res = await expectRefusal(tenants.acme, 'in_response_to', () => postAcs('acme', { SAMLResponse: encode(serialize(doc)) }));
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
  });

  it('refuses a solicited response (InResponseTo intact) posted without RelayState, then accepts it with its RelayState', async (ctx) => {
    peer(ctx);
    const flow = await startFlow('acme');
    const form = await capture(flow, BOB);
    expect((parse(decode(form.SAMLResponse)).documentElement as unknown as Element).getAttribute('InResponseTo')).toMatch(/^_/);
    // Without RelayState the ACS takes the IdP-initiated path, which acme allows.
    const res = await expectRefusal(tenants.acme, 'in_response_to', () => postAcs('acme', { SAMLResponse: form.SAMLResponse }));
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
    // node-saml and the SubjectConfirmation check would refuse it as in_response_to as well: the
    // adapter's own check (a response to a request needs that request's transaction) is the one that does.
    const binding = await app.app.get(BindingsService).activeOfKind(tenants.acme, 'saml');
    await expect(app.app.get(TenantSamlProvider).acceptIdpInitiated(binding!, form.SAMLResponse)).rejects.toMatchObject({
      reason: 'in_response_to',
      internal: 'a solicited response arrived without its login transaction',
    });
    // Control: nothing else is wrong with it (and the refusals consumed nothing).
    expectCode(await postAcs('acme', { SAMLResponse: form.SAMLResponse, RelayState: form.RelayState }), flow);
  });

  it('refuses an unsigned Response carrying a signed assertion when the binding requires a signed Response (wantResponseSigned)', async (ctx) => {
    peer(ctx);
    // globex's IdP entry signs the assertion only.
    await withBindingConfig(tenants.globex, { wantResponseSigned: true }, async () => {
      const flow = await startFlow('globex');
      const form = await capture(flow, BOB);
      const doc = parse(decode(form.SAMLResponse));
      expect(signatureOf(doc.documentElement as unknown as Element)).toBeUndefined();
      expect(signatureOf(assertionOf(doc))).toBeDefined();
      const res = await expectRefusal(tenants.globex, 'signature', () =>
        postAcs('globex', { SAMLResponse: form.SAMLResponse, RelayState: form.RelayState }),
      );
      expectBffError(res, flow);
    });
    // Control: the same kind of response logs in once the binding no longer requires a signed Response.
    const { access } = await fullLogin('globex', BOB);
    expect(access).toMatchObject({ org: 'globex', idp: 'saml', idp_sub: 'bob@acme.example' });
  });

  it('refuses a signed Response without Destination when the binding requires a signed Response (crafted fixture)', async (ctx) => {
    peer(ctx);
    await withBindingConfig(tenants.acme, { wantResponseSigned: true }, async () => {
      const flow = await startFlow('acme');
      const form = await capture(flow, BOB);
      const crafted = signEnvelope(decode(form.SAMLResponse), (r) => r.removeAttribute('Destination'));
      expect(crafted).not.toContain('Destination=');
      const res = await expectRefusal(tenants.acme, 'destination', () =>
        postAcs('acme', { SAMLResponse: encode(crafted), RelayState: form.RelayState }),
      );
      expectBffError(res, flow);

      // Control: the same envelope signing with Destination kept is accepted.
      const control = await startFlow('acme');
      const controlForm = await capture(control, BOB);
      const signed = signEnvelope(decode(controlForm.SAMLResponse));
      expect(signed).toContain(`Destination="${sp('acme').acsUrl}"`);
      expectCode(await postAcs('acme', { SAMLResponse: encode(signed), RelayState: controlForm.RelayState }), control);
    });
  });

  it('refuses a second response to an AuthnRequest that was already answered (InResponseTo reused, crafted fixture)', async (ctx) => {
    peer(ctx);
    const flow = await startFlow('acme');
    const form = await capture(flow, BOB);
    const login = app.app.get(LoginService);
    const txn = await login.load(flow.relayState);
    const binding = await login.binding(txn);
    const adapter = app.app.get(TenantSamlProvider);
    const callback = (samlResponse: string) => ({
      method: 'POST' as const,
      query: {},
      body: { SAMLResponse: samlResponse },
      clientIp: '127.0.0.1',
    });
    await adapter.completeLogin(binding, callback(form.SAMLResponse), txn.providerState);
    // Another, validly signed assertion (new ID) answering the same request.
    const second = resign(decode(form.SAMLResponse), (a) => a.setAttribute('ID', `_${randomBytes(20).toString('hex')}`));
    const attempt = adapter.completeLogin(binding, callback(encode(second)), txn.providerState);
    await expect(attempt).rejects.toMatchObject({ reason: 'in_response_to_reused' });
  });

  it('refuses a response posted again after its login completed', async (ctx) => {
    peer(ctx);
    const flow = await startFlow('acme');
    const form = await capture(flow, BOB);
    expectCode(await postAcs('acme', { SAMLResponse: form.SAMLResponse, RelayState: form.RelayState }), flow);
    const again = await postAcs('acme', { SAMLResponse: form.SAMLResponse, RelayState: form.RelayState });
    expect(again.status).toBe(400);
    expect(again.headers.get('location')).toBeNull();
    expect(await again.text()).toContain('expired');
  });

  it('refuses an expired assertion (Conditions NotOnOrAfter beyond the clock skew, crafted fixture)', async (ctx) => {
    peer(ctx);
    const flow = await startFlow('acme');
    const form = await capture(flow, BOB);
    const now = Date.now();
    const crafted = resign(decode(form.SAMLResponse), (a) =>
      setConditions(a, new Date(now - 15 * 60_000), new Date(now - (CLOCK_SKEW_SECONDS + 60) * 1000)),
    );
    const res = await expectRefusal(tenants.acme, 'expired', () =>
      postAcs('acme', { SAMLResponse: encode(crafted), RelayState: form.RelayState }),
    );
    expectBffError(res, flow);
  });

  it('refuses an assertion that is not yet valid (Conditions NotBefore beyond the clock skew, crafted fixture)', async (ctx) => {
    peer(ctx);
    const flow = await startFlow('acme');
    const form = await capture(flow, BOB);
    const now = Date.now();
    const crafted = resign(decode(form.SAMLResponse), (a) =>
      setConditions(a, new Date(now + (CLOCK_SKEW_SECONDS + 60) * 1000), new Date(now + 15 * 60_000)),
    );
    const res = await expectRefusal(tenants.acme, 'expired', () =>
      postAcs('acme', { SAMLResponse: encode(crafted), RelayState: form.RelayState }),
    );
    expectBffError(res, flow);
  });

  it('refuses an unsolicited assertion whose bearer SubjectConfirmationData has expired (crafted fixture)', async (ctx) => {
    const idpPeer = peer(ctx);
    // node-saml checks SubjectConfirmationData times only when it validates InResponseTo: for
    // IdP-initiated responses this window is the adapter's own check.
    const unsolicited = await simpleSamlIdpInitiatedLogin(idpPeer, sp('acme').entityId, BOB.username, BOB.password, { jar: jarOf(BOB) });
    const crafted = resign(decode(unsolicited.SAMLResponse), (a) =>
      setConfirmationEnd(a, new Date(Date.now() - (CLOCK_SKEW_SECONDS + 60) * 1000)),
    );
    const res = await expectRefusal(tenants.acme, 'expired', () => postAcs('acme', { SAMLResponse: encode(crafted) }));
    expect(res.status).toBe(400);
  });

  it('accepts an assertion that expired less than CLOCK_SKEW_SECONDS ago (crafted fixture)', async (ctx) => {
    peer(ctx);
    const flow = await startFlow('acme');
    const form = await capture(flow, BOB);
    const now = Date.now();
    const end = new Date(now - (CLOCK_SKEW_SECONDS / 3) * 1000);
    const crafted = resign(decode(form.SAMLResponse), (a) => {
      setConditions(a, new Date(now - 5 * 60_000), end);
      setConfirmationEnd(a, end);
    });
    const res = await postAcs('acme', { SAMLResponse: encode(crafted), RelayState: form.RelayState });
    expectCode(res, flow);
  });

  it('refuses a response with a DTD declaring an external entity, without fetching it', async (ctx) => {
    peer(ctx);
    let hits = 0;
    const server: Server = createServer((_req, res) => {
      hits++;
      res.end('user@acme.example');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as { port: number }).port;
      const flow = await startFlow('acme');
      const form = await capture(flow, BOB);
      const xml = decode(form.SAMLResponse);
      const withDtd =
        `<?xml version="1.0"?><!DOCTYPE samlp:Response [<!ENTITY xxe SYSTEM "http://127.0.0.1:${port}/xxe">]>` +
        xml.replace('>bob@acme.example</saml:NameID>', '>&xxe;</saml:NameID>');
      const res = await expectRefusal(tenants.acme, 'dtd', () =>
        postAcs('acme', { SAMLResponse: encode(withDtd), RelayState: form.RelayState }),
      );
      expectBffError(res, flow);
      expect(hits).toBe(0);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it("refuses a transaction of another organisation posted to this organisation's ACS", async (ctx) => {
    peer(ctx);
    const flow = await startFlow('globex');
    const form = await capture(flow, BOB);
    const res = await postAcs('acme', { SAMLResponse: form.SAMLResponse, RelayState: form.RelayState });
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
  });
});

describe('one-time-use store', () => {
  it("sweeps a tenant's expired message IDs when it records new ones", async () => {
    const store = app.app.get(SamlMessageIdStore);
    const binding = await app.app.get(BindingsService).create(await app.app.get(TenantsService).create('sweep', 'Sweep'), {
      kind: 'saml',
      status: 'draft',
      config: {},
    });
    const count = () =>
      tenantRows<{ message_id: string }>(app, binding.tenantId, `SELECT message_id FROM saml_message_ids ORDER BY message_id`);
    await store.consume(binding.tenantId, binding.id, [{ kind: 'assertion', id: '_old', expiresAt: new Date(Date.now() - 1000) }]);
    expect(await count()).toEqual([{ message_id: '_old' }]);
    await store.consume(binding.tenantId, binding.id, [{ kind: 'assertion', id: '_new', expiresAt: new Date(Date.now() + 60_000) }]);
    expect(await count()).toEqual([{ message_id: '_new' }]);
    // Row-level security: another tenant's context sees none of them.
    const other = await tenantRows(app, tenants.acme.id, `SELECT 1 FROM saml_message_ids WHERE message_id = '_new'`);
    expect(other).toHaveLength(0);
  });
});
