import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { plainToInstance } from 'class-transformer';
import {
  ArrayMaxSize,
  IsArray,
  IsBoolean,
  IsInt,
  IsOptional,
  IsString,
  IsUrl,
  Max,
  MaxLength,
  Min,
  ValidateIf,
  validateSync,
  type ValidationError,
} from 'class-validator';

const URL_OPTIONS = { require_tld: false, protocols: ['http', 'https'], require_protocol: true };

/**
 * The `config` of a `saml` binding (tenant_identity_providers.config). The IdP comes from its
 * metadata (XML pasted by ops, or a URL refreshed on a schedule); the explicit fields pin or
 * complete what the metadata says. Claim mapping lives in the binding's `claimMapping`, keyed by
 * attribute names as the IdP sends them (Entra/ADFS: `http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress`, ...).
 */
export class SamlBindingConfig {
  /** The IdP's metadata document (EntityDescriptor). */
  @IsOptional()
  @IsString()
  @MaxLength(1_000_000)
  idpMetadataXml?: string;

  /** Where the IdP publishes its metadata; fetched and refreshed every `metadataRefreshSeconds`. https, or http on loopback only. */
  @IsOptional()
  @IsUrl(URL_OPTIONS)
  @MaxLength(2048)
  idpMetadataUrl?: string;

  /** Pins the IdP entityID: metadata naming another entity is refused. Required without metadata. */
  @IsOptional()
  @IsString()
  @MaxLength(1024)
  idpEntityId?: string;

  /** SingleSignOnService (HTTP-Redirect binding); overrides the metadata's. */
  @IsOptional()
  @IsUrl(URL_OPTIONS)
  @MaxLength(2048)
  idpSsoUrl?: string;

  /** Extra trusted IdP signing certificates (PEM or bare base64 DER), added to the metadata's: for rollover, list the old and the new. */
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(10)
  @IsString({ each: true })
  @MaxLength(20_000, { each: true })
  idpCertificates?: string[];

  /** NameIDPolicy Format requested in the AuthnRequest; unset lets the IdP choose. */
  @IsOptional()
  @IsString()
  @MaxLength(256)
  nameIdFormat?: string;

  /** Take the upstream subject from this attribute instead of the NameID (needed with transient NameIDs). */
  @IsOptional()
  @IsString()
  @MaxLength(512)
  subjectAttribute?: string;

  /** The Assertion itself must carry a valid signature (default on; Entra, ADFS and SimpleSAMLphp sign it). */
  @IsBoolean()
  wantAssertionsSigned = true;

  /** The Response envelope must carry a valid signature too (default off). */
  @IsBoolean()
  wantResponseSigned = false;

  /** Assertions must arrive encrypted to `spEncryptionCertificate` (key in secrets.spDecryptionKey). */
  @IsBoolean()
  encryptedAssertions = false;

  /** Published in the SP metadata as the encryption key (PEM). */
  @IsOptional()
  @IsString()
  @MaxLength(20_000)
  spEncryptionCertificate?: string;

  /** Sign AuthnRequests (HTTP-Redirect, RSA-SHA256) with secrets.spSigningKey. */
  @IsBoolean()
  signAuthnRequests = false;

  /** Published in the SP metadata as the signing key (PEM). */
  @IsOptional()
  @IsString()
  @MaxLength(20_000)
  spSigningCertificate?: string;

  /**
   * Also accept RSA-SHA1 signatures and SHA-1 digests (default off: SHA-256 and stronger only).
   * For an IdP that cannot sign otherwise (old ADFS relying-party trusts); reported as a warning in
   * the binding's health for as long as it is on.
   */
  @IsBoolean()
  allowSha1Signatures = false;

  /**
   * The Response must name this tenant's ACS in `Destination` (default on). Off only for an IdP
   * that omits it on unsigned Responses; a signed Response without Destination is refused anyway
   * (SAML bindings §3.5.5.2).
   */
  @IsBoolean()
  requireDestination = true;

  /** Accept IdP-initiated (unsolicited) responses at the ACS (default off). */
  @IsBoolean()
  allowIdpInitiated = false;

  /**
   * Where a validated IdP-initiated response sends the browser: the BFF's "start login" URL
   * (e.g. `https://app.example/login?org=acme`), which begins a normal PKCE flow.
   */
  @ValidateIf((o: SamlBindingConfig) => o.allowIdpInitiated || o.idpInitiatedLoginUrl !== undefined)
  @IsUrl(URL_OPTIONS)
  @MaxLength(2048)
  idpInitiatedLoginUrl?: string;

  /** Ask the IdP to re-authenticate the user even with a session. */
  @IsBoolean()
  forceAuthn = false;

