import { Body, Controller, HttpCode, Param, Post, Req } from '@nestjs/common';
import type { Request } from 'express';
import { FirebaseImportService } from '../identity/firebase/firebase-import.service.js';
import { principalOf } from './admin-auth.js';
import { Admin } from './admin-controller.js';
import { TenantsAdminService } from './tenants-admin.service.js';
import { FirebaseImportDto } from './dto.js';

@Admin('Firebase migration')
@Controller('admin/v1/tenants/:tenantId/firebase-import')
export class FirebaseImportAdminController {
  constructor(
    private readonly tenants: TenantsAdminService,
    private readonly importer: FirebaseImportService,
  ) {}

  /** Imports a Firebase user export into the tenant's native credentials (ADR-0002 cut-over); safe to re-run. */
  @Post()
  @HttpCode(200)
  async import(@Param('tenantId') tenantId: string, @Body() dto: FirebaseImportDto, @Req() req: Request) {
    const tenant = await this.tenants.get(tenantId);
    return this.importer.importUsers(tenant.id, dto.export, dto.hashConfig, { bindingId: dto.bindingId, actor: principalOf(req).actor });
  }
}
