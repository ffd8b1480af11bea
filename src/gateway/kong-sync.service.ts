import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { SigningKeysService } from '../tokens/signing-keys.service.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { KONG_TAG, kongCredentials, type KongJwtCredential, type PublishedKey } from './kong-config.js';

const CHECK_MS = 1_000;
const FULL_RESYNC_MS = 300_000;
const REQUEST_TIMEOUT_MS = 5_000;
const MAX_PAGES = 50;

export class KongAdminError extends Error {
  override name = 'KongAdminError';
}

/**
 * Pushes the published signing keys to a Kong Admin API (KONG_ADMIN_URL) as jwt credentials of one
 * consumer, so Kong knows a new key while it is still pending — before the first token it signs.
 *
 * Every replica watches its own JWKS view (refreshed from the database every few seconds) and syncs
 * when it changes, and in full every 5 minutes (Kong restored from an old backup, a credential
 * deleted by hand). A sync reads the key set from the database, not from this replica's view, and
 * only ever deletes credentials tagged `auth-service` whose key is no longer published, so replicas
 * pushing concurrently converge on the same state. Uses only documented Admin API endpoints:
 * `PUT /consumers/{username}`, `GET|PUT|DELETE /consumers/{username}/jwt[/{key}]`.
 *
 * Activation is deliberately not blocked on Kong (an unreachable gateway must not stop token
 * issuance): failures are logged and counted (`auth_kong_sync_total{outcome="error"}`), and the
 * publish delay (KEY_PUBLISH_DELAY_SECONDS) is the budget to fix them in.
 */
@Injectable()
export class KongSyncService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(KongSyncService.name);
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private syncedEtag?: string;
  private lastFullSync = 0;
  private failures = 0;
  private retryAt = 0;

  constructor(
    private readonly keys: SigningKeysService,
    private readonly metrics: MetricsService,
    @Inject(AppConfig) private readonly config: AppConfig,
  ) {}

  get enabled(): boolean {
    return this.config.KONG_ADMIN_URL !== undefined;
  }

  onApplicationBootstrap(): void {
    if (!this.enabled) return;
    this.timer = setInterval(() => void this.tick(), CHECK_MS);
    this.timer.unref();
    void this.tick();
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private async tick(): Promise<void> {
    if (this.running || Date.now() < this.retryAt) return;
    const etag = this.keys.jwksDocument().etag;
    if (etag === this.syncedEtag && Date.now() - this.lastFullSync < FULL_RESYNC_MS) return;
    this.running = this.sync()
      .then(() => {
        this.syncedEtag = etag;
        this.lastFullSync = Date.now();
        this.failures = 0;
      })
      .catch((err: unknown) => {
        this.failures++;
        this.retryAt = Date.now() + Math.min(60_000, 1_000 * 2 ** Math.min(this.failures, 6));
        this.logger.error({ err: (err as Error)?.message, failures: this.failures }, 'pushing signing keys to the Kong Admin API failed');
      })
      .finally(() => {
        this.running = undefined;
      });
    await this.running;
  }

  /** Upserts the consumer and one credential per published key; deletes our credentials of keys no longer published. */
  async sync(): Promise<{ upserted: string[]; deleted: string[] }> {
    try {
      const published = (await this.keys.published()) as PublishedKey[];
      const credentials = await kongCredentials(published);
      const consumer = encodeURIComponent(this.config.KONG_CONSUMER);
      await this.call('PUT', `/consumers/${consumer}`, {
        username: this.config.KONG_CONSUMER,
        custom_id: this.config.issuer,
        tags: [KONG_TAG],
      });
      for (const c of credentials) await this.putCredential(consumer, c);
      const wanted = new Set(credentials.map((c) => c.key));
      const deleted: string[] = [];
      for (const existing of await this.listCredentials(consumer)) {
        if (wanted.has(existing.key) || !existing.tags?.includes(KONG_TAG)) continue;
        await this.call('DELETE', `/consumers/${consumer}/jwt/${encodeURIComponent(existing.key)}`);
        deleted.push(existing.key);
      }
      this.metrics.kongSync('success');
      if (deleted.length) this.logger.log({ deleted }, 'removed Kong jwt credentials of expired signing keys');
      return { upserted: [...wanted], deleted };
    } catch (err) {
      this.metrics.kongSync('error');
      throw err;
    }
  }

  private putCredential(consumer: string, c: KongJwtCredential): Promise<unknown> {
    return this.call('PUT', `/consumers/${consumer}/jwt/${encodeURIComponent(c.key)}`, {
      algorithm: c.algorithm,
      rsa_public_key: c.rsa_public_key,
      tags: c.tags,
    });
  }

  private async listCredentials(consumer: string): Promise<Array<{ key: string; tags?: string[] | null }>> {
    const all: Array<{ key: string; tags?: string[] | null }> = [];
    let path: string | null = `/consumers/${consumer}/jwt?size=1000`;
    for (let page = 0; path && page < MAX_PAGES; page++) {
      const body = (await this.call('GET', path)) as { data?: Array<{ key: string; tags?: string[] | null }>; next?: string | null };
      all.push(...(body.data ?? []));
      path = body.next ?? null;
    }
    return all;
  }

  private async call(method: string, path: string, body?: unknown): Promise<unknown> {
    const base = this.config.KONG_ADMIN_URL!.replace(/\/+$/, '');
    const url = /^https?:\/\//.test(path) ? path : `${base}${path}`;
    const res = await fetch(url, {
      method,
      headers: {
        accept: 'application/json',
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(this.config.KONG_ADMIN_TOKEN ? { 'kong-admin-token': this.config.KONG_ADMIN_TOKEN } : {}),
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await res.text();
    if (method === 'DELETE' && res.status === 404) return undefined;
    if (!res.ok) throw new KongAdminError(`Kong Admin API ${method} ${path.split('?')[0]} answered ${res.status}`);
    return text ? (JSON.parse(text) as unknown) : undefined;
  }
}
