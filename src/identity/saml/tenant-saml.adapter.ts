import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { XMLSerializer } from '@xmldom/xmldom';
import xmlenc from 'xml-encryption';
import {
  generateServiceProviderMetadata,
  SAML,
  SamlStatusError,
  ValidateInResponseTo,
  type CacheProvider,
  type Profile,
  type SamlConfig,
} from '@node-saml/node-saml';
import { AppConfig } from '../../config/app-config.js';
import { ProblemError } from '../../common/errors.js';
import type {
  BeginLoginResult,
  BindingContext,
  BindingHealth,
  BrowserLogin,
  CallbackInput,
  ConfigCheck,
  ExternalIdentity,
  HealthProbe,
  LoginContext,
  ProviderCapabilities,
  ValidatedBindingConfig,
} from '../port/identity-provider.port.js';
import { parseSamlBinding, SamlConfigError, toPemCertificate, type ParsedSamlBinding, type SamlBindingConfig } from './saml-config.js';
import { SamlResponseRejectedError, type SamlRejectReason } from './saml-errors.js';
import {
  CERT_WARNING_DAYS,
  MetadataUnreachableError,
  SamlIdpMetadataService,
  type ResolvedIdp,
  type SamlBindingHealth,
} from './saml-idp-metadata.service.js';
import { ReplayedSamlMessageError, SamlMessageIdStore } from './saml-message-ids.js';
import {
  attr,
  certificateInfo,
  child,
  children,
  CM_BEARER,
  MetadataError,
  NAMEID_TRANSIENT,
  NS,
  parseXml,
  samlInstant,
  STATUS_SUCCESS,
  textOf,
  weakEncryptionAlgorithm,
  weakSignatureAlgorithm,
  XmlRefusedError,
  type CertificateInfo,
} from './saml-xml.js';

/** What beginLogin keeps with the login transaction (encrypted at rest). */
interface SamlProviderState {
  requestId: string;
  issuedAt: string;
}

interface Solicited {
  requestId: string;
  issuedAt: Date;
}

/** One thing wrong with an IdP's configuration, as the admin API reports it. */
interface IdpCheckFailure {
  type: 'saml-config' | 'saml-metadata' | 'saml-certificate';
  check: string;
  detail: string;
}

const CHECK_TITLES: Record<IdpCheckFailure['type'], string> = {
  'saml-config': 'Invalid SAML binding',
  'saml-metadata': 'SAML metadata check failed',
  'saml-certificate': 'SAML certificate check failed',
};

const certName = (c: CertificateInfo): string => `${c.subject || 'without subject'} (SHA-256 ${c.fingerprintSha256.slice(0, 16)}…)`;

/** Longest SAMLResponse (base64, whitespace removed) the ACS reads: an Entra or ADFS response with a few hundred group claims. */
export const MAX_RESPONSE_CHARS = 400_000;
/**
 * Form body limit of the ACS route, so that every response within MAX_RESPONSE_CHARS reaches the
 * adapter: the worst case percent-encodes each base64 character (3 bytes) and the CRLF an IdP may
 * insert every 76 characters, plus RelayState and the field names.
 */
export const ACS_BODY_LIMIT_BYTES = 3 * Math.ceil((MAX_RESPONSE_CHARS * 78) / 76) + 4096;
const MAX_ID_LENGTH = 256;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const FORBIDDEN_CLAIM_NAMES = new Set(['__proto__', 'constructor', 'prototype']);

const reject = (reason: SamlRejectReason, internal: string): never => {
  throw new SamlResponseRejectedError(reason, internal);
};

const decryptXml = promisify(xmlenc.decrypt) as (
  xml: string,
  options: { key: string; disallowDecryptionWithInsecureAlgorithm: boolean },
) => Promise<string>;

/** Health warning of a binding that accepts SHA-1. */
const SHA1_WARNING =
  'RSA-SHA1 signatures and SHA-1 digests are accepted (allowSha1Signatures): have the IdP sign with SHA-256, then turn it off';

const instant = (value: string | undefined): number | undefined => {
  if (value === undefined) return undefined;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : t;
};

/**
 * Maps node-saml's error messages (its only error signal) to a refusal reason, for what only
 * node-saml checks (the signature itself, Audience, InResponseTo, Conditions times). What the
 * adapter can check itself it checks first (precheck), so those refusals never depend on this.
 */
