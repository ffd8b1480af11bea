import type { Provider, Type } from '@nestjs/common';
import { KongSyncService } from './kong-sync.service.js';
import { RevocationFeedService } from './revocation-feed.service.js';
import { RevocationsController } from './revocations.controller.js';

/** The gateway contract: Kong credentials (optional push; the admin route lives in admin/) and the revocation feed; spread into AppModule. */
export const GATEWAY_CONTROLLERS: Array<Type<unknown>> = [RevocationsController];
export const GATEWAY_PROVIDERS: Provider[] = [KongSyncService, RevocationFeedService];
