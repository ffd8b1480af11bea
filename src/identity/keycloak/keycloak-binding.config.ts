import { plainToInstance } from 'class-transformer';
import { ArrayMaxSize, IsArray, IsIn, IsOptional, IsString, Length, Matches, validateSync, type ValidationError } from 'class-validator';
import type { KeycloakSettings } from './keycloak-settings.js';

export const KEYCLOAK_BINDING_MODES = ['organization', 'dedicated_realm'] as const;
export type KeycloakBindingMode = (typeof KEYCLOAK_BINDING_MODES)[number];

const REALM_NAME = /^[A-Za-z0-9._-]{1,100}$/;
const ORG_ALIAS = /^[A-Za-z0-9._-]{1,255}$/;
const CLIENT_ID = /^[\x21-\x7E]{1,255}$/;
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]{1,100}$/;

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
}

export class InvalidKeycloakBindingError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid Keycloak binding: ${problems.join('; ')}`);
    this.name = 'InvalidKeycloakBindingError';
  }
}

const flatten = (errors: ValidationError[]): string[] => errors.flatMap((e) => [...Object.values(e.constraints ?? {}), ...flatten(e.children ?? [])]);

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
export function resolveKeycloakBinding(config: unknown, secrets: unknown, tenantSlug: string, settings: KeycloakSettings): ResolvedKeycloakBinding {
  const c = validated(KeycloakBindingConfig, config, 'config');
  const s = validated(KeycloakBindingSecrets, secrets, 'secrets');
  const problems: string[] = [];
  if ((c.extraScopes ?? []).some((scope) => scope === 'organization' || scope.startsWith('organization:')))
    problems.push('config: extraScopes must not name organisations (the adapter requests the tenant’s own)');
  if (c.mode === 'organization') {
    // The shared realm and the service's own client: a binding cannot point an organisation
    // elsewhere, so the organisation claim is always the shared realm's.
    if (c.realm !== undefined && c.realm !== settings.realm) problems.push('config: organization mode uses the shared realm; realm must be unset');
    if (c.clientId !== undefined && c.clientId !== settings.clientId) problems.push('config: organization mode uses the service’s own client; clientId must be unset');
    if (s.clientSecret !== undefined) problems.push('secrets: organization mode uses KEYCLOAK_CLIENT_SECRET; clientSecret must be unset');
  } else {
    if (!c.realm) problems.push('config: dedicated_realm mode needs realm');
    // A "dedicated" realm that is the shared one would skip the organisation check for every
    // member of every organisation.
    else if (c.realm === settings.realm) problems.push('config: a dedicated realm cannot be the shared realm');
    if (c.organizationAlias !== undefined) problems.push('config: organizationAlias applies to organization mode only');
    if (!s.clientSecret) problems.push('secrets: dedicated_realm mode needs the realm client’s clientSecret');
  }
  if (problems.length > 0) throw new InvalidKeycloakBindingError(problems);
  const organizationAlias = c.mode === 'organization' ? (c.organizationAlias ?? tenantSlug) : undefined;
  return {
    mode: c.mode,
    realm: c.mode === 'organization' ? settings.realm : c.realm!,
    clientId: c.mode === 'organization' ? settings.clientId : (c.clientId ?? settings.clientId),
    clientSecret: c.mode === 'organization' ? settings.clientSecret : s.clientSecret!,
    organizationAlias,
    scopes: [...new Set(['openid', 'profile', 'email', ...(organizationAlias ? [`organization:${organizationAlias}`] : []), ...(c.extraScopes ?? [])])],
    identityProviderHint: c.identityProviderHint,
    machineClients: [...new Set(c.machineClients ?? [])],
    audience: c.audience ?? settings.audience,
  };
}
