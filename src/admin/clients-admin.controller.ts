import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { ProblemError } from '../common/errors.js';
import { ClientsService, clientEtag, type Client } from '../clients/clients.service.js';
import { principalOf } from './admin-auth.js';
import { Admin } from './admin-controller.js';
import { requireEtag } from './admin-http.js';
import { TenantsAdminService } from './tenants-admin.service.js';
import { CreateClientDto, UpdateClientDto } from './dto.js';

const clientNotFound = () => new ProblemError({ type: 'client-not-found' });

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
