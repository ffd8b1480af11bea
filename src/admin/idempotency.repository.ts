import { Injectable } from '@nestjs/common';
import type { Tx } from '../database/database.js';

export interface NewIdempotencyRecord {
  actor: string;
  key: string;
  method: string;
  path: string;
  requestHash: string;
}

/** A stored record: `status` and `response` stay null while the first request is in progress. */
export interface IdempotencyRecord {
  requestHash: string;
  status: number | null;
  response: { sealed: string } | null;
}

/** `idempotency_keys`: one record per actor and Idempotency-Key of an admin create. */
@Injectable()
export class IdempotencyRepository {
  /** Drops in-progress records older than `seconds` (their request died before it finished). */
  async deleteStaleInProgress(tx: Tx, seconds: number): Promise<void> {
    await tx.query(`DELETE FROM idempotency_keys WHERE status IS NULL AND created_at < now() - make_interval(secs => $1)`, [seconds]);
  }

  /** An in-progress record; false if the actor used that key already. */
  async insert(tx: Tx, r: NewIdempotencyRecord): Promise<boolean> {
    const { rows } = await tx.query(
      `INSERT INTO idempotency_keys (actor, key, method, path, request_hash) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING key`,
      [r.actor, r.key, r.method, r.path, r.requestHash],
    );
    return rows.length > 0;
  }

  async find(tx: Tx, actor: string, key: string): Promise<IdempotencyRecord | undefined> {
    const { rows } = await tx.query<{ request_hash: string; status: number | null; response: { sealed: string } | null }>(
      `SELECT request_hash, status, response FROM idempotency_keys WHERE actor = $1 AND key = $2`,
      [actor, key],
    );
    const r = rows[0];
    return r ? { requestHash: r.request_hash, status: r.status, response: r.response } : undefined;
  }

  /** Stores the first request's answer, to replay. */
  async complete(tx: Tx, actor: string, key: string, status: number, response: { sealed: string }): Promise<void> {
    await tx.query(`UPDATE idempotency_keys SET status = $3, response = $4 WHERE actor = $1 AND key = $2`, [
      actor,
      key,
      status,
      JSON.stringify(response),
    ]);
  }

  async delete(tx: Tx, actor: string, key: string): Promise<void> {
    await tx.query(`DELETE FROM idempotency_keys WHERE actor = $1 AND key = $2`, [actor, key]);
  }
}
