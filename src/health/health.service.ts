import { Injectable } from '@nestjs/common';
import { Database } from '../database/database.js';
import { SigningKeysService } from '../tokens/signing-keys.service.js';
import { KeycloakHealthService } from '../identity/keycloak/keycloak-health.service.js';
import { RateLimiter } from '../rate-limit/rate-limiter.js';

export interface Readiness {
  ok: boolean;
  checks: Record<string, string>;
}

/** What readiness checks: the database, the signing key, and (reported only) Keycloak and the rate limiter. */
@Injectable()
export class HealthService {
  constructor(
    private readonly db: Database,
    private readonly keys: SigningKeysService,
    private readonly keycloak: KeycloakHealthService,
    private readonly limiter: RateLimiter,
  ) {}

  /**
   * Ready to take traffic: the database answers and a key can sign. Keycloak, when configured, is
   * reported but not required: tenants on other identity providers still sign in without it.
   * Redis, when configured, likewise: without it rate limits are counted in PostgreSQL
   * (`rate_limits: postgres-fallback`), so a Redis outage degrades but never unreadies a replica.
   */
  async readiness(): Promise<Readiness> {
    const [database, keycloak, limits] = await Promise.all([this.db.ping(), this.keycloak.check(), this.limiter.health()]);
    const signingKey = this.keys.hasActiveKey();
    return {
      ok: database && signingKey,
      checks: {
        database: database ? 'up' : 'down',
        signing_key: signingKey ? 'active' : 'missing',
        ...(keycloak ? { keycloak } : {}),
        ...limits,
      },
    };
  }
}
