import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  Param,
  Patch,
  Post,
  Query,
  Req,
  Res,
  UseGuards,
  UseInterceptors,
  UsePipes,
  ValidationPipe,
} from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { ProblemError } from '../common/errors.js';
import { ClientsService, clientEtag, type Client } from '../clients/clients.service.js';
import { SigningKeysService, type SigningKeyView } from '../tokens/signing-keys.service.js';
import type { Tenant } from '../tenants/tenants.service.js';
import { AuditService } from '../audit/audit.service.js';
import { ScimSettingsService, ScimTokensService } from '../scim/scim-tokens.service.js';
import { ScimHeldOperationsService } from '../scim/scim-held-operations.service.js';
import { FirebaseImportService } from '../identity/firebase/firebase-import.service.js';
import { NativeCredentialsService } from '../identity/native/native-credentials.service.js';
import { UsersService, type PlatformUser } from '../users/users.service.js';
import { AdminGuard, principalOf } from './admin-auth.js';
import { IdempotencyInterceptor, etagOf, requireEtag, requireIfMatch } from './admin-http.js';
import { TenantsAdminService } from './tenants-admin.service.js';
import { BindingsAdminService, type BindingView, type RollbackView } from './bindings-admin.service.js';
import {
  AuditQueryDto,
  CreateBindingDto,
  CreateClientDto,
  CreateScimTokenDto,
  CreateTenantDto,
  CreateUserDto,
  FirebaseImportDto,
  HeldOperationsDto,
  ScimSettingsDto,
  ListQueryDto,
  MappingPreviewDto,
  RotateKeysDto,
  UpdateBindingDto,
  UpdateClientDto,
  UpdateTenantDto,
} from './dto.js';

const clientNotFound = () => new ProblemError({ type: 'client-not-found' });

const validation = new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true });

/** Every admin controller: bearer-guarded, validated, idempotent creates. */
const Admin =
  (tag: string): ClassDecorator =>
  (target) => {
    ApiTags(`admin: ${tag}`)(target);
    ApiBearerAuth()(target);
    UseGuards(AdminGuard)(target);
    UsePipes(validation)(target);
    UseInterceptors(IdempotencyInterceptor)(target);
  };

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
    res.setHeader('Location', `/admin/v1/tenants/${tenant.id}/users/${userId}`);
    return { ...user!, username: dto.username };
  }
}

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

@Admin('clients')
@Controller('admin/v1/clients')
export class ClientsAdminController {
  constructor(
    private readonly clients: ClientsService,
    private readonly tenants: TenantsAdminService,
  ) {}

  /** The client secret is shown once, in this response. */
  @Post()
  async create(@Body() dto: CreateClientDto, @Req() req: Request) {
    if (dto.kind === 'machine' && !dto.tenantId)
      throw new ProblemError({
        type: 'validation',
        title: 'Tenant required',
        detail: 'A machine client belongs to one tenant: send tenantId.',
      });
    if (dto.tenantId) await this.tenants.get(dto.tenantId);
    const { client, secret } = await this.clients.create(dto, principalOf(req).actor);
    return { ...client, clientSecret: secret };
  }

  @Get()
  async list() {
    return { items: await this.clients.list() };
  }

  @Get(':clientId')
  async get(@Param('clientId') id: string, @Res({ passthrough: true }) res: Response) {
    const client = await this.clients.find(id);
    if (!client) throw clientNotFound();
    res.setHeader('ETag', clientEtag(client));
    return client;
  }

  /**
   * Changes a client's name, redirect URIs, post-logout redirect URIs or scopes (each list given
   * replaces the stored one), with If-Match like every admin update; audited in the same
   * transaction. Token requests see the change at once (the client cache is dropped).
   */
  @Patch(':clientId')
  async update(
    @Param('clientId') id: string,
    @Body() dto: UpdateClientDto,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ): Promise<Client> {
    const after = await this.clients.update(id, dto, principalOf(req).actor, (current) => requireEtag(req, clientEtag(current)));
    if (!after) throw clientNotFound();
    res.setHeader('ETag', clientEtag(after));
    return after;
  }

  @Delete(':clientId')
  @HttpCode(204)
  async disable(@Param('clientId') id: string, @Req() req: Request): Promise<void> {
    if (!(await this.clients.disable(id, principalOf(req).actor))) throw clientNotFound();
  }
}

@Admin('signing keys')
@Controller('admin/v1/signing-keys')
export class SigningKeysAdminController {
  constructor(private readonly keys: SigningKeysService) {}

  @Get()
  async list(): Promise<{ items: SigningKeyView[] }> {
    return { items: await this.keys.list() };
  }

  /** Publishes a new key now; it signs after publishDelaySeconds (default KEY_PUBLISH_DELAY_SECONDS). */
  @Post('rotate')
  async rotate(@Body() dto: RotateKeysDto, @Req() req: Request): Promise<SigningKeyView> {
    return this.keys.rotate(dto.publishDelaySeconds, undefined, principalOf(req).actor);
  }
}

@Admin('audit')
@Controller('admin/v1/audit-events')
export class AuditAdminController {
  constructor(private readonly audit: AuditService) {}

  @Get()
  list(@Query() q: AuditQueryDto) {
    return this.audit.page({
      tenantId: q.tenantId,
      actor: q.actor,
      action: q.action,
      since: q.since,
      until: q.until,
      cursor: q.cursor,
      limit: q.limit ?? 100,
    });
  }
}

export const ADMIN_CONTROLLERS = [
  TenantsAdminController,
  BindingsAdminController,
  UsersAdminController,
  ScimTokensAdminController,
  ScimSafetyAdminController,
  FirebaseImportAdminController,
  ClientsAdminController,
  SigningKeysAdminController,
  AuditAdminController,
];
