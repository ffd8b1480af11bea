import { Inject, Injectable, Logger } from '@nestjs/common';
import * as oidc from 'openid-client';
import type { JWTPayload } from 'jose';
import { AppConfig } from '../../config/app-config.js';
import { constantEquals } from '../../crypto/random.js';
import { DependencyUnavailableError, OAuthError, ProblemError } from '../../common/errors.js';
import type {
  BeginLoginResult,
  BindingContext,
  BindingHealth,
  BrowserLogin,
  CallbackInput,
  ConfigCheck,
  EndSessionOptions,
  ExternalIdentity,
  ExternalTokenInput,
  HealthProbe,
  LoginContext,
  ProviderCapabilities,
  TokenExchange,
  UpstreamLogout,
  ValidatedBindingConfig,
} from '../port/identity-provider.port.js';
import { InvalidKeycloakBindingError, resolveKeycloakBinding, type ResolvedKeycloakBinding } from './keycloak-binding.config.js';
import { KEYCLOAK_LIMITS, KeycloakDiscoveryError, KeycloakRealms } from './keycloak-realms.js';
import { KeycloakProvisioningService, type ProvisioningChecks } from './keycloak-provisioning.service.js';
import { organizationAliases, verifyKeycloakJwt } from './keycloak-tokens.js';
import { JwksUnavailableError } from '../shared/remote-jwks.js';
import { UpstreamTokenRejectedError } from '../shared/upstream-jwt.js';
import {
  AuthorizationResponseRefused,
  authorizationResponse,
  checkAuthorizationResponse,
  flowFailureError,
  type FlowFailureWords,
  flowFailureReason,
  isCodeFlowState,
  redeemCode,
  freshnessParams,
  startCodeFlow,
  type CodeFlowState,
} from '../shared/oidc-code-flow.js';

export const KEYCLOAK_ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

/** What beginLogin keeps with the login transaction (encrypted at rest by LoginService). */
interface KeycloakProviderState extends CodeFlowState {
  v: 1;
  realm: string;
  clientId: string;
  issuer: string;
  /** Organization mode: the alias whose membership the ID token must show. */
  organizationAlias: string | null;
}

/** What the platform session keeps for RP-initiated logout (encrypted at rest). */
interface KeycloakUpstreamSession {
  v: 1;
  realm: string;
  clientId: string;
  idToken: string;
}

/** Oldest ID token accepted: it was minted by the code exchange just made. */
const ID_TOKEN_MAX_AGE_SECONDS = 600;
/** ID token claims that describe the token, not the user: never handed to the claim normaliser. */
const PROTOCOL_CLAIMS = [
  'iss',
  'aud',
  'azp',
  'exp',
  'iat',
  'nbf',
  'nonce',
  'at_hash',
  'c_hash',
  's_hash',
  'sid',
  'session_state',
  'jti',
  'typ',
  'acr',
  'amr',
];

const UNREACHABLE = 'Sign-in is temporarily unavailable. Try again in a moment.';
const UNVERIFIED = 'The sign-in could not be verified. Start again from the application.';
const REFUSED = 'The identity provider refused the sign-in. Start again from the application.';
const KEYCLOAK_FAILURE_WORDS: FlowFailureWords = {
  upstream: 'Keycloak',
  log: {
    unavailable: 'Keycloak unavailable',
    refused: 'Keycloak refused the login',
    rejected: 'Keycloak login refused',
    unexpected: 'Keycloak login failed unexpectedly',
  },
  unreachable: UNREACHABLE,
  refused: REFUSED,
  unverified: UNVERIFIED,
  isUnavailable: (err) => err instanceof KeycloakDiscoveryError && !err.misconfigured,
};
export const NOT_A_MEMBER =
  'You are not a member of this organisation. Sign in with an account that belongs to it, or ask its administrator for access.';

/**
 * Keycloak, the platform's default IdP: authorization code + PKCE S256 + nonce + state against the
 * shared realm with the tenant's Organization requested (`organization:<alias>`), or against a
 * tenant's dedicated realm. openid-client runs the protocol; the ID token (and the access token
 * that carries the roles) are verified here with jose against the realm's keys, and the
 * organisation claim is checked here: Keycloak lets a non-member log in and merely leaves the
 * claim out, so the requested scope proves nothing.
 *
 * Token exchange (RFC 8693) accepts service-account access tokens of the Keycloak clients the
 * binding lists (machine-to-machine); their subject becomes `client:<azp>`.
 */
