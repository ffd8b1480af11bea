import { plainToInstance } from 'class-transformer';
import {
  ArrayMaxSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsObject,
  IsOptional,
  IsString,
  Length,
  Matches,
  validateSync,
  type ValidationError,
} from 'class-validator';
import type { KeycloakSettings } from './keycloak-settings.js';

export const KEYCLOAK_BINDING_MODES = ['organization', 'dedicated_realm'] as const;
export type KeycloakBindingMode = (typeof KEYCLOAK_BINDING_MODES)[number];

const REALM_NAME = /^[A-Za-z0-9._-]{1,100}$/;
const ORG_ALIAS = /^[A-Za-z0-9._-]{1,255}$/;
const CLIENT_ID = /^[\x21-\x7E]{1,255}$/;
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]{1,100}$/;
const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i;
const IDP_CONFIG_KEY = /^[A-Za-z][A-Za-z0-9._-]{0,99}$/;

/** Keycloak identity-provider types a binding may create (Keycloak's `providerId`). */
export const KEYCLOAK_BROKER_TYPES = ['oidc', 'keycloak-oidc', 'saml'] as const;

/**
 * A customer's IdP (Okta, Entra ID, ADFS, …) brokered by the shared realm and linked to the tenant's
 * organisation. Created (once) in Keycloak when the binding is saved; its client secret is the
 * binding secret `identityProviderClientSecret`, never part of `config`.
 */
export class KeycloakBrokeredIdentityProvider {
  /** The provider's alias in the shared realm (unique there); also what `identityProviderHint` names. */
  @Matches(ORG_ALIAS)
  alias!: string;

  @IsOptional()
  @IsString()
  @Length(1, 255)
  displayName?: string;

  @IsIn(KEYCLOAK_BROKER_TYPES)
  providerId!: (typeof KEYCLOAK_BROKER_TYPES)[number];

  /**
   * Keycloak's provider settings, string values as in Keycloak's admin console: for `oidc` e.g.
   * `issuer`, `authorizationUrl`, `tokenUrl`, `jwksUrl`, `clientId`, `clientAuthMethod`,
   * `validateSignature`, `useJwksUrl`, `pkceEnabled`; for `saml` `singleSignOnServiceUrl`,
   * `idpEntityId`, …
   */
  @IsObject()
  config!: Record<string, string>;

  /** One of `organizationDomains`: users whose email has it are routed to this provider (identity-first login). */
  @IsOptional()
  @Matches(DOMAIN)
  domain?: string;

  /** With `domain`: send matching users straight to the provider instead of showing Keycloak's password page. */
  @IsOptional()
  @IsBoolean()
  redirectWhenEmailMatches?: boolean;
}

/**
 * `tenant_identity_providers.config` of a `keycloak` binding (no secrets here).
 *
 * - `organization` (default pattern): the tenant is an Organization of the shared realm
 *   (KEYCLOAK_REALM), signing in through the service's own client; `organizationAlias` defaults
 *   to the tenant slug.
 * - `dedicated_realm`: the tenant has its own realm (`realm`) and client (`clientId`, secret in
 *   the binding's secrets); no organisation is requested or checked, the realm's issuer is.
 */
export class KeycloakBindingConfig {
  @IsIn(KEYCLOAK_BINDING_MODES)
  mode!: KeycloakBindingMode;

  @IsOptional()
  @Matches(ORG_ALIAS)
  organizationAlias?: string;

  /** Organization mode: the organisation's name on Keycloak's pages (unique in the realm). Default: the tenant's display name. */
  @IsOptional()
  @IsString()
  @Length(1, 255)
  organizationName?: string;

  /** Organization mode: the organisation's email domains (added to it when missing; never removed). */
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(20)
  @Matches(DOMAIN, { each: true })
  organizationDomains?: string[];

  /** Organization mode: a brokered IdP created in the shared realm and linked to the organisation (validated as KeycloakBrokeredIdentityProvider). */
  @IsOptional()
  @IsObject()
  identityProvider?: KeycloakBrokeredIdentityProvider;

  @IsOptional()
  @Matches(REALM_NAME)
  realm?: string;

  @IsOptional()
  @Matches(CLIENT_ID)
  clientId?: string;

  /** Scopes requested besides openid, profile, email (and the organisation's). */
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(20)
  @Matches(SCOPE_TOKEN, { each: true })
  extraScopes?: string[];

