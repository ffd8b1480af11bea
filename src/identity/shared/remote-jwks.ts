import { createLocalJWKSet, errors, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';

export interface RemoteJwksOptions {
  /** Minimum time between two fetches of the JWKS (also after a failed fetch). */
  cooldownMs: number;
  /** A JWKS older than this is refetched before use (a stale copy is kept if that fails). */
  maxAgeMs: number;
  timeoutMs: number;
  /** Largest JWKS document accepted, in bytes. */
  maxBytes?: number;
}

/** The OP's JWKS could not be fetched: a dependency failure, not a bad token. */
export class JwksUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'JwksUnavailableError';
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

/**
 * An upstream's JWKS (an OP's, a Keycloak realm's), fetched on first use and again when a token
 * names a key we do not hold (upstream key rotation). Fetches are rate-bounded per upstream
 * (cooldownMs). Two resolvers, by where the token came from:
 * - `getKey`, for tokens the service fetched itself over the back channel (an ID token from the
 *   token endpoint): unlike jose's createRemoteJWKSet, a key miss during the cooldown waits for the
 *   cooldown to end and refetches instead of failing, so a rotation right after a fetch costs the
 *   user a short wait, not a failed login. An attacker cannot choose such a token's `kid`.
 * - `getKeyWithoutWaiting`, for tokens a client presents (a token exchange's subject token): a
 *   miss refetches only when the cooldown has passed and otherwise fails at once, so unknown
 *   `kid`s can neither hold requests open nor make the service hammer the upstream.
 * Concurrent misses share one fetch.
 */
export class RemoteJwks {
  private local?: ReturnType<typeof createLocalJWKSet>;
  private fetchedAt = 0;
  private lastAttemptStartedAt = Number.NEGATIVE_INFINITY;
  private inflight?: Promise<void>;
  /** Number of fetches started (observability and tests). */
  fetches = 0;

  constructor(
    readonly url: URL,
    private readonly opts: RemoteJwksOptions,
  ) {}

  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    const local = await this.current();
    const missedAt = Date.now();
    try {
      return await local(header, token);
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey)) throw err;
    }
    await this.refresh();
    // A fetch that was already running when we missed may predate the rotation: one more.
    if (this.lastAttemptStartedAt < missedAt) {
      try {
        return await this.loaded()(header, token);
      } catch (err) {
        if (!(err instanceof errors.JWKSNoMatchingKey)) throw err;
      }
      await this.refresh();
    }
    return this.loaded()(header, token);
  };

  readonly getKeyWithoutWaiting: JWTVerifyGetKey = async (header, token) => {
    const local = await this.current();
    try {
      return await local(header, token);
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey) || Date.now() < this.lastAttemptStartedAt + this.opts.cooldownMs) throw err;
    }
    await this.refresh();
    return this.loaded()(header, token);
  };

  /** The key set, fetched first when there is none or it is older than maxAgeMs (a stale one is kept if that fails). */
  private async current(): Promise<ReturnType<typeof createLocalJWKSet>> {
    if (!this.local || Date.now() - this.fetchedAt > this.opts.maxAgeMs) {
      try {
        await this.refresh();
      } catch (err) {
        if (!this.local) throw err;
      }
    }
    return this.loaded();
  }

  private loaded(): ReturnType<typeof createLocalJWKSet> {
    if (!this.local) throw new JwksUnavailableError('JWKS not loaded');
    return this.local;
  }

  private refresh(): Promise<void> {
    this.inflight ??= (async () => {
      const wait = this.lastAttemptStartedAt + this.opts.cooldownMs - Date.now();
      if (wait > 0) await sleep(wait);
      this.lastAttemptStartedAt = Date.now();
      this.fetches += 1;
      this.local = createLocalJWKSet(await this.fetchJwks());
      this.fetchedAt = Date.now();
    })().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async fetchJwks(): Promise<JSONWebKeySet> {
    let res: Response;
    try {
      res = await fetch(this.url, {
        headers: { accept: 'application/jwk-set+json, application/json' },
        redirect: 'error',
        signal: AbortSignal.timeout(this.opts.timeoutMs),
      });
    } catch (cause) {
      throw new JwksUnavailableError('JWKS request failed', { cause });
    }
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new JwksUnavailableError(`JWKS answered HTTP ${res.status}`);
    }
    const text = await res.text();
    if (text.length > (this.opts.maxBytes ?? 512 * 1024)) throw new JwksUnavailableError('JWKS document too large');
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (cause) {
      throw new JwksUnavailableError('JWKS is not JSON', { cause });
    }
    const keys = (body as { keys?: unknown } | null)?.keys;
    if (!Array.isArray(keys)) throw new JwksUnavailableError('JWKS has no "keys" array');
    // Only public signing keys: drop anything with private or symmetric material.
    const usable = keys.filter((k): k is Record<string, unknown> => typeof k === 'object' && k !== null && k.kty !== 'oct' && !('d' in k));
    return { keys: usable };
  }
}
