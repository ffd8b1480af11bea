import { Controller, Get, Headers, Inject, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { AppConfig } from '../config/app-config.js';
import { constantEquals } from '../crypto/random.js';
import { ProblemError } from '../common/errors.js';
import { MetricsService } from './metrics.service.js';

/**
 * Prometheus scrape endpoint on the service port, behind a bearer token (METRICS_TOKEN): the same
 * port works through any ingress and for every replica, and nothing about tenants or traffic leaks
 * to the public. Without METRICS_TOKEN the endpoint does not exist (404).
 */
@ApiTags('operations')
@ApiBearerAuth('metricsToken')
@Controller('metrics')
export class MetricsController {
  constructor(
    private readonly metrics: MetricsService,
    @Inject(AppConfig) private readonly config: AppConfig,
  ) {}

  /** Prometheus text format. `Authorization: Bearer <METRICS_TOKEN>`. */
  @Get()
  @ApiProduces('text/plain')
  async scrape(@Headers('authorization') authorization: string | undefined, @Res() res: Response): Promise<void> {
    const expected = this.config.METRICS_TOKEN;
    if (!expected) throw new ProblemError({ status: 404, title: 'Not found' });
    // The auth-scheme is case-insensitive (RFC 9110 §11.1), as on every other Bearer route.
    const presented = /^Bearer +([\x21-\x7E]+) *$/i.exec(authorization ?? '')?.[1] ?? '';
    if (!constantEquals(presented, expected)) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="metrics"');
      throw new ProblemError({ type: 'unauthenticated', detail: 'Send Authorization: Bearer <METRICS_TOKEN>.' });
    }
    // Under WORKERS > 1 one scrape reports the whole process group (the primary sums every worker).
    const body = await this.metrics.scrape();
    res.status(200).setHeader('Cache-Control', 'no-store').type(this.metrics.registry.contentType).send(body);
  }
}
