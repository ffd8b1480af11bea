import { Body, Controller, Get, HttpCode, Param, Patch, Post, Query, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { principalOf } from './admin-auth.js';
import { Admin } from './admin-controller.js';
import { etagOf, requireIfMatch } from './admin-http.js';
import { TenantsAdminService } from './tenants-admin.service.js';
import { BindingsAdminService, type BindingView, type RollbackView } from './bindings-admin.service.js';
import { CreateBindingDto, MappingPreviewDto, UpdateBindingDto } from './dto.js';

@Admin('identity-provider bindings')
@Controller('admin/v1/tenants/:tenantId/bindings')
export class BindingsAdminController {
  constructor(
    private readonly tenants: TenantsAdminService,
    private readonly bindings: BindingsAdminService,
  ) {}

  @Post()
  async create(
    @Param('tenantId') tenantId: string,
    @Body() dto: CreateBindingDto,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ): Promise<BindingView> {
    const view = await this.bindings.create(principalOf(req), await this.tenants.get(tenantId), dto);
    res.setHeader('ETag', etagOf(view.version));
    return view;
  }

  @Get()
  async list(@Param('tenantId') tenantId: string): Promise<{ items: BindingView[] }> {
    return { items: await this.bindings.list(await this.tenants.get(tenantId)) };
  }

  /**
   * Undoes the last activation, retirement or rollback of the tenant's bindings, across login
   * styles; answers the binding brought back (else the one retired) and the ids it changed.
   */
  @Post('rollback')
  @HttpCode(200)
  async rollback(
    @Param('tenantId') tenantId: string,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ): Promise<RollbackView> {
    const view = await this.bindings.rollback(principalOf(req), await this.tenants.get(tenantId));
    res.setHeader('ETag', etagOf(view.version));
    return view;
  }

  @Get(':bindingId')
  async get(
    @Param('tenantId') tenantId: string,
    @Param('bindingId') id: string,
    @Res({ passthrough: true }) res: Response,
  ): Promise<BindingView> {
    const view = await this.bindings.get(await this.tenants.get(tenantId), id);
    res.setHeader('ETag', etagOf(view.version));
    return view;
  }

  /** Changes a draft in place; a change to an active binding becomes a new draft (201). */
  @Patch(':bindingId')
  async update(
    @Param('tenantId') tenantId: string,
    @Param('bindingId') id: string,
    @Body() dto: UpdateBindingDto,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ): Promise<BindingView> {
    const tenant = await this.tenants.get(tenantId);
    const current = await this.bindings.get(tenant, id);
    requireIfMatch(req, current.version);
    const { view, created } = await this.bindings.update(principalOf(req), tenant, id, current.version, dto);
    res.status(created ? 201 : 200);
    res.setHeader('ETag', etagOf(view.version));
    if (created) res.setHeader('Location', `/admin/v1/tenants/${tenantId}/bindings/${view.id}`);
    return view;
  }

  @Post(':bindingId/test-login')
  @HttpCode(200)
  async testLogin(@Param('tenantId') tenantId: string, @Param('bindingId') id: string, @Req() req: Request): Promise<{ url: string }> {
    return this.bindings.testLogin(principalOf(req), await this.tenants.get(tenantId), id);
  }

  @Post(':bindingId/activate')
  @HttpCode(200)
  async activate(
    @Param('tenantId') tenantId: string,
    @Param('bindingId') id: string,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ): Promise<BindingView> {
    const tenant = await this.tenants.get(tenantId);
    const current = await this.bindings.get(tenant, id);
    requireIfMatch(req, current.version);
    const view = await this.bindings.activate(principalOf(req), tenant, id, current.version);
    res.setHeader('ETag', etagOf(view.version));
    return view;
  }

  /** Takes an active binding out of service (kept with its identity links); rollback undoes it. */
  @Post(':bindingId/retire')
  @HttpCode(200)
  async retire(
    @Param('tenantId') tenantId: string,
    @Param('bindingId') id: string,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ): Promise<BindingView> {
    const tenant = await this.tenants.get(tenantId);
    const current = await this.bindings.get(tenant, id);
    requireIfMatch(req, current.version);
    const view = await this.bindings.retire(principalOf(req), tenant, id, current.version);
    res.setHeader('ETag', etagOf(view.version));
    return view;
  }

  @Post(':bindingId/mapping\\:preview')
  @HttpCode(200)
  async preview(@Param('tenantId') tenantId: string, @Param('bindingId') id: string, @Body() dto: MappingPreviewDto) {
    return this.bindings.preview(await this.tenants.get(tenantId), id, dto);
  }

  @Get(':bindingId/health')
  async health(@Param('tenantId') tenantId: string, @Param('bindingId') id: string, @Query('refresh') refresh?: string) {
    return this.bindings.health(await this.tenants.get(tenantId), id, refresh !== 'false');
  }
}
