import { Body, Controller, Delete, Get, Headers, Param, Patch, Post, Put, Query, Res, UseGuards, UseInterceptors } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { Principal, ScimAuthGuard, ScimResponseInterceptor } from './scim-auth.guard.js';
import { etagOf, ifNoneMatchHits, listQuery, projectionQuery } from './scim-http.js';
import { sendScim } from './scim-response.js';
import type { ScimPrincipal } from './scim-tokens.service.js';
import { ScimGroupsService } from './scim-groups.service.js';

/** RFC 7644 Groups endpoint. Membership PATCHes answer 204 unless attributes are requested. */
@ApiTags('scim')
@ApiBearerAuth('scimToken')
@Controller('scim/v2/Groups')
@UseGuards(ScimAuthGuard)
@UseInterceptors(ScimResponseInterceptor)
export class ScimGroupsController {
  constructor(private readonly groups: ScimGroupsService) {}

  @Get()
  async list(@Principal() p: ScimPrincipal, @Query() query: Record<string, unknown>, @Res() res: Response): Promise<void> {
    sendScim(res, 200, await this.groups.list(p, listQuery(query)));
  }

  @Post('.search')
  async search(@Principal() p: ScimPrincipal, @Body() body: unknown, @Res() res: Response): Promise<void> {
    sendScim(res, 200, await this.groups.list(p, listQuery(body)));
  }

  @Get(':id')
  async get(
    @Principal() p: ScimPrincipal,
    @Param('id') id: string,
    @Query() query: Record<string, unknown>,
    @Headers('if-none-match') ifNoneMatch: string | undefined,
    @Res() res: Response,
  ): Promise<void> {
    const group = await this.groups.get(p, id, projectionQuery(query));
    const etag = etagOf(group.version);
    if (ifNoneMatchHits(ifNoneMatch, group.version)) {
      sendScim(res, 304, undefined, { ETag: etag });
      return;
    }
    sendScim(res, 200, group.resource, { ETag: etag });
  }

  @Post()
  async create(
    @Principal() p: ScimPrincipal,
    @Body() body: unknown,
    @Query() query: Record<string, unknown>,
    @Res() res: Response,
  ): Promise<void> {
    const group = await this.groups.create(p, body, projectionQuery(query));
    sendScim(res, 201, group.resource, { ETag: etagOf(group.version), Location: this.groups.location(group.id) });
  }

  @Put(':id')
  async replace(
    @Principal() p: ScimPrincipal,
    @Param('id') id: string,
    @Body() body: unknown,
    @Query() query: Record<string, unknown>,
    @Headers('if-match') ifMatch: string | undefined,
    @Res() res: Response,
  ): Promise<void> {
    const group = await this.groups.replace(p, id, body, ifMatch, projectionQuery(query));
    sendScim(res, 200, group.resource, { ETag: etagOf(group.version) });
  }

  @Patch(':id')
  async patch(
    @Principal() p: ScimPrincipal,
    @Param('id') id: string,
    @Body() body: unknown,
    @Query() query: Record<string, unknown>,
    @Headers('if-match') ifMatch: string | undefined,
    @Res() res: Response,
  ): Promise<void> {
    const projection = projectionQuery(query);
    const wantBody = projection.attributes !== undefined || projection.excludedAttributes !== undefined;
    const group = await this.groups.patch(p, id, body, ifMatch, projection, wantBody);
    if (!group.resource) {
      sendScim(res, 204, undefined, { ETag: etagOf(group.version) });
      return;
    }
    sendScim(res, 200, group.resource, { ETag: etagOf(group.version) });
  }

  @Delete(':id')
  async remove(
    @Principal() p: ScimPrincipal,
    @Param('id') id: string,
    @Headers('if-match') ifMatch: string | undefined,
    @Res() res: Response,
  ): Promise<void> {
    await this.groups.delete(p, id, ifMatch);
    sendScim(res, 204);
  }
}
