import { Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import { Database } from '../database/database.js';
import type { RateLimitResult } from '../rate-limit/rate-limiter.service.js';

interface Bucket {
  windowStart: number;
  /** Hits counted here and not yet merged into the shared counter. */
  pending: number;
  /** The shared counter (every replica's merged hits) as of the last merge. */
  shared: number;
}

const WINDOW_MS = 60_000;
const FLUSH_MS = 250;

/**
 * Per-tenant SCIM request limit per fixed minute, on the same `rate_limit_counters` table as
 * RateLimiterService, but off the request path: each replica counts in memory and merges its
 * hits into the shared counter every 250 ms (`hits = hits + n RETURNING hits`). A request is
 * refused when the shared count plus this replica's unmerged hits exceed the limit, so across
 * replicas the limit holds to within one merge interval. RateLimiterService's one upsert per
 * request serialises a busy tenant's requests on one row lock and doubles the round trips of a
 * SCIM call; provisioning bursts are exactly when that hurts.
 */
@Injectable()
export class ScimRateLimiter implements OnModuleDestroy {
  private readonly logger = new Logger('ScimRateLimiter');
  private readonly buckets = new Map<string, Bucket>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private lastSweep = 0;

  constructor(private readonly db: Database) {}

  hit(tenantId: string, limit: number, now = Date.now()): RateLimitResult {
    const windowStart = Math.floor(now / WINDOW_MS) * WINDOW_MS;
    let b = this.buckets.get(tenantId);
    if (!b || b.windowStart !== windowStart) {
      b = { windowStart, pending: 0, shared: 0 };
      this.buckets.set(tenantId, b);
    }
    b.pending++;
    this.schedule();
    const allowed = b.shared + b.pending <= limit;
    return { allowed, retryAfter: allowed ? 0 : Math.max(1, Math.ceil((windowStart + WINDOW_MS - now) / 1000)) };
  }

  private schedule(): void {
    if (this.timer || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush().catch((err: unknown) => this.logger.warn({ err }, 'merging SCIM rate-limit counters failed'));
    }, FLUSH_MS);
    this.timer.unref();
  }

  async flush(now = Date.now()): Promise<void> {
    const current = Math.floor(now / WINDOW_MS) * WINDOW_MS;
    if (now - this.lastSweep > 600_000) {
      this.lastSweep = now;
      await this.db.query(`DELETE FROM rate_limit_counters WHERE bucket LIKE 'scim:%' AND window_start < $1`, [new Date(now - 3_600_000)]);
    }
    for (const [tenantId, b] of this.buckets) {
      if (b.windowStart < current) {
        this.buckets.delete(tenantId);
        continue;
      }
      const n = b.pending;
      if (n === 0) continue;
      b.pending -= n;
      try {
        const [row] = await this.db.query<{ hits: number }>(
          `INSERT INTO rate_limit_counters (bucket, window_start, hits) VALUES ($1, $2, $3)
           ON CONFLICT (bucket, window_start) DO UPDATE SET hits = rate_limit_counters.hits + EXCLUDED.hits RETURNING hits`,
          [`scim:${tenantId}`, new Date(b.windowStart), n],
        );
        b.shared = row?.hits ?? b.shared + n;
      } catch (err) {
        b.pending += n; // counted again at the next merge
        throw err;
      }
    }
  }

  onModuleDestroy(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
