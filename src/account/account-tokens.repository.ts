import { Injectable } from '@nestjs/common';
import type { Tx } from '../database/database.js';

export type AccountAction = 'invitation' | 'password-reset' | 'email-verification';

/** A one-time link's row, found by the hash of its token. */
export interface AccountTokenRow {
  id: string;
  userId: string;
  purpose: AccountAction;
  /** The address a verification link verifies (a link for an older address verifies nothing). */
  email: string | null;
  expiresAt: Date;
  usedAt: Date | null;
}

/**
 * `account_action_tokens`: the one-time links of invitations, password resets and email
 * verifications. Only the SHA-256 of a link's token is stored. Runs in the caller's tenant transaction.
 */
@Injectable()
export class AccountTokensRepository {
  /**
   * A new link for the user and purpose; every earlier unused link of the same purpose stops
   * working, so only the newest mail's link does.
   */
  async issue(
    tx: Tx,
    t: { tenantId: string; userId: string; purpose: AccountAction; tokenHash: string; email: string | null; ttlSeconds: number },
  ): Promise<void> {
    await tx.query(
      `UPDATE account_action_tokens SET used_at = now() WHERE tenant_id = $1 AND user_id = $2 AND purpose = $3 AND used_at IS NULL`,
      [t.tenantId, t.userId, t.purpose],
    );
    await tx.query(
      `INSERT INTO account_action_tokens (tenant_id, user_id, purpose, token_hash, email, expires_at)
       VALUES ($1, $2, $3, $4, $5, now() + $6 * interval '1 second')`,
      [t.tenantId, t.userId, t.purpose, t.tokenHash, t.email, t.ttlSeconds],
    );
  }

  /** The link of a token hash, locked until the transaction ends (used or not, expired or not: the caller says which). */
  async findForUpdate(tx: Tx, tokenHash: string): Promise<AccountTokenRow | undefined> {
    const { rows } = await tx.query<{
      id: string;
      user_id: string;
      purpose: AccountAction;
      email: string | null;
      expires_at: Date;
      used_at: Date | null;
    }>(`SELECT id, user_id, purpose, email, expires_at, used_at FROM account_action_tokens WHERE token_hash = $1 FOR UPDATE`, [tokenHash]);
    const r = rows[0];
    return r && { id: r.id, userId: r.user_id, purpose: r.purpose, email: r.email, expiresAt: r.expires_at, usedAt: r.used_at };
  }

  /** Uses a link: false when it was used meanwhile (the row lock makes that impossible, the condition says it anyway). */
  async markUsed(tx: Tx, id: string): Promise<boolean> {
    const res = await tx.query(`UPDATE account_action_tokens SET used_at = now() WHERE id = $1 AND used_at IS NULL`, [id]);
    return res.rowCount === 1;
  }

  /** Every unused link of the user (any purpose) stops working: a password changed, an account deleted. */
  async revokeAllOfUser(tx: Tx, userId: string): Promise<void> {
    await tx.query(`UPDATE account_action_tokens SET used_at = now() WHERE user_id = $1 AND used_at IS NULL`, [userId]);
  }
}