function reasonFor(err: unknown): SamlRejectReason {
  if (err instanceof SamlStatusError) return 'idp_status';
  const msg = err instanceof Error ? err.message : String(err);
  if (/InResponseTo/i.test(msg)) return 'in_response_to';
  if (/decrypt|EncryptedAssertion content|No decryption key/i.test(msg)) return 'decryption';
  if (/signature|multiple assertions|signed|Cannot obtain assertion|ID cannot refer|Referenced node|transforms/i.test(msg))
    return 'signature';
  if (/expired|not yet valid|subject confirmation/i.test(msg)) return 'expired';
  if (/audience/i.test(msg)) return 'audience';
  return 'invalid';
}

/**
 * A customer's own SAML 2.0 IdP (Entra ID, ADFS, Okta, SimpleSAMLphp, ...), by configuration.
 *
 * node-saml verifies the XML signature (over the assertion, or the response and the assertion,
 * using only the signed bytes), Audience, Conditions timestamps and InResponseTo. This adapter adds
 * what node-saml leaves to the SP: no DTD, a Success status, an allow-list of signature and digest
 * algorithms, the IdP issuer, Destination and Recipient against this tenant's ACS, a bounded
 * assertion age, a timely bearer SubjectConfirmation, and one-time use of each assertion ID and
 * request ID across replicas.
 */
@Injectable()
export class TenantSamlProvider implements BrowserLogin, ConfigCheck, HealthProbe {
  readonly kind = 'saml' as const;
  readonly capabilities: ProviderCapabilities = { loginRedirect: true, tokenExchange: false, logout: false };
  private readonly logger = new Logger('TenantSamlProvider');

  constructor(
    private readonly idps: SamlIdpMetadataService,
    private readonly messageIds: SamlMessageIdStore,
    @Inject(AppConfig) private readonly config: AppConfig,
  ) {}

  // ---- SP identity: derived from the tenant slug only, so it never changes when keys rotate ----

  spEntityId(slug: string): string {
    return `${this.config.issuer}/saml/${slug}`;
  }

  acsUrl(slug: string): string {
    return `${this.config.issuer}/saml/${slug}/acs`;
  }

  metadataUrl(slug: string): string {
    return `${this.config.issuer}/saml/${slug}/metadata`;
  }

  // ---- IdentityProvider ----

  async beginLogin(binding: BindingContext, ctx: LoginContext): Promise<BeginLoginResult> {
    const parsed = this.parse(binding);
    const idp = await this.idps.resolve(binding, parsed.config);
    const requestId = `_${randomBytes(20).toString('hex')}`;
    const issuedAt = new Date().toISOString();
    const noCache: CacheProvider = { saveAsync: async () => null, getAsync: async () => null, removeAsync: async () => null };
    const saml = this.saml(binding, parsed, idp, {
      generateUniqueId: () => requestId,
      cacheProvider: noCache,
      validateInResponseTo: ValidateInResponseTo.never,
      // SAML cannot carry max_age: a client that bounds the authentication's age (or asks for
      // prompt=login) gets a fresh one, whose AuthnInstant LoginService then checks.
      ...(ctx.reauthenticate || ctx.maxAge !== undefined ? { forceAuthn: true } : {}),
    });
    // RelayState carries the transaction handle (79 characters, inside SAML's 80-byte limit).
    const redirectUrl = await saml.getAuthorizeUrlAsync(ctx.transactionHandle, undefined, {});
    const state: SamlProviderState = { requestId, issuedAt };
    return { redirectUrl, providerState: { ...state } };
  }

  /** SP-initiated: the response must answer the AuthnRequest stored with this login transaction. */
  async completeLogin(binding: BindingContext, callback: CallbackInput, providerState: Record<string, unknown>): Promise<ExternalIdentity> {
    const requestId = providerState['requestId'];
    const issuedAt = typeof providerState['issuedAt'] === 'string' ? instant(providerState['issuedAt']) : undefined;
    if (typeof requestId !== 'string' || !requestId || issuedAt === undefined)
      return reject('in_response_to', 'the login transaction holds no SAML request');
    return this.validate(binding, callback.body['SAMLResponse'], { requestId, issuedAt: new Date(issuedAt) });
  }

