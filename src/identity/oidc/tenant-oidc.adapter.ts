import { Inject, Injectable, Logger } from '@nestjs/common';
import * as oidc from 'openid-client';
import { importJWK } from 'jose';
import { AppConfig } from '../../config/app-config.js';
import { DependencyUnavailableError, OAuthError, ProblemError } from '../../common/errors.js';
import type {
  BeginLoginResult,
  BindingContext,
  BindingHealth,
  BrowserLogin,
  CallbackInput,
  ConfigCheck,
  ExternalIdentity,
  HealthProbe,
  LoginContext,
  ProviderCapabilities,
  ValidatedBindingConfig,
} from '../port/identity-provider.port.js';
import { InvalidOidcBindingError, resolveOidcBinding, type ResolvedOidcBinding } from './tenant-oidc.config.js';
import { OidcClientCache, OidcDiscoveryError, type OidcClient } from './oidc-client.cache.js';
import { verifyIdToken } from './id-token.verifier.js';
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
import { checkOpenIdProvider } from './oidc-provider.check.js';

/** What beginLogin keeps with the login transaction (encrypted at rest by LoginService). */
interface OidcProviderState extends CodeFlowState {
  v: 1;
  issuer: string;
}

/** Tunables of the adapter; the defaults are what production uses. */
export const OIDC_ADAPTER_LIMITS = Object.freeze({
  discoveryTtlMs: 60 * 60_000,
  discoveryRetryMs: 30_000,
  /* Per-request HTTP timeout: UPSTREAM_TIMEOUT_MS (default 10 s). */
  /** At most one JWKS fetch per OP per this period, also when tokens name unknown keys. */
  jwksCooldownMs: 10_000,
  jwksMaxAgeMs: 10 * 60_000,
  /** Oldest `iat` accepted: the ID token is minted by the code exchange we just made. */
  idTokenMaxAgeSeconds: 600,
  /** Per request, when ops save a binding or the health of one is probed (discovery, JWKS). */
  checkTimeoutMs: 5_000,
});

const CHECK_TITLES = {
  'oidc-config': 'Invalid OIDC binding',
  'oidc-discovery': 'OIDC discovery check failed',
  'oidc-jwks': 'OIDC JWKS check failed',
} as const;

/** ID token claims that describe the token, not the user: userinfo never overrides them. */
const PROTOCOL_CLAIMS = [
  'iss',
  'sub',
  'aud',
  'azp',
  'exp',
  'iat',
  'nbf',
  'nonce',
  'auth_time',
  'at_hash',
  'c_hash',
  's_hash',
  'sid',
  'jti',
  'acr',
  'amr',
];

const UNVERIFIED = 'The identity provider’s answer could not be verified. Start again from the application.';
const REFUSED = 'The identity provider refused the sign-in. Start again from the application.';
const UNREACHABLE = 'The organisation’s identity provider could not be reached. Try again in a moment.';

const OIDC_FAILURE_WORDS: FlowFailureWords = {
  upstream: 'OP',
  log: {
    unavailable: 'OIDC provider unavailable',
    refused: 'OIDC provider refused the login',
    rejected: 'OIDC login refused',
    unexpected: 'OIDC login failed unexpectedly',
  },
  unreachable: UNREACHABLE,
  refused: REFUSED,
  unverified: UNVERIFIED,
  isUnavailable: (err) => err instanceof OidcDiscoveryError,
};

/**
 * A customer's own OpenID Provider (Okta, Entra ID, Google Workspace, PingID, Keycloak, any
 * certified OP): authorization code flow with PKCE S256, state and nonce. openid-client does the
 * protocol (discovery, authorization URL, client authentication, code exchange, RFC 9207 `iss`,
 * claim checks); the ID token's signature is verified here with jose against the OP's JWKS, under
 * the binding's algorithm allow-list.
 */
@Injectable()
export class TenantOidcProvider implements BrowserLogin, ConfigCheck, HealthProbe {
  readonly kind = 'oidc' as const;
  readonly capabilities: ProviderCapabilities = { loginRedirect: true, tokenExchange: false, logout: false };
  private readonly logger = new Logger(TenantOidcProvider.name);
  private readonly clients: OidcClientCache;

