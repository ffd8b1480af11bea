import { Inject, Injectable } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { Database, type Tx } from '../database/database.js';
import { mintOpaqueToken, parseOpaqueToken, successorOpaqueToken } from '../crypto/opaque-token.js';
import { SecretBox } from '../crypto/secret-box.js';
import { OAuthError } from '../common/errors.js';
import { TenantsService, type Tenant } from '../tenants/tenants.service.js';
import { UsersService } from '../users/users.service.js';
import { AuditService } from '../audit/audit.service.js';
import { TokenIssuerService, type PlatformSubject } from '../tokens/token-issuer.service.js';
import type { Client } from '../clients/clients.service.js';
import { PKCE_VERIFIER, pkceMatches, s256 } from '../login/pkce.js';
import { BindingsService } from '../tenants/bindings.service.js';
import { IdentityProviderRegistry } from '../identity/identity-provider.registry.js';
import { normaliseIdentity } from '../users/claim-normaliser.js';
import type { BindingContext, ExternalIdentity, TokenExchange } from '../identity/port/identity-provider.port.js';
import { DomainError } from '../common/errors.js';
import { SessionsRepository } from '../sessions/sessions.repository.js';
import { SessionsService } from '../sessions/sessions.service.js';
import { LoginTransactionsRepository } from '../login/login-transactions.repository.js';

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  scope: string;
  refresh_token?: string;
  id_token?: string;
  issued_token_type?: string;
}

/**
 * A client bound to a tenant only ever gets tokens of that tenant, whatever the grant: checked on
 * every grant before anything is read or changed, the same answer whether the other tenant exists
 * or not.
 */
export function assertClientTenant(client: Client, tenantId: string): void {
  if (client.tenantId !== null && client.tenantId !== tenantId)
    throw new OAuthError('invalid_grant', 'This client is bound to another organisation.');
}

/**
 * The token endpoint's grants. Every grant persists what it must (code consumed, refresh token
 * rotated) in one transaction before a token is signed; a reuse that revokes a family commits the
 * revocation even though the request fails.
 */
@Injectable()
export class TokenService {
  /** Derives each refresh token's successor from the presented value (ADR 0012). */
  private readonly successorKey: Buffer;

  constructor(
    private readonly db: Database,
    private readonly tenants: TenantsService,
    private readonly users: UsersService,
    private readonly audit: AuditService,
    private readonly issuer: TokenIssuerService,
    private readonly bindings: BindingsService,
    private readonly registry: IdentityProviderRegistry,
    private readonly sessions: SessionsRepository,
    private readonly sessionRules: SessionsService,
    private readonly codes: LoginTransactionsRepository,
    @Inject(AppConfig) private readonly config: AppConfig,
    box: SecretBox,
  ) {
    this.successorKey = box.deriveKey('refresh-token-successor');
  }