  @IsInt()
  @Min(300)
  @Max(7 * 86_400)
  metadataRefreshSeconds = 86_400;
}

/** The `secrets` of a `saml` binding (encrypted at rest). */
export class SamlBindingSecrets {
  /** PEM private key matching `spEncryptionCertificate`. */
  @IsOptional()
  @IsString()
  @MaxLength(20_000)
  spDecryptionKey?: string;

  /** PEM private key matching `spSigningCertificate`. */
  @IsOptional()
  @IsString()
  @MaxLength(20_000)
  spSigningKey?: string;
}

export interface ParsedSamlBinding {
  config: SamlBindingConfig;
  secrets: SamlBindingSecrets;
}

export class SamlConfigError extends Error {
  override name = 'SamlConfigError';
  constructor(readonly problems: string[]) {
    super(`Invalid SAML binding configuration: ${problems.join(' | ')}`);
  }
}

const flatten = (errors: ValidationError[], prefix = ''): string[] =>
  errors.flatMap((e) => [
    ...Object.values(e.constraints ?? {}).map((c) => `${prefix}${c}`),
    ...flatten(e.children ?? [], `${prefix}${e.property}.`),
  ]);

/** Normalises a certificate given as PEM or as bare base64 DER (as metadata carries it) to PEM. */
export function toPemCertificate(input: string): string {
  const body = input.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body)) throw new Error('not a base64 certificate');
  const lines = body.match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}

const isHttpsOrLoopback = (url: string): boolean => {
  const u = new URL(url);
  if (u.protocol === 'https:') return true;
  return u.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname);
};

function checkKeyPair(problems: string[], what: string, certPem: string | undefined, keyPem: string | undefined): void {
  if (!certPem || !keyPem) {
    problems.push(`${what}: both the certificate (config) and the private key (secrets) are required`);
    return;
  }
  try {
    const cert = new X509Certificate(toPemCertificate(certPem));
    const fromKey = createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' });
    const fromCert = cert.publicKey.export({ type: 'spki', format: 'der' });
    if (!fromKey.equals(fromCert)) problems.push(`${what}: the private key does not match the certificate`);
  } catch {
    problems.push(`${what}: the certificate or the private key cannot be read`);
  }
}

/**
 * Validates a binding's config and secrets (unknown keys refused, so a typo never silently turns
 * a check off). Throws SamlConfigError listing every problem; messages never contain secrets.
 */
export function parseSamlBinding(config: Record<string, unknown>, secrets: Record<string, unknown>): ParsedSamlBinding {
  const c = plainToInstance(SamlBindingConfig, config ?? {});
  const s = plainToInstance(SamlBindingSecrets, secrets ?? {});
  const problems = [
    ...flatten(validateSync(c, { whitelist: true, forbidNonWhitelisted: true })),
    ...flatten(validateSync(s, { whitelist: true, forbidNonWhitelisted: true })).map((p) => `secrets: ${p}`),
  ];
  if (problems.length === 0) {
    if (c.idpMetadataXml && c.idpMetadataUrl) problems.push('give idpMetadataXml or idpMetadataUrl, not both');
    if (!c.idpMetadataXml && !c.idpMetadataUrl && !(c.idpEntityId && c.idpSsoUrl && c.idpCertificates?.length))
      problems.push('without metadata, idpEntityId, idpSsoUrl and idpCertificates are all required');
    for (const [name, url] of [
      ['idpMetadataUrl', c.idpMetadataUrl],
      ['idpSsoUrl', c.idpSsoUrl],
    ] as const) {
      if (url && !isHttpsOrLoopback(url)) problems.push(`${name} must be https (http only on loopback)`);
    }
    if (!c.wantAssertionsSigned && !c.wantResponseSigned)
      problems.push('at least one of wantAssertionsSigned and wantResponseSigned must be on');
    if (c.allowIdpInitiated && !c.idpInitiatedLoginUrl) problems.push('allowIdpInitiated needs idpInitiatedLoginUrl');
    for (const [i, cert] of (c.idpCertificates ?? []).entries()) {
      try {
        new X509Certificate(toPemCertificate(cert));
      } catch {
        problems.push(`idpCertificates[${i}] is not an X.509 certificate`);
      }
    }
    if (c.encryptedAssertions) checkKeyPair(problems, 'encryptedAssertions', c.spEncryptionCertificate, s.spDecryptionKey);
    if (c.signAuthnRequests) checkKeyPair(problems, 'signAuthnRequests', c.spSigningCertificate, s.spSigningKey);
  }
  if (problems.length > 0) throw new SamlConfigError(problems);
  return { config: c, secrets: s };
}
