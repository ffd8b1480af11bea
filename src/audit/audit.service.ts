import { Injectable } from '@nestjs/common';
import { currentRequestId } from '../common/request-context.js';
import { Database, type Tx } from '../database/database.js';
import { AuditRepository, type AuditEventView, type AuditFilter } from './audit.repository.js';

export type { AuditEventView } from './audit.repository.js';

export interface AuditEvent {
  tenantId: string | null;
  actor: string;
  action: string;
  target?: string;
  data?: Record<string, unknown>;
  /** Default: the request being served, so an event can be matched with its request's log line. */
  requestId?: string;
}

/** Audit events are written in the same transaction as the change they describe. No secrets, no passwords. */
@Injectable()
export class AuditService {
  constructor(
    private readonly db: Database,
    private readonly events: AuditRepository,
  ) {}

  /** `tx`: the transaction of the change this event records. */
  record(tx: Tx, e: AuditEvent): Promise<void> {
    return this.events.insert(tx, {
      tenantId: e.tenantId,
      actor: e.actor,
      action: e.action,
      target: e.target ?? null,
      data: e.data ?? {},
      requestId: e.requestId ?? currentRequestId() ?? null,
    });
  }

  /**
   * The target of the latest platform event (no tenant) of `action`, one naming `preferredTarget`
   * first when there is one: e.g. which operator client the bootstrap made.
   */
  latestPlatformTarget(action: string, preferredTarget: string): Promise<string | undefined> {
    return this.db.transaction('platform', (tx) => this.events.latestPlatformTarget(tx, action, preferredTarget));
  }

  /** Across tenants, newest first, keyset-paginated by id (the cursor is the last id of a page). */
  async page(f: Omit<AuditFilter, 'before'> & { cursor?: string }): Promise<{ items: AuditEventView[]; nextCursor: string | null }> {
    const rows = await this.db.transaction('audit-reader', (tx) => this.events.list(tx, { ...f, before: f.cursor, limit: f.limit + 1 }));
    const items = rows.slice(0, f.limit);
    const last = items.at(-1);
    return { items, nextCursor: rows.length > f.limit && last ? last.id : null };
  }
}
