import { Inject, Injectable, Logger } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { Database, type Tx } from '../database/database.js';
import { SecretBox } from '../crypto/secret-box.js';
import { OAuthError } from '../common/errors.js';
import { TenantsService } from '../tenants/tenants.service.js';
import { BindingsService } from '../tenants/bindings.service.js';
import { IdentityProviderRegistry } from '../identity/identity-provider.registry.js';
import { SessionsRepository } from '../sessions/sessions.repository.js';

const upstreamStateContext = (sessionId: string) => `session_upstream:${sessionId}`;
const RETURN_CONTEXT = 'logout_return';
/** How long the browser may spend at the upstream's logout before coming back. */
const RETURN_TTL_SECONDS = 600;

/**
 * RP-initiated logout at the upstream IdP (Keycloak): adapters leave data with the platform
 * session (`ExternalIdentity.upstreamSession`, sealed here); once the platform session has ended,
 * the browser is sent to the upstream's logout, which sends it back to `/oauth2/logout/return`
 * with a sealed `state` naming the client's (already validated) post-logout redirect.
 */
@Injectable()
export class UpstreamLogoutService {
  private readonly logger = new Logger(UpstreamLogoutService.name);

  constructor(
    private readonly db: Database,
    private readonly box: SecretBox,
    private readonly tenants: TenantsService,
    private readonly bindings: BindingsService,
    private readonly registry: IdentityProviderRegistry,
    private readonly sessions: SessionsRepository,
    @Inject(AppConfig) private readonly config: AppConfig,
  ) {}

  /** Stores an adapter's upstream session data with a new platform session (inside the login's transaction). */
  async keep(m: Tx, sessionId: string, upstreamSession: Record<string, unknown> | undefined): Promise<void> {
    if (!upstreamSession) return;
    await this.sessions.setUpstreamState(m, sessionId, this.box.sealJson(upstreamSession, upstreamStateContext(sessionId)));
  }

  /**
   * The upstream logout URL for an (ended) platform session, or undefined when its adapter has no
   * upstream session to end. Best effort: an unreachable upstream never blocks the platform logout.
   */
  async logoutUrl(tenantId: string, sessionId: string, returnTo: string | undefined): Promise<string | undefined> {
    try {
      const tenant = await this.tenants.findById(tenantId);
      if (!tenant) return undefined;
      const found = await this.db.transaction({ tenant: tenant.id }, async (m) => {
        const s = await this.sessions.findUpstreamState(m, sessionId);
        if (!s?.bindingId || !s.upstreamState) return undefined;
        return {
          binding: await this.bindings.get(tenant, s.bindingId, m),
          upstream: this.box.openJson<Record<string, unknown>>(s.upstreamState, upstreamStateContext(sessionId)),
        };
      });
      if (!found) return undefined;
      const adapter = this.registry.upstreamLogout(found.binding.kind);
      if (!adapter) return undefined;
      const back = returnTo
        ? { postLogoutRedirectUri: `${this.config.issuer}/oauth2/logout/return`, state: this.sealReturn(returnTo) }
        : {};
      return await adapter.endSessionUrl(found.binding, found.upstream, back);
    } catch (err) {
      this.logger.warn({ tenant: tenantId, reason: err instanceof Error ? err.name : 'unknown' }, 'upstream logout skipped');
      return undefined;
    }
  }

  /** Where `/oauth2/logout/return` sends the browser: the client's post-logout redirect sealed in `state`. */
  returnTarget(state: unknown): string {
    const invalid = new OAuthError('invalid_request', 'The logout could not be completed: its state is missing, invalid or expired.');
    if (typeof state !== 'string' || state.length > 4096) throw invalid;
    try {
      const r = this.box.openJson<{ to: string; exp: number }>(Buffer.from(state, 'base64url'), RETURN_CONTEXT);
      if (typeof r.to !== 'string' || typeof r.exp !== 'number' || r.exp * 1000 < Date.now()) throw invalid;
      return r.to;
    } catch {
      throw invalid;
    }
  }

  private sealReturn(to: string): string {
    return this.box.sealJson({ to, exp: Math.floor(Date.now() / 1000) + RETURN_TTL_SECONDS }, RETURN_CONTEXT).toString('base64url');
  }
}
