import { Injectable } from '@nestjs/common';
import { AuditService } from '../audit/audit.service.js';
import { Database, type Tx } from '../database/database.js';
import { SessionsRepository } from './sessions.repository.js';

/**
 * Ending sessions: a session ends once (its refresh-token family with it), and the revocation is
 * audited in the transaction that makes it.
 */
@Injectable()
export class SessionsService {
  constructor(
    private readonly db: Database,
    private readonly sessions: SessionsRepository,
    private readonly audit: AuditService,
  ) {}

  /** Ends one session inside the caller's transaction; audited only when it was still live. */
  async revoke(tx: Tx, tenantId: string, sessionId: string, reason: string): Promise<void> {
    if (await this.sessions.revoke(tx, sessionId, reason))
      await this.audit.record(tx, { tenantId, actor: 'system', action: 'session.revoked', target: sessionId, data: { reason } });
  }

  /**
   * Ends every live session of a user (a SCIM deactivation or delete) inside the caller's
   * transaction; the change that caused it carries the audit event. Returns how many ended.
   */
  async revokeAllOfUser(tx: Tx, userId: string, reason: string): Promise<number> {
    return this.sessions.revokeAllOfUser(tx, userId, reason);
  }

  /** Every live session of a tenant (suspended, deleted), in the caller's transaction, which must be in that tenant. */
  async revokeAllOfTenant(tx: Tx, tenantId: string, reason: string): Promise<number> {
    return this.sessions.revokeAllOfTenant(tx, tenantId, reason);
  }

  /** Ends one session in a transaction of its own (logout, revocation of an access token). */
  async end(tenantId: string, sessionId: string, reason: string): Promise<void> {
    await this.db.transaction({ tenant: tenantId }, (tx) => this.revoke(tx, tenantId, sessionId, reason));
  }
}
