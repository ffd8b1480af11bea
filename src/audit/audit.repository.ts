import { Injectable } from '@nestjs/common';
import type { Tx } from '../database/database.js';

export interface AuditEventRow {
  tenantId: string | null;
  actor: string;
  action: string;
  target: string | null;
  data: Record<string, unknown>;
  requestId: string | null;
}

export interface AuditEventView extends AuditEventRow {
  /** The bigint identity key, as text (JSON has no bigint). */
  id: string;
  createdAt: Date;
}

export interface AuditFilter {
  tenantId?: string;
  actor?: string;
  action?: string;
  since?: string;
  until?: string;
  /** Events with a smaller id than this one (the last id of the previous page). */
  before?: string;
  limit: number;
}

/** `audit_events`: written only inside the transaction of the change an event records. */
@Injectable()
export class AuditRepository {
  async insert(tx: Tx, e: AuditEventRow): Promise<void> {
    await tx.query(
      `INSERT INTO audit_events (tenant_id, actor, action, target, data, request_id) VALUES ($1, $2, $3, $4, $5, $6)`,
      [e.tenantId, e.actor, e.action, e.target, JSON.stringify(e.data), e.requestId],
      'audit-insert',
    );
  }

  /** Platform events (no tenant) only: the latest one of `action`, one whose target is `preferredTarget` first. */
  async latestPlatformTarget(tx: Tx, action: string, preferredTarget: string): Promise<string | undefined> {
    const { rows } = await tx.query<{ target: string }>(
      `SELECT target FROM audit_events WHERE action = $1 AND tenant_id IS NULL ORDER BY (target = $2) DESC, created_at DESC LIMIT 1`,
      [action, preferredTarget],
    );
    return rows[0]?.target;
  }

  /**
   * The INSERT that writes one audit event per row of a query, as SQL text to embed in a statement
   * of the caller's repository (a data-modifying CTE): a batched write then records its change and
   * the change's events in one statement and one round trip (SCIM user creates). Each value is a SQL
   * expression over the rows of `fromSql` (`FROM …`), which the caller builds and parametrises; the
   * statement runs in the transaction of the change like every other audit write.
   */
  insertSelectSql(values: Record<keyof AuditEventRow, string>, fromSql: string): string {
    return `INSERT INTO audit_events (tenant_id, actor, action, target, data, request_id)
           SELECT ${values.tenantId}, ${values.actor}, ${values.action}, ${values.target}, ${values.data}, ${values.requestId}
             ${fromSql}`;
  }

  /**
   * Newest first by id. Needs an `audit-reader` transaction to see every tenant's events. ORDER BY
   * names the table's column: the text output column `id` would sort 99 above 189.
   */
  async list(tx: Tx, f: AuditFilter): Promise<AuditEventView[]> {
    const { rows } = await tx.query<{
      id: string;
      tenant_id: string | null;
      actor: string;
      action: string;
      target: string | null;
      data: Record<string, unknown>;
      request_id: string | null;
      created_at: Date;
    }>(
      `SELECT e.id::text AS id, e.tenant_id, e.actor, e.action, e.target, e.data, e.request_id, e.created_at FROM audit_events e
        WHERE ($1::uuid IS NULL OR e.tenant_id = $1) AND ($2::text IS NULL OR e.actor = $2) AND ($3::text IS NULL OR e.action = $3)
          AND ($4::timestamptz IS NULL OR e.created_at >= $4) AND ($5::timestamptz IS NULL OR e.created_at < $5)
          AND ($6::bigint IS NULL OR e.id < $6)
        ORDER BY e.id DESC LIMIT $7`,
      [f.tenantId ?? null, f.actor ?? null, f.action ?? null, f.since ?? null, f.until ?? null, f.before ?? null, f.limit],
    );
    return rows.map((r) => ({
      id: r.id,
      tenantId: r.tenant_id,
      actor: r.actor,
      action: r.action,
      target: r.target,
      data: r.data,
      requestId: r.request_id,
      createdAt: r.created_at,
    }));
  }
}
