import { Inject, Injectable, Logger } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { Database } from '../database/database.js';
import { AuditService } from '../audit/audit.service.js';
import { DomainError } from '../common/errors.js';
import { ScimUsersService } from './scim-users.service.js';
import type { HeldRequest } from './scim-deprovision-guard.service.js';
import { isUuid } from './scim-http.js';

export interface HeldOperation {
  id: string;
  userId: string;
  action: 'deactivate' | 'delete';
  method: HeldRequest['method'];
  status: 'held' | 'released' | 'discarded' | 'superseded' | 'failed';
  attempts: number;
  createdAt: Date;
  updatedAt: Date;
  decidedAt: Date | null;
  decidedBy: string | null;
  outcome: string | null;
}

export interface ReleaseResult {
  released: string[];
  failed: Array<{ id: string; reason: string }>;
}

interface HeldRow {
  id: string;
  user_id: string;
  action: HeldOperation['action'];
  method: HeldOperation['method'];
  request: unknown;
  token_id: string | null;
  status: HeldOperation['status'];
  attempts: number;
  created_at: Date;
  updated_at: Date;
  decided_at: Date | null;
  decided_by: string | null;
  outcome: string | null;
}

const toOperation = (r: HeldRow): HeldOperation => ({
  id: r.id,
  userId: r.user_id,
  action: r.action,
  method: r.method,
  status: r.status,
  attempts: r.attempts,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  decidedAt: r.decided_at,
  decidedBy: r.decided_by,
  outcome: r.outcome,
});

/**
 * What the mass-deprovisioning guard held, for the admin API: list, release (apply exactly the
 * request that was held, bypassing the guard) or discard (drop it; the IdP's next retry is
 * counted afresh). Omitting `ids` acts on every pending hold of the tenant.
 */
@Injectable()
export class ScimHeldOperationsService {
  private readonly logger = new Logger('ScimHeldOperations');

  constructor(
    private readonly db: Database,
    private readonly audit: AuditService,
    private readonly users: ScimUsersService,
    @Inject(AppConfig) private readonly config: AppConfig,
  ) {}

  async list(tenantId: string, status: HeldOperation['status'] | 'all' = 'held'): Promise<HeldOperation[]> {
    return this.db.tenantTx(tenantId, async (m) => {
      const rows = await m.query<HeldRow[]>(
        `SELECT * FROM scim_held_operations WHERE tenant_id = $1 AND ($2 = 'all' OR status = $2) ORDER BY created_at, id`,
        [tenantId, status],
      );
      return rows.map(toOperation);
    });
  }

  async release(tenantId: string, actor: string, ids?: string[]): Promise<ReleaseResult> {
    const result: ReleaseResult = { released: [], failed: [] };
    for (const row of await this.claim(tenantId, ids)) {
      const principal = {
        tenantId,
        tokenId: row.token_id ?? '00000000-0000-0000-0000-000000000000',
        settings: {
          rateLimitPerMinute: this.config.SCIM_RATE_LIMIT_PER_MINUTE,
          guard: { enabled: false, percent: 100, windowSeconds: 1, minCount: 0 },
        },
      };
      let outcome = 'applied';
      try {
        await this.users.applyReleased(principal, row.user_id, {
          method: row.method,
          ...(row.request !== null ? { body: row.request } : {}),
        });
        result.released.push(row.id);
      } catch (err) {
        outcome = err instanceof DomainError && err.expose ? err.message : 'the request could not be applied';
        result.failed.push({ id: row.id, reason: outcome });
        if (!(err instanceof DomainError)) this.logger.error({ err, holdId: row.id, tenantId }, 'applying a released SCIM request failed');
      }
      const failed = outcome !== 'applied';
      await this.db.tenantTx(tenantId, async (m) => {
        await m.query(
          `UPDATE scim_held_operations SET status = $2, decided_at = now(), decided_by = $3, outcome = $4, updated_at = now() WHERE id = $1`,
          [row.id, failed ? 'failed' : 'released', actor, outcome],
        );
        await this.audit.record(m, {
          tenantId,
          actor,
          action: failed ? 'scim.deprovision_release_failed' : 'scim.deprovision_released',
          target: row.user_id,
          data: { holdId: row.id, action: row.action, outcome },
        });
      });
    }
    if (result.released.length || result.failed.length)
      this.logger.warn(
        { tenantId, released: result.released.length, failed: result.failed.length },
        'held SCIM deprovisioning requests released by an administrator',
      );
    return result;
  }

  async discard(tenantId: string, actor: string, ids?: string[]): Promise<string[]> {
    ids = ids?.filter(isUuid);
    return this.db.tenantTx(tenantId, async (m) => {
      const [rows] = await m.query<[Array<{ id: string; user_id: string; action: string }>, number]>(
        `UPDATE scim_held_operations SET status = 'discarded', decided_at = now(), decided_by = $2, outcome = 'discarded by an administrator', updated_at = now()
          WHERE tenant_id = $1 AND status = 'held' AND ($3::uuid[] IS NULL OR id = ANY($3::uuid[])) RETURNING id, user_id, action`,
        [tenantId, actor, ids ?? null],
      );
      for (const r of rows)
        await this.audit.record(m, {
          tenantId,
          actor,
          action: 'scim.deprovision_discarded',
          target: r.user_id,
          data: { holdId: r.id, action: r.action },
        });
      if (rows.length)
        this.logger.warn({ tenantId, discarded: rows.length }, 'held SCIM deprovisioning requests discarded by an administrator');
      return rows.map((r) => r.id);
    });
  }

  /** Takes pending holds out of `held` first, so two concurrent releases never apply one twice. */
  private async claim(tenantId: string, ids?: string[]): Promise<HeldRow[]> {
    ids = ids?.filter(isUuid);
    return this.db.tenantTx(tenantId, async (m) => {
      const [rows] = await m.query<[HeldRow[], number]>(
        `UPDATE scim_held_operations SET status = 'released', updated_at = now()
          WHERE tenant_id = $1 AND status = 'held' AND ($2::uuid[] IS NULL OR id = ANY($2::uuid[])) RETURNING *`,
        [tenantId, ids ?? null],
      );
      return rows.sort((a, b) => a.created_at.getTime() - b.created_at.getTime());
    });
  }
}
