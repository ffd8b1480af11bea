import { Injectable } from '@nestjs/common';
import { currentRequestId } from '../common/request-context.js';
import type { Queryable } from '../database/database.js';

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
  async record(m: Queryable, e: AuditEvent): Promise<void> {
    await m.query(`INSERT INTO audit_events (tenant_id, actor, action, target, data, request_id) VALUES ($1, $2, $3, $4, $5, $6)`, [
      e.tenantId,
      e.actor,
      e.action,
      e.target ?? null,
      JSON.stringify(e.data ?? {}),
      e.requestId ?? currentRequestId() ?? null,
    ]);
  }
}
