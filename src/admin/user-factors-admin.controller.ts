import { Controller, Delete, HttpCode, Param, Req } from '@nestjs/common';
import { ApiOperation } from '@nestjs/swagger';
import type { Request } from 'express';
import { principalOf, TenantAdminsToo } from './admin-auth.js';
import { Admin } from './admin-controller.js';
import { TenantsAdminService } from './tenants-admin.service.js';
import { UserFactorsAdminService } from './user-factors-admin.service.js';

/** A user's second factors (two-step verification), for operators and the tenant's user administrators. */
@Admin('users')
@TenantAdminsToo()
@Controller('admin/v1/tenants/:tenantId/users/:userId/factors')
export class UserFactorsAdminController {
  constructor(
    private readonly tenants: TenantsAdminService,
    private readonly factors: UserFactorsAdminService,
  ) {}

  @Delete('totp')
  @HttpCode(204)
  @ApiOperation({ summary: "Remove a user's TOTP and recovery codes (a lost authenticator); the next login asks for the password only" })
  async removeTotp(@Param('tenantId') tenantId: string, @Param('userId') userId: string, @Req() req: Request): Promise<void> {
    const tenant = (await this.tenants.get(tenantId)).id;
    await this.factors.removeTotp(principalOf(req), tenant, userId);
  }
}
