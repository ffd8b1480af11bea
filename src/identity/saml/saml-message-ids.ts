import { Injectable } from '@nestjs/common';
import { Database } from '../../database/database.js';
import { SamlMessageIdsRepository, type SamlMessageId, type SamlMessageKind } from './saml-message-ids.repository.js';

export type { SamlMessageId, SamlMessageKind } from './saml-message-ids.repository.js';

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
  constructor(
    private readonly db: Database,
    private readonly messageIds: SamlMessageIdsRepository,
  ) {}

  /** Records every ID, or none: throws ReplayedSamlMessageError naming the first one already used. */
  async consume(tenantId: string, bindingId: string, ids: SamlMessageId[]): Promise<void> {
    await this.db.transaction({ tenant: tenantId }, async (tx) => {
      // Sweep this tenant's expired rows first: an ID whose assertion can no longer be valid is forgotten.
      await this.messageIds.sweepExpired(tx, tenantId);
      for (const entry of ids)
        if (!(await this.messageIds.insert(tx, tenantId, bindingId, entry))) throw new ReplayedSamlMessageError(entry.kind);
    });
  }
}
