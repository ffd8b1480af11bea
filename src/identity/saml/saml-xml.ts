import { createHash, X509Certificate } from 'node:crypto';
import { DOMParser } from '@xmldom/xmldom';
import { toPemCertificate } from './saml-config.js';

export const NS = {
  protocol: 'urn:oasis:names:tc:SAML:2.0:protocol',
  assertion: 'urn:oasis:names:tc:SAML:2.0:assertion',
  metadata: 'urn:oasis:names:tc:SAML:2.0:metadata',
  dsig: 'http://www.w3.org/2000/09/xmldsig#',
} as const;

export const BINDING_REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
export const BINDING_POST = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST';
export const CM_BEARER = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';
export const NAMEID_TRANSIENT = 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient';
export const STATUS_SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';

/**
 * XML signature algorithms accepted by default: RSA with SHA-256 or stronger (what xml-crypto can
 * verify). Never HMAC: its "key" would be the IdP's public certificate.
 */
const STRONG_SIGNATURE_METHODS = [
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  'http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512',
];
const STRONG_DIGEST_METHODS = ['http://www.w3.org/2001/04/xmlenc#sha256', 'http://www.w3.org/2001/04/xmlenc#sha512'];
const SHA1_SIGNATURE_METHOD = 'http://www.w3.org/2000/09/xmldsig#rsa-sha1';
const SHA1_DIGEST_METHOD = 'http://www.w3.org/2000/09/xmldsig#sha1';

export class XmlRefusedError extends Error {
  override name = 'XmlRefusedError';
  constructor(
    readonly reason: 'dtd' | 'malformed',
    message: string,
  ) {
    super(message);
  }
}

/**
 * Refuses any document type declaration or entity declaration before a parser sees the text:
 * no DTD, no internal or external entities, no billion laughs, whatever the parser would do.
 */
export function refuseDtd(xml: string): void {
  if (/<!DOCTYPE/i.test(xml) || /<!ENTITY/i.test(xml)) throw new XmlRefusedError('dtd', 'XML with a document type declaration is refused');
}

/** Parses XML after refusing DTDs; any parser warning-as-error or missing root is fatal. */
export function parseXml(xml: string): Document {
  refuseDtd(xml);
  let failure: string | undefined;
  const fail = (msg: string) => {
    failure ??= msg;
  };
  let doc: ReturnType<DOMParser['parseFromString']> | undefined;
  try {
    doc = new DOMParser({ locator: {}, errorHandler: { warning: () => undefined, error: fail, fatalError: fail } }).parseFromString(
      xml,
      'text/xml',
    );
  } catch {
    failure ??= 'parser error';
  }
  if (failure || !doc || !doc.documentElement) throw new XmlRefusedError('malformed', 'XML could not be parsed');
  return doc;
}

/** Element children of `parent` with this namespace and local name (no XPath, no descendants). */
export function children(parent: Element | Document, ns: string, localName: string): Element[] {
  const out: Element[] = [];
  const nodes = parent.childNodes;
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i] as Element;
    if (n.nodeType === 1 && n.namespaceURI === ns && n.localName === localName) out.push(n);
  }
  return out;
}

export const child = (parent: Element | Document, ns: string, localName: string): Element | undefined => children(parent, ns, localName)[0];

/** Text of an element, comments and all child nodes concatenated (never "the first text node"). */
export const textOf = (el: Element | undefined): string | undefined => (el ? (el.textContent ?? '').trim() : undefined);

export const attr = (el: Element | undefined, name: string): string | undefined =>
  el && el.hasAttribute(name) ? el.getAttribute(name)! : undefined;

/** Every element below `root` (document order) with this local name, whatever its namespace. */
function descendantsNamed(root: Element, localName: string): Element[] {
  const out: Element[] = [];
  const walk = (node: Node) => {
    for (let i = 0; i < node.childNodes.length; i++) {
      const n = node.childNodes[i]!;
      if (n.nodeType !== 1) continue;
      if ((n as Element).localName === localName) out.push(n as Element);
      walk(n);
    }
  };
  walk(root);
  return out;
}

/**
 * The first SignatureMethod or DigestMethod of `signed`'s own ds:Signature elements (what the
 * verifier would check) outside the allow-list, or undefined. Every such element anywhere inside a
 * signature counts, whatever its namespace, so no decoy can sit beside the one a library reads.
 */
