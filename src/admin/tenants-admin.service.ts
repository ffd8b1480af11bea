import { Injectable } from '@nestjs/common';
import { Database } from '../database/database.js';
import { AuditService } from '../audit/audit.service.js';
import { ProblemError } from '../common/errors.js';
import { TenantsService, type Tenant } from '../tenants/tenants.service.js';
import { TenantsRepository } from '../tenants/tenants.repository.js';
import { SessionsService } from '../sessions/sessions.service.js';
import type { AdminPrincipal } from './admin-auth.js';
import type { CreateTenantDto, UpdateTenantDto } from './dto.js';

const notFound = () => new ProblemError({ type: 'tenant-not-found' });

/** Tenants as ops manage them: create, rename, suspend, set the password policy and default language, soft-delete; every change audited. */
@Injectable()
export class TenantsAdminService {
  constructor(
    private readonly db: Database,
    private readonly tenants: TenantsService,
    private readonly rows: TenantsRepository,
    private readonly audit: AuditService,
    private readonly sessions: SessionsService,
  ) {}

  async create(p: AdminPrincipal, dto: CreateTenantDto): Promise<Tenant> {
    return this.db.transaction('platform', async (tx) => {
      const tenant = await this.tenants.create(dto.slug, dto.displayName, tx);
      await tx.enterTenant(tenant.id);
      await this.audit.record(tx, {
        tenantId: tenant.id,
        actor: p.actor,
        action: 'tenant.created',
        target: tenant.id,
        data: { after: tenant },
      });
      return tenant;
    });
  }

  async list(cursor: string | undefined, limit = 100): Promise<{ items: Tenant[]; nextCursor: string | null }> {
    const ids = await this.db.transaction('platform', (tx) => this.rows.listIdsBySlug(tx, cursor ?? null, limit + 1));
    const items = (await Promise.all(ids.slice(0, limit).map((id) => this.tenants.findById(id)))).filter(
      (t): t is Tenant => t !== undefined,
    );
    return { items, nextCursor: ids.length > limit ? items[items.length - 1]!.slug : null };
  }

  async get(id: string): Promise<Tenant> {
    const tenant = /^[0-9a-f-]{36}$/.test(id) ? await this.tenants.findById(id) : undefined;
    if (!tenant || tenant.status === 'deleted') throw notFound();
    return tenant;
  }

  async update(p: AdminPrincipal, id: string, version: number, dto: UpdateTenantDto & { slug?: unknown }): Promise<Tenant> {
    if (dto.slug !== undefined)
      throw new ProblemError({ type: 'slug-immutable', detail: 'A tenant slug cannot change: users type it to sign in.' });
    const before = await this.get(id);
    const after = await this.db.transaction('platform', async (tx) => {
      const changed = await this.rows.update(tx, id, version, {
        displayName: dto.displayName ?? null,
        status: dto.status ?? null,
        passwordPolicy: dto.passwordPolicy && {
          ...(dto.passwordPolicy.minLength !== undefined ? { minLength: dto.passwordPolicy.minLength } : {}),
          ...(dto.passwordPolicy.minStrength !== undefined ? { minStrength: dto.passwordPolicy.minStrength } : {}),
        },
        defaultLocale: dto.defaultLocale,
      });
      if (!changed) throw new ProblemError({ type: 'stale-etag', detail: 'The tenant changed since you read it.' });
      const updated = await this.rows.findById(tx, id);
      if (!updated || updated.status === 'deleted') throw notFound();
      await tx.enterTenant(id);
      if (dto.status === 'suspended') await this.sessions.revokeAllOfTenant(tx, id, 'tenant_suspended');
      await this.audit.record(tx, { tenantId: id, actor: p.actor, action: 'tenant.updated', target: id, data: { before, after: updated } });
      return updated;
    });
    this.db.rowsChanged('tenants');
    return after;
  }

  /**
   * Soft delete: the row stays (slugs are never reused by accident, audit keeps its subject), logins
   * and SCIM stop at once because both only accept active tenants, and every session ends.
   */
  async remove(p: AdminPrincipal, id: string): Promise<void> {
    const before = await this.get(id);
    await this.db.transaction('platform', async (tx) => {
      await this.rows.markDeleted(tx, id);
      await tx.enterTenant(id);
      await this.sessions.revokeAllOfTenant(tx, id, 'tenant_deleted');
      await this.audit.record(tx, { tenantId: id, actor: p.actor, action: 'tenant.deleted', target: id, data: { before } });
    });
    this.db.rowsChanged('tenants');
  }
}