  /**
   * IdP-initiated (unsolicited) response: refused unless the binding allows it; otherwise fully
   * validated (and its assertion ID consumed), then the browser goes to the BFF's "start login"
   * URL so a normal PKCE-bound flow follows. Never mints a code by itself.
   */
  async acceptIdpInitiated(
    binding: BindingContext,
    samlResponse: string | undefined,
  ): Promise<{ redirectUrl: string; identity: ExternalIdentity }> {
    const parsed = this.parse(binding);
    if (!parsed.config.allowIdpInitiated || !parsed.config.idpInitiatedLoginUrl)
      return reject('idp_initiated_disabled', 'IdP-initiated response for a binding that does not allow it');
    const identity = await this.validate(binding, samlResponse, undefined);
    return { redirectUrl: parsed.config.idpInitiatedLoginUrl, identity };
  }

  /** The SP metadata the customer's IT admin imports: entityID and ACS depend on the slug only. */
  spMetadata(binding: BindingContext): string {
    const c = binding.config as Partial<SamlBindingConfig>;
    const s = binding.secrets as { spDecryptionKey?: string; spSigningKey?: string };
    const encrypt = c.encryptedAssertions === true && c.spEncryptionCertificate && s.spDecryptionKey;
    const sign = c.signAuthnRequests === true && c.spSigningCertificate && s.spSigningKey;
    return generateServiceProviderMetadata({
      issuer: this.spEntityId(binding.tenantSlug),
      callbackUrl: this.acsUrl(binding.tenantSlug),
      identifierFormat: typeof c.nameIdFormat === 'string' ? c.nameIdFormat : null,
      wantAssertionsSigned: c.wantAssertionsSigned !== false,
      ...(encrypt ? { decryptionPvk: s.spDecryptionKey, decryptionCert: toPemCertificate(c.spEncryptionCertificate!) } : {}),
      ...(sign
        ? { privateKey: s.spSigningKey!, publicCerts: [toPemCertificate(c.spSigningCertificate!)], signatureAlgorithm: 'sha256' as const }
        : {}),
    });
  }

  /** Certificate expiry (days) and metadata freshness, for a health endpoint. Never throws. */
  async health(binding: BindingContext): Promise<SamlBindingHealth> {
    let parsed: ParsedSamlBinding;
    try {
      parsed = parseSamlBinding(binding.config, binding.secrets);
    } catch (err) {
      const problems = err instanceof SamlConfigError ? err.problems.join('; ') : 'unreadable configuration';
      return {
        bindingId: binding.id,
        status: 'error',
        metadata: { source: 'config', lastError: `invalid configuration: ${problems}` },
        certificates: [],
        minDaysUntilExpiry: null,
        warnings: [],
      };
    }
    const health = await this.idps.health(binding, parsed.config);
    const warnings = this.configWarnings(parsed.config);
    return warnings.length === 0
      ? health
      : { ...health, status: health.status === 'ok' ? 'warning' : health.status, warnings: [...health.warnings, ...warnings] };
  }

  /** What works but should change in a binding's own configuration. */
  private configWarnings(config: SamlBindingConfig): string[] {
    return config.allowSha1Signatures ? [SHA1_WARNING] : [];
  }

  // ---- configuration checks (admin API) ----

