import { Controller, Get, Headers, Inject, Query, Res } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { AppConfig } from '../config/app-config.js';
import { OAuthError } from '../common/errors.js';
import { ClientsService, readClientCredentials } from '../clients/clients.service.js';
import { TenantsService } from '../tenants/tenants.service.js';
import { RevocationFeedService, type RevocationPage } from './revocation-feed.service.js';

export const REVOCATIONS_SCOPE = 'revocations:read';

/**
 * The revocation feed for gateways and downstream services: revoked session ids (`sid`) since a
 * cursor, so a disabled user's live access tokens stop working before they expire. Not public: the
 * caller authenticates as a machine client (client_secret_basic) holding the `revocations:read`
 * scope. A client of the operator tenant reads every tenant; any other tenant's client reads its
 * own tenant only (row-level security, as everywhere else).
 */
@ApiTags('oauth2')
@Controller('oauth2/revocations')
export class RevocationsController {
  constructor(
    private readonly clients: ClientsService,
    private readonly tenants: TenantsService,
    private readonly feed: RevocationFeedService,
    @Inject(AppConfig) private readonly config: AppConfig,
  ) {}

  @Get()
  async list(
    @Headers('authorization') authorization: string | undefined,
    @Query('since') since: unknown,
    @Query('limit') limitParam: unknown,
    @Res({ passthrough: true }) res: Response,
  ): Promise<RevocationPage> {
    res.setHeader('Cache-Control', 'no-store');
    if (!authorization?.startsWith('Basic ')) {
      res.setHeader('WWW-Authenticate', 'Basic realm="revocations"');
      throw new OAuthError('invalid_client', 'Client authentication (HTTP Basic) is required.');
    }
    const client = await this.clients.authenticate(readClientCredentials(authorization, {}));
    if (client.kind !== 'machine' || !client.tenantId || !client.scopes.includes(REVOCATIONS_SCOPE))
      throw new OAuthError(
        'unauthorized_client',
        `This client may not read the revocation feed (it needs the "${REVOCATIONS_SCOPE}" scope).`,
        { status: 403 },
      );
    if (since !== undefined && (typeof since !== 'string' || since === ''))
      throw new OAuthError('invalid_request', 'since must appear once.');
    let limit = 500;
    if (limitParam !== undefined) {
      if (typeof limitParam !== 'string' || !/^\d{1,4}$/.test(limitParam) || Number(limitParam) < 1 || Number(limitParam) > 1000)
        throw new OAuthError('invalid_request', 'limit is a number from 1 to 1000.');
      limit = Number(limitParam);
    }
    const operator = await this.tenants.findActiveBySlug(this.config.OPERATOR_TENANT);
    const allTenants = operator !== undefined && client.tenantId === operator.id;
    return this.feed.read(allTenants ? {} : { tenantId: client.tenantId }, since, limit);
  }
}