  /**
   * RFC 8693: an upstream token (a Firebase ID token, a Keycloak access token) for a platform
   * token. The organisation is named with `org`, as at the authorization endpoint; the tenant's
   * active bindings are tried by priority for one whose adapter accepts the token type.
   */
  async tokenExchange(client: Client, body: Record<string, unknown>): Promise<TokenResponse> {
    if (!client.grantTypes.includes(TOKEN_EXCHANGE_GRANT))
      throw new OAuthError('unauthorized_client', 'This client may not use token exchange.');
    const token = body['subject_token'];
    const tokenType = body['subject_token_type'];
    if (typeof token !== 'string' || token.length === 0 || token.length > 16_384)
      throw new OAuthError('invalid_request', 'subject_token is required.');
    if (typeof tokenType !== 'string') throw new OAuthError('invalid_request', 'subject_token_type is required.');
    const requestedType = body['requested_token_type'];
    if (requestedType !== undefined && requestedType !== ACCESS_TOKEN_TYPE)
      throw new OAuthError('invalid_request', 'Only access tokens can be requested.');
    if (typeof body['org'] !== 'string') throw new OAuthError('invalid_request', 'org (the organisation slug) is required.');
    const tenant = await this.tenants.findActiveBySlug(body['org'].trim().toLowerCase());
    // One answer for an unknown organisation and another tenant's: a bound client learns nothing.
    if (!tenant || (client.tenantId !== null && client.tenantId !== tenant.id))
      throw new OAuthError('invalid_grant', 'The token cannot be exchanged for this organisation.');
    // The highest-priority active binding whose adapter exchanges this token type.
    let binding: BindingContext | undefined;
    let exchanger: TokenExchange | undefined;
    for (const b of await this.bindings.allActive(tenant)) {
      exchanger = this.registry.tokenExchange(b.kind, tokenType);
      if (exchanger) {
        binding = b;
        break;
      }
    }
    if (!binding || !exchanger)
      throw new OAuthError('invalid_request', `This organisation does not accept subject_token_type "${tokenType}".`);
    let external;
    try {
      external = await exchanger.exchangeToken(binding, { token, tokenType });
    } catch (err) {
      if (err instanceof DomainError) throw err;
      throw new OAuthError('invalid_grant', 'The subject token was rejected.', { cause: err });
    }
    const normalised = normaliseIdentity(binding.claimMapping, external);
    if (external.machineClientId)
      return this.machineExchange(client, tenant, binding, external.machineClientId, external, normalised.roles, body);
    const scope = typeof body['scope'] === 'string' && body['scope'].trim() ? body['scope'].trim() : 'openid';
    const outcome = await this.db.transaction({ tenant: tenant.id }, async (m) => {
      const user = await this.users.resolveLogin(m, binding, external, normalised);
      const sessionId = await this.sessions.create(m, {
        tenantId: tenant.id,
        userId: user.id,
        clientId: client.id,
        bindingId: binding.id,
        idp: binding.kind,
        idpSub: external.subject,
        authTime: external.authTime ?? new Date(),
      });
      await this.audit.record(m, {
        tenantId: tenant.id,
        actor: `client:${client.id}`,
        action: 'token.exchanged',
        target: user.id,
        data: { idp: binding.kind, binding: binding.id },
      });
      const subject = await this.subjectFor(m, tenant, sessionId, client.id, scope);
      const refresh = client.grantTypes.includes('refresh_token')
        ? await this.insertRefreshToken(m, tenant.id, sessionId, scope)
        : undefined;
      return { subject: subject!, refresh };
    });
    const response = await this.respond(outcome.subject, outcome.refresh, undefined, false);
    return { ...response, issued_token_type: ACCESS_TOKEN_TYPE };
  }

  /**
   * Token exchange for a machine (an upstream service account): the platform token's subject is
   * `client:<upstream client id>` in the tenant, with the binding's mapped roles and a subset of the
   * calling client's scopes, like client_credentials. No user, session or refresh token: a machine
   * exchanges again when its token expires.
   */
  private async machineExchange(
    client: Client,
    tenant: Tenant,
    binding: BindingContext,
    machineClientId: string,
    external: ExternalIdentity,
    roles: string[],
    body: Record<string, unknown>,
  ): Promise<TokenResponse> {
    const requested = typeof body['scope'] === 'string' && body['scope'].trim() ? body['scope'].split(' ').filter(Boolean) : client.scopes;
    const denied = requested.filter((s) => !client.scopes.includes(s));
    if (denied.length) throw new OAuthError('invalid_scope', `Scope not allowed for this client: ${denied.join(' ')}.`);
    const subject = `client:${machineClientId}`;
    await this.db.transaction({ tenant: tenant.id }, (q) =>
      this.audit.record(q, {
        tenantId: tenant.id,
        actor: `client:${client.id}`,
        action: 'token.exchanged',
        target: subject,
        data: { idp: binding.kind, binding: binding.id, machine: true },
      }),
    );
    const access = await this.issuer.issueAccessToken({
      tenantId: tenant.id,
      tenantSlug: tenant.slug,
      userId: subject,
      clientId: client.id,
      scope: requested.join(' '),
      roles,
      idp: binding.kind,
      idpSub: external.subject,
      authTime: external.authTime ?? new Date(),
    });
    return {
      access_token: access.token,
      token_type: 'Bearer',
      expires_in: access.expiresIn,
      scope: requested.join(' '),
      issued_token_type: ACCESS_TOKEN_TYPE,
    };
  }

