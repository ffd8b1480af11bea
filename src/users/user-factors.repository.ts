import { Injectable } from '@nestjs/common';
import type { Tx } from '../database/database.js';

/** A user's TOTP row, read under a lock, with the lockout of the user's local password. */
export interface TotpRow {
  secret: Buffer;
  confirmed: boolean;
  lastUsedStep: bigint | null;
  failedAttempts: number;
  passwordLockedUntil: Date | null;
}

/**
 * A user's second factors: `user_totp` (the sealed secret, the last accepted time step, the
 * failure counter) and `user_recovery_codes` (hashes, single use). Runs in the caller's tenant
 * transaction; every "use" is a conditional UPDATE, so a code is accepted once across replicas.
 */
@Injectable()
export class UserFactorsRepository {
  async find(tx: Tx, userId: string, forUpdate = false): Promise<TotpRow | undefined> {
    const { rows } = await tx.query<{
      secret: Buffer;
      confirmed_at: Date | null;
      last_used_step: string | null;
      failed_attempts: number;
      locked_until: Date | null;
    }>(
      `SELECT t.secret, t.confirmed_at, t.last_used_step, t.failed_attempts, c.locked_until
         FROM user_totp t LEFT JOIN native_credentials c ON c.user_id = t.user_id
        WHERE t.user_id = $1${forUpdate ? ' FOR UPDATE OF t' : ''}`,
      [userId],
    );
    const r = rows[0];
    if (!r) return undefined;
    return {
      secret: r.secret,
      confirmed: r.confirmed_at !== null,
      lastUsedStep: r.last_used_step === null ? null : BigInt(r.last_used_step),
      failedAttempts: r.failed_attempts,
      passwordLockedUntil: r.locked_until,
    };
  }

  /** A new unconfirmed secret; never replaces a confirmed one (false then). */
  async upsertPending(tx: Tx, tenantId: string, userId: string, secret: Buffer): Promise<boolean> {
    const res = await tx.query(
      `INSERT INTO user_totp (user_id, tenant_id, secret) VALUES ($1, $2, $3)
         ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, created_at = now(), last_used_step = NULL
         WHERE user_totp.confirmed_at IS NULL`,
      [userId, tenantId, secret],
    );
    return res.rowCount === 1;
  }

  /** Accepts a time step once: true only when it is later than every step accepted before. */
  async useStep(tx: Tx, userId: string, step: bigint, confirm: boolean): Promise<boolean> {
    const res = await tx.query(
      `UPDATE user_totp SET last_used_step = $2, failed_attempts = 0${confirm ? ', confirmed_at = now()' : ''}
        WHERE user_id = $1 AND (last_used_step IS NULL OR last_used_step < $2)
          AND confirmed_at IS ${confirm ? '' : 'NOT '}NULL`,
      [userId, step.toString()],
    );
    return res.rowCount === 1;
  }

  async recordFailure(tx: Tx, userId: string, failedAttempts: number): Promise<void> {
    await tx.query(`UPDATE user_totp SET failed_attempts = $2 WHERE user_id = $1`, [userId, failedAttempts]);
  }

  /** Spends a recovery code: true for whoever marks the unused code used first. */
  async useRecoveryCode(tx: Tx, userId: string, codeHash: string): Promise<boolean> {
    const res = await tx.query(`UPDATE user_recovery_codes SET used_at = now() WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL`, [
      userId,
      codeHash,
    ]);
    if (res.rowCount !== 1) return false;
    await tx.query(`UPDATE user_totp SET failed_attempts = 0 WHERE user_id = $1`, [userId]);
    return true;
  }

  /** Replaces the user's recovery codes. */
  async replaceRecoveryCodes(tx: Tx, tenantId: string, userId: string, codeHashes: string[]): Promise<void> {
    await tx.query(`DELETE FROM user_recovery_codes WHERE user_id = $1`, [userId]);
    await tx.query(`INSERT INTO user_recovery_codes (tenant_id, user_id, code_hash) SELECT $1, $2, unnest($3::text[])`, [
      tenantId,
      userId,
      codeHashes,
    ]);
  }

  async deletePending(tx: Tx, userId: string): Promise<void> {
    await tx.query(`DELETE FROM user_totp WHERE user_id = $1 AND confirmed_at IS NULL`, [userId]);
  }

  /** Removes the TOTP and the recovery codes; false when the user had neither. */
  async deleteAll(tx: Tx, userId: string): Promise<boolean> {
    const codes = await tx.query(`DELETE FROM user_recovery_codes WHERE user_id = $1`, [userId]);
    const totp = await tx.query(`DELETE FROM user_totp WHERE user_id = $1`, [userId]);
    return codes.rowCount + totp.rowCount > 0;
  }
}
