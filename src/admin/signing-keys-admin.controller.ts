import { Body, Controller, Get, Post, Req } from '@nestjs/common';
import type { Request } from 'express';
import { SigningKeysService, type SigningKeyView } from '../tokens/signing-keys.service.js';
import { principalOf } from './admin-auth.js';
import { Admin } from './admin-controller.js';
import { RotateKeysDto } from './dto.js';

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