  async authorizationCode(client: Client, body: Record<string, unknown>): Promise<TokenResponse> {
    if (!client.grantTypes.includes('authorization_code'))
      throw new OAuthError('unauthorized_client', 'This client may not use the authorization_code grant.');
    const code = parseOpaqueToken('ac', body['code']);
    if (!code) throw new OAuthError('invalid_grant', 'The authorization code is invalid, expired or already used.');
    if (typeof body['redirect_uri'] !== 'string') throw new OAuthError('invalid_request', 'redirect_uri is required.');
    if (typeof body['code_verifier'] !== 'string') throw new OAuthError('invalid_request', 'code_verifier is required (PKCE).');
    assertClientTenant(client, code.tenantId);
    const tenant = await this.activeTenant(code.tenantId);

    // One statement in one round trip (LoginTransactionsRepository.redeemCode, Database.statement):
    // the code is locked and consumed, its session and user read, and the refresh token inserted
    // only if every check below passes. The checks then read the returned row, in the order they are
    // reported; a replay revokes in a transaction of its own.
    const verifier = body['code_verifier'];
    const refresh = client.grantTypes.includes('refresh_token') ? mintOpaqueToken('rt', tenant.id) : undefined;
    const row = await this.db.statement({ tenant: tenant.id }, (m) =>
      this.codes.redeemCode(m, {
        codeHash: code.hash,
        tenantId: tenant.id,
        clientId: client.id,
        redirectUri: body['redirect_uri'] as string,
        pkceChallenge: PKCE_VERIFIER.test(verifier) ? s256(verifier) : undefined,
        refresh: refresh && { tokenHash: refresh.hash, expiresAt: new Date(Date.now() + this.config.REFRESH_TOKEN_TTL_SECONDS * 1000) },
      }),
    );
    const refused = (description: string) => new OAuthError('invalid_grant', description);
    const unusable = 'The authorization code is invalid, expired or already used.';
    if (!row) throw refused(unusable);
    if (row.consumedBefore) {
      // RFC 6749 §4.1.2: a replayed code revokes what it had issued.
      await this.db.transaction({ tenant: tenant.id }, (m) =>
        this.sessionRules.revoke(m, tenant.id, row.sessionId, 'authorization_code_replayed'),
      );
      throw refused(unusable);
    }
    if (row.expired) throw refused(unusable);
    if (row.clientId !== client.id) throw refused('The authorization code was issued to another client.');
    if (row.redirectUri !== body['redirect_uri']) throw refused('redirect_uri does not match the authorization request.');
    if (!pkceMatches(verifier, row.codeChallenge)) throw refused('PKCE verification failed: code_verifier does not match code_challenge.');
    const s = row.session;
    if (!s || s.revoked || !s.userActive) throw refused('The session has ended.');
    if (refresh && !row.refreshIssued) throw new Error('authorization code passed every check but no refresh token was inserted');
    const subject: PlatformSubject = {
      tenantId: tenant.id,
      tenantSlug: tenant.slug,
      userId: s.userId,
      clientId: client.id,
      scope: row.scope,
      roles: s.roles,
      idp: s.idp,
      idpSub: s.idpSub,
      authTime: s.authTime,
      amr: s.amr,
      sessionId: row.sessionId,
      email: s.email,
      emailVerified: s.emailVerified,
      name: s.displayName,
    };
    return this.respond(subject, refresh?.value, row.nonce);
  }

