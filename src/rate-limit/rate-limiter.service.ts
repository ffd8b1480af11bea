import { Injectable } from '@nestjs/common';
import { Database } from '../database/database.js';

export interface RateLimitResult {
  allowed: boolean;
  retryAfter: number;
}

/**
 * Fixed-window counters in PostgreSQL, shared by every replica. One upsert per hit; old windows
 * are swept opportunistically. (Redis would take this load off the database; see ADR 0003.)
 */
@Injectable()
export class RateLimiterService {
  private lastSweep = 0;

  constructor(private readonly db: Database) {}

  async hit(bucket: string, limit: number, windowSeconds = 60, now = Date.now()): Promise<RateLimitResult> {
    const windowMs = windowSeconds * 1000;
    const start = new Date(Math.floor(now / windowMs) * windowMs);
    const [row] = await this.db.query<{ hits: number }>(
      `INSERT INTO rate_limit_counters (bucket, window_start, hits) VALUES ($1, $2, 1)
       ON CONFLICT (bucket, window_start) DO UPDATE SET hits = rate_limit_counters.hits + 1 RETURNING hits`,
      [bucket, start],
    );
    if (now - this.lastSweep > 60_000) {
      this.lastSweep = now;
      await this.db.query(`DELETE FROM rate_limit_counters WHERE window_start < $1`, [new Date(now - 3_600_000)]);
    }
    const allowed = (row?.hits ?? 0) <= limit;
    return { allowed, retryAfter: allowed ? 0 : Math.max(1, Math.ceil((start.getTime() + windowMs - now) / 1000)) };
  }
}
