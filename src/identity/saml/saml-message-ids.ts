import { Injectable } from '@nestjs/common';
import { Database } from '../../database/database.js';

export type SamlMessageKind = 'assertion' | 'request';

export interface SamlMessageId {
  kind: SamlMessageKind;
  id: string;
  /** After this instant the message could not be accepted anyway; the row may then be swept. */
  expiresAt: Date;
}

export class ReplayedSamlMessageError extends Error {
  override name = 'ReplayedSamlMessageError';
  constructor(readonly kind: SamlMessageKind) {
    super(`SAML ${kind} ID already used`);
  }
}

/**
 * One-time use of SAML assertion IDs and answered AuthnRequest IDs, shared by every replica
 * through PostgreSQL (`saml_message_ids`, row-level security per tenant). A concurrent second
 * insert of the same ID waits for the first transaction and then finds the row: exactly one wins.
 */
@Injectable()
export class SamlMessageIdStore {
  constructor(private readonly db: Database) {}

  /** Records every ID, or none: throws ReplayedSamlMessageError naming the first one already used. */
  async consume(tenantId: string, bindingId: string, ids: SamlMessageId[]): Promise<void> {
    await this.db.tenantTx(tenantId, async (m) => {
      // Sweep this tenant's expired rows first: an ID whose assertion can no longer be valid is forgotten.
      await m.query(`DELETE FROM saml_message_ids WHERE tenant_id = $1 AND expires_at < now()`, [tenantId]);
      for (const entry of ids) {
        const rows = await m.query<unknown[]>(
          `INSERT INTO saml_message_ids (tenant_id, kind, message_id, binding_id, expires_at) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (tenant_id, kind, message_id) DO NOTHING RETURNING message_id`,
          [tenantId, entry.kind, entry.id, bindingId, entry.expiresAt],
        );
        if (rows.length === 0) throw new ReplayedSamlMessageError(entry.kind);
      }
    });
  }
}
