import { plainToInstance } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayNotEmpty,
  IsArray,
  IsBoolean,
  IsIn,
  IsObject,
  IsOptional,
  IsString,
  IsUrl,
  Length,
  Matches,
  validateSync,
  type ValidationError,
} from 'class-validator';

/**
 * ID token algorithms the adapter can verify. `none` is absent on purpose: it can never be
 * configured. HS* appear here so ops can opt in, but only with a client secret (the HMAC key).
 */
export const ASYMMETRIC_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;
export const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'] as const;
export const SUPPORTED_ID_TOKEN_ALGORITHMS: readonly string[] = [...ASYMMETRIC_ALGORITHMS, ...HMAC_ALGORITHMS];
/** Default allow-list: the RSA and EC families every mainstream OP signs with. */
export const DEFAULT_ID_TOKEN_ALGORITHMS: readonly string[] = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
];

export const TOKEN_ENDPOINT_AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt'] as const;
export type TokenEndpointAuthMethod = (typeof TOKEN_ENDPOINT_AUTH_METHODS)[number];

const URL_OPTIONS = { require_tld: false, protocols: ['https', 'http'], require_protocol: true };
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]{1,100}$/;
const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i;

/** `tenant_identity_providers.config` of a binding of kind `oidc` (no secrets here). */
export class TenantOidcBindingConfig {
  /** The OP's issuer identifier; discovery is `<issuer>/.well-known/openid-configuration`. */
  @IsOptional()
  @IsUrl(URL_OPTIONS)
  issuer?: string;

  /** The discovery document's URL, when it is not derived from the issuer. */
  @IsOptional()
  @IsUrl(URL_OPTIONS)
  discoveryUrl?: string;

  @IsString()
  @Length(1, 255)
  clientId!: string;

  /** Requested scopes; `openid` is always added. Default: openid email profile. */
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(30)
  @Matches(SCOPE_TOKEN, { each: true })
  scopes?: string[];

  @IsOptional()
  @IsIn(TOKEN_ENDPOINT_AUTH_METHODS)
  tokenEndpointAuthMethod?: TokenEndpointAuthMethod;

  /** ID token `alg` allow-list. Default: RS/PS/ES families. HS* only when listed here. */
  @IsOptional()
  @IsArray()
  @ArrayNotEmpty()
  @IsIn(SUPPORTED_ID_TOKEN_ALGORITHMS, { each: true })
  allowedAlgorithms?: string[];

  /** Also call the userinfo endpoint and merge its claims (its `sub` must match the ID token's). */
  @IsOptional()
  @IsBoolean()
  useUserinfo?: boolean;

  /** Sent to the OP as `domain_hint` (Entra ID, and others that route by home realm). */
  @IsOptional()
  @Matches(DOMAIN)
  emailDomainHint?: string;
}

/** The decrypted `secrets` of an `oidc` binding. */
export class TenantOidcBindingSecrets {
  @IsOptional()
  @IsString()
  @Length(1, 1024)
  clientSecret?: string;

  /** Private JWK (RSA or EC, with `alg`; `kid` when the OP needs one) for private_key_jwt. */
  @IsOptional()
  @IsObject()
  privateJwk?: Record<string, unknown>;
}

/** The binding, validated and with defaults applied: what the adapter works with. */
export interface ResolvedOidcBinding {
  issuer?: string;
  discoveryUrl?: string;
  clientId: string;
  scopes: string[];
  tokenEndpointAuthMethod: TokenEndpointAuthMethod;
  allowedAlgorithms: string[];
  useUserinfo: boolean;
  emailDomainHint?: string;
  clientSecret?: string;
  privateJwk?: Record<string, unknown>;
}

export class InvalidOidcBindingError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid OIDC binding: ${problems.join('; ')}`);
    this.name = 'InvalidOidcBindingError';
  }
}

const flatten = (errors: ValidationError[], prefix = ''): string[] =>
  errors.flatMap((e) => [
    ...Object.values(e.constraints ?? {}).map((m) => (prefix ? `${prefix}.${m}` : m)),
    ...flatten(e.children ?? [], prefix ? `${prefix}.${e.property}` : e.property),
  ]);

function validated<T extends object>(cls: new () => T, plain: unknown, what: string): T {
  const instance = plainToInstance(cls, plain ?? {});
  const errors = validateSync(instance, { whitelist: true, forbidNonWhitelisted: true });
  if (errors.length > 0) throw new InvalidOidcBindingError(flatten(errors).map((m) => `${what}: ${m}`));
  return instance;
}

/**
 * Validates an `oidc` binding's config and secrets (the admin API calls it before storing a
 * binding; the adapter calls it again before every use). Secret values never appear in messages.
 */
export function resolveOidcBinding(config: unknown, secrets: unknown, opts: { allowHttp: boolean }): ResolvedOidcBinding {
  const c = validated(TenantOidcBindingConfig, config, 'config');
  const s = validated(TenantOidcBindingSecrets, secrets, 'secrets');
  const problems: string[] = [];
  if (!c.issuer && !c.discoveryUrl) problems.push('config: issuer or discoveryUrl is required');
  for (const u of [c.issuer, c.discoveryUrl])
    if (u && !opts.allowHttp && new URL(u).protocol !== 'https:') problems.push('config: OP URLs must use https');
  const method = c.tokenEndpointAuthMethod ?? 'client_secret_basic';
  if (method !== 'private_key_jwt' && !s.clientSecret) problems.push(`secrets: clientSecret is required for ${method}`);
  if (method === 'private_key_jwt' && !s.privateJwk) problems.push('secrets: privateJwk is required for private_key_jwt');
  if (s.privateJwk && (typeof s.privateJwk['alg'] !== 'string' || typeof s.privateJwk['d'] !== 'string'))
    problems.push('secrets: privateJwk must be a private JWK with "alg"');
  const algorithms = [...new Set(c.allowedAlgorithms ?? DEFAULT_ID_TOKEN_ALGORITHMS)];
  if (algorithms.some((a) => (HMAC_ALGORITHMS as readonly string[]).includes(a)) && !s.clientSecret)
    problems.push('config: HS* ID token algorithms need a clientSecret (the HMAC key)');
  if (problems.length > 0) throw new InvalidOidcBindingError(problems);
  const scopes = [...new Set(['openid', ...(c.scopes ?? ['email', 'profile'])])];
  return {
    issuer: c.issuer,
    discoveryUrl: c.discoveryUrl,
    clientId: c.clientId,
    scopes,
    tokenEndpointAuthMethod: method,
    allowedAlgorithms: algorithms,
    useUserinfo: c.useUserinfo === true,
    emailDomainHint: c.emailDomainHint,
    clientSecret: s.clientSecret,
    privateJwk: s.privateJwk,
  };
}