  /**
   * Before a binding is saved: the config is valid, the metadata (XML, or fetched from its URL
   * now) is well-formed without a DTD and names an entityID, an HTTP-Redirect SSO endpoint and at
   * least one signing certificate, and no trusted certificate has expired. Returns the config to
   * store: pasted metadata becomes its parts (idpEntityId, idpSsoUrl, idpCertificates); a metadata
   * URL stays (it is refreshed on a schedule, certificate rollover included) with its entityID
   * pinned, so the URL can never start serving another IdP. A certificate expiring within
   * CERT_WARNING_DAYS is a warning in the returned health, not a refusal.
   */
  async validateConfig(input: {
    tenantSlug: string;
    config: Record<string, unknown>;
    secrets: Record<string, unknown>;
  }): Promise<ValidatedBindingConfig> {
    const refuse = (f: IdpCheckFailure, extensions: Record<string, unknown> = {}) =>
      new ProblemError({
        type: f.type,
        status: 422,
        title: CHECK_TITLES[f.type],
        detail: f.detail,
        extensions: { check: f.check, ...extensions },
      });
    let parsed: ParsedSamlBinding;
    try {
      parsed = parseSamlBinding(input.config, input.secrets);
    } catch (err) {
      if (!(err instanceof SamlConfigError)) throw err;
      throw refuse({ type: 'saml-config', check: 'config', detail: err.problems.join('; ') }, { problems: err.problems });
    }
    const assessed = await this.assess(parsed.config);
    if (assessed.failure) throw refuse(assessed.failure);
    const idp = assessed.idp!;
    const { idpMetadataXml: _pasted, ...rest } = input.config;
    const config: Record<string, unknown> = parsed.config.idpMetadataUrl
      ? { ...rest, idpEntityId: idp.entityId }
      : { ...rest, idpEntityId: idp.entityId, idpSsoUrl: idp.ssoUrl, idpCertificates: idp.certificates };
    // What is stored must pass the adapter's own checks at login (e.g. an SSO URL from metadata that is plain http).
    try {
      parseSamlBinding(config, input.secrets);
    } catch (err) {
      if (!(err instanceof SamlConfigError)) throw err;
      throw refuse({ type: 'saml-metadata', check: 'metadata', detail: err.problems.join('; ') }, { problems: err.problems });
    }
    return { config, health: assessed.health };
  }

  /** Connection health of a saved binding: metadata loaded now (URL fetched), certificate expiry. Never throws on upstream failures. */
  async probe(binding: BindingContext): Promise<BindingHealth> {
    let parsed: ParsedSamlBinding;
    try {
      parsed = parseSamlBinding(binding.config, binding.secrets);
    } catch (err) {
      if (!(err instanceof SamlConfigError)) throw err;
      return { ok: false, checks: { config: `invalid: ${err.problems.join('; ')}` } };
    }
    const assessed = await this.assess(parsed.config);
    if (assessed.failure)
      this.logger.warn(
        { tenant: binding.tenantId, binding: binding.id, check: assessed.failure.check, reason: assessed.failure.detail },
        'SAML IdP health check failed',
      );
    return assessed.health;
  }

  private async assess(config: SamlBindingConfig): Promise<{ health: BindingHealth; idp?: ResolvedIdp; failure?: IdpCheckFailure }> {
    const checks: Record<string, string> = {};
    const warnings = this.configWarnings(config);
    if (warnings.length > 0) checks['algorithms'] = `warning: ${warnings.join('; ')}`;
    const withWarnings = warnings.length > 0 ? { warnings } : {};
    const fail = (f: IdpCheckFailure, certificateExpiresInDays?: number) => {
      checks[f.check] = `failed: ${f.detail}`;
      return {
        health: { ok: false, checks, ...(certificateExpiresInDays !== undefined ? { certificateExpiresInDays } : {}), ...withWarnings },
        failure: f,
      };
    };
    let idp: ResolvedIdp;
    try {
      idp = await this.idps.inspect(config);
    } catch (err) {
      if (err instanceof MetadataUnreachableError)
        return fail({
          type: 'saml-metadata',
          check: 'metadata',
          detail: `the metadata URL ${config.idpMetadataUrl} is unreachable (${err.message})`,
        });
      if (err instanceof MetadataError) return fail({ type: 'saml-metadata', check: 'metadata', detail: err.message });
      throw err;
    }
    checks['metadata'] = `ok (${idp.source})`;
    checks['entityId'] = 'ok';
    checks['sso'] = 'ok (HTTP-Redirect)';
    const certificates = idp.certificates.map((pem) => certificateInfo(pem)).sort((a, b) => a.daysUntilExpiry - b.daysUntilExpiry);
    const first = certificates[0]!;
    const expired = certificates.filter((c) => Date.parse(c.notAfter) <= Date.now());
    if (expired.length > 0)
      return fail(
        {
          type: 'saml-certificate',
          check: 'certificates',
          detail: `the IdP signing certificate ${certName(expired[0]!)} expired on ${expired[0]!.notAfter}; the IdP must publish a current certificate (and it must be removed from the configuration)`,
        },
        first.daysUntilExpiry,
      );
    checks['certificates'] =
      first.daysUntilExpiry < CERT_WARNING_DAYS
        ? `warning: the signing certificate ${certName(first)} expires in ${first.daysUntilExpiry} days (${first.notAfter})`
        : `ok (${certificates.length} signing certificate${certificates.length === 1 ? '' : 's'}, the first expires in ${first.daysUntilExpiry} days)`;
    return { health: { ok: true, checks, certificateExpiresInDays: first.daysUntilExpiry, ...withWarnings }, idp };
  }

