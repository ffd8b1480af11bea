import { Logger, type OnModuleDestroy } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { createClient } from 'redis';
import { Counter, Gauge, type Registry } from 'prom-client';
import {
  ALLOWED,
  RateLimiter,
  refuse,
  windowMsOf,
  type RateLimiterHealth,
  type RateLimitResult,
  type RateLimitRule,
} from './rate-limiter.js';
import type { PostgresRateLimiter } from './postgres-rate-limiter.js';

type RedisClient = ReturnType<typeof createClient>;

/** INCR and, on a window's first hit, its expiry: atomic, one round trip. */
const HIT_SCRIPT = `local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`;
const HIT_SHA = createHash('sha1').update(HIT_SCRIPT).digest('hex');

const KEY_PREFIX = 'auth-service:rl:';
/** After a failed or slow command, hits go to the fallback for this long before Redis is tried again. */
const SUSPEND_MS = 1000;
/** Start-up waits this long for Redis; a service that cannot reach it starts on the fallback. */
const STARTUP_WAIT_MS = 2000;

export interface RedisRateLimiterOptions {
  url: string;
  /** Longest wait for one Redis answer before the hit is counted on the fallback instead. */
  timeoutMs: number;
  /** Where `auth_rate_limit_*` series go (the service's metrics registry). */
  registry?: Registry;
}

class RedisTimeoutError extends Error {
  override name = 'RedisTimeoutError';
}

/**
 * Fixed-window counters in Redis (REDIS_URL): one `INCR` + `PEXPIRE` script per bucket and hit, so
 * every replica sees the same count at once. When Redis is unreachable, slow or erroring, hits are
 * counted by the PostgreSQL limiter instead (in-memory, merged every 250 ms): limits keep holding
 * across replicas, a warning is logged once per outage, `auth_rate_limit_fallback_total` counts the
 * hits and `/health/ready` reports `redis: down`. Requests never fail, and never pass unlimited,
 * because Redis is down (ADR 0007).
 */
export class RedisRateLimiter extends RateLimiter implements OnModuleDestroy {
  private readonly logger = new Logger('RateLimiter');
  private readonly client: RedisClient;
  private readonly fallbackHits?: Counter;
  private readonly redisUp?: Gauge;
  private state: 'up' | 'down' = 'down';
  private suspendedUntil = 0;
  private closed = false;

  private constructor(
    private readonly options: RedisRateLimiterOptions,
    private readonly fallback: PostgresRateLimiter,
  ) {
    super();
    this.client = createClient({
      url: options.url,
      name: 'auth-service',
      // Disconnected: fail at once (the hit goes to the fallback) rather than queue until reconnected.
      disableOfflineQueue: true,
      socket: {
        connectTimeout: Math.max(1000, options.timeoutMs * 4),
        reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 2000),
      },
    });
    this.client.on('error', (err: unknown) => this.markDown(err));
    this.client.on('ready', () => this.markUp());
    if (options.registry) {
      this.fallbackHits = new Counter({
        name: 'auth_rate_limit_fallback_total',
        help: 'Rate-limit checks counted on the PostgreSQL fallback because Redis (REDIS_URL) was unreachable, slow or erroring.',
        registers: [options.registry],
      });
      this.redisUp = new Gauge({
        name: 'auth_rate_limit_redis_up',
        help: '1 while rate limits are counted in Redis, 0 while they fall back to PostgreSQL.',
        registers: [options.registry],
      });
      this.redisUp.set(0);
    }
  }

  /** Connects (waiting up to 2 s); an unreachable Redis is retried in the background, never fatal. */
  static async start(options: RedisRateLimiterOptions, fallback: PostgresRateLimiter): Promise<RedisRateLimiter> {
    const limiter = new RedisRateLimiter(options, fallback);
    const connecting = limiter.client.connect().then(
      () => true,
      () => false,
    );
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), STARTUP_WAIT_MS)));
    const ready = await Promise.race([connecting, waited]);
    clearTimeout(timer);
    if (!ready) limiter.logger.warn('Redis (REDIS_URL) is not reachable at start-up: rate limits are counted in PostgreSQL until it is');
    return limiter;
  }

  async check(rules: readonly RateLimitRule[]): Promise<RateLimitResult> {
    const now = Date.now();
    if (!this.client.isReady || now < this.suspendedUntil) return this.onFallback(rules, now);
    try {
      const counts = await this.within(Promise.all(rules.map((rule) => this.incr(rule, now))));
      this.markUp();
      let result = ALLOWED;
      rules.forEach((rule, i) => {
        const windowMs = windowMsOf(rule);
        if (counts[i]! > rule.limit) result = refuse(result, rule, windowMs - (now % windowMs));
      });
      return result;
    } catch (err) {
      this.markDown(err);
      return this.onFallback(rules, now);
    }
  }

  override async health(): Promise<RateLimiterHealth> {
    let up = false;
    if (this.client.isReady) {
      try {
        up = (await this.within(this.client.ping())) === 'PONG';
      } catch {
        up = false;
      }
    }
    const counting = this.client.isReady && Date.now() >= this.suspendedUntil;
    return { redis: up ? 'up' : 'down', rate_limits: up && counting ? 'redis' : 'postgres-fallback' };
  }

  private async incr(rule: RateLimitRule, now: number): Promise<number> {
    const windowMs = windowMsOf(rule);
    const windowStart = now - (now % windowMs);
    const key = `${KEY_PREFIX}${rule.bucket}:${windowStart}`;
    // Expire a second after the window ends: replicas' clocks differ by a little.
    const args = { keys: [key], arguments: [String(windowStart + windowMs - now + 1000)] };
    let reply: unknown;
    try {
      reply = await this.client.evalSha(HIT_SHA, args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      reply = await this.client.eval(HIT_SCRIPT, args);
    }
    if (typeof reply !== 'number') throw new Error(`unexpected reply from the rate-limit script: ${typeof reply}`);
    return reply;
  }

  /**
   * Races `work` against REDIS_TIMEOUT_MS. The timeout rejects from setImmediate, not from the timer
   * itself: after the event loop stalled (a busy host, a long GC), expired timers run before pending
   * socket reads, so an answer that arrived in time would lose to its own timer. Deferring to the
   * check phase lets the poll phase deliver that answer first.
   */
  private within<T>(work: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => setImmediate(() => reject(new RedisTimeoutError(`no answer from Redis within ${this.options.timeoutMs} ms`))),
        this.options.timeoutMs,
      );
    });
    return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
  }

  private onFallback(rules: readonly RateLimitRule[], now: number): RateLimitResult {
    this.fallbackHits?.inc();
    return this.fallback.count(rules, now);
  }

  private markDown(err: unknown): void {
    this.suspendedUntil = Date.now() + SUSPEND_MS;
    if (this.state === 'down' || this.closed) return;
    this.state = 'down';
    this.redisUp?.set(0);
    const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    this.logger.warn({ reason }, 'Redis (REDIS_URL) failed: rate limits are counted in PostgreSQL until it answers again');
  }

  private markUp(): void {
    this.suspendedUntil = 0;
    if (this.state === 'up') return;
    this.state = 'up';
    this.redisUp?.set(1);
    this.logger.log('rate limits are counted in Redis');
  }

  async onModuleDestroy(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.fallback.onModuleDestroy();
    try {
      this.client.destroy();
    } catch {
      /* never connected */
    }
  }
}
