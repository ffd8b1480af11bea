import { Controller, Get, Res } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { Database } from '../database/database.js';
import { SigningKeysService } from '../tokens/signing-keys.service.js';
import { KeycloakHealthService } from '../identity/keycloak/keycloak-health.service.js';
import { RateLimiter } from '../rate-limit/rate-limiter.js';

@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(
    private readonly db: Database,
    private readonly keys: SigningKeysService,
    private readonly keycloak: KeycloakHealthService,
    private readonly limiter: RateLimiter,
  ) {}

  /** The process is up; restarts are the orchestrator's answer if this fails. */
  @Get('live')
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /**
   * Ready to take traffic: the database answers and a key can sign. Keycloak, when configured, is
   * reported but not required: tenants on other identity providers still sign in without it.
   * Redis, when configured, likewise: without it rate limits are counted in PostgreSQL
   * (`rate_limits: postgres-fallback`), so a Redis outage degrades but never unreadies a replica.
   */
  @Get('ready')
  async ready(@Res() res: Response): Promise<void> {
    const [database, keycloak, limits] = await Promise.all([this.db.ping(), this.keycloak.check(), this.limiter.health()]);
    const signingKey = this.keys.hasActiveKey();
    const ok = database && signingKey;
    res
      .status(ok ? 200 : 503)
      .setHeader('Cache-Control', 'no-store')
      .json({
        status: ok ? 'ok' : 'unavailable',
        checks: {
          database: database ? 'up' : 'down',
          signing_key: signingKey ? 'active' : 'missing',
          ...(keycloak ? { keycloak } : {}),
          ...limits,
        },
      });
  }
}