  // ---- validation ----

  private async validate(
    binding: BindingContext,
    samlResponse: string | undefined,
    solicited: Solicited | undefined,
  ): Promise<ExternalIdentity> {
    const parsed = this.parse(binding);
    const acs = this.acsUrl(binding.tenantSlug);
    const skewMs = this.config.CLOCK_SKEW_SECONDS * 1000;

    if (typeof samlResponse !== 'string' || samlResponse.length === 0) return reject('malformed', 'no SAMLResponse');
    const compact = samlResponse.replace(/\s+/g, '');
    if (compact.length > MAX_RESPONSE_CHARS || !BASE64.test(compact)) return reject('malformed', 'SAMLResponse is not base64');
    const xml = Buffer.from(compact, 'base64').toString('utf8');

    // Refuse any DTD before a parser sees the document (node-saml's parsers included).
    let raw: Document;
    try {
      raw = parseXml(xml);
    } catch (err) {
      return reject(err instanceof XmlRefusedError && err.reason === 'dtd' ? 'dtd' : 'malformed', (err as Error).message);
    }
    const response = raw.documentElement;
    if (response.namespaceURI !== NS.protocol || response.localName !== 'Response') return reject('malformed', 'not a samlp:Response');
    const inResponseTo = attr(response, 'InResponseTo');
    if (!solicited && inResponseTo !== undefined)
      return reject('in_response_to', 'a solicited response arrived without its login transaction');
    if (parsed.config.encryptedAssertions && children(response, NS.assertion, 'Assertion').length > 0)
      return reject('unencrypted', 'plaintext assertion where encryption is required');
    await this.precheck(parsed, response);

    const idp = await this.idps.resolve(binding, parsed.config);
    const requestCache: CacheProvider = {
      saveAsync: async () => null,
      // node-saml asks twice per response; the answer must not change in between (one-time use is the database's job).
      getAsync: async (key) => (solicited && key === solicited.requestId ? solicited.issuedAt.toISOString() : null),
      removeAsync: async () => null,
    };
    const saml = this.saml(binding, parsed, idp, {
      cacheProvider: requestCache,
      validateInResponseTo: solicited ? ValidateInResponseTo.always : ValidateInResponseTo.ifPresent,
      requestIdExpirationPeriodMs: (this.config.LOGIN_TRANSACTION_TTL_SECONDS + this.config.CLOCK_SKEW_SECONDS) * 1000,
    });
    let profile: Profile | null;
    try {
      ({ profile } = await saml.validatePostResponseAsync({ SAMLResponse: compact }));
    } catch (err) {
      return reject(reasonFor(err), err instanceof Error ? err.message : 'validation failed');
    }
    if (!profile || typeof profile.getAssertionXml !== 'function') return reject('invalid', 'no assertion');

    // Everything below reads the signed assertion bytes node-saml verified, never the raw document.
    const assertion = parseXml(profile.getAssertionXml()).documentElement;
    const now = Date.now();

    const issuer = textOf(child(assertion, NS.assertion, 'Issuer'));
    if (issuer !== idp.entityId) return reject('issuer', `assertion issuer is not the IdP ${idp.entityId}`);
    const responseIssuer = textOf(child(response, NS.assertion, 'Issuer'));
    if (responseIssuer !== undefined && responseIssuer !== idp.entityId) return reject('issuer', 'response issuer is not the IdP');

    // SAML bindings §3.5.5.2 requires Destination on a signed message; on an unsigned one it is what
    // ties the envelope to this ACS, so it is required too unless the binding opts out.
    const destination = attr(response, 'Destination');
    const responseSigned = children(response, NS.dsig, 'Signature').length > 0;
    if (destination === undefined ? responseSigned || parsed.config.requireDestination : destination !== acs)
      return reject(
        'destination',
        destination === undefined
          ? `${responseSigned ? 'signed' : 'unsigned'} response without Destination`
          : "Destination is not this tenant's ACS",
      );

    // However far NotOnOrAfter is, an assertion is posted right after the IdP issued it.
    const issuedAt = samlInstant(attr(assertion, 'IssueInstant'));
    if (issuedAt === undefined) return reject('malformed', 'assertion IssueInstant is not an xs:dateTime');
    if (issuedAt > now + skewMs) return reject('expired', 'assertion IssueInstant is in the future');
    if (now - skewMs > issuedAt + this.config.SAML_MAX_ASSERTION_AGE_SECONDS * 1000)
      return reject('expired', 'assertion older than SAML_MAX_ASSERTION_AGE_SECONDS');

    const confirmation = this.subjectConfirmation(assertion, acs, now, skewMs, solicited);

    const assertionId = attr(assertion, 'ID');
    if (!assertionId || assertionId.length > MAX_ID_LENGTH) return reject('invalid', 'assertion without a usable ID');

    const attributes = claimsOf(assertion);
    let subject: string | undefined;
    if (parsed.config.subjectAttribute) {
      const v = attributes[parsed.config.subjectAttribute];
      subject = Array.isArray(v) ? (v.length === 1 ? v[0] : undefined) : v;
    } else {
      if (profile.nameIDFormat === NAMEID_TRANSIENT) return reject('subject', 'transient NameID without subjectAttribute');
      subject = profile.nameID;
    }
    if (typeof subject !== 'string' || subject.trim().length === 0 || subject.length > 512) return reject('subject', 'no usable subject');

    const conditionsEnd = samlInstant(attr(child(assertion, NS.assertion, 'Conditions'), 'NotOnOrAfter'));
    const expiresAt = new Date(Math.max(confirmation.notOnOrAfter, conditionsEnd ?? 0) + skewMs);
    try {
      await this.messageIds.consume(binding.tenantId, binding.id, [
        { kind: 'assertion', id: assertionId, expiresAt },
        ...(solicited
          ? [
              {
                kind: 'request' as const,
                id: solicited.requestId,
                expiresAt: new Date(
                  solicited.issuedAt.getTime() + (this.config.LOGIN_TRANSACTION_TTL_SECONDS + this.config.CLOCK_SKEW_SECONDS) * 1000,
                ),
              },
            ]
          : []),
      ]);
    } catch (err) {
      if (err instanceof ReplayedSamlMessageError)
        return reject(
          err.kind === 'assertion' ? 'replay' : 'in_response_to_reused',
          err.kind === 'assertion' ? 'assertion ID already used' : 'AuthnRequest already answered',
        );
      throw err;
    }

    const authnInstant = instant(attr(child(assertion, NS.assertion, 'AuthnStatement'), 'AuthnInstant'));
    return {
      issuer: idp.entityId,
      subject,
      claims: {
        ...attributes,
        'saml:NameID': profile.nameID,
        ...(profile.nameIDFormat ? { 'saml:NameIDFormat': profile.nameIDFormat } : {}),
        ...(profile.sessionIndex ? { 'saml:SessionIndex': profile.sessionIndex } : {}),
      },
      ...(authnInstant !== undefined ? { authTime: new Date(authnInstant) } : {}),
    };
  }

