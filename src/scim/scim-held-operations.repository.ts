import { Injectable } from '@nestjs/common';
import type { Tx } from '../database/database.js';

export type DeprovisionAction = 'deactivate' | 'delete';
export type HeldStatus = 'held' | 'released' | 'discarded' | 'superseded' | 'failed';
export type HeldMethod = 'PUT' | 'PATCH' | 'DELETE';

/** A deprovisioning request the guard held (`scim_held_operations`). */
export interface HeldOperationRow {
  id: string;
  userId: string;
  action: DeprovisionAction;
  method: HeldMethod;
  /** The request body as received (null for a DELETE). */
  request: unknown;
  tokenId: string | null;
  status: HeldStatus;
  attempts: number;
  createdAt: Date;
  updatedAt: Date;
  decidedAt: Date | null;
  decidedBy: string | null;
  outcome: string | null;
}

/** What the guard counts, per tenant. */
export interface DeprovisionCounts {
  /** Pending holds. */
  held: number;
  /** Deprovisionings applied within the window. */
  recent: number;
  /** The tenant's users. */
  users: number;
}

interface HeldRecord {
  id: string;
  user_id: string;
  action: DeprovisionAction;
  method: HeldMethod;
  request: unknown;
  token_id: string | null;
  status: HeldStatus;
  attempts: number;
  created_at: Date;
  updated_at: Date;
  decided_at: Date | null;
  decided_by: string | null;
  outcome: string | null;
}

const toRow = (r: HeldRecord): HeldOperationRow => ({
  id: r.id,
  userId: r.user_id,
  action: r.action,
  method: r.method,
  request: r.request,
  tokenId: r.token_id,
  status: r.status,
  attempts: r.attempts,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  decidedAt: r.decided_at,
  decidedBy: r.decided_by,
  outcome: r.outcome,
});

/**
 * The mass-deprovisioning guard's state: held requests (`scim_held_operations`) and the applied
 * deprovisionings it counts (`scim_deprovision_events`). Every method runs in the caller's tenant
 * transaction.
 */
@Injectable()
export class ScimHeldOperationsRepository {
  /** Serialises the guard's decisions of one tenant until the transaction ends. */
  async lockTenant(tx: Tx, tenantId: string): Promise<void> {
    await tx.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [`scim-deprovision:${tenantId}`]);
  }

  async counts(tx: Tx, tenantId: string, windowSeconds: number): Promise<DeprovisionCounts> {
    const { rows } = await tx.query<DeprovisionCounts>(
      `SELECT (SELECT count(*) FROM scim_held_operations WHERE tenant_id = $1 AND status = 'held')::int AS held,
              (SELECT count(*) FROM scim_deprovision_events WHERE tenant_id = $1 AND occurred_at > now() - make_interval(secs => $2))::int AS recent,
              (SELECT count(*) FROM users WHERE tenant_id = $1)::int AS users`,
      [tenantId, windowSeconds],
    );
    return rows[0] ?? { held: 0, recent: 0, users: 0 };
  }

  /** Holds the request, or refreshes the user's pending hold (a retry): `inserted` tells which. */
  async hold(
    tx: Tx,
    h: { tenantId: string; userId: string; action: DeprovisionAction; method: HeldMethod; body: unknown; tokenId: string },
  ): Promise<{ id: string; inserted: boolean }> {
    const { rows } = await tx.query<{ id: string; inserted: boolean }>(
      `INSERT INTO scim_held_operations (tenant_id, user_id, action, method, request, token_id) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (tenant_id, user_id) WHERE status = 'held'
       DO UPDATE SET action = EXCLUDED.action, method = EXCLUDED.method, request = EXCLUDED.request, token_id = EXCLUDED.token_id,
                     attempts = scim_held_operations.attempts + 1, updated_at = now()
       RETURNING id, (xmax = 0) AS inserted`,
      [h.tenantId, h.userId, h.action, h.method, h.body === undefined ? null : JSON.stringify(h.body), h.tokenId],
    );
    if (!rows[0]) throw new Error('scim hold: the statement returned no row');
    return rows[0];
  }

  /** Marks the user's pending hold superseded (a later request kept the user active). */
  async supersede(tx: Tx, tenantId: string, userId: string): Promise<void> {
    await tx.query(
      `UPDATE scim_held_operations SET status = 'superseded', decided_at = now(), decided_by = 'scim', outcome = 'a later SCIM request kept the user active', updated_at = now()
        WHERE tenant_id = $1 AND user_id = $2 AND status = 'held'`,
      [tenantId, userId],
    );
  }

  /** Counts an applied deprovisioning for the guard's window. */
  async recordApplied(tx: Tx, tenantId: string, userId: string, action: DeprovisionAction): Promise<void> {
    await tx.query(`INSERT INTO scim_deprovision_events (tenant_id, user_id, action) VALUES ($1, $2, $3)`, [tenantId, userId, action]);
  }

  /** In creation order; `status` 'all' lists every status. */
  async list(tx: Tx, tenantId: string, status: HeldStatus | 'all'): Promise<HeldOperationRow[]> {
    const { rows } = await tx.query<HeldRecord>(
      `SELECT * FROM scim_held_operations WHERE tenant_id = $1 AND ($2 = 'all' OR status = $2) ORDER BY created_at, id`,
      [tenantId, status],
    );
    return rows.map(toRow);
  }

  /** Takes pending holds (all, or those of `ids`) out of `held` into `released`; answers them in creation order. */
  async claim(tx: Tx, tenantId: string, ids: string[] | undefined): Promise<HeldOperationRow[]> {
    const { rows } = await tx.query<HeldRecord>(
      `UPDATE scim_held_operations SET status = 'released', updated_at = now()
        WHERE tenant_id = $1 AND status = 'held' AND ($2::uuid[] IS NULL OR id = ANY($2::uuid[])) RETURNING *`,
      [tenantId, ids ?? null],
    );
    return rows.map(toRow).sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
  }

  /** Records how a claimed hold ended. */
  async decide(tx: Tx, id: string, d: { status: 'released' | 'failed'; actor: string; outcome: string }): Promise<void> {
    await tx.query(
      `UPDATE scim_held_operations SET status = $2, decided_at = now(), decided_by = $3, outcome = $4, updated_at = now() WHERE id = $1`,
      [id, d.status, d.actor, d.outcome],
    );
  }

  /** Discards pending holds (all, or those of `ids`). */
  async discard(
    tx: Tx,
    tenantId: string,
    actor: string,
    ids: string[] | undefined,
  ): Promise<Array<{ id: string; userId: string; action: string }>> {
    const { rows } = await tx.query<{ id: string; user_id: string; action: string }>(
      `UPDATE scim_held_operations SET status = 'discarded', decided_at = now(), decided_by = $2, outcome = 'discarded by an administrator', updated_at = now()
        WHERE tenant_id = $1 AND status = 'held' AND ($3::uuid[] IS NULL OR id = ANY($3::uuid[])) RETURNING id, user_id, action`,
      [tenantId, actor, ids ?? null],
    );
    return rows.map((r) => ({ id: r.id, userId: r.user_id, action: r.action }));
  }
}