@Injectable()
export class KeycloakProvider implements BrowserLogin, TokenExchange, UpstreamLogout, ConfigCheck, HealthProbe {
  readonly kind = 'keycloak' as const;
  readonly capabilities: ProviderCapabilities = { loginRedirect: true, tokenExchange: true, logout: true };
  readonly exchangeTokenTypes = [KEYCLOAK_ACCESS_TOKEN_TYPE] as const;
  private readonly logger = new Logger(KeycloakProvider.name);

  constructor(
    @Inject(AppConfig) private readonly config: AppConfig,
    private readonly realms: KeycloakRealms,
    private readonly provisioning: KeycloakProvisioningService,
  ) {}

  async beginLogin(binding: BindingContext, ctx: LoginContext): Promise<BeginLoginResult> {
    const b = this.resolve(binding);
    let configuration: oidc.Configuration;
    try {
      configuration = await this.realms.configuration(b, KEYCLOAK_LIMITS.loginStartFreshMs);
    } catch (err) {
      throw this.unavailableAtStart(binding, err);
    }
    const { redirectUrl, flow } = await startCodeFlow(configuration, {
      redirectUri: ctx.callbackUrl,
      scopes: b.scopes,
      state: ctx.transactionHandle,
      extraParams: { login_hint: ctx.loginHint, kc_idp_hint: b.identityProviderHint, ...freshnessParams(ctx) },
    });
    const st: KeycloakProviderState = {
      v: 1,
      realm: b.realm,
      clientId: b.clientId,
      issuer: configuration.serverMetadata().issuer,
      organizationAlias: b.organizationAlias ?? null,
      ...flow,
    };
    return { redirectUrl, providerState: { ...st } };
  }