  /**
   * SAML profiles §4.1.4.2: a bearer SubjectConfirmation whose data names this ACS as Recipient,
   * is within NotBefore/NotOnOrAfter (bounded skew), and answers our request (or none, unsolicited).
   */
  private subjectConfirmation(
    assertion: Element,
    acs: string,
    now: number,
    skewMs: number,
    solicited: Solicited | undefined,
  ): { notOnOrAfter: number } {
    const subject = child(assertion, NS.assertion, 'Subject');
    if (!subject) return reject('subject', 'assertion without Subject');
    const data = children(subject, NS.assertion, 'SubjectConfirmation')
      .filter((sc) => sc.getAttribute('Method') === CM_BEARER)
      .map((sc) => child(sc, NS.assertion, 'SubjectConfirmationData'))
      .filter((d): d is Element => d !== undefined);
    const forUs = data.filter((d) => attr(d, 'Recipient') === acs);
    if (forUs.length === 0) return reject('recipient', "no bearer SubjectConfirmation for this tenant's ACS");
    const timely = forUs.filter((d) => {
      const end = samlInstant(attr(d, 'NotOnOrAfter'));
      const start = attr(d, 'NotBefore') === undefined ? now : samlInstant(attr(d, 'NotBefore'));
      return end !== undefined && start !== undefined && now - skewMs < end && start <= now + skewMs;
    });
    if (timely.length === 0) return reject('expired', 'SubjectConfirmationData outside its validity window');
    const answering = timely.find((d) =>
      solicited ? attr(d, 'InResponseTo') === solicited.requestId : attr(d, 'InResponseTo') === undefined,
    );
    if (!answering) return reject('in_response_to', 'SubjectConfirmationData does not answer this request');
    return { notOnOrAfter: samlInstant(attr(answering, 'NotOnOrAfter'))! };
  }

