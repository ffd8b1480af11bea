import type { Provider, Type } from '@nestjs/common';
import { AdminGuard } from './admin-auth.js';
import { IdempotencyInterceptor } from './admin-http.js';
import { ADMIN_CONTROLLERS as CONTROLLERS } from './admin.controllers.js';
import { BindingsAdminService } from './bindings-admin.service.js';
import { BindingHealthRefresher } from './binding-health.refresher.js';
import { GatewayAdminController } from './gateway-admin.controller.js';
import { IdempotencyRepository } from './idempotency.repository.js';
import { IdempotencyService } from './idempotency.service.js';
import { TenantsAdminService } from './tenants-admin.service.js';

/** The admin REST API (`/admin/v1`), spread into AppModule like the SCIM server. */
export const ADMIN_CONTROLLERS: Array<Type<unknown>> = [...CONTROLLERS, GatewayAdminController];
export const ADMIN_PROVIDERS: Provider[] = [
  AdminGuard,
  IdempotencyRepository,
  IdempotencyService,
  IdempotencyInterceptor,
  TenantsAdminService,
  BindingsAdminService,
  BindingHealthRefresher,
];
