import { Injectable } from '@nestjs/common';
import { KeycloakRealms } from './keycloak-realms.js';
import { realmDiscoveryUrl } from './keycloak-settings.js';

const PROBE_TIMEOUT_MS = 2_000;

/**
 * Readiness of the configured Keycloak: its shared realm answers. Reported, never fatal — the
 * service still serves every tenant that does not sign in through Keycloak.
 */
@Injectable()
export class KeycloakHealthService {
  constructor(private readonly realms: KeycloakRealms) {}

  /** `undefined` when Keycloak is not configured. */
  async check(): Promise<'up' | 'down' | undefined> {
    const s = this.realms.settings;
    if (!s) return undefined;
    try {
      const res = await fetch(realmDiscoveryUrl(s, s.realm), { redirect: 'manual', signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
      await res.body?.cancel();
      return res.status === 200 ? 'up' : 'down';
    } catch {
      return 'down';
    }
  }
}
