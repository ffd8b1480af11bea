import { Injectable } from '@nestjs/common';
import { RateLimiter, type RateLimitResult } from '../rate-limit/rate-limiter.js';

/**
 * Per-tenant SCIM request limit per fixed minute, on the service's shared RateLimiter (Redis, or
 * in-memory counters merged into PostgreSQL every 250 ms: no SCIM call waits for a counter write,
 * which matters during provisioning bursts).
 */
@Injectable()
export class ScimRateLimiter {
  constructor(private readonly limiter: RateLimiter) {}

  hit(tenantId: string, limit: number): Promise<RateLimitResult> {
    return this.limiter.hit(`scim:${tenantId}`, limit);
  }
}
