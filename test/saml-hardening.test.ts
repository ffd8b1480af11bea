/**
 * TenantSamlProvider hardening (issue #13), with responses crafted and signed here: each binding
 * trusts only the test IdP certificate below, so a crafted response reaches exactly the check it
 * is about. Every refusal is pinned to the reason recorded in the audit log, and each case has a
 * control that is accepted, so a test fails if its check is removed.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { inflateRawSync } from 'node:zlib';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignedXml } from 'xml-crypto';
import xmlenc from 'xml-encryption';

import { startTestApp, type TestApp } from './support/app-harness.js';
import { authorizeUrl, get, pkcePair, postForm, type BffClient } from './support/bff.js';
import { seedBff } from './support/seed.js';
import { tenantRows } from './support/tenant-rows.js';
import { selfSignedCert } from './peers/simplesamlphp.js';
import { BindingHealthRefresher } from '../src/admin/binding-health.refresher.js';
import { parseSamlBinding, SamlConfigError } from '../src/identity/saml/saml-config.js';
import { TenantSamlProvider } from '../src/identity/saml/tenant-saml.adapter.js';
import { BindingsService } from '../src/tenants/bindings.service.js';
import { TenantsService, type Tenant } from '../src/tenants/tenants.service.js';

const NS_ASSERTION = 'urn:oasis:names:tc:SAML:2.0:assertion';
const NS_PROTOCOL = 'urn:oasis:names:tc:SAML:2.0:protocol';
const EMAIL = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress';
const GROUPS = 'http://schemas.microsoft.com/ws/2008/06/identity/claims/groups';
const IDP_ENTITY_ID = 'https://idp.hardening.example/adfs/services/trust';
const IDP_SSO_URL = 'https://idp.hardening.example/adfs/ls/';
const CLOCK_SKEW_SECONDS = 30;
const MAX_AGE_SECONDS = 300;

const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
const RSA_SHA1 = 'http://www.w3.org/2000/09/xmldsig#rsa-sha1';
const SHA256 = 'http://www.w3.org/2001/04/xmlenc#sha256';
const SHA1 = 'http://www.w3.org/2000/09/xmldsig#sha1';
const EXC_C14N = 'http://www.w3.org/2001/10/xml-exc-c14n#';
const ENVELOPED = 'http://www.w3.org/2000/09/xmldsig#enveloped-signature';

type Org = 'hard' | 'hard-sha1' | 'hard-nodest' | 'hard-enc';

let app: TestApp;
let bff: BffClient;
let keyDir: string;
let idpKey: { keyPem: string; certPem: string };
let spEncryption: { keyPem: string; certPem: string };
let otherEncryption: { keyPem: string; certPem: string };
const tenants = {} as Record<Org, Tenant>;
const logLines: string[] = [];

beforeAll(async () => {
  app = await startTestApp(
    {
      CLOCK_SKEW_SECONDS: String(CLOCK_SKEW_SECONDS),
      SAML_MAX_ASSERTION_AGE_SECONDS: String(MAX_AGE_SECONDS),
      RATE_LIMIT_AUTHORIZE_PER_MINUTE: '1000',
    },
    undefined,
    { write: (line) => void logLines.push(line) },
  );
  bff = await seedBff(app);
  keyDir = await mkdtemp(join(tmpdir(), 'saml-hardening-'));
  idpKey = await selfSignedCert(keyDir, 'idp', 'hardening test IdP');
  spEncryption = await selfSignedCert(keyDir, 'sp-enc', 'hardening SP encryption');
  otherEncryption = await selfSignedCert(keyDir, 'other-enc', "someone else's encryption key");
  const base = { idpEntityId: IDP_ENTITY_ID, idpSsoUrl: IDP_SSO_URL, idpCertificates: [idpKey.certPem] };
  const configs: Record<Org, { config: Record<string, unknown>; secrets?: Record<string, unknown> }> = {
    hard: { config: base },
    'hard-sha1': { config: { ...base, allowSha1Signatures: true } },
    'hard-nodest': { config: { ...base, requireDestination: false } },
    'hard-enc': {
      config: { ...base, encryptedAssertions: true, spEncryptionCertificate: spEncryption.certPem },
      secrets: { spDecryptionKey: spEncryption.keyPem },
    },
  };
  for (const [org, { config, secrets }] of Object.entries(configs) as Array<[Org, (typeof configs)[Org]]>) {
    tenants[org] = await app.app.get(TenantsService).create(org, org);
    await app.app
      .get(BindingsService)
      .create(tenants[org], { kind: 'saml', config, secrets, claimMapping: { email: EMAIL, trustEmailVerified: true } });
  }
}, 120_000);

afterAll(async () => {
  await app?.close();
  if (keyDir) await rm(keyDir, { recursive: true, force: true });
});

// ---- flow helpers ------------------------------------------------------------------------------

interface Flow {
  org: Org;
  requestId: string;
  relayState: string;
}

const acsUrl = (org: Org) => `${app.url}/saml/${org}/acs`;

/** Starts a BFF login and returns the AuthnRequest the browser would carry to the IdP. */
async function startFlow(org: Org): Promise<Flow> {
  const { challenge } = pkcePair();
  const res = await get(
    authorizeUrl(app.url, bff, { org, state: randomBytes(8).toString('hex'), code_challenge: challenge, code_challenge_method: 'S256' }),
  );
  expect(res.status).toBe(302);
  const idpUrl = new URL(res.headers.get('location')!);
  expect(`${idpUrl.origin}${idpUrl.pathname}`).toBe(IDP_SSO_URL);
  const request = inflateRawSync(Buffer.from(idpUrl.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8');
  return { org, requestId: /\sID="([^"]+)"/.exec(request)![1]!, relayState: idpUrl.searchParams.get('RelayState')! };
}

interface Craft {
  status?: string;
  /** Assertion IssueInstant. */
  issuedAt?: Date;
  /** Conditions NotBefore / NotOnOrAfter and the bearer SubjectConfirmationData NotOnOrAfter. */
  notBefore?: Date;
  notOnOrAfter?: Date;
  /** Raw Conditions NotOnOrAfter (overrides notOnOrAfter there); null leaves it out. */
  conditionsNotOnOrAfter?: string | null;
  /** Raw bearer SubjectConfirmationData NotOnOrAfter; null leaves it out. */
  confirmationNotOnOrAfter?: string | null;
  /** false: no Conditions; 2: the Conditions element twice. */
  conditions?: false | 2;
  /** Response Destination; null leaves it out. */
  destination?: string | null;
  groups?: number;
  signatureAlgorithm?: string;
  digestAlgorithm?: string;
  /** Also sign the Response envelope with these algorithms. */
  signResponse?: { signatureAlgorithm: string; digestAlgorithm: string };
  /** Encrypt the signed assertion to this certificate. */
  encryptTo?: string;
  /** Encryption algorithms (default AES-256-GCM content, RSA-OAEP key transport). */
  encryption?: { encryptionAlgorithm: string; keyEncryptionAlgorithm: string };
}

const iso = (d: Date) => d.toISOString();

/** A Response as Entra ID or ADFS would post it, its assertion signed with the test IdP key. */
async function craft(flow: Flow, o: Craft = {}): Promise<string> {
  const now = Date.now();
  const issuedAt = o.issuedAt ?? new Date(now);
  const notBefore = o.notBefore ?? new Date(now - 60_000);
  const notOnOrAfter = o.notOnOrAfter ?? new Date(now + 5 * 60_000);
  const acs = acsUrl(flow.org);
  const groups = Array.from({ length: o.groups ?? 2 }, () => `<saml:AttributeValue>${randomUUID()}</saml:AttributeValue>`).join('');
  const conditionsEnd = o.conditionsNotOnOrAfter === null ? '' : ` NotOnOrAfter="${o.conditionsNotOnOrAfter ?? iso(notOnOrAfter)}"`;
  const conditions = (
    o.conditions === false
      ? ''
      : `<saml:Conditions NotBefore="${iso(notBefore)}"${conditionsEnd}><saml:AudienceRestriction><saml:Audience>${app.url}/saml/${flow.org}</saml:Audience></saml:AudienceRestriction></saml:Conditions>`
  ).repeat(o.conditions === 2 ? 2 : 1);
  const assertion =
    `<saml:Assertion xmlns:saml="${NS_ASSERTION}" ID="_a${randomBytes(16).toString('hex')}" Version="2.0" IssueInstant="${iso(issuedAt)}">` +
    `<saml:Issuer>${IDP_ENTITY_ID}</saml:Issuer>` +
    `<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">dana@hard.example</saml:NameID>` +
    `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData InResponseTo="${flow.requestId}"${o.confirmationNotOnOrAfter === null ? '' : ` NotOnOrAfter="${o.confirmationNotOnOrAfter ?? iso(notOnOrAfter)}"`} Recipient="${acs}"/></saml:SubjectConfirmation></saml:Subject>` +
    conditions +
    `<saml:AuthnStatement AuthnInstant="${iso(issuedAt)}" SessionIndex="_s${randomBytes(8).toString('hex')}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>` +
    `<saml:AttributeStatement><saml:Attribute Name="${EMAIL}"><saml:AttributeValue>dana@hard.example</saml:AttributeValue></saml:Attribute><saml:Attribute Name="${GROUPS}">${groups}</saml:Attribute></saml:AttributeStatement>` +
    `</saml:Assertion>`;
  let signedAssertion = sign(assertion, 'Assertion', o.signatureAlgorithm ?? RSA_SHA256, o.digestAlgorithm ?? SHA256);
  if (o.encryptTo) {
    const encrypted = await promisify(xmlenc.encrypt)(signedAssertion, {
      rsa_pub: o.encryptTo,
      pem: o.encryptTo,
      encryptionAlgorithm: 'http://www.w3.org/2009/xmlenc11#aes256-gcm',
      keyEncryptionAlgorithm: 'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p',
      ...(o.encryption as { encryptionAlgorithm: never; keyEncryptionAlgorithm: never } | undefined),
      disallowEncryptionWithInsecureAlgorithm: false,
    });
    signedAssertion = `<saml:EncryptedAssertion xmlns:saml="${NS_ASSERTION}">${encrypted}</saml:EncryptedAssertion>`;
  }
  const destination = o.destination === null ? '' : ` Destination="${o.destination ?? acs}"`;
  let response =
    `<samlp:Response xmlns:samlp="${NS_PROTOCOL}" xmlns:saml="${NS_ASSERTION}" ID="_r${randomBytes(16).toString('hex')}" Version="2.0" IssueInstant="${iso(new Date(now))}"${destination} InResponseTo="${flow.requestId}">` +
    `<saml:Issuer>${IDP_ENTITY_ID}</saml:Issuer>` +
    `<samlp:Status><samlp:StatusCode Value="${o.status ?? 'urn:oasis:names:tc:SAML:2.0:status:Success'}"/></samlp:Status>` +
    signedAssertion +
    `</samlp:Response>`;
  if (o.signResponse) response = sign(response, 'Response', o.signResponse.signatureAlgorithm, o.signResponse.digestAlgorithm);
  return Buffer.from(response, 'utf8').toString('base64');
}

/** Enveloped signature over the root element (exclusive C14N), placed after its Issuer. */
function sign(xml: string, root: 'Assertion' | 'Response', signatureAlgorithm: string, digestAlgorithm: string): string {
  const signer = new SignedXml({
    privateKey: idpKey.keyPem,
    publicCert: idpKey.certPem,
    signatureAlgorithm,
    canonicalizationAlgorithm: EXC_C14N,
  });
  signer.addReference({ xpath: `/*[local-name(.)='${root}']`, transforms: [ENVELOPED, EXC_C14N], digestAlgorithm });
  signer.computeSignature(xml, {
    prefix: 'ds',
    location: { reference: `/*[local-name(.)='${root}']/*[local-name(.)='Issuer']`, action: 'after' },
  });
  return signer.getSignedXml();
}

const postAcs = (flow: Flow, samlResponse: string): Promise<Response> =>
  postForm(acsUrl(flow.org), { SAMLResponse: samlResponse, RelayState: flow.relayState });

/** The ACS sent the browser back to the BFF with a code. */
function expectCode(res: Response): void {
  expect(res.status).toBe(303);
  const back = new URL(res.headers.get('location')!);
  expect(`${back.origin}${back.pathname}`).toBe(bff.redirectUri);
  expect(back.searchParams.get('error')).toBeNull();
  expect(back.searchParams.get('code')).toBeTruthy();
}

async function rejectionReasons(tenant: Tenant): Promise<string[]> {
  const rows = await tenantRows<{ reason: string }>(
    app,
    tenant.id,
    `SELECT data->>'reason' AS reason FROM audit_events WHERE action = 'saml.response_rejected' ORDER BY id`,
  );
  return rows.map((r) => r.reason);
}

/** Posts the crafted response and expects exactly one refusal with this audit reason (browser back to the BFF, access_denied). */
async function expectRefusal(flow: Flow, samlResponse: string, reason: string): Promise<void> {
  const before = (await rejectionReasons(tenants[flow.org])).length;
  const res = await postAcs(flow, samlResponse);
  expect((await rejectionReasons(tenants[flow.org])).slice(before)).toEqual([reason]);
  expect(res.status).toBe(303);
  const back = new URL(res.headers.get('location')!);
  expect(back.searchParams.get('error')).toBe('access_denied');
  expect(back.searchParams.get('code')).toBeNull();
}

const accepted = async (org: Org, o: Craft = {}) => {
  const flow = await startFlow(org);
  expectCode(await postAcs(flow, await craft(flow, o)));
};
const refused = async (org: Org, o: Craft, reason: string) => {
  const flow = await startFlow(org);
  await expectRefusal(flow, await craft(flow, o), reason);
};

// ================================================================================================

describe('crafted SAML responses (control)', () => {
  it('logs in with a response signed RSA-SHA256 / SHA-256 by the trusted IdP key, plain and encrypted', async () => {
    await accepted('hard');
    await accepted('hard-enc', { encryptTo: spEncryption.certPem });
  });
});

describe('IdP status', () => {
  it('refuses a Response whose top-level StatusCode is not Success, even with a valid signed assertion', async () => {
    await refused('hard', { status: 'urn:oasis:names:tc:SAML:2.0:status:Responder' }, 'idp_status');
    await refused('hard', { status: 'urn:oasis:names:tc:SAML:2.0:status:Requester' }, 'idp_status');
  });
});

describe('signature algorithms', () => {
  it('refuses RSA-SHA1 signatures and SHA-1 digests by default, on the assertion and on the Response', async () => {
    await refused('hard', { signatureAlgorithm: RSA_SHA1, digestAlgorithm: SHA1 }, 'algorithm');
    await refused('hard', { signatureAlgorithm: RSA_SHA256, digestAlgorithm: SHA1 }, 'algorithm');
    await refused('hard', { signatureAlgorithm: RSA_SHA1, digestAlgorithm: SHA256 }, 'algorithm');
    await refused('hard', { signResponse: { signatureAlgorithm: RSA_SHA1, digestAlgorithm: SHA1 } }, 'algorithm');
    // Control: the same envelope signature with SHA-256 is accepted.
    await accepted('hard', { signResponse: { signatureAlgorithm: RSA_SHA256, digestAlgorithm: SHA256 } });
  });

  it('refuses an assertion encrypted with RSA PKCS#1 v1.5 key transport or 3DES, and takes AES-256-CBC (the ADFS and Entra default)', async () => {
    const OAEP = 'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p';
    await refused(
      'hard-enc',
      {
        encryptTo: spEncryption.certPem,
        encryption: {
          encryptionAlgorithm: 'http://www.w3.org/2009/xmlenc11#aes256-gcm',
          keyEncryptionAlgorithm: 'http://www.w3.org/2001/04/xmlenc#rsa-1_5',
        },
      },
      'algorithm',
    );
    await refused(
      'hard-enc',
      {
        encryptTo: spEncryption.certPem,
        encryption: { encryptionAlgorithm: 'http://www.w3.org/2001/04/xmlenc#tripledes-cbc', keyEncryptionAlgorithm: OAEP },
      },
      'algorithm',
    );
    await accepted('hard-enc', {
      encryptTo: spEncryption.certPem,
      encryption: { encryptionAlgorithm: 'http://www.w3.org/2001/04/xmlenc#aes256-cbc', keyEncryptionAlgorithm: OAEP },
    });
  });

  it("checks the algorithms of an encrypted assertion's signature after decrypting it", async () => {
    await refused('hard-enc', { signatureAlgorithm: RSA_SHA1, digestAlgorithm: SHA1, encryptTo: spEncryption.certPem }, 'algorithm');
  });

  it("accepts SHA-1 only for a binding that opts in, and reports that binding's health as a warning", async () => {
    await accepted('hard-sha1', { signatureAlgorithm: RSA_SHA1, digestAlgorithm: SHA1 });
    await accepted('hard-sha1', { signResponse: { signatureAlgorithm: RSA_SHA1, digestAlgorithm: SHA1 } });

    const adapter = app.app.get(TenantSamlProvider);
    const bindings = app.app.get(BindingsService);
    const weak = (await bindings.activeOfKind(tenants['hard-sha1'], 'saml'))!;
    const health = await adapter.health(weak);
    expect(health.status).toBe('warning');
    expect(health.warnings).toEqual([expect.stringMatching(/SHA-1/)]);
    const probe = await adapter.probe(weak);
    expect(probe.ok).toBe(true);
    expect(probe.checks['algorithms']).toMatch(/^warning: .*SHA-1/);
    expect(probe.warnings).toEqual([expect.stringMatching(/SHA-1/)]);

    // Control: a default binding has no such warning.
    const strong = (await bindings.activeOfKind(tenants.hard, 'saml'))!;
    expect((await adapter.health(strong)).warnings).toEqual([]);
    expect((await adapter.probe(strong)).checks['algorithms']).toBeUndefined();

    // The background refresher logs the warning for the opted-in binding only.
    logLines.length = 0;
    await app.app.get(BindingHealthRefresher).refreshAll();
    const weakened = logLines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l['msg'] === 'identity-provider binding configuration is weakened');
    expect(weakened.map((l) => l['binding'])).toEqual([weak.id]);
  });

  it("validates allowSha1Signatures and requireDestination like the binding's other switches", () => {
    const base = { idpEntityId: IDP_ENTITY_ID, idpSsoUrl: IDP_SSO_URL, idpCertificates: ['x'] };
    expect(() => parseSamlBinding({ ...base, allowSha1Signatures: 'yes' }, {})).toThrow(SamlConfigError);
    expect(() => parseSamlBinding({ ...base, requireDestination: 0 }, {})).toThrow(SamlConfigError);
  });
});

