import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query, Req, Res } from '@nestjs/common';
import { ApiOperation } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { principalOf, TenantAdminsToo, type AdminPrincipal } from './admin-auth.js';
import { Admin } from './admin-controller.js';
import { etagOf, requireIfMatch } from './admin-http.js';
import { TenantsAdminService } from './tenants-admin.service.js';
import { UsersAdminService, viewOf, type UserView } from './users-admin.service.js';
import { CreateUserDto, InviteUserDto, ListUsersQueryDto, UpdateUserDto } from './dto.js';
import type { UserAdminRow } from '../users/users.repository.js';

/**
 * A tenant's users, for operators and for the tenant's own user administrators (USER_ADMIN, see
 * admin-auth.ts): the guard admits them for their own tenant only, the service keeps them within
 * their own roles.
 */
@Admin('users')
@TenantAdminsToo()
@Controller('admin/v1/tenants/:tenantId/users')
export class UsersAdminController {
  constructor(
    private readonly tenants: TenantsAdminService,
    private readonly users: UsersAdminService,
  ) {}

  /** The tenant in the path, which must exist; a confined principal reaches only its own (the guard checked). */
  private async tenantOf(tenantId: string): Promise<string> {
    return (await this.tenants.get(tenantId)).id;
  }

  /**
   * A user who signs in with a local password on the hosted form: with an initial password, or
   * invited by email to set one. Allowed whatever the tenant's bindings: a draft native binding's
   * test login needs a user first.
   */

  @Post()
  @ApiOperation({ summary: 'Create a user with a local password, or invite them by email to set one' })
  async create(
    @Param('tenantId') tenantId: string,
    @Body() dto: CreateUserDto,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ): Promise<UserView> {
    const tenant = await this.tenants.get(tenantId);
    const user = await this.users.create(principalOf(req), tenant, dto);
    res.setHeader('Location', `/admin/v1/tenants/${tenant.id}/users/${user.id}`);
    return this.send(res, user);
  }

  @Get()
  @ApiOperation({ summary: "List and search the tenant's users (cursor pages)" })
  async list(
    @Param('tenantId') tenantId: string,
    @Query() q: ListUsersQueryDto,
  ): Promise<{ items: UserView[]; nextCursor: string | null }> {
    const page = await this.users.list(await this.tenantOf(tenantId), q);
    return { items: page.items.map(viewOf), nextCursor: page.nextCursor };
  }

  @Get(':userId')
  @ApiOperation({ summary: 'Read a user (ETag for If-Match)' })
  async get(
    @Param('tenantId') tenantId: string,
    @Param('userId') userId: string,
    @Res({ passthrough: true }) res: Response,
  ): Promise<UserView> {
    return this.send(res, await this.users.get(await this.tenantOf(tenantId), userId));
  }

  @Patch(':userId')
  @ApiOperation({ summary: 'Change profile, hand-given roles or status (If-Match required)' })
  async update(
    @Param('tenantId') tenantId: string,
    @Param('userId') userId: string,
    @Body() dto: UpdateUserDto,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ): Promise<UserView> {
    const tenant = await this.tenantOf(tenantId);
    const current = await this.users.get(tenant, userId);
    requireIfMatch(req, current.version);
    return this.send(res, await this.users.update(principalOf(req), tenant, userId, current.version, dto));
  }

  @Post(':userId/unlock')
  @HttpCode(200)
  @ApiOperation({ summary: 'End the lockout of a local password after failed attempts' })
  async unlock(
    @Param('tenantId') tenantId: string,
    @Param('userId') userId: string,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ): Promise<UserView> {
    return this.send(res, await this.users.unlock(principalOf(req), await this.tenantOf(tenantId), userId));
  }

  @Post(':userId/invitation')
  @HttpCode(202)
  @ApiOperation({ summary: 'Invite a user without a local password (e.g. SCIM-provisioned) to set one, by email' })
  async invite(
    @Param('tenantId') tenantId: string,
    @Param('userId') userId: string,
    @Body() dto: InviteUserDto,
    @Req() req: Request,
  ): Promise<{ status: 'sent' }> {
    await this.users.invite(principalOf(req), await this.tenantOf(tenantId), userId, dto.username);
    return { status: 'sent' };
  }

  @Post(':userId/password-reset')
  @HttpCode(202)
  @ApiOperation({ summary: 'Force a password reset: the password stops working, sessions end, a reset link is emailed' })
  async forceReset(@Param('tenantId') tenantId: string, @Param('userId') userId: string, @Req() req: Request): Promise<{ status: 'sent' }> {
    await this.users.forceReset(principalOf(req), await this.tenantOf(tenantId), userId);
    return { status: 'sent' };
  }

  @Post(':userId/verification-email')
  @HttpCode(202)
  @ApiOperation({ summary: "Email a link that verifies the user's email address" })
  async sendVerification(
    @Param('tenantId') tenantId: string,
    @Param('userId') userId: string,
    @Req() req: Request,
  ): Promise<{ status: 'sent' }> {
    await this.users.sendVerification(principalOf(req), await this.tenantOf(tenantId), userId);
    return { status: 'sent' };
  }

  @Delete(':userId')
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete a user: sessions end, the profile is erased, the id is never reused' })
  async remove(@Param('tenantId') tenantId: string, @Param('userId') userId: string, @Req() req: Request): Promise<void> {
    const p: AdminPrincipal = principalOf(req);
    await this.users.remove(p, await this.tenantOf(tenantId), userId);
  }

  private send(res: Response, user: UserAdminRow): UserView {
    res.setHeader('ETag', etagOf(user.version));
    return viewOf(user);
  }
}