  async completeLogin(binding: BindingContext, callback: CallbackInput, rawState: Record<string, unknown>): Promise<ExternalIdentity> {
    const st = this.providerState(rawState);
    const b = this.resolve(binding);
    // The binding was edited between beginLogin and now: this answer is not for it any more.
    if (b.realm !== st.realm || b.clientId !== st.clientId || (b.organizationAlias ?? null) !== st.organizationAlias)
      throw this.refuse(binding, 'binding changed during the login');
    const params = authorizationResponse(callback);
    try {
      checkAuthorizationResponse(params, st);
    } catch (err) {
      if (err instanceof AuthorizationResponseRefused) throw this.refuse(binding, err.reason);
      throw err;
    }

    let configuration: oidc.Configuration;
    try {
      configuration = await this.realms.configuration(b, KEYCLOAK_LIMITS.discoveryMaxAgeMs);
    } catch (err) {
      throw this.fail(binding, 'discovery', err);
    }
    if (configuration.serverMetadata().issuer !== st.issuer) throw this.refuse(binding, 'realm issuer changed during the login');

    let tokens: Awaited<ReturnType<typeof redeemCode>>;
    try {
      tokens = await redeemCode(configuration, params, st, ['code', 'state', 'iss', 'session_state']);
    } catch (err) {
      if (err instanceof AuthorizationResponseRefused) throw this.refuse(binding, err.reason);
      throw this.fail(binding, 'token', err);
    }

    const keys = this.realms.keys(b.realm).getKey;
    let idClaims: JWTPayload & { sub: string };
    let accessClaims: JWTPayload & { sub: string };
    try {
      idClaims = await verifyKeycloakJwt(tokens.id_token, keys, {
        issuer: st.issuer,
        audience: b.clientId,
        clockSkewSeconds: this.config.CLOCK_SKEW_SECONDS,
        requiredClaims: ['sub', 'nonce'],
        maxTokenAgeSeconds: ID_TOKEN_MAX_AGE_SECONDS,
        keycloakTyp: 'ID',
      });
      if (typeof idClaims.nonce !== 'string' || !constantEquals(idClaims.nonce, st.nonce))
        throw new UpstreamTokenRejectedError('nonce does not match');
      if (idClaims.azp !== undefined && idClaims.azp !== b.clientId) throw new UpstreamTokenRejectedError('azp is another client');
      // Realm and client roles are in the access token only (Keycloak's role mappers leave the ID
      // token out by default); it comes from the same response and must be about the same user.
      accessClaims = await verifyKeycloakJwt(tokens.access_token, keys, {
        issuer: st.issuer,
        clockSkewSeconds: this.config.CLOCK_SKEW_SECONDS,
        requiredClaims: ['sub', 'azp'],
        keycloakTyp: 'Bearer',
      });
      if (accessClaims.azp !== b.clientId) throw new UpstreamTokenRejectedError('access token azp is another client');
      if (accessClaims.sub !== idClaims.sub) throw new UpstreamTokenRejectedError('access token is about another subject');
    } catch (err) {
      throw this.fail(binding, 'id_token', err);
    }

    const claims: Record<string, unknown> = Object.fromEntries(Object.entries(idClaims).filter(([k]) => !PROTOCOL_CLAIMS.includes(k)));
    for (const name of ['realm_access', 'resource_access', 'groups'] as const)
      if (accessClaims[name] !== undefined) claims[name] ??= accessClaims[name];
    if (st.organizationAlias !== null) {
      // The organisation is the tenant's only if Keycloak says the user is a member: a non-member
      // is logged in without the claim, a tampered request names another organisation.
      const inIdToken = organizationAliases(idClaims['organization']);
      const inAccessToken = organizationAliases(accessClaims['organization']);
      if (
        !inIdToken.includes(st.organizationAlias) ||
        (accessClaims['organization'] !== undefined && !inAccessToken.includes(st.organizationAlias))
      ) {
        this.logger.warn(
          {
            binding: binding.id,
            reason: inIdToken.length === 0 ? 'no organization claim' : 'organization claim names other organisations',
          },
          'Keycloak login refused: not a member',
        );
        throw new OAuthError('access_denied', NOT_A_MEMBER);
      }
      // Role rules see this tenant's organisation only, whatever else the user belongs to.
      claims['organization'] = [st.organizationAlias];
    } else {
      delete claims['organization'];
    }
    const upstream: KeycloakUpstreamSession = { v: 1, realm: st.realm, clientId: st.clientId, idToken: tokens.id_token };
    return {
      issuer: st.issuer,
      subject: idClaims.sub,
      claims,
      authTime: typeof idClaims['auth_time'] === 'number' ? new Date(idClaims['auth_time'] * 1000) : undefined,
      upstreamSession: { ...upstream },
    };
  }

  /**
   * RFC 8693 for machines: a service-account access token of a Keycloak client the binding lists,
   * issued by the binding's realm for the configured audience, signed by the realm's key.
   */
  async exchangeToken(binding: BindingContext, input: ExternalTokenInput): Promise<ExternalIdentity> {
    if (input.tokenType !== KEYCLOAK_ACCESS_TOKEN_TYPE)
      throw new OAuthError('invalid_request', 'Only Keycloak access tokens can be exchanged.');
    const b = this.resolve(binding);
    const issuer = this.realms.issuer(b.realm);
    let claims: JWTPayload & { sub: string };
    try {
      claims = await verifyKeycloakJwt(input.token, this.realms.keys(b.realm).getKeyWithoutWaiting, {
        issuer,
        audience: b.audience,
        clockSkewSeconds: this.config.CLOCK_SKEW_SECONDS,
        requiredClaims: ['sub', 'azp'],
        keycloakTyp: 'Bearer',
      });
    } catch (err) {
      if (err instanceof JwksUnavailableError) {
        this.logger.warn({ binding: binding.id, reason: this.reasonOf(err) }, 'Keycloak keys unavailable for a token exchange');
        throw new OAuthError('temporarily_unavailable', UNREACHABLE, { cause: err, retryAfter: 5 });
      }
      this.logger.warn({ binding: binding.id, reason: this.reasonOf(err) }, 'Keycloak token exchange refused');
      throw new OAuthError('invalid_grant', 'The subject token was rejected.', { cause: err });
    }
    const azp = claims.azp as string;
    // Keycloak writes `client_id` into service-account tokens only: a user's token for the same
    // client is not a machine identity.
    if (!b.machineClients.includes(azp) || claims['client_id'] !== azp) {
      this.logger.warn(
        {
          binding: binding.id,
          reason: b.machineClients.includes(azp) ? 'not a service-account token' : 'client not allowed for this tenant',
        },
        'Keycloak token exchange refused',
      );
      throw new OAuthError('invalid_grant', 'The subject token was rejected.');
    }
    const kept = Object.fromEntries(Object.entries(claims).filter(([k]) => !PROTOCOL_CLAIMS.includes(k) && k !== 'organization'));
    return {
      issuer,
      subject: claims.sub,
      claims: kept,
      authTime: typeof claims.iat === 'number' ? new Date(claims.iat * 1000) : undefined,
      machineClientId: azp,
    };
  }