  /**
   * What is checked before node-saml sees the response, so that a refusal names what was wrong
   * (node-saml's only signal is its error text, and some of its failures are TypeErrors): the
   * IdP's status, one assertion (decrypted here when encrypted), the algorithms of every signature
   * the Response and the assertion carry, and Conditions and time values node-saml would trip
   * over. Refusing on unverified content is safe; accepting is decided on the signed bytes later.
   */
  private async precheck(parsed: ParsedSamlBinding, response: Element): Promise<void> {
    // SAML core §3.2.2: a response whose top-level status is not Success reports a failure,
    // whatever assertion it carries (node-saml reads the status only when there is none).
    const status = child(response, NS.protocol, 'Status');
    const statusCode = status ? attr(child(status, NS.protocol, 'StatusCode'), 'Value') : undefined;
    if (statusCode !== STATUS_SUCCESS) return reject('idp_status', `top-level StatusCode ${statusCode ?? '(none)'}`);

    const plain = children(response, NS.assertion, 'Assertion');
    const encrypted = children(response, NS.assertion, 'EncryptedAssertion');
    if (plain.length + encrypted.length > 1) return reject('signature', 'several assertions');
    if (plain.length + encrypted.length === 0) return reject('invalid', 'no assertion');
    const assertion = plain[0] ?? (await this.decrypt(parsed, encrypted[0]!));

    const allowSha1 = parsed.config.allowSha1Signatures;
    const weak = weakSignatureAlgorithm(response, allowSha1) ?? weakSignatureAlgorithm(assertion, allowSha1);
    if (weak) return reject('algorithm', `signature algorithm not accepted: ${weak}`);

    const conditions = children(assertion, NS.assertion, 'Conditions');
    if (conditions.length !== 1)
      return reject('conditions', conditions.length === 0 ? 'assertion without Conditions' : 'assertion with several Conditions');
    if (attr(conditions[0], 'NotOnOrAfter') === undefined) return reject('conditions', 'assertion Conditions without NotOnOrAfter');
    const times: Array<[Element | undefined, string]> = [
      [assertion, 'IssueInstant'],
      [conditions[0], 'NotBefore'],
      [conditions[0], 'NotOnOrAfter'],
    ];
    const subject = child(assertion, NS.assertion, 'Subject');
    for (const sc of subject ? children(subject, NS.assertion, 'SubjectConfirmation') : []) {
      const data = child(sc, NS.assertion, 'SubjectConfirmationData');
      if (data && attr(data, 'NotOnOrAfter') === undefined) return reject('subject', 'SubjectConfirmationData without NotOnOrAfter');
      times.push([data, 'NotBefore'], [data, 'NotOnOrAfter']);
    }
    for (const [el, name] of times) {
      const value = attr(el, name);
      if ((value !== undefined || name === 'IssueInstant') && samlInstant(value) === undefined)
        return reject('malformed', `${el?.localName ?? 'assertion'} ${name} is not an xs:dateTime`);
    }
  }

