import { createHash } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import * as oidc from 'openid-client';
import { RemoteJwks } from '../shared/remote-jwks.js';
import { AppConfig } from '../../config/app-config.js';
import { keycloakSettings, realmDiscoveryUrl, realmIssuer, realmJwksUrl, type KeycloakSettings } from './keycloak-settings.js';

/** Tunables; the defaults are what production uses (tests may lower them). */
export const KEYCLOAK_LIMITS = {
  /**
   * A login start re-reads the realm's discovery document when the cached one is older than this:
   * the start then doubles as a health check (Keycloak down → a clear 503 instead of sending the
   * browser to a dead page) while bursts of starts share one request.
   */
  loginStartFreshMs: 2_000,
  /** Callbacks, logouts and token exchanges use a discovery document up to this old. */
  discoveryMaxAgeMs: 10 * 60_000,
  /** HTTP timeout for discovery, token and JWKS requests, in seconds. */
  timeoutSeconds: 5,
  /** Admin API calls (provisioning: creating a realm takes Keycloak seconds, more under load), in seconds. */
  provisioningTimeoutSeconds: 60,
  jwksCooldownMs: 30_000,
  jwksMaxAgeMs: 10 * 60_000,
};

/** Discovery failed; `reason` is safe to log. `misconfigured` means Keycloak answered, but not as configured. */
export class KeycloakDiscoveryError extends Error {
  constructor(
    readonly reason: string,
    readonly misconfigured: boolean,
    options?: { cause?: unknown },
  ) {
    super(`Keycloak discovery failed: ${reason}`, options);
    this.name = 'KeycloakDiscoveryError';
  }
}

export interface RealmClient {
  realm: string;
  clientId: string;
  clientSecret: string;
}

interface Entry {
  configuration?: oidc.Configuration;
  fetchedAt: number;
  pending?: Promise<oidc.Configuration>;
}

const sha = (s: string) => createHash('sha256').update(s).digest('base64url');

/**
 * openid-client configurations (per realm and client) and jose key sets (per realm) for the
 * configured Keycloak. Nothing here is login state, only what can be fetched again; a failed fetch
 * is never cached, so a Keycloak that comes back is used again at once.
 */
@Injectable()
export class KeycloakRealms {
  readonly settings: KeycloakSettings | undefined;
  private readonly entries = new Map<string, Entry>();
  private readonly keySets = new Map<string, RemoteJwks>();

  constructor(@Inject(AppConfig) private readonly config: AppConfig) {
    this.settings = keycloakSettings(config);
  }

  /** The realm's issuer identifier (what `iss` must say). */
  issuer(realm: string): string {
    return realmIssuer(this.required(), realm);
  }

  /** An openid-client configuration no older than `maxAgeMs`. */
  async configuration(rc: RealmClient, maxAgeMs: number): Promise<oidc.Configuration> {
    const key = `${rc.realm}\u0000${rc.clientId}\u0000${sha(rc.clientSecret)}`;
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { fetchedAt: 0 };
      this.entries.set(key, entry);
    }
    if (entry.configuration && Date.now() - entry.fetchedAt <= maxAgeMs) return entry.configuration;
    const e = entry;
    e.pending ??= this.discover(rc)
      .then((configuration) => {
        e.configuration = configuration;
        e.fetchedAt = Date.now();
        return configuration;
      })
      .finally(() => {
        e.pending = undefined;
      });
    return e.pending;
  }

  /**
   * The realm's signing keys (fetched over the back channel, refreshed on an unknown `kid`): its
   * `getKey` for tokens from the realm's token endpoint, `getKeyWithoutWaiting` for tokens a client
   * presents (see RemoteJwks).
   */
  keys(realm: string): RemoteJwks {
    let set = this.keySets.get(realm);
    if (!set) {
      set = new RemoteJwks(realmJwksUrl(this.required(), realm), {
        timeoutMs: KEYCLOAK_LIMITS.timeoutSeconds * 1000,
        cooldownMs: KEYCLOAK_LIMITS.jwksCooldownMs,
        maxAgeMs: KEYCLOAK_LIMITS.jwksMaxAgeMs,
      });
      this.keySets.set(realm, set);
    }
    return set;
  }

  private required(): KeycloakSettings {
    if (!this.settings) throw new KeycloakDiscoveryError('Keycloak is not configured (KEYCLOAK_URL)', true);
    return this.settings;
  }

  private async discover(rc: RealmClient): Promise<oidc.Configuration> {
    const s = this.required();
    let configuration: oidc.Configuration;
    try {
      configuration = await oidc.discovery(
        realmDiscoveryUrl(s, rc.realm),
        rc.clientId,
        {
          client_id: rc.clientId,
          token_endpoint_auth_method: 'client_secret_basic',
          [oidc.clockTolerance]: this.config.CLOCK_SKEW_SECONDS,
        },
        oidc.ClientSecretBasic(rc.clientSecret),
        // eslint-disable-next-line @typescript-eslint/no-deprecated -- openid-client marks it deprecated only to flag it; used for plain-HTTP local peers only
        { execute: s.allowHttp ? [oidc.allowInsecureRequests] : [], timeout: KEYCLOAK_LIMITS.timeoutSeconds },
      );
    } catch (cause) {
      const status =
        cause instanceof oidc.ResponseBodyError
          ? cause.status
          : (cause as { cause?: unknown }).cause instanceof Response
            ? (cause as { cause: Response }).cause.status
            : undefined;
      // A 404 is a realm that does not exist: configuration, not availability.
      throw new KeycloakDiscoveryError(
        status ? `discovery answered HTTP ${status}` : cause instanceof Error ? cause.name : 'unknown',
        status === 404,
        { cause },
      );
    }
    configuration.timeout = KEYCLOAK_LIMITS.timeoutSeconds;
    // The document comes over the back channel; its issuer must be the one browsers (and tokens) use.
    if (configuration.serverMetadata().issuer !== realmIssuer(s, rc.realm))
      throw new KeycloakDiscoveryError('the realm’s issuer is not KEYCLOAK_FRONTEND_URL/realms/<realm> (check KC_HOSTNAME)', true);
    return configuration;
  }
}
