import type { Provider, Type } from '@nestjs/common';
import { GatewayAdminController } from './gateway-admin.controller.js';
import { KongSyncService } from './kong-sync.service.js';
import { RevocationFeedService } from './revocation-feed.service.js';
import { RevocationsController } from './revocations.controller.js';

/** The gateway contract: Kong credentials (admin route + optional push) and the revocation feed; spread into AppModule. */
export const GATEWAY_CONTROLLERS: Array<Type<unknown>> = [GatewayAdminController, RevocationsController];
export const GATEWAY_PROVIDERS: Provider[] = [KongSyncService, RevocationFeedService];
