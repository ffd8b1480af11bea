import { Body, Controller, Delete, Get, Headers, Param, Patch, Post, Put, Query, Res, UseGuards, UseInterceptors } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { Principal, ScimAuthGuard, ScimResponseInterceptor } from './scim-auth.guard.js';
import { etagOf, ifNoneMatchHits, listQuery, projectionQuery } from './scim-http.js';
import { sendScim } from './scim-response.js';
import type { ScimPrincipal } from './scim-tokens.service.js';
import { ScimUsersService } from './scim-users.service.js';

/** RFC 7644 Users endpoint. The bearer token alone decides the tenant; other tenants' users are 404. */
@ApiTags('scim')
@ApiBearerAuth('scimToken')
@Controller('scim/v2/Users')
@UseGuards(ScimAuthGuard)
@UseInterceptors(ScimResponseInterceptor)
export class ScimUsersController {
  constructor(private readonly users: ScimUsersService) {}

  @Get()
  async list(@Principal() p: ScimPrincipal, @Query() query: Record<string, unknown>, @Res() res: Response): Promise<void> {
    sendScim(res, 200, await this.users.list(p, listQuery(query)));
  }

  @Post('.search')
  async search(@Principal() p: ScimPrincipal, @Body() body: unknown, @Res() res: Response): Promise<void> {
    sendScim(res, 200, await this.users.list(p, listQuery(body)));
  }

  @Get(':id')
  async get(
    @Principal() p: ScimPrincipal,
    @Param('id') id: string,
    @Query() query: Record<string, unknown>,
    @Headers('if-none-match') ifNoneMatch: string | undefined,
    @Res() res: Response,
  ): Promise<void> {
    const user = await this.users.get(p, id, projectionQuery(query));
    const etag = etagOf(user.version);
    if (ifNoneMatchHits(ifNoneMatch, user.version)) {
      sendScim(res, 304, undefined, { ETag: etag });
      return;
    }
    sendScim(res, 200, user.resource, { ETag: etag });
  }

  @Post()
  async create(
    @Principal() p: ScimPrincipal,
    @Body() body: unknown,
    @Query() query: Record<string, unknown>,
    @Res() res: Response,
  ): Promise<void> {
    const user = await this.users.create(p, body, projectionQuery(query));
    sendScim(res, 201, user.resource, { ETag: etagOf(user.version), Location: this.users.location(user.id) });
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
    const user = await this.users.replace(p, id, body, ifMatch, projectionQuery(query));
    sendScim(res, 200, user.resource, { ETag: etagOf(user.version) });
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
    const user = await this.users.patch(p, id, body, ifMatch, projectionQuery(query));
    sendScim(res, 200, user.resource, { ETag: etagOf(user.version) });
  }

  @Delete(':id')
  async remove(
    @Principal() p: ScimPrincipal,
    @Param('id') id: string,
    @Headers('if-match') ifMatch: string | undefined,
    @Res() res: Response,
  ): Promise<void> {
    await this.users.delete(p, id, ifMatch);
    sendScim(res, 204);
  }
}
