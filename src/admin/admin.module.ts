import type { Provider, Type } from '@nestjs/common';
import { AdminGuard } from './admin-auth.js';
import { IdempotencyInterceptor } from './admin-http.js';
import { TenantsAdminController } from './tenants-admin.controller.js';
import { BindingsAdminController } from './bindings-admin.controller.js';
import { UsersAdminController } from './users-admin.controller.js';
import { ScimTokensAdminController } from './scim-tokens-admin.controller.js';
import { ScimSafetyAdminController } from './scim-safety-admin.controller.js';
import { FirebaseImportAdminController } from './firebase-import-admin.controller.js';
import { ClientsAdminController } from './clients-admin.controller.js';
import { SigningKeysAdminController } from './signing-keys-admin.controller.js';
import { AuditAdminController } from './audit-events-admin.controller.js';
import { BindingsAdminService } from './bindings-admin.service.js';
import { BindingHealthRefresher } from './binding-health.refresher.js';
import { GatewayAdminController } from './gateway-admin.controller.js';
import { IdempotencyRepository } from './idempotency.repository.js';
import { IdempotencyService } from './idempotency.service.js';
import { TenantsAdminService } from './tenants-admin.service.js';
import { UsersAdminService } from './users-admin.service.js';
import { UserFactorsAdminController } from './user-factors-admin.controller.js';
import { UserFactorsAdminService } from './user-factors-admin.service.js';
import { BrandingAdminController } from './branding-admin.controller.js';
import { BrandingAdminService } from './branding-admin.service.js';

/** The admin REST API (`/admin/v1`), spread into AppModule like the SCIM server. */
export const ADMIN_CONTROLLERS: Array<Type<unknown>> = [
  TenantsAdminController,
  BindingsAdminController,
  UsersAdminController,
  ScimTokensAdminController,
  ScimSafetyAdminController,
  FirebaseImportAdminController,
  ClientsAdminController,
  SigningKeysAdminController,
  AuditAdminController,
  GatewayAdminController,
  UserFactorsAdminController,
  BrandingAdminController,
];
export const ADMIN_PROVIDERS: Provider[] = [
  AdminGuard,
  IdempotencyRepository,
  IdempotencyService,
  IdempotencyInterceptor,
  TenantsAdminService,
  UsersAdminService,
  BindingsAdminService,
  BindingHealthRefresher,
  UserFactorsAdminService,
  BrandingAdminService,
];