export function weakSignatureAlgorithm(signed: Element, allowSha1: boolean): string | undefined {
  const signatureMethods = allowSha1 ? [...STRONG_SIGNATURE_METHODS, SHA1_SIGNATURE_METHOD] : STRONG_SIGNATURE_METHODS;
  const digestMethods = allowSha1 ? [...STRONG_DIGEST_METHODS, SHA1_DIGEST_METHOD] : STRONG_DIGEST_METHODS;
  for (const signature of children(signed, NS.dsig, 'Signature')) {
    for (const m of descendantsNamed(signature, 'SignatureMethod'))
      if (!signatureMethods.includes(m.getAttribute('Algorithm') ?? ''))
        return `SignatureMethod ${m.getAttribute('Algorithm') || '(none)'}`;
    for (const m of descendantsNamed(signature, 'DigestMethod'))
      if (!digestMethods.includes(m.getAttribute('Algorithm') ?? '')) return `DigestMethod ${m.getAttribute('Algorithm') || '(none)'}`;
  }
  return undefined;
}

/**
 * XML Encryption algorithms an encrypted assertion may use. Key transport: RSA-OAEP only; RSA
 * PKCS#1 v1.5 (`rsa-1_5`) is open to Bleichenbacher's padding oracle. Content: AES-GCM, and AES-CBC
 * because ADFS and Entra ID encrypt with aes256-cbc by default; never 3DES. The digest inside an
 * OAEP EncryptionMethod is SHA-1 in most IdPs' output (it only parameterises the padding) and is
 * not a signature digest, so DigestMethod below EncryptedKey is not checked here.
 */
const ENCRYPTION_METHODS = [
  'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p',
  'http://www.w3.org/2009/xmlenc11#rsa-oaep',
  'http://www.w3.org/2009/xmlenc11#aes128-gcm',
  'http://www.w3.org/2009/xmlenc11#aes192-gcm',
  'http://www.w3.org/2009/xmlenc11#aes256-gcm',
  'http://www.w3.org/2001/04/xmlenc#aes128-cbc',
  'http://www.w3.org/2001/04/xmlenc#aes192-cbc',
  'http://www.w3.org/2001/04/xmlenc#aes256-cbc',
];

/** The first EncryptionMethod anywhere inside `encrypted` outside the allow-list, or undefined. */
export function weakEncryptionAlgorithm(encrypted: Element): string | undefined {
  for (const m of descendantsNamed(encrypted, 'EncryptionMethod'))
    if (!ENCRYPTION_METHODS.includes(m.getAttribute('Algorithm') ?? ''))
      return `EncryptionMethod ${m.getAttribute('Algorithm') || '(none)'}`;
  return undefined;
}

const XS_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/;

/**
 * A SAML time value (xs:dateTime, SAML core §1.3.3) as epoch milliseconds; undefined when it is
 * not one (Date.parse alone would take "Tue, 1 Jan 2030" or "2030").
 */
export function samlInstant(value: string | undefined): number | undefined {
  if (value === undefined || !XS_DATE_TIME.test(value)) return undefined;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : t;
}

// --------------------------------------------------------------------------------------------
// IdP metadata

export interface IdpMetadata {
  entityId: string;
  /** SingleSignOnService with the HTTP-Redirect binding (what AuthnRequests are sent to). */
  ssoRedirectUrl?: string;
  /** Every SingleSignOnService location, by binding. */
  ssoUrls: Array<{ binding: string; location: string }>;
  /** Signing certificates (KeyDescriptor use="signing" or without `use`), PEM. */
  signingCertificates: string[];
  nameIdFormats: string[];
  validUntil?: Date;
}

export class MetadataError extends Error {
  override name = 'MetadataError';
}

/**
 * Reads an IdP's SAML 2.0 metadata: an EntityDescriptor, or an EntitiesDescriptor holding exactly
 * one IdP (or the one whose entityID is `expectedEntityId`).
 */
