import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { Database, type Tx } from '../database/database.js';
import { SecretBox } from '../crypto/secret-box.js';
import { mintOpaqueToken, parseOpaqueToken } from '../crypto/opaque-token.js';
import { randomToken, sha256 } from '../crypto/random.js';
import { DependencyUnavailableError, OAuthError, ProblemError } from '../common/errors.js';
import { TenantsService, type Tenant } from '../tenants/tenants.service.js';
import { BindingsService } from '../tenants/bindings.service.js';
import { IdentityProviderRegistry } from '../identity/identity-provider.registry.js';
import type { BindingContext, CallbackInput, ExternalIdentity } from '../identity/port/identity-provider.port.js';
import { InvalidCredentialsError } from '../identity/native/native.adapter.js';
import { normaliseIdentity, type NormalisedIdentity } from '../users/claim-normaliser.js';
import { UsersService } from '../users/users.service.js';
import { AuditService } from '../audit/audit.service.js';
import { RateLimiter } from '../rate-limit/rate-limiter.js';
import { ClientsService } from '../clients/clients.service.js';
import { PKCE_S256_CHALLENGE } from './pkce.js';
import { UpstreamLogoutService } from './upstream-logout.service.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { SessionsRepository } from '../sessions/sessions.repository.js';
import { LoginTransactionsRepository, type LoginRequest, type MfaState } from './login-transactions.repository.js';
import { TotpService, mfaPolicyOf, type PendingEnrolment } from '../identity/native/totp.service.js';
import { InvalidPasskeyError, PasskeyService, passkeyPolicyOf } from '../identity/native/passkeys.service.js';
import { ACR_MFA } from '../tokens/token-issuer.service.js';
import type { PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/server';
import { mustReauthenticate, parseFreshness, staleAuthentication } from './login-freshness.js';
import { normaliseUiLocales } from '../i18n/index.js';

export interface AuthorizeParams {
  response_type?: string;
  client_id?: string;
  redirect_uri?: string;
  state?: string;
  scope?: string;
  nonce?: string;
  code_challenge?: string;
  code_challenge_method?: string;
  org?: string;
  login_hint?: string;
  acr_values?: string;
  /** Set by the hosted organisation page's form: the organisation was typed there. */
  org_prompt?: string;
  max_age?: string;
  prompt?: string;
  ui_locales?: string;
}

/** Where a native login goes after a form: back to the client, or to a second-step page. */
export type NativeStep =
  | { kind: 'redirect'; url: string }
  | { kind: 'verify'; totp: boolean; passkey?: PublicKeyCredentialRequestOptionsJSON }
  | { kind: 'offer' }
  | { kind: 'enrol'; enrolment: PendingEnrolment; optional: boolean }
  | { kind: 'recovery-codes'; codes: string[] }
  | { kind: 'passkey-offer'; options: PublicKeyCredentialCreationOptionsJSON };

/** What the second-step form asked for. */
export type SecondStepAction = 'verify' | 'start' | 'confirm' | 'skip' | 'continue' | 'passkey' | 'passkey-register' | 'passkey-skip';
export const SECOND_STEP_ACTIONS: readonly SecondStepAction[] = [
  'verify',
  'start',
  'confirm',
  'skip',
  'continue',
  'passkey',
  'passkey-register',
  'passkey-skip',
];

const AMR_PASSWORD = ['pwd'];
const AMR_MFA = ['pwd', 'otp', 'mfa'];
/** A passkey with user verification is two factors in one (possession, and the PIN or biometric). */
const amrPasskey = (method: 'hwk' | 'swk'): string[] => [method, 'mfa'];
const amrPasswordAndPasskey = (method: 'hwk' | 'swk'): string[] => ['pwd', method, 'mfa'];

/**
 * The client lets the service ask for the organisation (`organizationPrompt`) and the request has
 * none, or one typed on that page that names no organisation: the hosted page is shown instead.
 */
export class OrganizationPromptNeeded extends Error {
  constructor(readonly unknownOrganization: boolean) {
    super(unknownOrganization ? 'Unknown organisation.' : 'The organisation is needed.');
  }
}

/** An authorization error that can be sent back to the client's (already validated) redirect URI. */
export class RedirectableError extends Error {
  constructor(
    readonly redirectUri: string,
    readonly state: string | undefined,
    readonly error: string,
    readonly description: string,
  ) {
    super(description);
  }
}

export interface LoginTransaction extends LoginRequest {
  handle: string;
  tenant: Tenant;
  bindingId: string;
  providerState: Record<string, unknown>;
  csrfHash: string | null;
  /** The second step of a native login under way (identity opened). */
  mfa: (Omit<MfaState, 'identity'> & { identity: ExternalIdentity }) | null;
  /** When the transaction began (what `prompt=login` is measured against). */
  createdAt: Date;
}

const SUPPORTED_SCOPES = new Set(['openid', 'profile', 'email', 'offline_access']);
const MAX_PARAM = 2048;
const providerStateContext = (hash: string) => `login_transaction:${hash}`;
const mfaIdentityContext = (hash: string) => `login_transaction_mfa:${hash}`;

export const redirectWith = (redirectUri: string, params: Record<string, string | undefined>): string => {
  const url = new URL(redirectUri);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
  return url.toString();
};

/**
 * The BFF-facing login: validates the authorization request, resolves the organisation, lets the
 * tenant's adapter run the upstream login, and turns its result into a single-use code.
 */
@Injectable()
export class LoginService {
  private readonly logger = new Logger(LoginService.name);

  constructor(
    private readonly db: Database,
    private readonly box: SecretBox,
    private readonly tenants: TenantsService,
    private readonly bindings: BindingsService,
    private readonly registry: IdentityProviderRegistry,
    private readonly users: UsersService,
    private readonly clients: ClientsService,
    private readonly audit: AuditService,
    private readonly limiter: RateLimiter,
    private readonly upstreamLogout: UpstreamLogoutService,
    private readonly transactions: LoginTransactionsRepository,
    private readonly sessions: SessionsRepository,
    private readonly totp: TotpService,
    private readonly passkeys: PasskeyService,
    @Inject(AppConfig) private readonly config: AppConfig,
    @Optional() private readonly metrics?: MetricsService,
  ) {}

  /** Returns the URL to send the browser to (the upstream IdP, or the hosted form). */
  async begin(p: AuthorizeParams, clientIp: string): Promise<string> {
    for (const [k, v] of Object.entries(p)) {
      if (typeof v !== 'string' && v !== undefined) throw new OAuthError('invalid_request', `Parameter "${k}" must appear once.`);
      if (typeof v === 'string' && v.length > MAX_PARAM) throw new OAuthError('invalid_request', `Parameter "${k}" is too long.`);
    }
    // RFC 6749 §4.1.2.1: without a valid client and redirect URI, never redirect.
    const client = await this.clients.find(p.client_id);
    if (!client) throw new OAuthError('invalid_client', 'Unknown client_id.', { status: 400 });
    if (!p.redirect_uri || !client.redirectUris.includes(p.redirect_uri))
      throw new OAuthError('invalid_request', 'redirect_uri is not registered for this client (exact match required).');
    const fail = (error: string, description: string) => new RedirectableError(p.redirect_uri!, p.state, error, description);

    if (client.kind !== 'bff' || !client.grantTypes.includes('authorization_code'))
      throw fail('unauthorized_client', 'This client may not use the authorization code flow.');
    if (p.response_type !== 'code') throw fail('unsupported_response_type', 'Only response_type=code is supported.');
    if (!p.code_challenge) throw fail('invalid_request', 'PKCE is required: send code_challenge with code_challenge_method=S256.');
    if (p.code_challenge_method !== 'S256') throw fail('invalid_request', 'Only code_challenge_method=S256 is supported.');
    if (!PKCE_S256_CHALLENGE.test(p.code_challenge))
      throw fail('invalid_request', 'code_challenge must be a base64url SHA-256 digest (43 characters).');
    const scopes = (p.scope ?? 'openid').split(' ').filter(Boolean);
    const unknown = scopes.filter((s) => !SUPPORTED_SCOPES.has(s));
    if (unknown.length > 0) throw fail('invalid_scope', `Unsupported scope: ${unknown.join(' ')}.`);
    const fresh = parseFreshness(p.max_age, p.prompt);
    if (fresh.invalid !== undefined) throw fail('invalid_request', fresh.invalid);
    if (!p.org?.trim()) {
      if (client.organizationPrompt) throw new OrganizationPromptNeeded(false);
      throw fail('invalid_request', 'The organisation (org) is required.');
    }

    const limit = await this.limiter.hit(`authorize:${clientIp}`, this.config.RATE_LIMIT_AUTHORIZE_PER_MINUTE);
    if (!limit.allowed) {
      this.metrics?.rateLimitHit('authorize');
      throw fail('temporarily_unavailable', `Too many sign-in attempts from this network; try again in ${limit.retryAfter} s.`);
    }

    const slug = p.org.trim().toLowerCase();
    // A client bound to a tenant signs in that tenant's users only. Decided on the client's own
    // tenant, before the slug is looked up, so the answer says nothing about other organisations.
    if (client.tenantId !== null) {
      const own = await this.tenants.findById(client.tenantId);
      if (own?.slug !== slug) throw fail('unauthorized_client', 'This application signs in users of its own organisation only.');
    }
    const tenant = await this.tenants.findActiveBySlug(slug);
    if (!tenant) {
      // Typed on the hosted page: asked again there, not sent back to the application.
      if (client.organizationPrompt && p.org_prompt === '1') throw new OrganizationPromptNeeded(true);
      throw fail('unknown_organization', 'Organisation not found. Check the organisation name and try again.');
    }
    const tenantLimit = await this.limiter.hit(`authorize-tenant:${tenant.id}`, this.config.RATE_LIMIT_AUTHORIZE_PER_TENANT_PER_MINUTE);
    if (!tenantLimit.allowed) {
      this.metrics?.rateLimitHit('authorize');
      throw fail('temporarily_unavailable', `Too many sign-ins for this organisation right now; try again in ${tenantLimit.retryAfter} s.`);
    }

    // The highest-priority active binding with a browser login: during a Firebase overlap the
    // tenant's firebase_legacy binding (token exchange only) stays active beside the one users sign in with.
    const active = await this.bindings.allActive(tenant);
    if (active.length === 0) throw fail('temporarily_unavailable', 'Sign-in is not set up for this organisation yet.');
    const binding = active.find((b) => this.registry.browserLogin(b.kind) !== undefined);
    if (!binding) throw fail('temporarily_unavailable', 'This organisation signs in through its application, not a browser redirect.');

    return this.startUpstream(tenant, binding, {
      purpose: 'login',
      clientId: client.id,
      redirectUri: p.redirect_uri,
      state: p.state ?? null,
      nonce: p.nonce ?? null,
      scope: scopes.join(' '),
      codeChallenge: p.code_challenge,
      loginHint: p.login_hint,
      mfaRequested: (p.acr_values ?? '').split(' ').includes(ACR_MFA),
      uiLocales: normaliseUiLocales(p.ui_locales),
      ...fresh.freshness,
    });
  }

  /**
   * A test login through a (draft) binding, for the customer's IT admin: the same upstream
   * protocol run, ending on a result page instead of issuing anything.
   */
  async beginTest(tenant: Tenant, binding: BindingContext): Promise<string> {
    if (!this.registry.browserLogin(binding.kind))
      throw new ProblemError({ type: 'not-testable', detail: `A ${binding.kind} binding has no browser login to test.` });
    return this.startUpstream(tenant, binding, {
      purpose: 'test',
      clientId: null,
      redirectUri: null,
      state: null,
      nonce: null,
      scope: 'openid',
      codeChallenge: null,
    });
  }

  private async startUpstream(tenant: Tenant, binding: BindingContext, t: LoginRequest & { loginHint?: string }): Promise<string> {
    const provider = this.registry.browserLogin(binding.kind);
    if (!provider)
      throw new OAuthError('temporarily_unavailable', 'This organisation signs in through its application, not a browser redirect.');
    const handle = mintOpaqueToken('lt', tenant.id);
    const base = this.config.issuer;
    const started = await provider
      .beginLogin(binding, {
        transactionHandle: handle.value,
        callbackUrl: `${base}/login/callback/${binding.kind}`,
        hostedLoginUrl: `${base}/login/native/${encodeURIComponent(handle.value)}`,
        loginHint: t.loginHint,
        maxAge: t.maxAge ?? undefined,
        reauthenticate: mustReauthenticate(t),
      })
      .catch((err: unknown) => {
        if (err instanceof ProblemError || err instanceof OAuthError) throw err;
        this.logger.warn(
          { tenant: tenant.id, binding: binding.id, kind: binding.kind, err: (err as Error)?.message },
          'identity provider unreachable at login start',
        );
        throw new DependencyUnavailableError(
          'identity provider',
          `The organisation's identity provider could not be reached. Try again in a moment.`,
          { cause: err, status: 503 },
        );
      });
    await this.db.transaction({ tenant: tenant.id }, (tx) =>
      this.transactions.insert(tx, {
        idHash: handle.hash,
        tenantId: tenant.id,
        bindingId: binding.id,
        purpose: t.purpose,
        clientId: t.clientId,
        redirectUri: t.redirectUri,
        state: t.state,
        nonce: t.nonce,
        scope: t.scope,
        codeChallenge: t.codeChallenge,
        mfaRequested: t.mfaRequested,
        maxAge: t.maxAge,
        promptLogin: t.promptLogin,
        uiLocales: t.uiLocales,
        providerState: this.box.sealJson(started.providerState, providerStateContext(handle.hash)),
        expiresAt: new Date(Date.now() + this.config.LOGIN_TRANSACTION_TTL_SECONDS * 1000),
      }),
    );
    return started.redirectUrl;
  }

  /** Loads an open (not expired, not completed) transaction, or throws a user-facing error. */
  async load(handleValue: string): Promise<LoginTransaction> {
    return this.open(handleValue);
  }

  /** `load` and `issueCsrf` in one transaction: the hosted form's GET. */
  async loadWithCsrf(handleValue: string): Promise<{ txn: LoginTransaction; csrf: string }> {
    let csrf = '';
    const txn = await this.open(handleValue, async (tx) => {
      csrf = await this.bindCsrf(tx, handleValue);
    });
    return { txn, csrf };
  }

  /** `also` runs in the same transaction, once the transaction is known to be open. */
  private async open(handleValue: string, also?: (tx: Tx) => Promise<void>): Promise<LoginTransaction> {
    const handle = parseOpaqueToken('lt', handleValue);
    // Made only when thrown: an error's stack trace is not free, and most loads succeed.
    const expired = () =>
      new ProblemError({
        type: 'login-expired',
        detail: 'This sign-in link is invalid or has expired. Start again from the application.',
      });
    if (!handle) throw expired();
    const tenant = await this.tenants.findById(handle.tenantId);
    if (!tenant || tenant.status !== 'active') throw expired();
    const row = await this.db.transaction({ tenant: tenant.id }, async (tx) => {
      const found = await this.transactions.find(tx, handle.hash);
      if (also && found && !found.completedAt && found.expiresAt.getTime() > Date.now()) await also(tx);
      return found;
    });
    if (!row) throw expired();
    if (row.completedAt || row.expiresAt.getTime() <= Date.now()) {
      const error = expired();
      // The transaction names the application's registered redirect URI: its origin is a safe
      // place to send the user back to, to start again.
      if (row.redirectUri && URL.canParse(row.redirectUri)) error.returnTo = new URL(row.redirectUri).origin;
      throw error;
    }
    return {
      handle: handle.value,
      tenant,
      bindingId: row.bindingId,
      purpose: row.purpose,
      clientId: row.clientId,
      redirectUri: row.redirectUri,
      state: row.state,
      nonce: row.nonce,
      scope: row.scope,
      codeChallenge: row.codeChallenge,
      providerState: row.providerState ? this.box.openJson(row.providerState, providerStateContext(handle.hash)) : {},
      csrfHash: row.csrfHash,
      mfaRequested: row.mfaRequested,
      maxAge: row.maxAge,
      promptLogin: row.promptLogin,
      uiLocales: row.uiLocales,
      createdAt: row.createdAt,
      mfa: row.mfa && {
        userId: row.mfa.userId,
        stage: row.mfa.stage,
        identity: this.box.openJson<ExternalIdentity>(row.mfa.identity, mfaIdentityContext(handle.hash)),
        amr: row.mfa.amr,
      },
    };
  }

  /** Binds a fresh CSRF token to the transaction (hosted form); returns the token. */
  async issueCsrf(txn: LoginTransaction): Promise<string> {
    return this.db.transaction({ tenant: txn.tenant.id }, (tx) => this.bindCsrf(tx, txn.handle));
  }

  /** A fresh CSRF token, its hash stored on the transaction; returns the token. */
  private async bindCsrf(tx: Tx, handleValue: string): Promise<string> {
    const token = randomToken();
    await this.transactions.setCsrf(tx, sha256(handleValue), sha256(token));
    return token;
  }

  async binding(txn: LoginTransaction): Promise<BindingContext> {
    // Test logins run through drafts on purpose.
    if (txn.purpose === 'test')
      return this.db.transaction({ tenant: txn.tenant.id }, (m) => this.bindings.get(txn.tenant, txn.bindingId, m));
    // A login finishes only through a binding still in service (the cached active set): retiring or
    // disabling one (a compromised IdP, the end of an overlap) also stops the logins under way through it.
    const binding = (await this.bindings.allActive(txn.tenant)).find((b) => b.id === txn.bindingId);
    if (!binding)
      throw new OAuthError(
        'temporarily_unavailable',
        'The way this organisation signs in changed during your sign-in. Please start again.',
      );
    return binding;
  }

  /**
   * Completes the upstream login and returns the redirect back to the client with a code.
   * Adapter errors propagate (the caller decides between re-showing a form and redirecting).
   */
  async complete(txn: LoginTransaction, callback: CallbackInput): Promise<string> {
    const binding = await this.binding(txn);
    const provider = this.registry.browserLogin(binding.kind);
    if (!provider) throw new OAuthError('invalid_request', 'This identity provider does not complete browser logins.');
    let external;
    try {
      external = await provider.completeLogin(binding, callback, txn.providerState);
    } catch (err) {
      if (!(err instanceof InvalidCredentialsError))
        await this.bindings.recordLoginOutcome(txn.tenant.id, binding.id, false, (err as Error)?.message);
      throw err;
    }
    // OIDC Core §3.1.2.1: max_age / prompt=login, against what the upstream says (fail closed).
    const stale = staleAuthentication(txn, external.authTime, txn.createdAt, this.config.CLOCK_SKEW_SECONDS);
    if (stale) {
      this.logger.warn(
        { tenant: txn.tenant.id, binding: binding.id, kind: binding.kind, reason: stale },
        'login refused: authentication too old',
      );
      throw new OAuthError('login_required', 'The identity provider did not confirm a recent enough sign-in. Sign in again.');
    }
    return this.finish(txn, binding, external, binding.kind === 'native' ? AMR_PASSWORD : undefined);
  }

  /**
   * The hosted form's password: then, by the tenant's policy (`config.mfa` of the native binding)
   * and the user's factors, either the redirect back to the client or the second step the login
   * now waits on (kept on the transaction). Test logins check the password only.
   */
  async submitPassword(txn: LoginTransaction, callback: CallbackInput): Promise<NativeStep> {
    const binding = await this.binding(txn);
    const provider = this.registry.browserLogin(binding.kind);
    if (binding.kind !== 'native' || !provider) throw new OAuthError('invalid_request', 'This sign-in has no hosted form.');
    const external = await provider.completeLogin(binding, callback, txn.providerState);
    const userId = external.knownUserId;
    if (txn.purpose === 'test' || !userId) return { kind: 'redirect', url: await this.finish(txn, binding, external, AMR_PASSWORD) };
    const policy = mfaPolicyOf(binding.config);
    const [totp, passkey] = await Promise.all([this.totp.hasConfirmed(txn.tenant.id, userId), this.hasPasskey(txn, binding, userId)]);
    const required = policy === 'required' || txn.mfaRequested === true;
    // A user with TOTP always passes a second step; a passkey is one where a second step is required.
    if (totp || (passkey && required)) {
      await this.setMfa(txn, { userId, stage: 'verify', identity: external });
      return this.verifyStep(txn, userId, totp, passkey);
    }
    if (required) {
      await this.setMfa(txn, { userId, stage: 'enrol', identity: external });
      return { kind: 'enrol', enrolment: await this.beginEnrolment(txn, userId, external), optional: false };
    }
    // A user with a passkey already has a stronger way in: no offer of TOTP on each password sign-in.
    if (policy === 'optional' && !passkey) {
      await this.setMfa(txn, { userId, stage: 'offer', identity: external });
      return { kind: 'offer' };
    }
    return this.authenticated(txn, binding, userId, external, AMR_PASSWORD, passkey);
  }

  /**
   * A password-less sign-in with a passkey on the hosted form (the tenant allows passkeys): the
   * assertion must answer the challenge the form was given, by a passkey of the tenant.
   */
  async submitPasskey(txn: LoginTransaction, credential: string): Promise<NativeStep> {
    const binding = await this.binding(txn);
    if (binding.kind !== 'native' || txn.purpose !== 'login' || passkeyPolicyOf(binding.config) !== 'allowed')
      throw new ProblemError({ type: 'login-step', detail: 'This organisation does not sign in with passkeys.' });
    const signedIn = await this.passkeys.authenticate(txn.tenant.id, credential, await this.takeChallenge(txn));
    const external: ExternalIdentity = {
      issuer: 'native',
      subject: signedIn.userId,
      knownUserId: signedIn.userId,
      claims: { preferred_username: signedIn.username },
      authTime: new Date(),
    };
    return { kind: 'redirect', url: await this.finish(txn, binding, external, amrPasskey(signedIn.method)) };
  }

  /** The options of the hosted form's "sign in with a passkey" (its challenge kept), when the tenant allows passkeys. */
  async passkeySignInOptions(txn: LoginTransaction): Promise<PublicKeyCredentialRequestOptionsJSON | undefined> {
    if (txn.purpose !== 'login') return undefined;
    // A binding retired meanwhile: no passkey form; the form's POST ends the login with the error.
    const binding = await this.binding(txn).catch((err: unknown) => {
      if (err instanceof OAuthError) return undefined;
      throw err;
    });
    if (!binding) return undefined;
    if (binding.kind !== 'native' || passkeyPolicyOf(binding.config) !== 'allowed') return undefined;
    const options = await this.passkeys.authenticationOptions(txn.tenant.id);
    await this.keepChallenge(txn, options.challenge);
    return options;
  }

  private async hasPasskey(txn: LoginTransaction, binding: BindingContext, userId: string): Promise<boolean> {
    return passkeyPolicyOf(binding.config) === 'allowed' && this.passkeys.hasAny(txn.tenant.id, userId);
  }

  private async verifyStep(
    txn: LoginTransaction,
    userId: string,
    totp: boolean,
    passkey: boolean,
  ): Promise<NativeStep & { kind: 'verify' }> {
    if (!passkey) return { kind: 'verify', totp };
    const options = await this.passkeys.authenticationOptions(txn.tenant.id, userId);
    await this.keepChallenge(txn, options.challenge);
    return { kind: 'verify', totp, passkey: options };
  }

  /**
   * The user is authenticated (`amr`): back to the client, or first, where the tenant allows
   * passkeys and the user has none, the offer to register one.
   */
  private async authenticated(
    txn: LoginTransaction,
    binding: BindingContext,
    userId: string,
    external: ExternalIdentity,
    amr: string[],
    hasPasskey?: boolean,
  ): Promise<NativeStep> {
    if (passkeyPolicyOf(binding.config) === 'allowed' && !(hasPasskey ?? (await this.passkeys.hasAny(txn.tenant.id, userId)))) {
      await this.setMfa(txn, { userId, stage: 'passkey-offer', identity: external, amr });
      return this.passkeyOffer(txn, userId, external);
    }
    return { kind: 'redirect', url: await this.finish(txn, binding, external, amr) };
  }

  private async passkeyOffer(
    txn: LoginTransaction,
    userId: string,
    external: ExternalIdentity,
  ): Promise<NativeStep & { kind: 'passkey-offer' }> {
    const options = await this.passkeys.registrationOptions(txn.tenant, { id: userId, username: this.labelOf(external) });
    await this.keepChallenge(txn, options.challenge);
    return { kind: 'passkey-offer', options };
  }

  private async keepChallenge(txn: LoginTransaction, challenge: string): Promise<void> {
    await this.db.transaction({ tenant: txn.tenant.id }, (tx) => this.transactions.setWebauthnChallenge(tx, sha256(txn.handle), challenge));
  }

  /** The page's challenge, spent: a posted credential is checked against it once, whatever the outcome. */
  private async takeChallenge(txn: LoginTransaction): Promise<string> {
    const challenge = await this.db.transaction({ tenant: txn.tenant.id }, (tx) =>
      this.transactions.takeWebauthnChallenge(tx, sha256(txn.handle)),
    );
    if (!challenge) throw new InvalidPasskeyError();
    return challenge;
  }

  /**
   * One second-step form: a code (or recovery code) to verify, enrolment started, confirmed or
   * skipped, the recovery codes acknowledged. Refused codes throw InvalidSecondFactorError and
   * change nothing but the failure counter; an action the transaction does not wait on is refused.
   */
  async submitSecondStep(txn: LoginTransaction, action: SecondStepAction, code: string, credential = '', name = ''): Promise<NativeStep> {
    const mfa = txn.mfa;
    const binding = await this.binding(txn);
    const optional = mfaPolicyOf(binding.config) === 'optional' && !txn.mfaRequested;
    const passkeys = passkeyPolicyOf(binding.config) === 'allowed';
    const expect = (ok: boolean): NonNullable<typeof mfa> => {
      if (!mfa || !ok) throw new ProblemError({ type: 'login-step', detail: 'This sign-in step is not the current one. Reload the page.' });
      return mfa;
    };
    switch (action) {
      case 'verify': {
        const m = expect(mfa?.stage === 'verify');
        await this.totp.verify(txn.tenant.id, m.userId, code);
        return this.authenticated(txn, binding, m.userId, m.identity, AMR_MFA);
      }
      case 'passkey': {
        const m = expect(passkeys && mfa?.stage === 'verify');
        const used = await this.passkeys.authenticate(txn.tenant.id, credential, await this.takeChallenge(txn), m.userId);
        return { kind: 'redirect', url: await this.finish(txn, binding, m.identity, amrPasswordAndPasskey(used.method)) };
      }
      case 'passkey-register': {
        const m = expect(passkeys && mfa?.stage === 'passkey-offer');
        await this.passkeys.register(txn.tenant.id, m.userId, credential, await this.takeChallenge(txn), name);
        return { kind: 'redirect', url: await this.finish(txn, binding, m.identity, m.amr ?? AMR_PASSWORD) };
      }
      case 'passkey-skip': {
        const m = expect(mfa?.stage === 'passkey-offer');
        return { kind: 'redirect', url: await this.finish(txn, binding, m.identity, m.amr ?? AMR_PASSWORD) };
      }
      case 'start': {
        const m = expect(mfa?.stage === 'offer' || mfa?.stage === 'enrol');
        await this.setMfa(txn, { ...m, stage: 'enrol' });
        return { kind: 'enrol', enrolment: await this.beginEnrolment(txn, m.userId, m.identity), optional };
      }
      case 'confirm': {
        const m = expect(mfa?.stage === 'enrol');
        const codes = await this.totp.confirmEnrolment(txn.tenant.id, m.userId, code);
        await this.setMfa(txn, { ...m, stage: 'enrolled' });
        return { kind: 'recovery-codes', codes };
      }
      case 'skip': {
        const m = expect(optional && (mfa?.stage === 'offer' || mfa?.stage === 'enrol'));
        await this.totp.cancelEnrolment(txn.tenant.id, m.userId);
        return this.authenticated(txn, binding, m.userId, m.identity, AMR_PASSWORD);
      }
      case 'continue': {
        // Just enrolled TOTP: not a second setup page in a row; the passkey offer comes at a later sign-in.
        const m = expect(mfa?.stage === 'enrolled');
        return { kind: 'redirect', url: await this.finish(txn, binding, m.identity, AMR_MFA) };
      }
    }
  }

  /** The page a second step shows again (after a wrong code, or a reload). */
  async currentStep(txn: LoginTransaction): Promise<Exclude<NativeStep, { kind: 'redirect' }> | undefined> {
    const mfa = txn.mfa;
    if (!mfa || mfa.stage === 'enrolled') return undefined;
    if (mfa.stage === 'passkey-offer') return this.passkeyOffer(txn, mfa.userId, mfa.identity);
    if (mfa.stage === 'verify') {
      const binding = await this.binding(txn);
      const [totp, passkey] = await Promise.all([
        this.totp.hasConfirmed(txn.tenant.id, mfa.userId),
        this.hasPasskey(txn, binding, mfa.userId),
      ]);
      return this.verifyStep(txn, mfa.userId, totp, passkey);
    }
    if (mfa.stage !== 'enrol') return { kind: mfa.stage };
    const optional = mfaPolicyOf((await this.binding(txn)).config) === 'optional' && !txn.mfaRequested;
    const enrolment = await this.totp.pendingEnrolment(txn.tenant.id, mfa.userId, this.labelOf(mfa.identity), txn.tenant.displayName);
    return enrolment ? { kind: 'enrol', enrolment, optional } : undefined;
  }

  private labelOf(external: ExternalIdentity): string {
    const name = external.claims['preferred_username'];
    return typeof name === 'string' ? name : external.subject;
  }

  private beginEnrolment(txn: LoginTransaction, userId: string, external: ExternalIdentity): Promise<PendingEnrolment> {
    return this.totp.beginEnrolment(txn.tenant.id, userId, this.labelOf(external), txn.tenant.displayName);
  }

  private async setMfa(txn: LoginTransaction, m: NonNullable<LoginTransaction['mfa']>): Promise<void> {
    const hash = sha256(txn.handle);
    const identity = this.box.sealJson(m.identity, mfaIdentityContext(hash));
    await this.db.transaction({ tenant: txn.tenant.id }, (tx) => this.transactions.setMfa(tx, hash, { ...m, identity }));
    txn.mfa = m;
  }

  /** Issues the code for an authenticated identity (`amr`: how, when known). */
  private async finish(
    txn: LoginTransaction,
    binding: BindingContext,
    external: ExternalIdentity,
    amr: string[] | undefined,
  ): Promise<string> {
    if (external.authTime && !(external.authTime instanceof Date)) external.authTime = new Date(external.authTime);
    const normalised = normaliseIdentity(binding.claimMapping, external);
    if (txn.purpose === 'test') return this.completeTest(txn, binding, external, normalised);
    const code = mintOpaqueToken('ac', txn.tenant.id);
    await this.db.transaction({ tenant: txn.tenant.id }, async (m) => {
      await this.claim(m, txn);
      const user = await this.users.resolveLogin(m, binding, external, normalised);
      const tx = m;
      const sessionId = await this.sessions.create(tx, {
        tenantId: txn.tenant.id,
        userId: user.id,
        clientId: txn.clientId,
        bindingId: binding.id,
        idp: binding.kind,
        idpSub: external.subject,
        authTime: external.authTime ?? new Date(),
        amr,
      });
      await this.upstreamLogout.keep(m, sessionId, external.upstreamSession);
      await this.transactions.insertCode(tx, {
        codeHash: code.hash,
        tenantId: txn.tenant.id,
        sessionId,
        clientId: txn.clientId,
        redirectUri: txn.redirectUri,
        codeChallenge: txn.codeChallenge,
        scope: txn.scope,
        nonce: txn.nonce,
        expiresAt: new Date(Date.now() + this.config.AUTHORIZATION_CODE_TTL_SECONDS * 1000),
      });
      await this.audit.record(m, {
        tenantId: txn.tenant.id,
        actor: `user:${user.id}`,
        action: 'login.succeeded',
        target: user.id,
        data: { idp: binding.kind, binding: binding.id },
      });
    });
    this.logger.log({ tenant: txn.tenant.id, idp: binding.kind }, 'login succeeded');
    await this.bindings.recordLoginOutcome(txn.tenant.id, binding.id, true);
    return redirectWith(txn.redirectUri!, { code: code.value, state: txn.state ?? undefined, iss: this.config.issuer });
  }

  /** Single use, across replicas: the row is claimed by whoever updates it first. */
  private async claim(m: Tx, txn: LoginTransaction): Promise<void> {
    if (!(await this.transactions.claim(m, sha256(txn.handle))))
      throw new ProblemError({ type: 'login-expired', detail: 'This sign-in was already completed or has expired.' });
  }

  /**
   * A test login proves the binding works end to end. What the upstream said is kept (encrypted)
   * for the mapping preview; no user, session or token is created.
   */
  private async completeTest(
    txn: LoginTransaction,
    binding: BindingContext,
    external: ExternalIdentity,
    normalised: NormalisedIdentity,
  ): Promise<string> {
    await this.db.transaction({ tenant: txn.tenant.id }, async (m) => {
      await this.claim(m, txn);
      await this.bindings.recordTestLogin(m, binding.id, { issuer: external.issuer, subject: external.subject, claims: external.claims });
      await this.audit.record(m, {
        tenantId: txn.tenant.id,
        actor: 'system',
        action: 'binding.test_login_succeeded',
        target: binding.id,
        data: { kind: binding.kind, roles: normalised.roles },
      });
    });
    return `${this.config.issuer}/login/test-complete?outcome=success`;
  }

  /** Ends a transaction with an OAuth error sent back to the client (upstream failure, user cancelled). */
  async abort(txn: LoginTransaction, error: string, description: string): Promise<string> {
    await this.db.transaction({ tenant: txn.tenant.id }, (tx) => this.transactions.complete(tx, sha256(txn.handle)));
    await this.bindings.recordLoginOutcome(txn.tenant.id, txn.bindingId, false, `${error}: ${description}`);
    if (txn.purpose === 'test') return `${this.config.issuer}/login/test-complete?outcome=failed&error=${encodeURIComponent(error)}`;
    return redirectWith(txn.redirectUri!, {
      error,
      error_description: description,
      state: txn.state ?? undefined,
      iss: this.config.issuer,
    });
  }
}