  async refreshToken(client: Client, body: Record<string, unknown>): Promise<TokenResponse> {
    if (!client.grantTypes.includes('refresh_token'))
      throw new OAuthError('unauthorized_client', 'This client may not use the refresh_token grant.');
    const presented = parseOpaqueToken('rt', body['refresh_token']);
    if (!presented) throw new OAuthError('invalid_grant', 'The refresh token is invalid, expired or revoked.');
    assertClientTenant(client, presented.tenantId);
    // The hot path, one statement in one round trip (Database.statement): lock the token and its
    // session, read what the new tokens say, and rotate only if every check passes, the requested
    // scope within the granted one included. What failed is then read from the returned row; a
    // failure that must leave a trace (reuse, disabled user) revokes the session in a transaction of
    // its own, which takes the session lock again before it decides.
    // The successor is derived from the presented value, not random: a re-presentation within the
    // reuse grace can then be answered with the very token the rotation returned (ADR 0012).
    const next = successorOpaqueToken('rt', presented, this.successorKey);
    const tenantId = presented.tenantId;
    const requested = body['scope'];
    const row = await this.db.statement({ tenant: tenantId }, (q) =>
      this.sessions.rotateRefreshToken(q, {
        presentedHash: presented.hash,
        nextHash: next.hash,
        tenantId,
        clientId: client.id,
        expiresAt: new Date(Date.now() + this.config.REFRESH_TOKEN_TTL_SECONDS * 1000),
        narrowTo: typeof requested === 'string' && requested.trim() !== '' ? requested.split(' ').filter(Boolean) : undefined,
      }),
    );
    const invalid = () => new OAuthError('invalid_grant', 'The refresh token is invalid, expired or revoked.');
    if (!row || row.revokedAt) throw invalid();
    if (row.tenantStatus !== 'active') throw new OAuthError('invalid_grant', 'The grant is invalid for this organisation.');
    if (row.clientId !== client.id) throw new OAuthError('invalid_grant', 'The refresh token was issued to another client.');
    if (row.rotatedAt) {
      // Presented again after its rotation. Within the grace, by the client it belongs to (checked
      // above), with the session alive (checked above, and locked again here) and the successor
      // still the family's current token: the same successor again, e.g. a second browser tab
      // refreshing at the same moment. Otherwise reuse: someone holds a copy. End the whole family.
      const current = await this.db.transaction({ tenant: tenantId }, async (q) => {
        await this.sessions.lock(q, row.sessionId);
        if (await this.successorStillCurrent(q, presented.hash, next.hash)) return true;
        await this.sessionRules.revoke(q, tenantId, row.sessionId, 'refresh_token_reused');
        return false;
      });
      if (!current) throw invalid();
    } else if (row.expired) throw invalid();
    if (row.userStatus !== 'active') {
      await this.db.transaction({ tenant: tenantId }, (q) => this.sessionRules.revoke(q, tenantId, row.sessionId, 'user_disabled'));
      throw invalid();
    }
    // Throws invalid_scope for a scope beyond the granted one; the statement did not rotate then.
    const scope = this.narrowScope(row.scope, requested);
    if (!row.rotated && !row.rotatedAt) throw new Error('refresh token passed every check but was not rotated');
    const subject: PlatformSubject = {
      tenantId,
      tenantSlug: row.tenantSlug,
      userId: row.userId,
      clientId: client.id,
      scope,
      roles: row.roles,
      idp: row.idp,
      idpSub: row.idpSub,
      authTime: row.authTime,
      amr: row.amr,
      sessionId: row.sessionId,
      email: row.email,
      emailVerified: row.emailVerified,
      name: row.displayName,
    };
    return this.respond(subject, next.value, undefined, false);
  }

  /**
   * The reuse grace (REFRESH_TOKEN_REUSE_GRACE_SECONDS, 0 = off): was `presented` rotated at most
   * that long ago, and is its successor `next` still unrotated and unexpired? A
   * successor that has itself been rotated already means the family moved on: that is reuse, even
   * within the grace. Its own transaction, run only for a rotated token (never on the hot path): the
   * caller locks the session first (as a rotation does), then this reads with a snapshot taken after
   * the lock was granted, so it sees any successor a concurrent rotation committed, and the lock
   * keeps the successor from rotating until the decision (and a revocation) commits. Database time
   * on both sides, so replicas' clocks do not matter.
   */
  private async successorStillCurrent(q: Tx, presentedHash: string, nextHash: string): Promise<boolean> {
    const grace = this.config.REFRESH_TOKEN_REUSE_GRACE_SECONDS;
    if (grace <= 0) return false;
    return this.sessions.successorStillCurrent(q, presentedHash, nextHash, grace);
  }

  /** Machine clients: a token for the client itself, in its tenant, with a subset of its scopes. */
  async clientCredentials(client: Client, body: Record<string, unknown>): Promise<TokenResponse> {
    if (client.kind !== 'machine' || !client.grantTypes.includes('client_credentials'))
      throw new OAuthError('unauthorized_client', 'This client may not use the client_credentials grant.');
    if (!client.tenantId) throw new OAuthError('unauthorized_client', 'This machine client is not bound to a tenant.');
    const tenant = await this.activeTenant(client.tenantId);
    const requested = typeof body['scope'] === 'string' ? body['scope'].split(' ').filter(Boolean) : client.scopes;
    const denied = requested.filter((s) => !client.scopes.includes(s));
    if (denied.length) throw new OAuthError('invalid_scope', `Scope not allowed for this client: ${denied.join(' ')}.`);
    const access = await this.issuer.issueAccessToken({
      tenantId: tenant.id,
      tenantSlug: tenant.slug,
      userId: `client:${client.id}`,
      clientId: client.id,
      scope: requested.join(' '),
      roles: [],
      idp: 'platform',
      idpSub: client.id,
      authTime: new Date(),
    });
    return { access_token: access.token, token_type: 'Bearer', expires_in: access.expiresIn, scope: requested.join(' ') };
  }

