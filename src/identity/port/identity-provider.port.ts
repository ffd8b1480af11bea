/**
 * The port every identity source is adapted to. Adapters depend on this file and shared types
 * only, never on each other; the registry picks one by the binding's `kind`.
 */
export const IDP_KINDS = ['keycloak', 'oidc', 'saml', 'firebase_legacy', 'native'] as const;
export type IdpKind = (typeof IDP_KINDS)[number];

export interface ProviderCapabilities {
  /** beginLogin/completeLogin: a browser redirect (or the hosted form, for native). */
  loginRedirect: boolean;
  /** exchangeToken: RFC 8693 exchange of an upstream token. */
  tokenExchange: boolean;
  /** An upstream session that can be ended (RP-initiated logout). */
  logout: boolean;
}

/** The binding row as an adapter sees it: secrets already decrypted, never logged. */
export interface BindingContext<C = Record<string, unknown>, S = Record<string, unknown>> {
  id: string;
  tenantId: string;
  tenantSlug: string;
  kind: IdpKind;
  config: C;
  secrets: S;
  claimMapping: ClaimMappingRules;
  version: number;
}

export interface LoginContext {
  /** Opaque handle of the login transaction; adapters echo it back (OIDC `state`, SAML RelayState, form URL). */
  transactionHandle: string;
  /** Where the upstream IdP must send the browser back (the service's callback for this kind). */
  callbackUrl: string;
  /** The hosted login form's URL, for adapters that render it. */
  hostedLoginUrl: string;
  /** Optional hint from the BFF (`login_hint`). */
  loginHint?: string;
  /** The client's `max_age` (OIDC Core §3.1.2.1, seconds), for upstreams whose protocol carries it (OIDC, Keycloak). */
  maxAge?: number;
  /** The user must authenticate afresh (`prompt=login`, or `max_age=0`): OIDC `prompt=login`, SAML `ForceAuthn`. */
  reauthenticate?: boolean;
}

export interface BeginLoginResult {
  redirectUrl: string;
  /** Adapter state kept with the transaction, encrypted at rest (upstream PKCE verifier, nonce, request id). */
  providerState: Record<string, unknown>;
}

export interface CallbackInput {
  method: 'GET' | 'POST';
  query: Record<string, string | undefined>;
  body: Record<string, string | undefined>;
  /** The client's IP, for adapters that rate-limit or lock out. */
  clientIp: string;
}

/**
 * What an adapter returns: the upstream's view of the user, untrusted in shape. Only the claim
 * normaliser turns it into a platform identity.
 */
export interface ExternalIdentity {
  /** Upstream issuer (OIDC `iss`, SAML IdP entityID, Keycloak realm URL, `native`, Firebase project). */
  issuer: string;
  /** Upstream subject, stable within the binding (OIDC `sub`, SAML NameID, Firebase uid, native credential id). */
  subject: string;
  claims: Record<string, unknown>;
  /** When the upstream authenticated the user, if it said so. */
  authTime?: Date;
  /** For native logins: the platform user the credential belongs to. */
  knownUserId?: string;
  /**
   * Set by token exchange when the upstream subject is a machine (an OAuth client's service
   * account), not a person: the upstream client id. The platform token's subject is then
   * `client:<id>`; no platform user or session is created for it.
   */
  machineClientId?: string;
  /**
   * Adapter data kept, encrypted, with the platform session for as long as it lives (e.g. the
   * upstream ID token, the `id_token_hint` of RP-initiated logout). Handed back to `endSessionUrl`.
   */
  upstreamSession?: Record<string, unknown>;
}

export interface EndSessionOptions {
  /** Where the upstream sends the browser after its logout (absent: the upstream's own page). */
  postLogoutRedirectUri?: string;
  state?: string;
}

export interface ExternalTokenInput {
  token: string;
  tokenType: string;
}

/** What an adapter found when it checked a binding's configuration or probed its upstream. */
export interface BindingHealth {
  ok: boolean;
  /** Named checks, e.g. `{ discovery: 'ok', jwks: 'ok' }` or `{ metadata: 'unreachable: …' }`. */
  checks: Record<string, string>;
  /** Days until the first upstream signing certificate expires (SAML). */
  certificateExpiresInDays?: number;
  /** The binding works but its configuration weakens it (SAML: SHA-1 accepted); logged by the health refresher. */
  warnings?: string[];
}

