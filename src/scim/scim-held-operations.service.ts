import { Inject, Injectable, Logger } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { Database } from '../database/database.js';
import { AuditService } from '../audit/audit.service.js';
import { DomainError } from '../common/errors.js';
import { ScimUsersService } from './scim-users.service.js';
import { type HeldOperationRow, ScimHeldOperationsRepository } from './scim-held-operations.repository.js';
import { isUuid } from './scim-http.js';

/** A held request as the admin API shows it (without the request body and token). */
export type HeldOperation = Omit<HeldOperationRow, 'request' | 'tokenId'>;

export interface ReleaseResult {
  released: string[];
  failed: Array<{ id: string; reason: string }>;
}

const toOperation = ({ request: _request, tokenId: _tokenId, ...op }: HeldOperationRow): HeldOperation => op;

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
    private readonly holds: ScimHeldOperationsRepository,
    @Inject(AppConfig) private readonly config: AppConfig,
  ) {}

  async list(tenantId: string, status: HeldOperation['status'] | 'all' = 'held'): Promise<HeldOperation[]> {
    const rows = await this.db.transaction({ tenant: tenantId }, (tx) => this.holds.list(tx, tenantId, status));
    return rows.map(toOperation);
  }

  async release(tenantId: string, actor: string, ids?: string[]): Promise<ReleaseResult> {
    const result: ReleaseResult = { released: [], failed: [] };
    for (const row of await this.claim(tenantId, ids)) {
      const principal = {
        tenantId,
        tokenId: row.tokenId ?? '00000000-0000-0000-0000-000000000000',
        settings: {
          rateLimitPerMinute: this.config.SCIM_RATE_LIMIT_PER_MINUTE,
          guard: { enabled: false, percent: 100, windowSeconds: 1, minCount: 0 },
        },
      };
      let outcome = 'applied';
      try {
        await this.users.applyReleased(principal, row.userId, {
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
      await this.db.transaction({ tenant: tenantId }, async (tx) => {
        await this.holds.decide(tx, row.id, { status: failed ? 'failed' : 'released', actor, outcome });
        await this.audit.record(tx, {
          tenantId,
          actor,
          action: failed ? 'scim.deprovision_release_failed' : 'scim.deprovision_released',
          target: row.userId,
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
    return this.db.transaction({ tenant: tenantId }, async (tx) => {
      const rows = await this.holds.discard(tx, tenantId, actor, ids);
      for (const r of rows)
        await this.audit.record(tx, {
          tenantId,
          actor,
          action: 'scim.deprovision_discarded',
          target: r.userId,
          data: { holdId: r.id, action: r.action },
        });
      if (rows.length)
        this.logger.warn({ tenantId, discarded: rows.length }, 'held SCIM deprovisioning requests discarded by an administrator');
      return rows.map((r) => r.id);
    });
  }

  /** Takes pending holds out of `held` first, so two concurrent releases never apply one twice. */
  private async claim(tenantId: string, ids?: string[]): Promise<HeldOperationRow[]> {
    ids = ids?.filter(isUuid);
    return this.db.transaction({ tenant: tenantId }, (tx) => this.holds.claim(tx, tenantId, ids));
  }
}
