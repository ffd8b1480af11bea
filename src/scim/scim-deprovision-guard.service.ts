import { Injectable, Logger } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { AuditService } from '../audit/audit.service.js';
import { ScimError } from '../common/errors.js';
import type { ScimPrincipal } from './scim-tokens.service.js';

export type DeprovisionAction = 'deactivate' | 'delete';

/** The request as received, kept so that an administrator's release can apply it later. */
export interface HeldRequest {
  method: 'PUT' | 'PATCH' | 'DELETE';
  body?: unknown;
}

export type GuardDecision = { allowed: true } | { allowed: false; error: ScimHeldError };

/**
 * Answer for a held deprovisioning: 503 + Retry-After, so Entra ID and Okta retry later (their
 * retries refresh the same hold instead of queueing twice). Unlike other 5xx answers the detail
 * is shown to the client: the tenant's IdP admin must be able to read why.
 */
export class ScimHeldError extends ScimError {
  constructor(
    detail: string,
    readonly holdId: string,
  ) {
    super(503, detail, undefined, { retryAfter: 3600 });
  }
  override get expose(): boolean {
    return true;
  }
}

interface Counts {
  held: number;
  recent: number;
  users: number;
}

/**
 * The mass-deprovisioning guard. A misconfigured IdP (a scoping filter changed, an app
 * unassigned from everyone) can deactivate a whole tenant in minutes. Deactivations and
 * deletions through SCIM are counted per tenant in a sliding window; once one would exceed
 * max(minCount, percent % of the tenant's users), it and every later one are held (stored, not
 * applied) until an administrator releases or discards them (`ScimHeldOperationsService`).
 *
 * Runs inside the caller's transaction, serialised per tenant by an advisory lock, so that
 * concurrent requests cannot each see room for "one more".
 */
@Injectable()
export class ScimDeprovisionGuard {
  private readonly logger = new Logger('ScimDeprovisionGuard');

  constructor(private readonly audit: AuditService) {}

  async check(m: EntityManager, p: ScimPrincipal, userId: string, action: DeprovisionAction, request: HeldRequest): Promise<GuardDecision> {
    const g = p.settings.guard;
    if (!g.enabled) {
      await this.recordApplied(m, p.tenantId, userId, action);
      return { allowed: true };
    }
    await m.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [`scim-deprovision:${p.tenantId}`]);
    const [c] = await m.query<Counts[]>(
      `SELECT (SELECT count(*) FROM scim_held_operations WHERE tenant_id = $1 AND status = 'held')::int AS held,
              (SELECT count(*) FROM scim_deprovision_events WHERE tenant_id = $1 AND occurred_at > now() - make_interval(secs => $2))::int AS recent,
              (SELECT count(*) FROM users WHERE tenant_id = $1)::int AS users`,
      [p.tenantId, g.windowSeconds],
    );
    const { held, recent, users } = c!;
    const limit = Math.max(g.minCount, Math.floor((g.percent * users) / 100));
    if (held === 0 && recent + 1 <= limit) {
      await this.recordApplied(m, p.tenantId, userId, action);
      return { allowed: true };
    }

    const [hold] = await m.query<Array<{ id: string; inserted: boolean }>>(
      `INSERT INTO scim_held_operations (tenant_id, user_id, action, method, request, token_id) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (tenant_id, user_id) WHERE status = 'held'
       DO UPDATE SET action = EXCLUDED.action, method = EXCLUDED.method, request = EXCLUDED.request, token_id = EXCLUDED.token_id,
                     attempts = scim_held_operations.attempts + 1, updated_at = now()
       RETURNING id, (xmax = 0) AS inserted`,
      [p.tenantId, userId, action, request.method, request.body === undefined ? null : JSON.stringify(request.body), p.tokenId],
    );
    const data = {
      action,
      holdId: hold!.id,
      recentDeprovisions: recent,
      limit,
      tenantUsers: users,
      percent: g.percent,
      windowSeconds: g.windowSeconds,
      minCount: g.minCount,
      pendingHolds: held,
    };
    if (hold!.inserted) {
      if (held === 0) {
        await this.audit.record(m, { tenantId: p.tenantId, actor: `scim:${p.tokenId}`, action: 'scim.deprovision_guard_tripped', data });
        this.logger.warn(
          { tenantId: p.tenantId, ...data },
          'SCIM mass-deprovisioning guard tripped: deprovisioning requests are held until an administrator releases or discards them',
        );
      }
      await this.audit.record(m, {
        tenantId: p.tenantId,
        actor: `scim:${p.tokenId}`,
        action: 'scim.deprovision_held',
        target: userId,
        data,
      });
      this.logger.warn({ tenantId: p.tenantId, userId, ...data }, 'SCIM deprovisioning held by the mass-deprovisioning guard');
    }
    const why =
      held > 0
        ? `${held} deprovisioning request(s) of this tenant are already held`
        : `${recent} user(s) were deactivated or deleted through SCIM in the last ${g.windowSeconds} s; the limit is ${limit} (the larger of ${g.minCount} and ${g.percent}% of ${users} users)`;
    return {
      allowed: false,
      error: new ScimHeldError(
        `Held by the mass-deprovisioning guard, not applied: ${why}. An administrator of this tenant must release or discard the held requests (hold ${hold!.id}).`,
        hold!.id,
      ),
    };
  }

  /**
   * A later request that explicitly keeps the user active makes a pending hold for that user
   * stale: it must not be applied by a release.
   */
  async supersede(m: EntityManager, tenantId: string, userId: string): Promise<void> {
    await m.query(
      `UPDATE scim_held_operations SET status = 'superseded', decided_at = now(), decided_by = 'scim', outcome = 'a later SCIM request kept the user active', updated_at = now()
        WHERE tenant_id = $1 AND user_id = $2 AND status = 'held'`,
      [tenantId, userId],
    );
  }

  async recordApplied(m: EntityManager, tenantId: string, userId: string, action: DeprovisionAction): Promise<void> {
    await m.query(`INSERT INTO scim_deprovision_events (tenant_id, user_id, action) VALUES ($1, $2, $3)`, [tenantId, userId, action]);
  }
}
