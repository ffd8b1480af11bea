/**
 * Tenant and binding changes record their audit event in the transaction of the change (#15): when
 * the audit write fails, the change is not applied either (no tenant, tenant update or binding
 * without its event).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { AuditService } from '../src/audit/audit.service.js';
import { TenantsAdminService } from '../src/admin/tenants-admin.service.js';
import { BindingsAdminService } from '../src/admin/bindings-admin.service.js';
import type { AdminPrincipal } from '../src/admin/admin-auth.js';
import { CreateBindingDto, CreateTenantDto, UpdateTenantDto } from '../src/admin/dto.js';
import { TenantsService } from '../src/tenants/tenants.service.js';

let app: TestApp;
const principal: AdminPrincipal = { actor: 'atomicity-test', tenantId: '00000000-0000-0000-0000-000000000000', roles: [], scopes: [] };

beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app.close();
});

const newTenant = (slug: string, displayName: string) => Object.assign(new CreateTenantDto(), { slug, displayName });

/** The next audit write fails, as a broken audit table or a lost connection would make it. */
const failNextAudit = () => vi.spyOn(app.app.get(AuditService), 'record').mockRejectedValueOnce(new Error('audit write failed'));

describe('audit events commit with the change they record', () => {
  it('creates no tenant when its tenant.created event cannot be written', async () => {
    const spy = failNextAudit();
    try {
      await expect(app.app.get(TenantsAdminService).create(principal, newTenant('unaudited', 'Unaudited'))).rejects.toThrow(
        'audit write failed',
      );
    } finally {
      spy.mockRestore();
    }
    expect(await app.app.get(TenantsService).findLiveBySlug('unaudited')).toBeUndefined();
    // The slug is still free: the insert was rolled back, not left behind.
    await expect(app.app.get(TenantsAdminService).create(principal, newTenant('unaudited', 'Unaudited'))).resolves.toMatchObject({
      slug: 'unaudited',
    });
  });

  it('leaves a tenant unchanged when its tenant.updated event cannot be written', async () => {
    const admin = app.app.get(TenantsAdminService);
    const tenant = await admin.create(principal, newTenant('kept-as-is', 'Kept'));
    const spy = failNextAudit();
    try {
      await expect(
        admin.update(
          principal,
          tenant.id,
          tenant.version,
          Object.assign(new UpdateTenantDto(), { displayName: 'Renamed', status: 'suspended' as const }),
        ),
      ).rejects.toThrow('audit write failed');
    } finally {
      spy.mockRestore();
    }
    expect(await app.app.get(TenantsService).findLiveBySlug('kept-as-is')).toMatchObject({
      displayName: 'Kept',
      status: 'active',
      version: tenant.version,
    });
  });

  it('creates no binding when its binding.created event cannot be written', async () => {
    const tenant = await app.app.get(TenantsAdminService).create(principal, newTenant('no-binding', 'No binding'));
    const bindings = app.app.get(BindingsAdminService);
    const spy = failNextAudit();
    try {
      await expect(bindings.create(principal, tenant, Object.assign(new CreateBindingDto(), { kind: 'native' as const }))).rejects.toThrow(
        'audit write failed',
      );
    } finally {
      spy.mockRestore();
    }
    expect(await bindings.list(tenant)).toEqual([]);
  });
});
