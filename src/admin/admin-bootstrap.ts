import type { INestApplicationContext } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { Database } from '../database/database.js';
import { AuditService } from '../audit/audit.service.js';
import { TenantsService } from '../tenants/tenants.service.js';
import { ClientsService } from '../oauth/clients.service.js';
import { ADMIN_SCOPE } from './admin-auth.js';

export interface BootstrapResult {
  tenantId: string;
  clientId: string;
  clientSecret: string;
}

/**
 * First start of a deployment: creates the operator tenant (OPERATOR_TENANT) if missing and a
 * machine client with the `admin` scope, whose secret is returned once. Run by `npm run admin --
 * bootstrap` with the service's own database configuration; everything after that goes through
 * the admin API.
 */
export async function bootstrapAdmin(app: INestApplicationContext, clientId = 'ops-admin'): Promise<BootstrapResult> {
  const config = app.get(AppConfig);
  const tenants = app.get(TenantsService);
  const operator = (await tenants.findActiveBySlug(config.OPERATOR_TENANT)) ?? (await tenants.create(config.OPERATOR_TENANT, 'Platform operators'));
  const { secret } = await app.get(ClientsService).create({ id: clientId, name: 'Operator admin client', kind: 'machine', tenantId: operator.id, scopes: [ADMIN_SCOPE] });
  await app.get(Database).tx((m) => app.get(AuditService).record(m, { tenantId: null, actor: 'bootstrap', action: 'admin.bootstrapped', target: clientId }));
  return { tenantId: operator.id, clientId, clientSecret: secret };
}
