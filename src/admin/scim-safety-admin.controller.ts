import { Body, Controller, Get, HttpCode, Param, Patch, Post, Query, Req } from '@nestjs/common';
import type { Request } from 'express';
import { ScimSettingsService } from '../scim/scim-tokens.service.js';
import { ScimHeldOperationsService } from '../scim/scim-held-operations.service.js';
import { principalOf } from './admin-auth.js';
import { Admin } from './admin-controller.js';
import { TenantsAdminService } from './tenants-admin.service.js';
import { HeldOperationsDto, ScimSettingsDto } from './dto.js';

@Admin('SCIM safety')
@Controller('admin/v1/tenants/:tenantId/scim')
export class ScimSafetyAdminController {
  constructor(
    private readonly tenants: TenantsAdminService,
    private readonly held: ScimHeldOperationsService,
    private readonly settings: ScimSettingsService,
  ) {}

  /** Deactivations and deletions the mass-deprovisioning guard held back. */
  @Get('held-operations')
  async list(@Param('tenantId') tenantId: string, @Query('status') status?: string) {
    const s = status === 'all' || status === 'released' || status === 'discarded' ? status : 'held';
    return { items: await this.held.list((await this.tenants.get(tenantId)).id, s) };
  }

  @Post('held-operations/release')
  @HttpCode(200)
  async release(@Param('tenantId') tenantId: string, @Body() dto: HeldOperationsDto, @Req() req: Request) {
    return this.held.release((await this.tenants.get(tenantId)).id, principalOf(req).actor, dto.ids);
  }

  @Post('held-operations/discard')
  @HttpCode(200)
  async discard(@Param('tenantId') tenantId: string, @Body() dto: HeldOperationsDto, @Req() req: Request) {
    return { discarded: await this.held.discard((await this.tenants.get(tenantId)).id, principalOf(req).actor, dto.ids) };
  }

  /** Per-tenant SCIM rate limit and guard thresholds; null restores the global default. */
  @Patch('settings')
  @HttpCode(204)
  async updateSettings(@Param('tenantId') tenantId: string, @Body() dto: ScimSettingsDto, @Req() req: Request): Promise<void> {
    await this.settings.update((await this.tenants.get(tenantId)).id, dto, principalOf(req).actor);
  }
}
