import { Injectable, Logger } from '@nestjs/common';
import { AuditService } from '../audit/audit.service.js';
import { ScimError } from '../common/errors.js';
import type { Tx } from '../database/database.js';
import { type DeprovisionAction, type HeldMethod, ScimHeldOperationsRepository } from './scim-held-operations.repository.js';
import type { ScimPrincipal } from './scim-tokens.service.js';

export type { DeprovisionAction } from './scim-held-operations.repository.js';

/** The request as received, kept so that an administrator's release can apply it later. */
export interface HeldRequest {
  method: HeldMethod;
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

  constructor(
    private readonly audit: AuditService,
    private readonly holds: ScimHeldOperationsRepository,
  ) {}

  async check(tx: Tx, p: ScimPrincipal, userId: string, action: DeprovisionAction, request: HeldRequest): Promise<GuardDecision> {
    const g = p.settings.guard;
    if (!g.enabled) {
      await this.recordApplied(tx, p.tenantId, userId, action);
      return { allowed: true };
    }
    await this.holds.lockTenant(tx, p.tenantId);
    const { held, recent, users } = await this.holds.counts(tx, p.tenantId, g.windowSeconds);
    const limit = Math.max(g.minCount, Math.floor((g.percent * users) / 100));
    if (held === 0 && recent + 1 <= limit) {
      await this.recordApplied(tx, p.tenantId, userId, action);
      return { allowed: true };
    }

    const hold = await this.holds.hold(tx, {
      tenantId: p.tenantId,
      userId,
      action,
      method: request.method,
      body: request.body,
      tokenId: p.tokenId,
    });
    const data = {
      action,
      holdId: hold.id,
      recentDeprovisions: recent,
      limit,
      tenantUsers: users,
      percent: g.percent,
      windowSeconds: g.windowSeconds,
      minCount: g.minCount,
      pendingHolds: held,
    };
    if (hold.inserted) {
      if (held === 0) {
        await this.audit.record(tx, { tenantId: p.tenantId, actor: `scim:${p.tokenId}`, action: 'scim.deprovision_guard_tripped', data });
        this.logger.warn(
          { tenantId: p.tenantId, ...data },
          'SCIM mass-deprovisioning guard tripped: deprovisioning requests are held until an administrator releases or discards them',
        );
      }
      await this.audit.record(tx, {
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
        `Held by the mass-deprovisioning guard, not applied: ${why}. An administrator of this tenant must release or discard the held requests (hold ${hold.id}).`,
        hold.id,
      ),
    };
  }

  /**
   * A later request that explicitly keeps the user active makes a pending hold for that user
   * stale: it must not be applied by a release.
   */
  async supersede(tx: Tx, tenantId: string, userId: string): Promise<void> {
    await this.holds.supersede(tx, tenantId, userId);
  }

  async recordApplied(tx: Tx, tenantId: string, userId: string, action: DeprovisionAction): Promise<void> {
    await this.holds.recordApplied(tx, tenantId, userId, action);
  }
}