  async endSessionUrl(binding: BindingContext, upstream: Record<string, unknown>, opts: EndSessionOptions): Promise<string | undefined> {
    const u = upstream as Partial<KeycloakUpstreamSession>;
    if (u.v !== 1 || typeof u.idToken !== 'string' || typeof u.realm !== 'string' || typeof u.clientId !== 'string') return undefined;
    const b = this.resolve(binding);
    // The session's realm and client, as they were at login (a since-edited binding keeps its secret for the same client only).
    if (b.realm !== u.realm || b.clientId !== u.clientId) return undefined;
    const configuration = await this.realms.configuration(b, KEYCLOAK_LIMITS.discoveryMaxAgeMs);
    if (!configuration.serverMetadata().end_session_endpoint) return undefined;
    const params: Record<string, string> = { id_token_hint: u.idToken, client_id: u.clientId };
    if (opts.postLogoutRedirectUri) params['post_logout_redirect_uri'] = opts.postLogoutRedirectUri;
    if (opts.state) params['state'] = opts.state;
    return oidc.buildEndSessionUrl(configuration, params).href;
  }

  /**
   * Admin API: a binding's configuration is checked, and Keycloak made to match it, before it is
   * saved (create and update): the tenant's Organization (alias, name, domains) with its brokered
   * IdP, or its dedicated realm and client, are provisioned idempotently when the service has admin
   * credentials; then the realm is asked. Keycloak refusing a change → 422; Keycloak unreachable →
   * 503 and nothing saved (re-sending the same request completes what a failed one started).
   */
  async validateConfig(input: {
    tenantSlug: string;
    config: Record<string, unknown>;
    secrets: Record<string, unknown>;
  }): Promise<ValidatedBindingConfig> {
    const settings = this.realms.settings;
    if (!settings)
      throw new ProblemError({
        type: 'binding-invalid',
        title: 'Keycloak not configured',
        detail: 'This service has no Keycloak (KEYCLOAK_URL is unset).',
      });
    let b: ResolvedKeycloakBinding;
    try {
      b = resolveKeycloakBinding(input.config, input.secrets, input.tenantSlug, settings);
    } catch (err) {
      if (!(err instanceof InvalidKeycloakBindingError)) throw err;
      throw new ProblemError({
        type: 'binding-invalid',
        title: 'Invalid Keycloak binding',
        detail: err.problems.join('; '),
        extensions: { problems: err.problems },
        cause: err,
      });
    }
    let provisioned: ProvisioningChecks;
    if (!this.provisioning.enabled) provisioned = { provisioning: 'skipped: KEYCLOAK_ADMIN_* not set, the Keycloak side is not checked' };
    else {
      try {
        provisioned = await this.provisioning.provisionBinding(input.tenantSlug, b.provisioning);
      } catch (err) {
        // The service's own state (no admin rights, Keycloak down) keeps its 5xx; the binding's is a 422.
        if (err instanceof ProblemError && err.status >= 400 && err.status < 500)
          throw new ProblemError({
            type: 'binding-invalid',
            title: 'Invalid Keycloak binding',
            detail: err.detail ?? err.title,
            extensions: { reason: err.type },
            cause: err,
          });
        throw err;
      }
    }
    const health = await this.health(b);
    if (health.checks['discovery']?.startsWith('misconfigured'))
      throw new ProblemError({
        type: 'binding-invalid',
        title: 'Invalid Keycloak binding',
        detail: `The realm "${b.realm}" cannot be used: ${health.checks['discovery']}.`,
      });
    return { config: { ...input.config }, health: { ...health, checks: { ...provisioned, ...health.checks } } };
  }

