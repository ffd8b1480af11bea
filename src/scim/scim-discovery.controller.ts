import { All, Controller, Get, Inject, Param, Post, Res, UseGuards, UseInterceptors } from '@nestjs/common';
import { ApiBearerAuth, ApiExcludeEndpoint, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { AppConfig } from '../config/app-config.js';
import { ScimError } from '../common/errors.js';
import { ScimAuthGuard, ScimResponseInterceptor } from './scim-auth.guard.js';
import { MAX_PAGE_SIZE, listResponse } from './scim-http.js';
import { sendScim } from './scim-response.js';
import { GROUP_RESOURCE, USER_RESOURCE, ALL_SCHEMAS, SP_CONFIG_SCHEMA, resourceTypeResource, schemaResource } from './scim-schemas.js';

/** RFC 7644 §4 discovery. Behind the same bearer token as the resources (nothing here is public). */
@ApiTags('scim')
@ApiBearerAuth('scimToken')
@Controller('scim/v2')
@UseGuards(ScimAuthGuard)
@UseInterceptors(ScimResponseInterceptor)
export class ScimDiscoveryController {
  constructor(@Inject(AppConfig) private readonly config: AppConfig) {}

  private get base(): string {
    return `${this.config.issuer}/scim/v2`;
  }

  @Get('ServiceProviderConfig')
  serviceProviderConfig(@Res() res: Response): void {
    sendScim(res, 200, {
      schemas: [SP_CONFIG_SCHEMA],
      patch: { supported: true },
      bulk: { supported: false, maxOperations: 0, maxPayloadSize: 0 },
      filter: { supported: true, maxResults: MAX_PAGE_SIZE },
      changePassword: { supported: false },
      sort: { supported: false },
      etag: { supported: true },
      authenticationSchemes: [
        {
          type: 'oauthbearertoken',
          name: 'Bearer token',
          description: "A per-tenant SCIM token issued by the platform's administrators (Authorization: Bearer <token>).",
          primary: true,
        },
      ],
      meta: { resourceType: 'ServiceProviderConfig', location: `${this.base}/ServiceProviderConfig` },
    });
  }

  @Get('ResourceTypes')
  resourceTypes(@Res() res: Response): void {
    const all = [USER_RESOURCE, GROUP_RESOURCE].map((rt) => resourceTypeResource(rt, this.base));
    sendScim(res, 200, listResponse(all.length, 1, all));
  }

  @Get('ResourceTypes/:id')
  resourceType(@Param('id') id: string, @Res() res: Response): void {
    const rt = [USER_RESOURCE, GROUP_RESOURCE].find((r) => r.id.toLowerCase() === id.toLowerCase());
    if (!rt) throw new ScimError(404, `Resource type ${id} not found.`);
    sendScim(res, 200, resourceTypeResource(rt, this.base));
  }

  @Get('Schemas')
  schemas(@Res() res: Response): void {
    const all = ALL_SCHEMAS.map((s) => schemaResource(s, this.base));
    sendScim(res, 200, listResponse(all.length, 1, all));
  }

  @Get('Schemas/:id')
  schema(@Param('id') id: string, @Res() res: Response): void {
    const s = ALL_SCHEMAS.find((x) => x.id.toLowerCase() === id.toLowerCase());
    if (!s) throw new ScimError(404, `Schema ${id} not found.`);
    sendScim(res, 200, schemaResource(s, this.base));
  }

  /** Documented under its one RFC 7644 §3.7 method; every method answers the same 501 (`bulkOther`). */
  @Post('Bulk')
  bulk(): never {
    throw new ScimError(501, 'Bulk operations are not supported (see ServiceProviderConfig).');
  }

  @ApiExcludeEndpoint()
  @All('Bulk')
  bulkOther(): never {
    return this.bulk();
  }

  /** Documented as GET (RFC 7644 §3.11); every method answers the same 501 (`meOther`). */
  @Get('Me')
  me(): never {
    throw new ScimError(501, '/Me is not supported: SCIM tokens belong to a tenant, not to a user.');
  }

  @ApiExcludeEndpoint()
  @All('Me')
  meOther(): never {
    return this.me();
  }
}
