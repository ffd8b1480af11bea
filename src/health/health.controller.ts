import { Controller, Get, Res } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { HealthService } from './health.service.js';

@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(private readonly health: HealthService) {}

  /** The process is up; restarts are the orchestrator's answer if this fails. */
  @Get('live')
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /** Ready to take traffic (see HealthService.readiness): 200, else 503, never cached. */
  @Get('ready')
  async ready(@Res() res: Response): Promise<void> {
    const { ok, checks } = await this.health.readiness();
    res
      .status(ok ? 200 : 503)
      .setHeader('Cache-Control', 'no-store')
      .json({ status: ok ? 'ok' : 'unavailable', checks });
  }
}