  constructor(@Inject(AppConfig) private readonly config: AppConfig) {
    this.clients = new OidcClientCache({
      discoveryTtlMs: OIDC_ADAPTER_LIMITS.discoveryTtlMs,
      discoveryRetryMs: OIDC_ADAPTER_LIMITS.discoveryRetryMs,
      timeoutSeconds: config.UPSTREAM_TIMEOUT_MS / 1000,
      clockSkewSeconds: config.CLOCK_SKEW_SECONDS,
      allowHttp: this.allowHttp,
      jwks: {
        cooldownMs: OIDC_ADAPTER_LIMITS.jwksCooldownMs,
        maxAgeMs: OIDC_ADAPTER_LIMITS.jwksMaxAgeMs,
        timeoutMs: config.UPSTREAM_TIMEOUT_MS,
      },
    });
  }

  private get allowHttp(): boolean {
    return this.config.NODE_ENV !== 'production';
  }

  async beginLogin(binding: BindingContext, ctx: LoginContext): Promise<BeginLoginResult> {
    const r = this.resolve(binding);
    let client: OidcClient;
    try {
      client = await this.clients.get(binding, r);
    } catch (err) {
      this.logger.warn({ binding: binding.id, reason: this.reasonOf(err) }, 'OIDC discovery failed');
      throw new DependencyUnavailableError('identity provider', UNREACHABLE, { cause: err, status: 502 });
    }
    const { redirectUrl, flow } = await startCodeFlow(client.configuration, {
      redirectUri: ctx.callbackUrl,
      scopes: r.scopes,
      state: ctx.transactionHandle,
      extraParams: { login_hint: ctx.loginHint, domain_hint: r.emailDomainHint, ...freshnessParams(ctx) },
    });
    const providerState: OidcProviderState = { v: 1, issuer: client.issuer, ...flow };
    return { redirectUrl, providerState: { ...providerState } };
  }

  async completeLogin(binding: BindingContext, callback: CallbackInput, rawState: Record<string, unknown>): Promise<ExternalIdentity> {
    const st = this.providerState(rawState);
    const r = this.resolve(binding);
    let client: OidcClient;
    try {
      client = await this.clients.get(binding, r);
    } catch (err) {
      throw this.fail(binding, 'discovery', err);
    }
    const params = authorizationResponse(callback);

    // The binding was edited to another OP between beginLogin and now: this answer is not for it.
    if (client.issuer !== st.issuer) throw this.refuse(binding, 'binding issuer changed during the login');
    // RFC 9207: an authorization response naming another issuer is a mix-up; an OP that
    // advertises the parameter must send it.
    const iss = params['iss'];
    if (iss !== undefined && iss !== client.issuer) throw this.refuse(binding, 'authorization response iss is another issuer');
    if (iss === undefined && client.configuration.serverMetadata().authorization_response_iss_parameter_supported === true)
      throw this.refuse(binding, 'authorization response lacks iss');
    let tokens: Awaited<ReturnType<typeof redeemCode>>;
    try {
      checkAuthorizationResponse(params, st);
      tokens = await redeemCode(client.configuration, params, st);
    } catch (err) {
      if (err instanceof AuthorizationResponseRefused) throw this.refuse(binding, err.reason);
      throw this.fail(binding, 'token', err);
    }

    let verified: Awaited<ReturnType<typeof verifyIdToken>>;
    try {
      verified = await verifyIdToken(tokens.id_token, client.jwks.getKey, {
        issuer: client.issuer,
        clientId: r.clientId,
        nonce: st.nonce,
        allowedAlgorithms: r.allowedAlgorithms,
        clientSecret: r.clientSecret,
        clockSkewSeconds: this.config.CLOCK_SKEW_SECONDS,
        maxAgeSeconds: OIDC_ADAPTER_LIMITS.idTokenMaxAgeSeconds,
      });
    } catch (err) {
      throw this.fail(binding, 'id_token', err);
    }

    let claims: Record<string, unknown> = { ...verified.claims };
    if (r.useUserinfo) {
      let info: Record<string, unknown>;
      try {
        info = await oidc.fetchUserInfo(client.configuration, tokens.access_token, verified.claims.sub);
      } catch (err) {
        throw this.fail(binding, 'userinfo', err);
      }
      // openid-client checks it too; a userinfo answer about another subject must never merge.
      if (info['sub'] !== verified.claims.sub) throw this.refuse(binding, 'userinfo sub is another subject');
      const profile = Object.fromEntries(Object.entries(info).filter(([k]) => !PROTOCOL_CLAIMS.includes(k)));
      // Signed ID token claims win over userinfo where both speak.
      claims = { ...profile, ...claims };
    }
    const authTime = typeof verified.claims['auth_time'] === 'number' ? new Date(verified.claims['auth_time'] * 1000) : undefined;
    return { issuer: client.issuer, subject: verified.claims.sub, claims, authTime };
  }

