import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import type { Tenant } from '../tenants/tenants.service.js';
import { principalOf } from './admin-auth.js';
import { Admin } from './admin-controller.js';
import { etagOf, requireIfMatch } from './admin-http.js';
import { TenantsAdminService } from './tenants-admin.service.js';
import { CreateTenantDto, ListQueryDto, UpdateTenantDto } from './dto.js';

@Admin('tenants')
@Controller('admin/v1/tenants')
export class TenantsAdminController {
  constructor(private readonly tenants: TenantsAdminService) {}

  @Post()
  async create(@Body() dto: CreateTenantDto, @Req() req: Request, @Res({ passthrough: true }) res: Response): Promise<Tenant> {
    const tenant = await this.tenants.create(principalOf(req), dto);
    res.setHeader('ETag', etagOf(tenant.version));
    res.setHeader('Location', `/admin/v1/tenants/${tenant.id}`);
    return tenant;
  }

  @Get()
  list(@Query() q: ListQueryDto): Promise<{ items: Tenant[]; nextCursor: string | null }> {
    return this.tenants.list(q.cursor, q.limit);
  }

  @Get(':tenantId')
  async get(@Param('tenantId') id: string, @Res({ passthrough: true }) res: Response): Promise<Tenant> {
    const tenant = await this.tenants.get(id);
    res.setHeader('ETag', etagOf(tenant.version));
    return tenant;
  }

  @Patch(':tenantId')
  async update(
    @Param('tenantId') id: string,
    @Body() dto: UpdateTenantDto,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ): Promise<Tenant> {
    const current = await this.tenants.get(id);
    requireIfMatch(req, current.version);
    const tenant = await this.tenants.update(principalOf(req), id, current.version, dto);
    res.setHeader('ETag', etagOf(tenant.version));
    return tenant;
  }

  @Delete(':tenantId')
  @HttpCode(204)
  async remove(@Param('tenantId') id: string, @Req() req: Request): Promise<void> {
    await this.tenants.remove(principalOf(req), id);
  }
}
