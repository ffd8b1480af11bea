import { Injectable } from '@nestjs/common';
import { Database } from '../database/database.js';
import { AuditService } from '../audit/audit.service.js';
import { ProblemError, problemType } from '../common/errors.js';
import { TenantsService, type Tenant } from '../tenants/tenants.service.js';
import type { AdminPrincipal } from './admin-auth.js';
import type { CreateTenantDto, UpdateTenantDto } from './dto.js';

const notFound = () => new ProblemError(404, 'Tenant not found', undefined, problemType('tenant-not-found'));

/** Tenants as ops manage them: create, rename, suspend, soft-delete; every change audited. */
@Injectable()
export class TenantsAdminService {
  constructor(
    private readonly db: Database,
    private readonly tenants: TenantsService,
    private readonly audit: AuditService,
  ) {}

  async create(p: AdminPrincipal, dto: CreateTenantDto): Promise<Tenant> {
    const tenant = await this.tenants.create(dto.slug, dto.displayName);
    await this.db.tenantTx(tenant.id, (m) =>
      this.audit.record(m, { tenantId: tenant.id, actor: p.actor, action: 'tenant.created', target: tenant.id, data: { after: tenant } }),
    );
    return tenant;
  }

  async list(cursor: string | undefined, limit = 100): Promise<{ items: Tenant[]; nextCursor: string | null }> {
    const rows = await this.db.query<{ id: string }>(
      `SELECT id FROM tenants WHERE status <> 'deleted' AND ($1::text IS NULL OR slug > $1) ORDER BY slug LIMIT $2`,
      [cursor ?? null, limit + 1],
    );
    const items = (await Promise.all(rows.slice(0, limit).map((r) => this.tenants.findById(r.id)))).filter(
      (t): t is Tenant => t !== undefined,
    );
    return { items, nextCursor: rows.length > limit ? items[items.length - 1]!.slug : null };
  }

  async get(id: string): Promise<Tenant> {
    const tenant = /^[0-9a-f-]{36}$/.test(id) ? await this.tenants.findById(id) : undefined;
    if (!tenant || tenant.status === 'deleted') throw notFound();
    return tenant;
  }

  async update(p: AdminPrincipal, id: string, version: number, dto: UpdateTenantDto & { slug?: unknown }): Promise<Tenant> {
    if (dto.slug !== undefined)
      throw new ProblemError(
        400,
        'Slug is immutable',
        'A tenant slug cannot change: users type it to sign in.',
        problemType('slug-immutable'),
      );
    const before = await this.get(id);
    const rows = await this.db.query(
      `UPDATE tenants SET display_name = COALESCE($3, display_name), status = COALESCE($4, status), version = version + 1, updated_at = now()
        WHERE id = $1 AND version = $2 AND status <> 'deleted' RETURNING id`,
      [id, version, dto.displayName ?? null, dto.status ?? null],
    );
    if (rows.length === 0)
      throw new ProblemError(412, 'Precondition failed', 'The tenant changed since you read it.', problemType('stale-etag'));
    this.db.rowsChanged('tenants');
    const after = await this.get(id);
    await this.db.tenantTx(id, async (m) => {
      if (dto.status === 'suspended')
        await m.query(
          `UPDATE sessions SET revoked_at = now(), revoked_reason = 'tenant_suspended' WHERE tenant_id = $1 AND revoked_at IS NULL`,
          [id],
        );
      await this.audit.record(m, { tenantId: id, actor: p.actor, action: 'tenant.updated', target: id, data: { before, after } });
    });
    return after;
  }

  /**
   * Soft delete: the row stays (slugs are never reused by accident, audit keeps its subject), logins
   * and SCIM stop at once because both only accept active tenants, and every session ends.
   */
  async remove(p: AdminPrincipal, id: string): Promise<void> {
    const before = await this.get(id);
    await this.db.tx(async (m) => {
      await m.query(`UPDATE tenants SET status = 'deleted', version = version + 1, updated_at = now() WHERE id = $1`, [id]);
      await m.query(`SELECT set_config('app.tenant_id', $1, true)`, [id]);
      await m.query(
        `UPDATE sessions SET revoked_at = now(), revoked_reason = 'tenant_deleted' WHERE tenant_id = $1 AND revoked_at IS NULL`,
        [id],
      );
      await this.audit.record(m, { tenantId: id, actor: p.actor, action: 'tenant.deleted', target: id, data: { before } });
    });
    this.db.rowsChanged('tenants');
  }
}
