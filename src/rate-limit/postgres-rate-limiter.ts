import { Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import { Database } from '../database/database.js';
import { ALLOWED, RateLimiter, refuse, windowMsOf, type RateLimitResult, type RateLimitRule } from './rate-limiter.js';
import { RateLimitCountersRepository } from './rate-limit-counters.repository.js';

interface Counter {
  windowStart: number;
  windowMs: number;
  /** Hits counted here and not yet sent to the shared counter. */
  pending: number;
  /** Hits sent by the merge in progress. */
  inFlight: number;
  /** The shared counter (every replica's merged hits) as of this replica's last merge. */
  shared: number;
}

interface Merge {
  bucket: string;
  counter: Counter;
  n: number;
}

export const MERGE_INTERVAL_MS = 250;
const MERGE_BATCH = 1000;
const SWEEP_EVERY_MS = 600_000;
const KEEP_MS = 3_600_000;

/**
 * Fixed-window counters in `rate_limit_counters`, off the request path: each replica counts in
 * memory and merges its hits into the shared rows every 250 ms, one batched statement
 * (`hits = hits + n RETURNING hits`). A hit is refused when the shared count plus this replica's
 * unmerged hits exceed the limit, so across replicas a limit holds to within one merge interval.
 * No request waits for the database, and a database outage leaves the limits enforced per replica.
 */
@Injectable()
export class PostgresRateLimiter extends RateLimiter implements OnModuleDestroy {
  private readonly logger = new Logger('RateLimiter');
  private readonly counters = new Map<string, Counter>();
  private timer: NodeJS.Timeout | undefined;
  private merging: Promise<void> | undefined;
  private stopped = false;
  private failing = false;
  private lastSweep = Date.now();

  constructor(
    private readonly db: Database,
    // A default for limiters made by hand (a test's second replica); Nest injects the registered one.
    private readonly counterRows: RateLimitCountersRepository = new RateLimitCountersRepository(),
  ) {
    super();
  }

  check(rules: readonly RateLimitRule[]): Promise<RateLimitResult> {
    return Promise.resolve(this.count(rules));
  }

  /** Synchronous: used on the request path and as the Redis limiter's fallback. */
  count(rules: readonly RateLimitRule[], now = Date.now()): RateLimitResult {
    let result = ALLOWED;
    for (const rule of rules) {
      const windowMs = windowMsOf(rule);
      const windowStart = now - (now % windowMs);
      let c = this.counters.get(rule.bucket);
      if (!c || c.windowStart !== windowStart) {
        c = { windowStart, windowMs, pending: 0, inFlight: 0, shared: 0 };
        this.counters.set(rule.bucket, c);
      }
      c.pending++;
      if (c.shared + c.inFlight + c.pending > rule.limit) result = refuse(result, rule, windowStart + windowMs - now);
    }
    this.schedule();
    return result;
  }

  private schedule(): void {
    if (this.timer || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.merging) {
        this.schedule();
        return;
      }
      this.merging = this.flush()
        .then(
          () => {
            if (this.failing) this.logger.log('merging rate-limit counters into PostgreSQL works again');
            this.failing = false;
          },
          (err: unknown) => {
            if (!this.failing)
              this.logger.warn({ err }, 'merging rate-limit counters into PostgreSQL failed; limits hold per replica until it works again');
            this.failing = true;
            this.schedule();
          },
        )
        .finally(() => (this.merging = undefined));
    }, MERGE_INTERVAL_MS);
    this.timer.unref();
  }

  /** Merges this replica's unmerged hits into the shared counters (the timer calls it; tests may too). */
  async flush(now = Date.now()): Promise<void> {
    const batch: Merge[] = [];
    for (const [bucket, c] of this.counters) {
      if (c.windowStart + c.windowMs <= now) {
        this.counters.delete(bucket);
        continue;
      }
      if (c.pending === 0) continue;
      batch.push({ bucket, counter: c, n: c.pending });
      c.inFlight += c.pending;
      c.pending = 0;
    }
    let failure: unknown;
    for (let i = 0; i < batch.length; i += MERGE_BATCH) {
      const part = batch.slice(i, i + MERGE_BATCH);
      try {
        const rows = await this.db.transaction('platform', (tx) =>
          this.counterRows.add(
            tx,
            part.map((m) => ({ bucket: m.bucket, windowStart: new Date(m.counter.windowStart), hits: m.n })),
          ),
        );
        const merged = new Map(rows.map((r) => [r.bucket, r.hits]));
        for (const m of part) {
          m.counter.inFlight -= m.n;
          m.counter.shared = merged.get(m.bucket) ?? m.counter.shared + m.n;
        }
      } catch (err) {
        for (const m of part) {
          m.counter.inFlight -= m.n;
          m.counter.pending += m.n; // sent again at the next merge
        }
        failure ??= err;
      }
    }
    if (failure) throw failure;
    if (now - this.lastSweep > SWEEP_EVERY_MS) {
      this.lastSweep = now;
      await this.db.transaction('platform', (tx) => this.counterRows.deleteOlderThan(tx, new Date(now - KEEP_MS)));
    }
  }

  onModuleDestroy(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