  /**
   * Before a binding is saved: the config and secrets are complete for the chosen client
   * authentication, and the OP answers as a login will need it (discovery, issuer, endpoints,
   * code flow, JWKS). Anything wrong is a 422 whose `type` says which part and whose detail names
   * exactly what (never a secret value).
   */
  async validateConfig(input: {
    tenantSlug: string;
    config: Record<string, unknown>;
    secrets: Record<string, unknown>;
  }): Promise<ValidatedBindingConfig> {
    let r: ResolvedOidcBinding;
    try {
      r = resolveOidcBinding(input.config, input.secrets, { allowHttp: this.allowHttp });
    } catch (err) {
      if (!(err instanceof InvalidOidcBindingError)) throw err;
      throw new ProblemError({
        type: 'oidc-config',
        title: CHECK_TITLES['oidc-config'],
        detail: err.problems.join('; '),
        extensions: {
          problems: err.problems,
        },
      });
    }
    if (r.privateJwk) {
      let asymmetric: boolean;
      try {
        asymmetric = !((await importJWK(r.privateJwk, r.privateJwk['alg'] as string)) instanceof Uint8Array);
      } catch {
        asymmetric = false;
      }
      if (!asymmetric)
        throw new ProblemError({
          type: 'oidc-config',
          title: CHECK_TITLES['oidc-config'],
          detail: 'secrets: privateJwk cannot be imported as an asymmetric private key',
          extensions: {
            problems: ['secrets: privateJwk cannot be imported as an asymmetric private key'],
          },
        });
    }
    const { health, failure } = await checkOpenIdProvider(r, { timeoutMs: OIDC_ADAPTER_LIMITS.checkTimeoutMs, allowHttp: this.allowHttp });
    if (failure)
      throw new ProblemError({
        type: failure.type,
        status: 422,
        title: CHECK_TITLES[failure.type],
        detail: failure.detail,
        extensions: { check: failure.check },
      });
    return { config: input.config, health };
  }

  /** Connection health of a saved binding: the same checks as validateConfig, reported instead of thrown. */
  async probe(binding: BindingContext): Promise<BindingHealth> {
    let r: ResolvedOidcBinding;
    try {
      r = resolveOidcBinding(binding.config, binding.secrets, { allowHttp: this.allowHttp });
    } catch (err) {
      if (!(err instanceof InvalidOidcBindingError)) throw err;
      return { ok: false, checks: { config: `invalid: ${err.problems.join('; ')}` } };
    }
    const { health, failure } = await checkOpenIdProvider(r, { timeoutMs: OIDC_ADAPTER_LIMITS.checkTimeoutMs, allowHttp: this.allowHttp });
    if (failure)
      this.logger.warn({ binding: binding.id, check: failure.check, reason: failure.detail }, 'OIDC provider health check failed');
    return health;
  }

  private resolve(binding: BindingContext): ResolvedOidcBinding {
    try {
      return resolveOidcBinding(binding.config, binding.secrets, { allowHttp: this.allowHttp });
    } catch (err) {
      if (!(err instanceof InvalidOidcBindingError)) throw err;
      this.logger.error({ binding: binding.id, problems: err.problems }, 'OIDC binding is misconfigured');
      throw new ProblemError({
        type: 'idp-misconfigured',
        detail: 'Sign-in for this organisation is misconfigured. Contact its administrator.',
        cause: err,
      });
    }
  }

  private providerState(raw: Record<string, unknown>): OidcProviderState {
    const s = raw as Partial<OidcProviderState>;
    if (s.v !== 1 || typeof s.issuer !== 'string' || s.issuer.length === 0 || !isCodeFlowState(s))
      throw new OAuthError('server_error', 'The sign-in could not be completed. Start again from the application.');
    return s as OidcProviderState;
  }

  private refuse(binding: BindingContext, reason: string): OAuthError {
    this.logger.warn({ binding: binding.id, reason }, 'OIDC login refused');
    return new OAuthError('access_denied', UNVERIFIED);
  }

  /**
   * Turns an upstream failure into an OAuth error for the client (LoginController sends it to the
   * BFF's redirect URI): unreachable OP → temporarily_unavailable; an OP that said no →
   * access_denied; anything that failed verification → access_denied. Only the reason is logged,
   * never tokens, codes or claims.
   */
  private fail(binding: BindingContext, step: string, err: unknown): OAuthError {
    return flowFailureError(err, OIDC_FAILURE_WORDS, this.logger, { binding: binding.id, step });
  }

  private reasonOf(err: unknown): string {
    return flowFailureReason(err, 'OP');
  }
}
