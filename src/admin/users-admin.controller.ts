import { Body, Controller, Param, Post, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { NativeCredentialsService } from '../identity/native/native-credentials.service.js';
import { UsersService, type PlatformUser } from '../users/users.service.js';
import { principalOf } from './admin-auth.js';
import { Admin } from './admin-controller.js';
import { TenantsAdminService } from './tenants-admin.service.js';
import { CreateUserDto } from './dto.js';

/** A user as the admin API shows it: never a password or its hash. */
export interface UserView extends PlatformUser {
  username: string;
}

@Admin('users')
@Controller('admin/v1/tenants/:tenantId/users')
export class UsersAdminController {
  constructor(
    private readonly tenants: TenantsAdminService,
    private readonly credentials: NativeCredentialsService,
    private readonly users: UsersService,
  ) {}

  /**
   * A user who signs in with a local password on the hosted form of the tenant's native binding.
   * Allowed whatever the tenant's bindings: a draft native binding's test login needs a user first.
   */
  @Post()
  async create(
    @Param('tenantId') tenantId: string,
    @Body() dto: CreateUserDto,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ): Promise<UserView> {
    const tenant = await this.tenants.get(tenantId);
    const userId = await this.credentials.createUser(tenant.id, dto, { actor: principalOf(req).actor });
    const user = await this.users.find(tenant.id, userId);
    if (!user) throw new Error('the user just created cannot be read back');
    res.setHeader('Location', `/admin/v1/tenants/${tenant.id}/users/${userId}`);
    return { ...user, username: dto.username };
  }
}
