import { Injectable } from '@nestjs/common';
import type { Tx } from '../database/database.js';

/** Hits of one bucket in one fixed window, to add to the shared counter. */
export interface CounterHits {
  bucket: string;
  windowStart: Date;
  hits: number;
}

/** `rate_limit_counters`: the fixed-window counters every replica merges its hits into. */
@Injectable()
export class RateLimitCountersRepository {
  /**
   * Adds each bucket's hits to its shared counter and answers the merged totals. ORDER BY: one
   * row-lock order for every replica, so concurrent merges never deadlock. A named prepared
   * statement: every replica runs it every merge interval.
   */
  async add(tx: Tx, batch: readonly CounterHits[]): Promise<Array<{ bucket: string; hits: number }>> {
    const { rows } = await tx.query<{ bucket: string; hits: number }>(
      `INSERT INTO rate_limit_counters (bucket, window_start, hits)
       SELECT b, w, n FROM unnest($1::text[], $2::timestamptz[], $3::int[]) AS t(b, w, n) ORDER BY b
       ON CONFLICT (bucket, window_start) DO UPDATE SET hits = rate_limit_counters.hits + EXCLUDED.hits
       RETURNING bucket, hits`,
      [batch.map((m) => m.bucket), batch.map((m) => m.windowStart), batch.map((m) => m.hits)],
      'rate_limit_counters_add',
    );
    return rows;
  }

  /** Drops the counters of windows that started before `before`. */
  async deleteOlderThan(tx: Tx, before: Date): Promise<void> {
    await tx.query(`DELETE FROM rate_limit_counters WHERE window_start < $1`, [before]);
  }
}