describe('assertion age', () => {
  it('refuses an assertion issued long ago whatever its NotOnOrAfter, and one issued in the future', async () => {
    const now = Date.now();
    const tenYears = 10 * 365 * 86_400_000;
    await refused(
      'hard',
      { issuedAt: new Date(now - tenYears), notBefore: new Date(now - tenYears), notOnOrAfter: new Date(now + tenYears) },
      'expired',
    );
    await refused(
      'hard',
      { issuedAt: new Date(now - (MAX_AGE_SECONDS + CLOCK_SKEW_SECONDS + 60) * 1000), notOnOrAfter: new Date(now + 3600_000) },
      'expired',
    );
    await refused('hard', { issuedAt: new Date(now + 86_400_000) }, 'expired');
    await refused('hard', { issuedAt: new Date(now + (CLOCK_SKEW_SECONDS + 60) * 1000) }, 'expired');
  });

  it('accepts an assertion within SAML_MAX_ASSERTION_AGE_SECONDS (plus CLOCK_SKEW_SECONDS), and one issued less than CLOCK_SKEW_SECONDS ahead', async () => {
    const now = Date.now();
    await accepted('hard', { issuedAt: new Date(now - (MAX_AGE_SECONDS - 60) * 1000), notOnOrAfter: new Date(now + 3600_000) });
    await accepted('hard', {
      issuedAt: new Date(now - (MAX_AGE_SECONDS + CLOCK_SKEW_SECONDS / 3) * 1000),
      notOnOrAfter: new Date(now + 3600_000),
    });
    await accepted('hard', { issuedAt: new Date(now + (CLOCK_SKEW_SECONDS / 3) * 1000) });
  });
});