  /** Sent as `kc_idp_hint`: straight to this brokered identity provider (its alias). */
  @IsOptional()
  @Matches(ORG_ALIAS)
  identityProviderHint?: string;

  /**
   * Keycloak clients (their `clientId`, the token's `azp`) whose service-account access tokens may
   * be exchanged for platform tokens of this tenant. Empty: no machine-to-machine exchange.
   */
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(100)
  @Matches(CLIENT_ID, { each: true })
  machineClients?: string[];

  /** `aud` an exchanged access token must carry. Default: KEYCLOAK_TOKEN_AUDIENCE. */
  @IsOptional()
  @IsString()
  @Length(1, 255)
  audience?: string;
}

/** The decrypted `secrets` of a `keycloak` binding. */
export class KeycloakBindingSecrets {
  /** The dedicated realm's client secret (organization mode uses KEYCLOAK_CLIENT_SECRET). */
  @IsOptional()
  @IsString()
  @Length(1, 1024)
  clientSecret?: string;

  /** The brokered identity provider's client secret (config `identityProvider`), handed to Keycloak when the provider is created. */
  @IsOptional()
  @IsString()
  @Length(1, 1024)
  identityProviderClientSecret?: string;
}

/** What saving a binding provisions in Keycloak (see KeycloakProvisioningService.provisionBinding). */
export interface KeycloakProvisioningPlan {
  /** Organization mode: the organisation to ensure. */
  organization?: { alias: string; name?: string; domains: string[] };
  /** Organization mode: the brokered IdP to create and link. `config` includes its client secret. */
  identityProvider?: {
    alias: string;
    displayName?: string;
    providerId: string;
    config: Record<string, string>;
    domain?: string;
    redirectWhenEmailMatches: boolean;
  };
  /** Dedicated-realm mode: the realm and its client (with the binding's client secret). */
  realm?: { realm: string; clientId: string; clientSecret: string };
}

/** A binding, validated and with defaults applied: what the adapter works with. */
export interface ResolvedKeycloakBinding {
  mode: KeycloakBindingMode;
  realm: string;
  clientId: string;
  clientSecret: string;
  /** Organization mode only: the alias the `organization` claim must contain. */
  organizationAlias?: string;
  scopes: string[];
  identityProviderHint?: string;
  machineClients: string[];
  audience: string;
  /** What the Keycloak side must look like for this binding (provisioned when the binding is saved). */
  provisioning: KeycloakProvisioningPlan;
}