  /** Admin API: the binding's realm answers discovery as configured. */
  async probe(binding: BindingContext): Promise<BindingHealth> {
    return this.health(this.resolve(binding));
  }

  private async health(b: ResolvedKeycloakBinding): Promise<BindingHealth> {
    try {
      await this.realms.configuration(b, 0);
      return { ok: true, checks: { discovery: 'ok' } };
    } catch (err) {
      const misconfigured = err instanceof KeycloakDiscoveryError && err.misconfigured;
      return { ok: false, checks: { discovery: `${misconfigured ? 'misconfigured' : 'unreachable'}: ${this.reasonOf(err)}` } };
    }
  }

  private resolve(binding: BindingContext): ResolvedKeycloakBinding {
    const settings = this.realms.settings;
    if (!settings) {
      this.logger.error({ binding: binding.id }, 'a tenant is bound to Keycloak but KEYCLOAK_URL is not configured');
      throw new ProblemError({
        type: 'idp-misconfigured',
        detail: 'Sign-in for this organisation is misconfigured. Contact the platform operators.',
      });
    }
    try {
      return resolveKeycloakBinding(binding.config, binding.secrets, binding.tenantSlug, settings);
    } catch (err) {
      if (!(err instanceof InvalidKeycloakBindingError)) throw err;
      this.logger.error({ binding: binding.id, problems: err.problems }, 'Keycloak binding is misconfigured');
      throw new ProblemError({
        type: 'idp-misconfigured',
        detail: 'Sign-in for this organisation is misconfigured. Contact the platform operators.',
        cause: err,
      });
    }
  }

  private providerState(raw: Record<string, unknown>): KeycloakProviderState {
    const s = raw as Partial<KeycloakProviderState>;
    const strings = [s.realm, s.clientId, s.issuer];
    if (
      s.v !== 1 ||
      strings.some((v) => typeof v !== 'string' || v.length === 0) ||
      !isCodeFlowState(s) ||
      (s.organizationAlias !== null && typeof s.organizationAlias !== 'string')
    )
      throw new OAuthError('server_error', 'The sign-in could not be completed. Start again from the application.');
    return s as KeycloakProviderState;
  }

  /** Keycloak could not be asked at the start: nothing is written, the client gets a 503 it can retry. */
  private unavailableAtStart(binding: BindingContext, err: unknown): ProblemError {
    const reason = this.reasonOf(err);
    if (err instanceof KeycloakDiscoveryError && err.misconfigured) {
      this.logger.error({ binding: binding.id, reason }, 'Keycloak realm is misconfigured');
      return new ProblemError({
        type: 'idp-misconfigured',
        detail: 'Sign-in for this organisation is misconfigured. Contact the platform operators.',
        cause: err,
      });
    }
    this.logger.warn({ binding: binding.id, reason }, 'Keycloak unavailable at login start');
    return new DependencyUnavailableError('Keycloak', UNREACHABLE, { cause: err, status: 503 });
  }

  private refuse(binding: BindingContext, reason: string): OAuthError {
    this.logger.warn({ binding: binding.id, reason }, 'Keycloak login refused');
    return new OAuthError('access_denied', UNVERIFIED);
  }

  /**
   * An upstream failure as an OAuth error for the BFF (LoginController redirects it there):
   * Keycloak unreachable → temporarily_unavailable; Keycloak said no → access_denied; anything
   * that failed verification → access_denied. Only reasons are logged, never tokens or claims.
   */
  private fail(binding: BindingContext, step: string, err: unknown): OAuthError {
    return flowFailureError(err, KEYCLOAK_FAILURE_WORDS, this.logger, { binding: binding.id, step });
  }

  private reasonOf(err: unknown): string {
    return flowFailureReason(err, 'Keycloak');
  }
}
