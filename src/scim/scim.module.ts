import type { Provider, Type } from '@nestjs/common';
import { ScimAuthGuard, ScimTokenStrategy } from './scim-auth.guard.js';
import { ScimDeprovisionGuard } from './scim-deprovision-guard.service.js';
import { ScimDiscoveryController } from './scim-discovery.controller.js';
import { ScimGroupsController } from './scim-groups.controller.js';
import { ScimGroupsRepository } from './scim-groups.repository.js';
import { ScimGroupsService } from './scim-groups.service.js';
import { ScimHeldOperationsRepository } from './scim-held-operations.repository.js';
import { ScimHeldOperationsService } from './scim-held-operations.service.js';
import { ScimSettingsRepository } from './scim-settings.repository.js';
import { ScimTokensRepository } from './scim-tokens.repository.js';
import { ScimSettingsService, ScimTokensService } from './scim-tokens.service.js';
import { ScimUsersController } from './scim-users.controller.js';
import { ScimUsersRepository } from './scim-users.repository.js';
import { ScimUsersService } from './scim-users.service.js';

/**
 * The SCIM 2.0 server (`/scim/v2`). Its parts are spread into AppModule's arrays because they
 * share AppModule's Database, AuditService, AuditRepository and AppConfig providers.
 * For the admin API: ScimTokensService (create / list / revoke tokens), ScimSettingsService
 * (per-tenant rate limit and guard overrides), ScimHeldOperationsService (release / discard).
 */
export const SCIM_CONTROLLERS: Array<Type<unknown>> = [ScimDiscoveryController, ScimUsersController, ScimGroupsController];

export const SCIM_PROVIDERS: Provider[] = [
  // repositories (#15): all of SCIM's SQL
  ScimUsersRepository,
  ScimGroupsRepository,
  ScimHeldOperationsRepository,
  ScimTokensRepository,
  ScimSettingsRepository,
  ScimTokensService,
  ScimSettingsService,
  ScimAuthGuard,
  ScimTokenStrategy,
  ScimDeprovisionGuard,
  ScimUsersService,
  ScimGroupsService,
  ScimHeldOperationsService,
];
