import { Injectable } from '@nestjs/common';
import { importX509 } from 'jose';
import { DependencyUnavailableError } from '../../common/errors.js';

interface CertificateSet {
  keys: Map<string, CryptoKey>;
  expiresAt: number;
}

const FETCH_TIMEOUT_MS = 5_000;
const MAX_AGE_CAP_SECONDS = 24 * 3600;
const MAX_CERTIFICATES = 32;
const MAX_PEM_LENGTH = 16_384;

/** `max-age` of a Cache-Control header, in seconds; 0 when absent or when caching is forbidden. */
export function cacheMaxAge(header: string | null): number {
  if (!header || /(^|,)\s*(no-store|no-cache)\s*(,|$)/i.test(header)) return 0;
  const m = /(?:^|,)\s*max-age\s*=\s*"?(\d+)"?/i.exec(header);
  return m ? Math.min(Number(m[1]), MAX_AGE_CAP_SECONDS) : 0;
}

/**
 * The X.509 certificates Firebase ID tokens are signed with (a JSON map kid → PEM, Google's
 * securetoken endpoint by default), fetched per URL and kept as long as the response's
 * Cache-Control max-age allows. Concurrent misses share one request. Only public keys live here,
 * so a per-process cache is fine for a multi-replica service.
 */
@Injectable()
export class FirebaseCertificateCache {
  private readonly sets = new Map<string, CertificateSet>();
  private readonly inflight = new Map<string, Promise<CertificateSet>>();

  /** The public key for `kid`, or undefined when the endpoint does not publish it. */
  async key(url: string, kid: string): Promise<CryptoKey | undefined> {
    const set = await this.current(url);
    return set.keys.get(kid);
  }

  /**
   * For the binding's health probe: fetches the certificates now (the cache is refreshed on
   * success) and says why not when that fails. Fixed texts and error names only.
   */
  async check(url: string): Promise<string> {
    try {
      await this.fetchSet(url);
      return 'ok';
    } catch (err) {
      const cause = err instanceof Error ? err.cause : undefined;
      const inner = cause instanceof Error && cause.cause instanceof Error ? ` (${cause.cause.message})` : '';
      return `unreachable: ${cause instanceof Error ? cause.message : 'unknown'}${inner}`;
    }
  }

  private async current(url: string): Promise<CertificateSet> {
    const cached = this.sets.get(url);
    if (cached && cached.expiresAt > Date.now()) return cached;
    let pending = this.inflight.get(url);
    if (!pending) {
      pending = this.fetchSet(url).finally(() => this.inflight.delete(url));
      this.inflight.set(url, pending);
    }
    return pending;
  }

  private async fetchSet(url: string): Promise<CertificateSet> {
    const unavailable = (cause: unknown) =>
      new DependencyUnavailableError('Firebase certificates', 'The Firebase token signing certificates could not be fetched.', { cause });
    let res: Response;
    let body: unknown;
    try {
      res = await fetch(url, { redirect: 'error', signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), headers: { accept: 'application/json' } });
      if (res.status !== 200) throw new Error(`certificate endpoint answered ${res.status}`);
      body = await res.json();
    } catch (err) {
      throw unavailable(err);
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw unavailable(new Error('certificate endpoint returned no JSON object'));
    const keys = new Map<string, CryptoKey>();
    for (const [kid, pem] of Object.entries(body as Record<string, unknown>).slice(0, MAX_CERTIFICATES)) {
      if (typeof pem !== 'string' || pem.length > MAX_PEM_LENGTH) continue;
      try {
        keys.set(kid, await importX509(pem, 'RS256'));
      } catch {
        // An unusable entry is skipped; tokens naming its kid are refused as signed by an unknown key.
      }
    }
    if (keys.size === 0) throw unavailable(new Error('certificate endpoint published no usable RSA certificate'));
    const set = { keys, expiresAt: Date.now() + cacheMaxAge(res.headers.get('cache-control')) * 1000 };
    this.sets.set(url, set);
    return set;
  }
}