export function parseIdpMetadata(xml: string, expectedEntityId?: string): IdpMetadata {
  let doc: Document;
  try {
    doc = parseXml(xml);
  } catch (err) {
    throw new MetadataError(
      err instanceof XmlRefusedError && err.reason === 'dtd' ? 'metadata with a DTD is refused' : 'metadata is not well-formed XML',
    );
  }
  const root = doc.documentElement;
  let candidates: Element[];
  if (root.namespaceURI === NS.metadata && root.localName === 'EntityDescriptor') candidates = [root];
  else if (root.namespaceURI === NS.metadata && root.localName === 'EntitiesDescriptor') candidates = collectEntities(root);
  else throw new MetadataError('metadata root is not an EntityDescriptor or EntitiesDescriptor');

  const idps = candidates.filter((e) => child(e, NS.metadata, 'IDPSSODescriptor'));
  const matching = expectedEntityId ? idps.filter((e) => e.getAttribute('entityID') === expectedEntityId) : idps;
  if (matching.length === 0)
    throw new MetadataError(
      expectedEntityId ? `metadata has no IdP with entityID ${expectedEntityId}` : 'metadata has no IDPSSODescriptor',
    );
  if (matching.length > 1) throw new MetadataError('metadata lists several IdPs: pin one with idpEntityId');
  const entity = matching[0]!;
  const entityId = entity.getAttribute('entityID') ?? '';
  if (!entityId) throw new MetadataError('EntityDescriptor has no entityID');

  const descriptors = children(entity, NS.metadata, 'IDPSSODescriptor').filter((d) =>
    (d.getAttribute('protocolSupportEnumeration') ?? '').split(/\s+/).includes(NS.protocol),
  );
  if (descriptors.length === 0) throw new MetadataError('IDPSSODescriptor does not support SAML 2.0');
  const idp = descriptors[0]!;

  const ssoUrls = children(idp, NS.metadata, 'SingleSignOnService')
    .map((s) => ({ binding: s.getAttribute('Binding') ?? '', location: s.getAttribute('Location') ?? '' }))
    .filter((s) => s.binding && s.location);
  const signingCertificates: string[] = [];
  for (const kd of children(idp, NS.metadata, 'KeyDescriptor')) {
    const use = kd.getAttribute('use');
    if (use && use !== 'signing') continue;
    for (const ki of children(kd, NS.dsig, 'KeyInfo'))
      for (const x509 of children(ki, NS.dsig, 'X509Data'))
        for (const c of children(x509, NS.dsig, 'X509Certificate')) {
          let pem: string;
          try {
            pem = toPemCertificate(textOf(c) ?? '');
            new X509Certificate(pem);
          } catch {
            throw new MetadataError('metadata has an unreadable signing certificate');
          }
          if (!signingCertificates.includes(pem)) signingCertificates.push(pem);
        }
  }
  if (signingCertificates.length === 0) throw new MetadataError('IDPSSODescriptor has no signing certificate');
  const validUntilRaw = entity.getAttribute('validUntil') || root.getAttribute('validUntil');
  const validUntil = validUntilRaw ? new Date(validUntilRaw) : undefined;
  return {
    entityId,
    ssoRedirectUrl: ssoUrls.find((s) => s.binding === BINDING_REDIRECT)?.location,
    ssoUrls,
    signingCertificates,
    nameIdFormats: children(idp, NS.metadata, 'NameIDFormat')
      .map((n) => textOf(n) ?? '')
      .filter(Boolean),
    validUntil: validUntil && !Number.isNaN(validUntil.getTime()) ? validUntil : undefined,
  };
}

function collectEntities(el: Element): Element[] {
  return [...children(el, NS.metadata, 'EntityDescriptor'), ...children(el, NS.metadata, 'EntitiesDescriptor').flatMap(collectEntities)];
}

// --------------------------------------------------------------------------------------------
// Certificates

export interface CertificateInfo {
  subject: string;
  fingerprintSha256: string;
  notBefore: string;
  notAfter: string;
  /** Whole days until notAfter (negative once expired). */
  daysUntilExpiry: number;
}

export function certificateInfo(pem: string, now = Date.now()): CertificateInfo {
  const cert = new X509Certificate(pem);
  const notAfter = new Date(cert.validTo);
  return {
    subject: cert.subject.replace(/\n/g, ', '),
    fingerprintSha256: createHash('sha256').update(cert.raw).digest('hex'),
    notBefore: new Date(cert.validFrom).toISOString(),
    notAfter: notAfter.toISOString(),
    daysUntilExpiry: Math.floor((notAfter.getTime() - now) / 86_400_000),
  };
}
