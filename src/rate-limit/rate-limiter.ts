/** One limit: at most `limit` hits on `bucket` per fixed window (default one minute). */
export interface RateLimitRule {
  bucket: string;
  limit: number;
  windowSeconds?: number;
}

export interface RateLimitResult {
  allowed: boolean;
  /** Seconds until the refusing window ends (0 when allowed): the Retry-After value. */
  retryAfter: number;
  /** The rule that refused (the one with the longest wait when several did). */
  refusedBy?: RateLimitRule;
}

/** What `/health/ready` reports; undefined when no Redis is configured. */
export interface RateLimiterHealth {
  redis: 'up' | 'down';
  /** The backend counting hits right now. */
  rate_limits: 'redis' | 'postgres-fallback';
}

export const ALLOWED: RateLimitResult = Object.freeze({ allowed: true, retryAfter: 0 });

export const windowMsOf = (rule: RateLimitRule): number => (rule.windowSeconds ?? 60) * 1000;

/** Keeps the refusal with the longest wait: the client may retry only when every limit allows it. */
export function refuse(current: RateLimitResult, rule: RateLimitRule, msLeft: number): RateLimitResult {
  const retryAfter = Math.max(1, Math.ceil(msLeft / 1000));
  return current.allowed || retryAfter > current.retryAfter ? { allowed: false, retryAfter, refusedBy: rule } : current;
}

/**
 * Fixed-window rate limits shared by every replica. One implementation is chosen at start-up
 * (rate-limit.module.ts): Redis when REDIS_URL is set, else in-memory counters merged into
 * PostgreSQL off the request path. Neither throws on the request path: a limiter whose store is
 * unreachable keeps enforcing limits on what it can still see (ADR 0007).
 */
export abstract class RateLimiter {
  /** Counts one hit on every rule's bucket; refused when any bucket is over its limit. */
  abstract check(rules: readonly RateLimitRule[]): Promise<RateLimitResult>;

  hit(bucket: string, limit: number, windowSeconds = 60): Promise<RateLimitResult> {
    return this.check([{ bucket, limit, windowSeconds }]);
  }

  async health(): Promise<RateLimiterHealth | undefined> {
    return undefined;
  }
}
