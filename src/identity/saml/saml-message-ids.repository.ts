import { Injectable } from '@nestjs/common';
import type { Tx } from '../../database/database.js';

export type SamlMessageKind = 'assertion' | 'request';

export interface SamlMessageId {
  kind: SamlMessageKind;
  id: string;
  /** After this instant the message could not be accepted anyway; the row may then be swept. */
  expiresAt: Date;
}

/** `saml_message_ids`: SAML assertion and AuthnRequest IDs already used, per tenant (row-level security). */
@Injectable()
export class SamlMessageIdsRepository {
  /** Forgets the tenant's IDs whose messages can no longer be accepted anyway. */
  async sweepExpired(tx: Tx, tenantId: string): Promise<void> {
    await tx.query(`DELETE FROM saml_message_ids WHERE tenant_id = $1 AND expires_at < now()`, [tenantId]);
  }

  /**
   * Records one ID; false when it was recorded already. A concurrent insert of the same ID waits for
   * the other transaction and then finds the row: exactly one of them gets true.
   */
  async insert(tx: Tx, tenantId: string, bindingId: string, entry: SamlMessageId): Promise<boolean> {
    const { rows } = await tx.query(
      `INSERT INTO saml_message_ids (tenant_id, kind, message_id, binding_id, expires_at) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (tenant_id, kind, message_id) DO NOTHING RETURNING message_id`,
      [tenantId, entry.kind, entry.id, bindingId, entry.expiresAt],
    );
    return rows.length > 0;
  }
}
