import { Injectable } from '@nestjs/common';
import type { Tx } from '../database/database.js';

export interface NativeCredentialRow {
  userId: string;
  tenantId: string;
  username: string;
  /** Null until an invited user sets a password, or after an admin's forced reset. */
  passwordHash: string | null;
}

/** What a password check needs, read under a row lock. */
export interface NativeCredentialForLogin {
  userId: string;
  username: string;
  passwordHash: string | null;
  failedAttempts: number;
  lockedUntil: Date | null;
}

/**
 * `native_credentials`: local usernames and password hashes (argon2id, or an imported legacy hash
 * until the first login), with the lockout counter. Usernames are unique per tenant,
 * case-insensitively (`username_ci`). Runs in the caller's tenant transaction.
 */
@Injectable()
export class NativeCredentialsRepository {
  /** Fails with 23505 (unique violation) when the username exists in the tenant. */
  async insert(tx: Tx, c: NativeCredentialRow): Promise<void> {
    await tx.query(`INSERT INTO native_credentials (user_id, tenant_id, username, password_hash) VALUES ($1, $2, $3, $4)`, [
      c.userId,
      c.tenantId,
      c.username,
      c.passwordHash,
    ]);
  }

  /** The credential of a username (case-insensitive), locked `FOR UPDATE` until the transaction ends. */
  async findForLogin(tx: Tx, tenantId: string, username: string): Promise<NativeCredentialForLogin | undefined> {
    const { rows } = await tx.query<{
      user_id: string;
      username: string;
      password_hash: string | null;
      failed_attempts: number;
      locked_until: Date | null;
    }>(
      `SELECT user_id, username, password_hash, failed_attempts, locked_until FROM native_credentials WHERE tenant_id = $1 AND username_ci = lower($2) FOR UPDATE`,
      [tenantId, username],
      'native-credential-for-login',
    );
    const row = rows[0];
    if (!row) return undefined;
    return {
      userId: row.user_id,
      username: row.username,
      passwordHash: row.password_hash,
      failedAttempts: row.failed_attempts,
      lockedUntil: row.locked_until,
    };
  }

  /** The user a username (case-insensitive) belongs to, without a lock. */
  async findUserIdByUsername(tx: Tx, tenantId: string, username: string): Promise<string | undefined> {
    const { rows } = await tx.query<{ user_id: string }>(
      `SELECT user_id FROM native_credentials WHERE tenant_id = $1 AND username_ci = lower($2)`,
      [tenantId, username],
    );
    return rows[0]?.user_id;
  }

  async findPasswordHash(tx: Tx, userId: string): Promise<string | null | undefined> {
    const { rows } = await tx.query<{ password_hash: string | null }>(`SELECT password_hash FROM native_credentials WHERE user_id = $1`, [
      userId,
    ]);
    return rows[0]?.password_hash;
  }

  /** The credential of a user, locked until the transaction ends (the account flows). */
  async findByUser(tx: Tx, userId: string): Promise<{ username: string; passwordHash: string | null } | undefined> {
    const { rows } = await tx.query<{ username: string; password_hash: string | null }>(
      `SELECT username, password_hash FROM native_credentials WHERE user_id = $1 FOR UPDATE`,
      [userId],
    );
    const r = rows[0];
    return r && { username: r.username, passwordHash: r.password_hash };
  }

  /** A new password (or none: a forced reset); clears the lockout. False when the user has no local credential. */
  async setPassword(tx: Tx, userId: string, passwordHash: string | null): Promise<boolean> {
    const res = await tx.query(
      `UPDATE native_credentials SET password_hash = $2, password_changed_at = now(), failed_attempts = 0, locked_until = NULL WHERE user_id = $1`,
      [userId, passwordHash],
    );
    return res.rowCount === 1;
  }

  /** A failed check: the new failure count and lock. */
  async recordFailure(tx: Tx, userId: string, failedAttempts: number, lockedUntil: Date | null): Promise<void> {
    await tx.query(
      `UPDATE native_credentials SET failed_attempts = $2, locked_until = $3 WHERE user_id = $1`,
      [userId, failedAttempts, lockedUntil],
      'native-credential-failure',
    );
  }

  /** A successful check: clears the lockout and stores the (possibly rehashed) hash. */
  async recordSuccess(tx: Tx, userId: string, passwordHash: string): Promise<void> {
    await tx.query(
      `UPDATE native_credentials SET failed_attempts = 0, locked_until = NULL, password_hash = $2 WHERE user_id = $1`,
      [userId, passwordHash],
      'native-credential-success',
    );
  }

  /** Replaces the username and the hash (a re-import of a not yet converted legacy hash). */
  async replaceUsernameAndHash(tx: Tx, userId: string, username: string, passwordHash: string): Promise<void> {
    await tx.query(`UPDATE native_credentials SET username = $2, password_hash = $3 WHERE user_id = $1`, [userId, username, passwordHash]);
  }

  /** Ends a lockout and clears the failure count; false when the user has no local password. */
  async unlock(tx: Tx, userId: string): Promise<boolean> {
    const res = await tx.query(`UPDATE native_credentials SET failed_attempts = 0, locked_until = NULL WHERE user_id = $1`, [userId]);
    return res.rowCount === 1;
  }

  /**
   * The account a "forgot password" request names: the local credential with that username, or else
   * the one user with a local credential and that email address (none when several have it).
   */
  async findForReset(
    tx: Tx,
    tenantId: string,
    identifier: string,
  ): Promise<{ userId: string; email: string | null; status: string } | undefined> {
    const { rows } = await tx.query<{ user_id: string; email: string | null; status: string; by_name: boolean }>(
      `SELECT c.user_id, u.email, u.status, c.username_ci = lower($2) AS by_name
         FROM native_credentials c JOIN users u ON u.id = c.user_id
        WHERE c.tenant_id = $1 AND u.deleted_at IS NULL AND (c.username_ci = lower($2) OR lower(u.email) = lower($2))
        ORDER BY by_name DESC LIMIT 2`,
      [tenantId, identifier],
    );
    const [first, second] = rows;
    if (!first || (!first.by_name && second)) return undefined;
    return { userId: first.user_id, email: first.email, status: first.status };
  }
}