  /** RFC 7009. Refresh tokens end their session (the whole family); access tokens end theirs via `sid`. */
  async revoke(client: Client, token: unknown): Promise<void> {
    if (typeof token !== 'string' || token.length === 0) throw new OAuthError('invalid_request', 'token is required.');
    const refresh = parseOpaqueToken('rt', token);
    if (refresh) {
      const tenant = await this.tenants.findById(refresh.tenantId);
      if (!tenant) return;
      await this.db.transaction({ tenant: tenant.id }, async (tx) => {
        const sessionId = await this.sessions.findSessionOfRefreshToken(tx, refresh.hash, client.id);
        if (sessionId) await this.sessionRules.revoke(tx, tenant.id, sessionId, 'revoked_by_client');
      });
      return;
    }
    let claims;
    try {
      claims = await this.issuer.verifyAccessToken(token);
    } catch {
      return; // RFC 7009 §2.2: an invalid token is not an error.
    }
    // Only the database may fail from here on, and that is an error the client must see (503).
    if (claims.sid && claims.client_id === client.id) await this.endSession(claims.tid, claims.sid, 'revoked_by_client');
  }

  async endSession(tenantId: string, sessionId: string, reason: string): Promise<void> {
    await this.sessionRules.end(tenantId, sessionId, reason);
  }

  private async activeTenant(id: string): Promise<Tenant> {
    const tenant = await this.tenants.findById(id);
    if (!tenant || tenant.status !== 'active') throw new OAuthError('invalid_grant', 'The grant is invalid for this organisation.');
    return tenant;
  }

  private narrowScope(granted: string, requested: unknown): string {
    if (typeof requested !== 'string' || requested.trim() === '') return granted;
    const have = new Set(granted.split(' '));
    const want = requested.split(' ').filter(Boolean);
    if (want.some((s) => !have.has(s))) throw new OAuthError('invalid_scope', 'A refresh may only narrow the granted scope.');
    return want.join(' ');
  }

  private async subjectFor(
    m: Tx,
    tenant: Tenant,
    sessionId: string,
    clientId: string,
    scope: string,
  ): Promise<PlatformSubject | undefined> {
    const s = await this.sessions.find(m, sessionId);
    if (!s || s.revokedAt) return undefined;
    const user = await this.users.get(m, s.userId);
    if (!user || user.status !== 'active') return undefined;
    return {
      tenantId: tenant.id,
      tenantSlug: tenant.slug,
      userId: user.id,
      clientId,
      scope,
      roles: user.roles,
      idp: s.idp,
      idpSub: s.idpSub,
      authTime: s.authTime,
      amr: s.amr,
      sessionId: s.id,
      email: user.email,
      emailVerified: user.emailVerified,
      name: user.displayName,
    };
  }

  private async insertRefreshToken(m: Tx, tenantId: string, sessionId: string, scope: string): Promise<string> {
    const token = mintOpaqueToken('rt', tenantId);
    await this.sessions.insertRefreshToken(m, {
      tokenHash: token.hash,
      tenantId,
      sessionId,
      scope,
      expiresAt: new Date(Date.now() + this.config.REFRESH_TOKEN_TTL_SECONDS * 1000),
    });
    return token.value;
  }

  private async respond(
    subject: PlatformSubject,
    refresh: string | undefined,
    nonce: string | null | undefined,
    withIdToken = true,
  ): Promise<TokenResponse> {
    const access = await this.issuer.issueAccessToken(subject);
    const response: TokenResponse = {
      access_token: access.token,
      token_type: 'Bearer',
      expires_in: access.expiresIn,
      scope: subject.scope,
    };
    if (refresh) response.refresh_token = refresh;
    if (withIdToken && subject.scope.split(' ').includes('openid')) response.id_token = await this.issuer.issueIdToken(subject, nonce);
    return response;
  }
}
