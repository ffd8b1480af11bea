import { Body, Controller, Delete, Get, HttpCode, Param, Post, Req } from '@nestjs/common';
import type { Request } from 'express';
import { ProblemError } from '../common/errors.js';
import { ScimTokensService } from '../scim/scim-tokens.service.js';
import { principalOf } from './admin-auth.js';
import { Admin } from './admin-controller.js';
import { TenantsAdminService } from './tenants-admin.service.js';
import { CreateScimTokenDto } from './dto.js';

@Admin('SCIM tokens')
@Controller('admin/v1/tenants/:tenantId/scim-tokens')
export class ScimTokensAdminController {
  constructor(
    private readonly tenants: TenantsAdminService,
    private readonly tokens: ScimTokensService,
  ) {}

  /** The token is shown once, in this response. */
  @Post()
  async create(@Param('tenantId') tenantId: string, @Body() dto: CreateScimTokenDto, @Req() req: Request) {
    const tenant = await this.tenants.get(tenantId);
    return this.tokens.create(tenant.id, dto.name, principalOf(req).actor);
  }

  @Get()
  async list(@Param('tenantId') tenantId: string) {
    return { items: await this.tokens.list((await this.tenants.get(tenantId)).id) };
  }

  @Delete(':tokenId')
  @HttpCode(204)
  async revoke(@Param('tenantId') tenantId: string, @Param('tokenId') tokenId: string, @Req() req: Request): Promise<void> {
    const revoked = await this.tokens.revoke((await this.tenants.get(tenantId)).id, tokenId, principalOf(req).actor);
    if (!revoked) throw new ProblemError({ type: 'scim-token-not-found' });
  }
}
