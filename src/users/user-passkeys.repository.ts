import { Injectable } from '@nestjs/common';
import type { Tx } from '../database/database.js';

/** A registered passkey as an authentication checks it and as its owner and admins see it. */
export interface PasskeyRow {
  id: string;
  userId: string;
  /** base64url, as the authenticator sent it. */
  credentialId: string;
  publicKey: Buffer;
  signCount: number;
  transports: string[];
  deviceType: 'singleDevice' | 'multiDevice';
  backedUp: boolean;
  aaguid: string;
  name: string;
  createdAt: Date;
  lastUsedAt: Date | null;
}

export type NewPasskey = Omit<PasskeyRow, 'id' | 'createdAt' | 'lastUsedAt'> & { tenantId: string };

interface Row {
  id: string;
  user_id: string;
  credential_id: string;
  public_key: Buffer;
  sign_count: string;
  transports: string[];
  device_type: 'singleDevice' | 'multiDevice';
  backed_up: boolean;
  aaguid: string;
  name: string;
  created_at: Date;
  last_used_at: Date | null;
}

const COLUMNS =
  'id, user_id, credential_id, public_key, sign_count, transports, device_type, backed_up, aaguid, name, created_at, last_used_at';

const PREFIXED = COLUMNS.split(', ')
  .map((c) => `p.${c}`)
  .join(', ');

const toPasskey = (r: Row): PasskeyRow => ({
  id: r.id,
  userId: r.user_id,
  credentialId: r.credential_id,
  publicKey: r.public_key,
  signCount: Number(r.sign_count),
  transports: r.transports,
  deviceType: r.device_type,
  backedUp: r.backed_up,
  aaguid: r.aaguid,
  name: r.name,
  createdAt: r.created_at,
  lastUsedAt: r.last_used_at,
});

/**
 * `user_passkeys`: WebAuthn credentials of native users, in the caller's tenant transaction (row
 * level security scopes every statement to the tenant). A use is a conditional UPDATE of the
 * signature counter, so one assertion is accepted once even by two replicas at the same moment.
 */
@Injectable()
export class UserPasskeysRepository {
  async listForUser(tx: Tx, userId: string): Promise<PasskeyRow[]> {
    const { rows } = await tx.query<Row>(`SELECT ${COLUMNS} FROM user_passkeys WHERE user_id = $1 ORDER BY created_at, id`, [userId]);
    return rows.map(toPasskey);
  }

  async countForUser(tx: Tx, userId: string): Promise<number> {
    const { rows } = await tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM user_passkeys WHERE user_id = $1`, [userId]);
    return rows[0]?.n ?? 0;
  }

  /**
   * The passkey with this credential id in the tenant and its user's local username, when the user
   * can still sign in (active, not deleted, with a local account), locked until the transaction ends.
   */
  async findForSignIn(tx: Tx, credentialId: string): Promise<(PasskeyRow & { username: string }) | undefined> {
    const { rows } = await tx.query<Row & { username: string }>(
      `SELECT ${PREFIXED}, c.username
         FROM user_passkeys p JOIN users u ON u.id = p.user_id JOIN native_credentials c ON c.user_id = p.user_id
        WHERE p.credential_id = $1 AND u.status = 'active' AND u.deleted_at IS NULL
        FOR UPDATE OF p`,
      [credentialId],
    );
    const r = rows[0];
    return r && { ...toPasskey(r), username: r.username };
  }

  /** False when the credential is already registered in this tenant (to this user or another). */
  async insert(tx: Tx, p: NewPasskey): Promise<PasskeyRow | undefined> {
    const { rows } = await tx.query<Row>(
      `INSERT INTO user_passkeys (tenant_id, user_id, credential_id, public_key, sign_count, transports, device_type, backed_up, aaguid, name)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (tenant_id, credential_id) DO NOTHING
       RETURNING ${COLUMNS}`,
      [p.tenantId, p.userId, p.credentialId, p.publicKey, p.signCount, p.transports, p.deviceType, p.backedUp, p.aaguid, p.name],
    );
    return rows[0] && toPasskey(rows[0]);
  }

  /**
   * Records a verified assertion: the new counter and backup state. The counter must still be the
   * one the verification compared with (a concurrent use of the same credential loses), and, for
   * an authenticator that counts, must grow.
   */
  async recordUse(tx: Tx, id: string, seenCount: number, newCount: number, backedUp: boolean): Promise<boolean> {
    const res = await tx.query(
      `UPDATE user_passkeys SET sign_count = $3, backed_up = $4, last_used_at = now()
        WHERE id = $1 AND sign_count = $2 AND ($3 = 0 OR $3 > sign_count)`,
      [id, seenCount, newCount, backedUp],
    );
    return res.rowCount === 1;
  }

  async delete(tx: Tx, userId: string, id: string): Promise<boolean> {
    const res = await tx.query(`DELETE FROM user_passkeys WHERE user_id = $1 AND id = $2`, [userId, id]);
    return res.rowCount === 1;
  }
}
