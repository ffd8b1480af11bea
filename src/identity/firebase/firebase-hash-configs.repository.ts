import { Injectable } from '@nestjs/common';
import type { Tx } from '../../database/database.js';

export interface FirebaseHashConfigRow {
  id: string;
  tenantId: string;
  firebaseProjectId: string;
  /** The parameters, sealed by the caller (`SecretBox`, bound to the row and its tenant). */
  sealedParams: Buffer;
}

/** `firebase_password_hash_configs`: one row per Firebase import, the parameters sealed at rest. */
@Injectable()
export class FirebaseHashConfigsRepository {
  async insert(tx: Tx, c: FirebaseHashConfigRow): Promise<void> {
    await tx.query(`INSERT INTO firebase_password_hash_configs (id, tenant_id, firebase_project_id, params) VALUES ($1, $2, $3, $4)`, [
      c.id,
      c.tenantId,
      c.firebaseProjectId,
      c.sealedParams,
    ]);
  }

  /** The sealed parameters of one config of the tenant. */
  async findSealedParams(tx: Tx, tenantId: string, id: string): Promise<Buffer | undefined> {
    const { rows } = await tx.query<{ params: Buffer }>(
      `SELECT params FROM firebase_password_hash_configs WHERE id = $1 AND tenant_id = $2`,
      [id, tenantId],
    );
    return rows[0]?.params;
  }
}