describe('Destination', () => {
  it('refuses an unsigned Response without Destination (only the assertion signed), unless the binding opts out', async () => {
    await refused('hard', { destination: null }, 'destination');
    await accepted('hard-nodest', { destination: null });
    // Opting out never lets a wrong Destination through, nor a signed Response without one.
    await refused('hard-nodest', { destination: `${app.url}/saml/hard/acs` }, 'destination');
    await refused(
      'hard-nodest',
      { destination: null, signResponse: { signatureAlgorithm: RSA_SHA256, digestAlgorithm: SHA256 } },
      'destination',
    );
  });
});

describe('ACS body size', () => {
  it('accepts a large real-world response (hundreds of group claims, well above 64 kB)', async () => {
    const flow = await startFlow('hard');
    const samlResponse = await craft(flow, { groups: 1500 });
    expect(new URLSearchParams({ SAMLResponse: samlResponse }).toString().length).toBeGreaterThan(128 * 1024);
    expectCode(await postAcs(flow, samlResponse));
  });

  it("lets a SAMLResponse at the adapter's cap reach the adapter even fully percent-encoded with line breaks (no 413)", async () => {
    const flow = await startFlow('hard');
    // 400,000 base64 characters of '/', CRLF every 76: every byte of the form is percent-encoded.
    const atCap = Array.from({ length: Math.ceil(400_000 / 76) }, (_, i) => '/'.repeat(Math.min(76, 400_000 - i * 76))).join('\r\n');
    expect(atCap.replace(/\s/g, '').length).toBe(400_000);
    expect(new URLSearchParams({ SAMLResponse: atCap }).toString().length).toBeGreaterThan(1_200_000);
    await expectRefusal(flow, atCap, 'malformed');
  });

  it('keeps the 64 kB form limit on every other route', async () => {
    const res = await postForm(`${app.url}/oauth2/token`, { grant_type: 'client_credentials', padding: 'x'.repeat(70 * 1024) });
    expect(res.status).toBe(413);
    // And on a path that only looks like an ACS.
    const nested = await postForm(`${app.url}/saml/hard/acs/extra`, { SAMLResponse: 'x'.repeat(70 * 1024) });
    expect(nested.status).toBe(413);
  });
});

describe('refusal reasons (classified by what was checked)', () => {
  it('records a decryption failure with the wrong SP key as decryption', async () => {
    await refused('hard-enc', { encryptTo: otherEncryption.certPem }, 'decryption');
  });

  it('records an assertion without Conditions, with several, or with Conditions lacking NotOnOrAfter as conditions', async () => {
    await refused('hard', { conditions: false }, 'conditions');
    await refused('hard', { conditions: 2 }, 'conditions');
    await refused('hard', { conditionsNotOnOrAfter: null }, 'conditions');
  });

  it('records an unparsable NotOnOrAfter as malformed', async () => {
    await refused('hard', { conditionsNotOnOrAfter: 'tomorrow' }, 'malformed');
    await refused('hard', { conditionsNotOnOrAfter: 'Tue, 1 Jan 2030 00:00:00 GMT' }, 'malformed');
    await refused('hard', { confirmationNotOnOrAfter: 'tomorrow' }, 'malformed');
  });

  it('records a SubjectConfirmationData without NotOnOrAfter as subject', async () => {
    await refused('hard', { confirmationNotOnOrAfter: null }, 'subject');
  });
});