  /** The assertion inside an EncryptedAssertion, decrypted with the binding's SP key. */
  private async decrypt(parsed: ParsedSamlBinding, encrypted: Element): Promise<Element> {
    // The key node-saml is given (see saml()): none unless the binding expects encrypted assertions.
    const key = parsed.config.encryptedAssertions ? parsed.secrets.spDecryptionKey : undefined;
    if (!key) return reject('decryption', 'encrypted assertion, and the binding has no decryption key');
    const weak = weakEncryptionAlgorithm(encrypted);
    if (weak) return reject('algorithm', `encryption algorithm not accepted: ${weak}`);
    let decrypted: string;
    try {
      decrypted = await decryptXml(new XMLSerializer().serializeToString(encrypted), {
        key,
        disallowDecryptionWithInsecureAlgorithm: true,
      });
    } catch {
      return reject('decryption', "the encrypted assertion cannot be decrypted with the binding's SP key");
    }
    let doc: Document;
    try {
      doc = parseXml(decrypted);
    } catch (err) {
      return reject(
        err instanceof XmlRefusedError && err.reason === 'dtd' ? 'dtd' : 'decryption',
        'the encrypted assertion does not decrypt to XML',
      );
    }
    const assertion = doc.documentElement;
    if (assertion.namespaceURI !== NS.assertion || assertion.localName !== 'Assertion')
      return reject('decryption', 'the encrypted assertion does not hold an Assertion');
    return assertion;
  }

  private saml(binding: BindingContext, parsed: ParsedSamlBinding, idp: ResolvedIdp, extra: Partial<SamlConfig>): SAML {
    const { config: c, secrets: s } = parsed;
    return new SAML({
      entryPoint: idp.ssoUrl,
      issuer: this.spEntityId(binding.tenantSlug),
      audience: this.spEntityId(binding.tenantSlug),
      callbackUrl: this.acsUrl(binding.tenantSlug),
      idpCert: idp.certificates,
      idpIssuer: idp.entityId,
      wantAssertionsSigned: c.wantAssertionsSigned,
      wantAuthnResponseSigned: c.wantResponseSigned,
      acceptedClockSkewMs: this.config.CLOCK_SKEW_SECONDS * 1000,
      identifierFormat: c.nameIdFormat ?? null,
      // Requesting PasswordProtectedTransport breaks MFA and Windows sign-in at Entra/ADFS.
      disableRequestedAuthnContext: true,
      forceAuthn: c.forceAuthn,
      signatureAlgorithm: 'sha256',
      digestAlgorithm: 'sha256',
      ...(c.signAuthnRequests && s.spSigningKey ? { privateKey: s.spSigningKey } : {}),
      ...(c.encryptedAssertions && s.spDecryptionKey ? { decryptionPvk: s.spDecryptionKey } : {}),
      ...extra,
    });
  }

  private parse(binding: BindingContext): ParsedSamlBinding {
    try {
      return parseSamlBinding(binding.config, binding.secrets);
    } catch (err) {
      if (!(err instanceof SamlConfigError)) throw err;
      this.logger.error({ tenant: binding.tenantId, binding: binding.id, problems: err.problems }, 'SAML binding configuration is invalid');
      throw new ProblemError({
        type: 'idp-misconfigured',
        status: 503,
        title: 'Sign-in misconfigured',
        detail: "The organisation's SAML sign-in is misconfigured.",
        cause: err,
      });
    }
  }
}

/**
 * The signed assertion's attributes as claims: one value → string, several → array; values with
 * element content dropped. Read from the assertion itself rather than node-saml's profile, which
 * keeps only the last of several same-named <Attribute> elements (Keycloak's role list mapper
 * sends one <Attribute Name="Role"> per role): values of same-named attributes are merged in order.
 */
function claimsOf(assertion: Element): Record<string, string | string[]> {
  const merged = new Map<string, string[]>();
  for (const statement of children(assertion, NS.assertion, 'AttributeStatement')) {
    for (const attribute of children(statement, NS.assertion, 'Attribute')) {
      const name = attr(attribute, 'Name');
      if (!name || FORBIDDEN_CLAIM_NAMES.has(name) || name.startsWith('saml:')) continue;
      const values = children(attribute, NS.assertion, 'AttributeValue')
        .filter((v) => !Array.prototype.some.call(v.childNodes, (n: Node) => n.nodeType === 1))
        .map((v) => v.textContent ?? '')
        .filter((v) => v.length > 0);
      if (values.length > 0) merged.set(name, [...(merged.get(name) ?? []), ...values]);
    }
  }
  const out: Record<string, string | string[]> = {};
  for (const [name, values] of merged) out[name] = values.length === 1 ? values[0]! : values;
  return out;
}
