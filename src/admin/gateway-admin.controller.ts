import { Controller, Get, HttpCode, Inject, Post, Query, Res, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { AppConfig } from '../config/app-config.js';
import { ProblemError } from '../common/errors.js';
import { AdminGuard } from './admin-auth.js';
import { SigningKeysService } from '../tokens/signing-keys.service.js';
import {
  kongConfigYaml,
  kongCredentials,
  kongDeclarativeConfig,
  type KongConfigOptions,
  type PublishedKey,
} from '../gateway/kong-config.js';
import { KongSyncService } from '../gateway/kong-sync.service.js';

/** Kong's side of the token contract, for operators (`npm run kong:config` prints the first route). */
@ApiTags('admin: gateway')
@ApiBearerAuth()
@UseGuards(AdminGuard)
@Controller('admin/v1/gateway/kong')
export class GatewayAdminController {
  constructor(
    private readonly keys: SigningKeysService,
    private readonly kong: KongSyncService,
    @Inject(AppConfig) private readonly config: AppConfig,
  ) {}

  /**
   * The consumer and one jwt credential per published signing key. YAML (default) or `?format=json`;
   * for decK (default) or `?flavor=dbless` (a plain Kong declarative file, no `_info`).
   */
  @Get()
  async declarativeConfig(@Query('format') format: unknown, @Query('flavor') flavor: unknown, @Res() res: Response): Promise<void> {
    if (format !== undefined && format !== 'yaml' && format !== 'json')
      throw new ProblemError({ type: 'validation', title: 'Unsupported format', detail: 'format is yaml (default) or json.' });
    if (flavor !== undefined && flavor !== 'deck' && flavor !== 'dbless')
      throw new ProblemError({ type: 'validation', title: 'Unsupported flavor', detail: 'flavor is deck (default) or dbless.' });
    const opts: KongConfigOptions = {
      flavor: flavor === 'dbless' ? 'dbless' : 'deck',
      consumer: this.config.KONG_CONSUMER,
      issuer: this.config.issuer,
      maximumExpiration: this.config.ACCESS_TOKEN_TTL_SECONDS + this.config.CLOCK_SKEW_SECONDS,
    };
    const doc = kongDeclarativeConfig(await kongCredentials((await this.keys.published()) as PublishedKey[]), opts);
    res.setHeader('Cache-Control', 'no-store');
    if (format === 'json') res.status(200).json(doc);
    else res.status(200).type('application/yaml; charset=utf-8').send(kongConfigYaml(doc, opts));
  }

  /** Pushes the credentials to KONG_ADMIN_URL now (it also happens by itself on every key change). */
  @Post('sync')
  @HttpCode(200)
  async sync(): Promise<{ upserted: string[]; deleted: string[] }> {
    if (!this.kong.enabled)
      throw new ProblemError({ type: 'kong-not-configured', detail: 'Set KONG_ADMIN_URL to push credentials to Kong.' });
    try {
      return await this.kong.sync();
    } catch (err) {
      throw new ProblemError({ type: 'kong-sync-failed', detail: (err as Error).message, cause: err });
    }
  }
}
