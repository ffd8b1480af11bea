import { Controller, Delete, Get, HttpCode, Param, Req } from '@nestjs/common';
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

  @Get()
  @ApiOperation({ summary: "A user's sign-in methods beyond the password: whether TOTP is set up, and the passkeys" })
  async list(@Param('tenantId') tenantId: string, @Param('userId') userId: string): Promise<unknown> {
    const tenant = (await this.tenants.get(tenantId)).id;
    return this.factors.list(tenant, userId);
  }

  @Delete('passkeys/:passkeyId')
  @HttpCode(204)
  @ApiOperation({ summary: "Remove one of a user's passkeys (a lost or shared device); it signs in nowhere afterwards" })
  async removePasskey(
    @Param('tenantId') tenantId: string,
    @Param('userId') userId: string,
    @Param('passkeyId') passkeyId: string,
    @Req() req: Request,
  ): Promise<void> {
    const tenant = (await this.tenants.get(tenantId)).id;
    await this.factors.removePasskey(principalOf(req), tenant, userId, passkeyId);
  }

  @Delete('totp')
  @HttpCode(204)
  @ApiOperation({ summary: "Remove a user's TOTP and recovery codes (a lost authenticator); the next login asks for the password only" })
  async removeTotp(@Param('tenantId') tenantId: string, @Param('userId') userId: string, @Req() req: Request): Promise<void> {
    const tenant = (await this.tenants.get(tenantId)).id;
    await this.factors.removeTotp(principalOf(req), tenant, userId);
  }
}