export interface ValidatedBindingConfig {
  /** The configuration to store (normalised, e.g. metadata parsed into entityID, SSO URL, certificates). */
  config: Record<string, unknown>;
  health: BindingHealth;
}

/** What every adapter is: a kind and the capabilities it advertises (the contract suite holds it to them). */
export interface IdentityProviderAdapter {
  readonly kind: IdpKind;
  readonly capabilities: ProviderCapabilities;
}

/** A login in the browser: a redirect to the upstream (or the hosted form, for native) and its callback. */
export interface BrowserLogin extends IdentityProviderAdapter {
  beginLogin(binding: BindingContext, ctx: LoginContext): Promise<BeginLoginResult>;
  completeLogin(binding: BindingContext, callback: CallbackInput, providerState: Record<string, unknown>): Promise<ExternalIdentity>;
}

/** RFC 8693: an upstream token exchanged for a platform token. */
export interface TokenExchange extends IdentityProviderAdapter {
  /** `subject_token_type` values exchangeToken accepts. */
  readonly exchangeTokenTypes: readonly string[];
  exchangeToken(binding: BindingContext, input: ExternalTokenInput): Promise<ExternalIdentity>;
}

/** RP-initiated logout at the upstream. */
export interface UpstreamLogout extends IdentityProviderAdapter {
  /** Where to send the browser once the platform session has ended (undefined: nothing to end upstream). */
  endSessionUrl(binding: BindingContext, upstreamSession: Record<string, unknown>, opts: EndSessionOptions): Promise<string | undefined>;
}

/** A configuration checked before it is saved. */
export interface ConfigCheck extends IdentityProviderAdapter {
  /**
   * Checks a configuration before it is saved (fetches discovery, parses metadata, checks
   * certificates) and throws a ProblemError (400/422) naming what is wrong.
   */
  validateConfig(input: {
    tenantSlug: string;
    config: Record<string, unknown>;
    secrets: Record<string, unknown>;
  }): Promise<ValidatedBindingConfig>;
}

/** Connection health of a saved binding: upstream reachable, certificate expiry. Never throws for an unreachable upstream. */
export interface HealthProbe extends IdentityProviderAdapter {
  probe(binding: BindingContext): Promise<BindingHealth>;
}

/**
 * An adapter as the registry holds it: the base and whichever capabilities it implements. Callers
 * never use this type to call a capability: they ask the registry for the capability
 * (`registry.browserLogin(kind)`, `registry.tokenExchange(kind, type)`, …) and get an adapter that
 * has it, or nothing.
 */
export type IdentityProvider = IdentityProviderAdapter &
  Partial<Omit<BrowserLogin, keyof IdentityProviderAdapter>> &
  Partial<Omit<TokenExchange, keyof IdentityProviderAdapter>> &
  Partial<Omit<UpstreamLogout, keyof IdentityProviderAdapter>> &
  Partial<Omit<ConfigCheck, keyof IdentityProviderAdapter>> &
  Partial<Omit<HealthProbe, keyof IdentityProviderAdapter>>;

export const IDENTITY_PROVIDERS = Symbol('IDENTITY_PROVIDERS');

/**
 * Per-binding rules that turn upstream claims into platform claims. Claim names are dotted paths
 * into the upstream claims (`realm_access.roles`, `http://schemas.microsoft.com/ws/2008/06/identity/claims/role`).
 */
export interface ClaimMappingRules {
  email?: string;
  emailVerified?: string;
  /** Treat every upstream email as verified (only for IdPs that own their domain, e.g. a customer's Entra). */
  trustEmailVerified?: boolean;
  name?: string;
  givenName?: string;
  familyName?: string;
  /** `claim` holds a string or array; when it contains `value`, the user gets platform role `role`. */
  roles?: Array<{ claim: string; value: string; role: string }>;
  /** Platform roles every user of this binding gets. */
  defaultRoles?: string[];
  /** Link a first login to an existing platform user with the same verified email (SCIM-provisioned users included). */
  linkByVerifiedEmail?: boolean;
  /**
   * Link a first login to the user the tenant's directory provisioned over SCIM. `externalIdClaim`:
   * the claim equal to the SCIM externalId (default: the upstream subject, which is what Okta sends
   * as externalId); `userNameClaim`: the claim equal to the SCIM userName (e.g. `preferred_username`,
   * Entra's UPN; no default, because some IdPs let users choose it). Default: externalId only, for
   * `oidc` and `saml` bindings; `false` never links.
   */
  scimLink?: false | { externalIdClaim?: string; userNameClaim?: string };
}
