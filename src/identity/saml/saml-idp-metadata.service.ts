import { createHash } from 'node:crypto';
import { Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { DependencyUnavailableError, ProblemError } from '../../common/errors.js';
import type { BindingContext } from '../port/identity-provider.port.js';
import { toPemCertificate, type SamlBindingConfig } from './saml-config.js';
import { certificateInfo, MetadataError, parseIdpMetadata, type CertificateInfo, type IdpMetadata } from './saml-xml.js';

/** What the adapter needs to know about a binding's IdP, after metadata and explicit config are merged. */
export interface ResolvedIdp {
  entityId: string;
  /** SingleSignOnService, HTTP-Redirect binding. */
  ssoUrl: string;
  /** Trusted signing certificates (PEM); any one verifies (rollover). */
  certificates: string[];
  nameIdFormats: string[];
  source: 'xml' | 'url' | 'config';
}

export interface SamlBindingHealth {
  bindingId: string;
  status: 'ok' | 'warning' | 'error';
  metadata: {
    source: 'xml' | 'url' | 'config';
    url?: string;
    refreshedAt?: string;
    nextRefreshAt?: string;
    lastError?: string;
    lastErrorAt?: string;
  };
  certificates: CertificateInfo[];
  /** Days until the first trusted IdP certificate expires (negative: already expired). */
  minDaysUntilExpiry: number | null;
  /** Configuration that works but weakens the binding (e.g. SHA-1 accepted): status is at least `warning`. */
  warnings: string[];
}

interface Entry {
  fingerprint: string;
  tenantId: string;
  bindingId: string;
  config: SamlBindingConfig;
  idp?: ResolvedIdp;
  refreshedAt?: Date;
  nextRefreshAt: number;
  lastError?: string;
  lastErrorAt?: Date;
  inflight?: Promise<ResolvedIdp>;
}

/** The metadata URL could not be fetched (network failure, timeout, HTTP status); the message is safe to show ops. */
export class MetadataUnreachableError extends Error {
  override name = 'MetadataUnreachableError';
}

/** Why a metadata fetch failed, in words an operator can act on. */
function unreachableReason(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return `no answer within ${METADATA_TIMEOUT_MS / 1000} s`;
  if (typeof e?.message === 'string' && /^HTTP \d{3}$/.test(e.message)) return `answered ${e.message}`;
  if (e?.cause?.code === 'ECONNREFUSED') return 'connection refused';
  if (e?.cause?.code === 'ENOTFOUND' || e?.cause?.code === 'EAI_AGAIN') return 'host not found';
  return e?.cause?.code ?? e?.cause?.message ?? e?.message ?? 'network error';
}

/** A certificate this close to expiry is logged and reported as a warning. */
export const CERT_WARNING_DAYS = 30;
const METADATA_MAX_BYTES = 2 * 1024 * 1024;
const METADATA_TIMEOUT_MS = 10_000;
/** After a failed refresh, retry no sooner than this. */
const RETRY_AFTER_FAILURE_MS = 60_000;
/** Last good metadata keeps serving while the URL is down, for at most this long. */
const MAX_STALE_MS = 7 * 86_400_000;
const SCHEDULE_MS = 5 * 60_000;

/**
 * Resolves a SAML binding's IdP (entityID, SSO URL, signing certificates) from its metadata XML or
 * URL plus explicit config. URL metadata is cached per binding, refreshed on a schedule and served
 * stale (with an error in the health report and the logs) while the URL is unreachable.
 */
@Injectable()
export class SamlIdpMetadataService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger('SamlIdpMetadata');
  private readonly entries = new Map<string, Entry>();
  private timer?: NodeJS.Timeout;

  onModuleInit(): void {
    this.timer = setInterval(() => void this.refreshDue(), SCHEDULE_MS);
    this.timer.unref();
  }

  onModuleDestroy(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async resolve(binding: BindingContext, config: SamlBindingConfig): Promise<ResolvedIdp> {
    const entry = this.entryFor(binding, config);
    if (entry.idp && Date.now() < entry.nextRefreshAt) return entry.idp;
    if (entry.idp && entry.inflight) return entry.idp;
    try {
      return await this.load(entry);
    } catch (err) {
      const stale = entry.idp && entry.refreshedAt && Date.now() - entry.refreshedAt.getTime() < MAX_STALE_MS;
      if (stale) return entry.idp!;
      if (err instanceof MetadataError)
        throw new ProblemError({
          type: 'idp-misconfigured',
          status: 503,
          title: 'Sign-in misconfigured',
          detail: `The organisation's SAML identity provider is misconfigured.`,
          cause: err,
        });
      throw new DependencyUnavailableError(
        'identity provider metadata',
        `The organisation's identity provider metadata could not be loaded.`,
        { cause: err, status: 502 },
      );
    }
  }

  /** Certificate expiry and metadata freshness of a binding, for health endpoints. Never throws. */
  async health(binding: BindingContext, config: SamlBindingConfig): Promise<SamlBindingHealth> {
    const entry = this.entryFor(binding, config);
    let idp: ResolvedIdp | undefined;
    try {
      idp = await this.resolve(binding, config);
    } catch {
      idp = entry.idp;
    }
    const certificates: CertificateInfo[] = [];
    for (const pem of idp?.certificates ?? []) {
      try {
        certificates.push(certificateInfo(pem));
      } catch {
        // unreadable certificates are refused at load time; nothing to report
      }
    }
    const minDaysUntilExpiry = certificates.length ? Math.min(...certificates.map((c) => c.daysUntilExpiry)) : null;
    const status: SamlBindingHealth['status'] =
      !idp || minDaysUntilExpiry === null || minDaysUntilExpiry < 0
        ? 'error'
        : entry.lastError || minDaysUntilExpiry < CERT_WARNING_DAYS
          ? 'warning'
          : 'ok';
    return {
      bindingId: binding.id,
      status,
      metadata: {
        source: config.idpMetadataUrl ? 'url' : config.idpMetadataXml ? 'xml' : 'config',
        ...(config.idpMetadataUrl ? { url: config.idpMetadataUrl } : {}),
        ...(entry.refreshedAt ? { refreshedAt: entry.refreshedAt.toISOString() } : {}),
        ...(config.idpMetadataUrl ? { nextRefreshAt: new Date(entry.nextRefreshAt).toISOString() } : {}),
        ...(entry.lastError ? { lastError: entry.lastError, lastErrorAt: entry.lastErrorAt!.toISOString() } : {}),
      },
      certificates,
      minDaysUntilExpiry,
      warnings: [],
    };
  }

  /**
   * Loads an IdP from a configuration now, bypassing the cache: what ops are about to save, or a
   * health probe of a saved binding. Throws MetadataError (unusable metadata or configuration)
   * or MetadataUnreachableError (the metadata URL cannot be fetched).
   */
  async inspect(config: SamlBindingConfig): Promise<ResolvedIdp> {
    let metadata: IdpMetadata | undefined;
    if (config.idpMetadataUrl) {
      let xml: string;
      try {
        xml = await this.fetchMetadata(config.idpMetadataUrl);
      } catch (err) {
        if (err instanceof MetadataError) throw err;
        throw new MetadataUnreachableError(unreachableReason(err), { cause: err });
      }
      metadata = parseIdpMetadata(xml, config.idpEntityId);
    } else if (config.idpMetadataXml) metadata = parseIdpMetadata(config.idpMetadataXml, config.idpEntityId);
    return merge(metadata, config);
  }

  /** Forgets a binding's cached metadata (after ops changed it). */
  invalidate(bindingId: string): void {
    this.entries.delete(bindingId);
  }

  private entryFor(binding: BindingContext, config: SamlBindingConfig): Entry {
    const fingerprint = createHash('sha256')
      .update(JSON.stringify({ v: binding.version, c: config }))
      .digest('hex');
    let entry = this.entries.get(binding.id);
    if (!entry || entry.fingerprint !== fingerprint) {
      entry = { fingerprint, tenantId: binding.tenantId, bindingId: binding.id, config, nextRefreshAt: 0 };
      this.entries.set(binding.id, entry);
    }
    return entry;
  }

  private load(entry: Entry): Promise<ResolvedIdp> {
    entry.inflight ??= this.doLoad(entry).finally(() => {
      entry.inflight = undefined;
    });
    return entry.inflight;
  }

  private async doLoad(entry: Entry): Promise<ResolvedIdp> {
    const c = entry.config;
    try {
      let metadata: IdpMetadata | undefined;
      if (c.idpMetadataUrl) metadata = parseIdpMetadata(await this.fetchMetadata(c.idpMetadataUrl), c.idpEntityId);
      else if (c.idpMetadataXml) metadata = parseIdpMetadata(c.idpMetadataXml, c.idpEntityId);
      const idp = merge(metadata, c);
      entry.idp = idp;
      entry.refreshedAt = new Date();
      entry.nextRefreshAt = c.idpMetadataUrl ? Date.now() + c.metadataRefreshSeconds * 1000 : Number.POSITIVE_INFINITY;
      entry.lastError = undefined;
      entry.lastErrorAt = undefined;
      this.warnOnExpiry(entry, idp);
      return idp;
    } catch (err) {
      entry.lastError = err instanceof MetadataError ? err.message : `metadata unreachable: ${(err as Error).message}`;
      entry.lastErrorAt = new Date();
      entry.nextRefreshAt = Date.now() + RETRY_AFTER_FAILURE_MS;
      this.logger.error(
        { tenant: entry.tenantId, binding: entry.bindingId, error: entry.lastError, servingStale: Boolean(entry.idp) },
        'SAML IdP metadata could not be loaded',
      );
      throw err;
    }
  }

  private async fetchMetadata(url: string): Promise<string> {
    const res = await fetch(url, {
      headers: { accept: 'application/samlmetadata+xml, application/xml;q=0.9, text/xml;q=0.8' },
      signal: AbortSignal.timeout(METADATA_TIMEOUT_MS),
    });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const declared = Number(res.headers.get('content-length') ?? '0');
    if (declared > METADATA_MAX_BYTES) throw new MetadataError('metadata document too large');
    const text = await res.text();
    if (text.length > METADATA_MAX_BYTES) throw new MetadataError('metadata document too large');
    return text;
  }

  private warnOnExpiry(entry: Entry, idp: ResolvedIdp): void {
    for (const pem of idp.certificates) {
      const info = certificateInfo(pem);
      if (info.daysUntilExpiry < CERT_WARNING_DAYS)
        this.logger.warn(
          {
            tenant: entry.tenantId,
            binding: entry.bindingId,
            fingerprint: info.fingerprintSha256,
            notAfter: info.notAfter,
            daysUntilExpiry: info.daysUntilExpiry,
          },
          info.daysUntilExpiry < 0 ? 'SAML IdP signing certificate has expired' : 'SAML IdP signing certificate expires soon',
        );
    }
  }

  /** The schedule: refreshes every cached URL binding whose refresh time has come. */
  private async refreshDue(): Promise<void> {
    const now = Date.now();
    for (const entry of this.entries.values()) {
      if (!entry.config.idpMetadataUrl || entry.inflight || now < entry.nextRefreshAt) continue;
      await this.load(entry).catch(() => undefined);
    }
  }
}

function merge(metadata: IdpMetadata | undefined, c: SamlBindingConfig): ResolvedIdp {
  const entityId = c.idpEntityId ?? metadata?.entityId;
  if (!entityId) throw new MetadataError('no IdP entityID');
  if (metadata && c.idpEntityId && metadata.entityId !== c.idpEntityId)
    throw new MetadataError(`metadata names entity ${metadata.entityId}, not the pinned ${c.idpEntityId}`);
  const ssoUrl = c.idpSsoUrl ?? metadata?.ssoRedirectUrl;
  if (!ssoUrl) throw new MetadataError('the IdP has no SingleSignOnService with the HTTP-Redirect binding');
  const certificates = [...(metadata?.signingCertificates ?? [])];
  for (const cert of c.idpCertificates ?? []) {
    let pem: string;
    try {
      pem = toPemCertificate(cert);
    } catch {
      throw new MetadataError('an idpCertificates entry cannot be read');
    }
    if (!certificates.includes(pem)) certificates.push(pem);
  }
  if (certificates.length === 0) throw new MetadataError('no trusted IdP signing certificate');
  for (const pem of certificates) {
    try {
      certificateInfo(pem);
    } catch {
      throw new MetadataError('an IdP certificate cannot be read');
    }
  }
  return {
    entityId,
    ssoUrl,
    certificates,
    nameIdFormats: metadata?.nameIdFormats ?? [],
    source: c.idpMetadataUrl ? 'url' : c.idpMetadataXml ? 'xml' : 'config',
  };
}