export class InvalidKeycloakBindingError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid Keycloak binding: ${problems.join('; ')}`);
    this.name = 'InvalidKeycloakBindingError';
  }
}

const flatten = (errors: ValidationError[]): string[] =>
  errors.flatMap((e) => [...Object.values(e.constraints ?? {}), ...flatten(e.children ?? [])]);

function validated<T extends object>(cls: new () => T, plain: unknown, what: string): T {
  const instance = plainToInstance(cls, plain ?? {});
  const errors = validateSync(instance, { whitelist: true, forbidNonWhitelisted: true });
  if (errors.length > 0) throw new InvalidKeycloakBindingError(flatten(errors).map((m) => `${what}: ${m}`));
  return instance;
}

/**
 * Validates a `keycloak` binding against the service's Keycloak settings (the provisioning
 * service calls it before storing a binding; the adapter again before every use). Secret values
 * never appear in messages.
 */
export function resolveKeycloakBinding(
  config: unknown,
  secrets: unknown,
  tenantSlug: string,
  settings: KeycloakSettings,
): ResolvedKeycloakBinding {
  const c = validated(KeycloakBindingConfig, config, 'config');
  const s = validated(KeycloakBindingSecrets, secrets, 'secrets');
  const problems: string[] = [];
  if ((c.extraScopes ?? []).some((scope) => scope === 'organization' || scope.startsWith('organization:')))
    problems.push('config: extraScopes must not name organisations (the adapter requests the tenant’s own)');
  if (c.mode === 'organization') {
    // The shared realm and the service's own client: a binding cannot point an organisation
    // elsewhere, so the organisation claim is always the shared realm's.
    if (c.realm !== undefined && c.realm !== settings.realm)
      problems.push('config: organization mode uses the shared realm; realm must be unset');
    if (c.clientId !== undefined && c.clientId !== settings.clientId)
      problems.push('config: organization mode uses the service’s own client; clientId must be unset');
    if (s.clientSecret !== undefined) problems.push('secrets: organization mode uses KEYCLOAK_CLIENT_SECRET; clientSecret must be unset');
  } else {
    if (!c.realm) problems.push('config: dedicated_realm mode needs realm');
    // A "dedicated" realm that is the shared one would skip the organisation check for every
    // member of every organisation.
    else if (c.realm === settings.realm) problems.push('config: a dedicated realm cannot be the shared realm');
    for (const field of ['organizationAlias', 'organizationName', 'organizationDomains', 'identityProvider'] as const)
      if (c[field] !== undefined) problems.push(`config: ${field} applies to organization mode only`);
    if (!s.clientSecret) problems.push('secrets: dedicated_realm mode needs the realm client’s clientSecret');
  }
  const domains = [...new Set((c.organizationDomains ?? []).map((d) => d.toLowerCase()))];
  let idp: KeycloakBrokeredIdentityProvider | undefined;
  if (c.identityProvider !== undefined) {
    try {
      idp = validated(KeycloakBrokeredIdentityProvider, c.identityProvider, 'config: identityProvider');
    } catch (err) {
      if (!(err instanceof InvalidKeycloakBindingError)) throw err;
      problems.push(...err.problems);
    }
  }
  if (idp) {
    const entries = Object.entries(idp.config);
    if (entries.length > 50) problems.push('config: identityProvider.config has more than 50 settings');
    for (const [key, value] of entries) {
      if (!IDP_CONFIG_KEY.test(key)) problems.push(`config: identityProvider.config has an invalid setting name "${key.slice(0, 40)}"`);
      else if (typeof value !== 'string' || value.length > 4096)
        problems.push(`config: identityProvider.config.${key} must be a string of at most 4096 characters`);
      else if (key === 'clientSecret')
        problems.push('config: identityProvider.config.clientSecret is not allowed; put it in secrets.identityProviderClientSecret');
      else if (key.startsWith('kc.org.'))
        problems.push(
          `config: identityProvider.config.${key} is set by the service (use identityProvider.domain / redirectWhenEmailMatches)`,
        );
    }
    if (idp.domain !== undefined && !domains.includes(idp.domain.toLowerCase()))
      problems.push('config: identityProvider.domain must be one of organizationDomains');
    if (idp.redirectWhenEmailMatches && idp.domain === undefined)
      problems.push('config: identityProvider.redirectWhenEmailMatches needs identityProvider.domain');
  } else if (s.identityProviderClientSecret !== undefined)
    problems.push('secrets: identityProviderClientSecret needs config.identityProvider');
  if (problems.length > 0) throw new InvalidKeycloakBindingError(problems);
  const organizationAlias = c.mode === 'organization' ? (c.organizationAlias ?? tenantSlug) : undefined;
  return {
    mode: c.mode,
    realm: c.mode === 'organization' ? settings.realm : c.realm!,
    clientId: c.mode === 'organization' ? settings.clientId : (c.clientId ?? settings.clientId),
    clientSecret: c.mode === 'organization' ? settings.clientSecret : s.clientSecret!,
    organizationAlias,
    scopes: [
      ...new Set([
        'openid',
        'profile',
        'email',
        ...(organizationAlias ? [`organization:${organizationAlias}`] : []),
        ...(c.extraScopes ?? []),
      ]),
    ],
    identityProviderHint: c.identityProviderHint,
    machineClients: [...new Set(c.machineClients ?? [])],
    audience: c.audience ?? settings.audience,
    provisioning:
      c.mode === 'organization'
        ? {
            organization: { alias: organizationAlias!, name: c.organizationName, domains },
            identityProvider: idp && {
              alias: idp.alias,
              displayName: idp.displayName,
              providerId: idp.providerId,
              config: {
                ...idp.config,
                ...(s.identityProviderClientSecret !== undefined ? { clientSecret: s.identityProviderClientSecret } : {}),
              },
              domain: idp.domain?.toLowerCase(),
              redirectWhenEmailMatches: idp.redirectWhenEmailMatches ?? false,
            },
          }
        : { realm: { realm: c.realm!, clientId: c.clientId ?? settings.clientId, clientSecret: s.clientSecret! } },
  };
}
