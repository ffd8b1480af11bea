import type { Provider } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { PostgresRateLimiter } from './postgres-rate-limiter.js';
import { RateLimitCountersRepository } from './rate-limit-counters.repository.js';
import { RateLimiter } from './rate-limiter.js';
import { RedisRateLimiter } from './redis-rate-limiter.js';

/**
 * `RateLimiter`, chosen once at start-up: Redis when REDIS_URL is set (with the PostgreSQL limiter
 * as its fallback), else the PostgreSQL limiter alone. Spread into AppModule's providers.
 */
export const RATE_LIMIT_PROVIDERS: Provider[] = [
  RateLimitCountersRepository,
  PostgresRateLimiter,
  {
    provide: RateLimiter,
    useFactory: async (config: AppConfig, postgres: PostgresRateLimiter, metrics?: MetricsService): Promise<RateLimiter> =>
      config.REDIS_URL
        ? RedisRateLimiter.start({ url: config.REDIS_URL, timeoutMs: config.REDIS_TIMEOUT_MS, registry: metrics?.registry }, postgres)
        : postgres,
    inject: [AppConfig, PostgresRateLimiter, { token: MetricsService, optional: true }],
  },
];
