import { availableParallelism } from 'node:os';
import { plainToInstance, Transform } from 'class-transformer';
import {
  IsBoolean,
  IsEmail,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  IsUrl,
  Matches,
  Max,
  Min,
  MinLength,
  getMetadataStorage,
  validateSync,
  type ValidationError,
} from 'class-validator';

const toInt = ({ value }: { value: unknown }) =>
  typeof value === 'string' && value.trim() !== '' && /^-?\d+$/.test(value.trim()) ? Number(value) : value;

const SECRET_ENV_NAMES = new Set<string>();

/**
 * Declares a variable whose value is a credential or may carry one (a URL's userinfo, a connection
 * string's password): a configuration error names it and says what is wrong, never shows its value
 * (an operator pastes start-up errors into tickets and chats; logs are shipped and kept).
 */
function Secret(): PropertyDecorator {
  return (_target, key) => {
    SECRET_ENV_NAMES.add(String(key));
  };
}

const toBool = ({ value }: { value: unknown }) => {
  if (typeof value !== 'string') return value;
  if (/^(true|1|yes|on)$/i.test(value)) return true;
  if (/^(false|0|no|off)$/i.test(value)) return false;
  return value;
};

/**
 * Every environment variable the service reads, validated once at start-up. Defaults are
 * development-friendly; the ones that are unsafe in production are refused there (see
 * `assertProductionSafe`). The README's configuration table is generated from these names.
 */
export class AppConfig {
  @IsIn(['development', 'test', 'production'])
  NODE_ENV: 'development' | 'test' | 'production' = 'development';

  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(65535)
  PORT = 3000;

  @IsString()
  HOST = '127.0.0.1';

  /**
   * HTTP worker processes sharing PORT (node:cluster); `auto` = one per available CPU. One process
   * per core is how the token endpoint uses the whole machine; replicas scale beyond it.
   */
  @Transform(({ value }: { value: unknown }) => (value === 'auto' ? availableParallelism() : toInt({ value })))
  @IsInt()
  @Min(1)
  @Max(64)
  WORKERS = 1;

  /**
   * How long an idle keep-alive connection stays open. It must be longer than the gateway in front
   * keeps idle upstream connections (Kong's `upstream_keepalive_idle_timeout`, 60 s by default; load
   * balancers similar): else the service closes a connection the gateway is about to reuse, and the
   * gateway answers that request with a 502.
   */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(3600)
  HTTP_KEEP_ALIVE_TIMEOUT_SECONDS = 75;

  /**
   * On shutdown, how long requests in flight may finish before every connection still open is
   * closed. Without a bound, a connection a browser opened ahead of need (it has sent no request)
   * held the shutdown until its headers timeout, over a minute.
   */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(600)
  SHUTDOWN_DRAIN_SECONDS = 10;

  /** Issuer and base of every absolute URL the service emits. */
  @Secret()
  @IsOptional()
  @IsUrl({ require_tld: false, protocols: ['http', 'https'], require_protocol: true })
  PUBLIC_URL?: string;

  /** PostgreSQL connection for a NON-superuser role. Unset: an embedded PostgreSQL under DATA_DIR. */
  @Secret()
  @IsOptional()
  @Matches(/^postgres(?:ql)?:\/\/\S+$/, { message: 'must be a postgres:// or postgresql:// URL' })
  DATABASE_URL?: string;

  @IsString()
  DATA_DIR = '.data';

  /** Unset: 54329, or a free port when that one is taken (remembered in DATA_DIR). Set: that port, or an error when it is taken. */
  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1024)
  @Max(65535)
  EMBEDDED_POSTGRES_PORT?: number;

  /** 32 random bytes, base64: encrypts signing keys and IdP secrets at rest (AES-256-GCM). */
  @Secret()
  @IsOptional()
  @IsString()
  KEY_ENCRYPTION_KEY?: string;

  @IsOptional()
  @IsString()
  KEY_ENCRYPTION_KEY_FILE?: string;

  @IsString()
  ACCESS_TOKEN_AUDIENCE = 'platform-api';

  @Transform(toInt)
  @IsInt()
  @Min(30)
  @Max(86_400)
  ACCESS_TOKEN_TTL_SECONDS = 300;

  @Transform(toInt)
  @IsInt()
  @Min(60)
  REFRESH_TOKEN_TTL_SECONDS = 30 * 86_400;

  /**
   * How long a just-rotated refresh token, presented again by the same client, still answers the
   * successor it was rotated to instead of counting as reuse (a BFF refreshing from two tabs at once).
   * 0: off, every second presentation revokes the family. Short on purpose (RFC 9700 §4.14.2, ADR 0012).
   */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(60)
  REFRESH_TOKEN_REUSE_GRACE_SECONDS = 5;

  @Transform(toInt)
  @IsInt()
  @Min(10)
  @Max(600)
  AUTHORIZATION_CODE_TTL_SECONDS = 60;

  @Transform(toInt)
  @IsInt()
  @Min(60)
  @Max(3600)
  LOGIN_TRANSACTION_TTL_SECONDS = 600;

  /** Tolerance for clocks of upstream IdPs and of token validators. */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(600)
  CLOCK_SKEW_SECONDS = 60;

  /**
   * Oldest SAML assertion accepted, counted from its IssueInstant (plus CLOCK_SKEW_SECONDS),
   * whatever NotOnOrAfter it claims: an IdP posts its assertion through the browser at once.
   */
  @Transform(toInt)
  @IsInt()
  @Min(30)
  @Max(3600)
  SAML_MAX_ASSERTION_AGE_SECONDS = 300;

  /**
   * Longest wait for one HTTP request to a tenant's identity provider during a login (OIDC
   * discovery, token, userinfo, JWKS). A hanging IdP fails that tenant's sign-in with a clear error
   * after this long; other tenants are not affected.
   */
  @Transform(toInt)
  @IsInt()
  @Min(100)
  @Max(120_000)
  UPSTREAM_TIMEOUT_MS = 10_000;

  /** How long a new signing key is published in the JWKS before it signs anything. */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  KEY_PUBLISH_DELAY_SECONDS = 600;

  /** Automatic rotation period of the signing key; 0 turns scheduled rotation off. */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  KEY_ROTATION_INTERVAL_SECONDS = 30 * 86_400;

  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(86_400)
  JWKS_MAX_AGE_SECONDS = 300;

  /** Period of the background refresh of every active IdP binding's health (discovery, JWKS, metadata, certificate expiry). */
  @Transform(toInt)
  @IsInt()
  @Min(60)
  @Max(86_400)
  BINDING_HEALTH_INTERVAL_SECONDS = 900;

  /** Background binding health refresh on or off. Default: on, except under NODE_ENV=test. */
  @IsOptional()
  @Transform(toBool)
  @IsBoolean()
  BINDING_HEALTH_REFRESH?: boolean;

  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(100)
  NATIVE_LOCKOUT_THRESHOLD = 5;

  @Transform(toInt)
  @IsInt()
  @Min(1)
  NATIVE_LOCKOUT_SECONDS = 900;

  /** How long an invitation link (set your password) stays valid. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(24 * 30)
  INVITATION_TTL_HOURS = 168;

  /** How long a password-reset link stays valid. */
  @Transform(toInt)
  @IsInt()
  @Min(5)
  @Max(24 * 60)
  RESET_LINK_TTL_MINUTES = 30;

  /** How long an email-verification link stays valid. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(24 * 30)
  EMAIL_VERIFICATION_TTL_HOURS = 24;

  /** Per client IP, per minute: "forgot password" requests. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  RATE_LIMIT_FORGOT_PER_MINUTE = 5;

  /** Per account name typed (known or not), per hour: "forgot password" requests. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  RATE_LIMIT_FORGOT_PER_ACCOUNT_PER_HOUR = 5;

  /** Argon2id parameters for native passwords (defaults match Keycloak's). */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  ARGON2_TIME_COST = 5;

  @Transform(toInt)
  @IsInt()
  @Min(1024)
  ARGON2_MEMORY_KIB = 7168;

  /** Per client IP, per minute: organisation-slug look-ups at /oauth2/authorize. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  RATE_LIMIT_AUTHORIZE_PER_MINUTE = 30;

  /** Per client IP, per minute: password attempts on the hosted login form. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  RATE_LIMIT_LOGIN_PER_MINUTE = 20;

  /** Per tenant, per minute: authorization requests for that organisation (in addition to the per-IP limit). */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  RATE_LIMIT_AUTHORIZE_PER_TENANT_PER_MINUTE = 3000;

  /** Per tenant, per minute: password attempts on the hosted login form (in addition to the per-IP limit). */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  RATE_LIMIT_LOGIN_PER_TENANT_PER_MINUTE = 1200;

  /** Per client_id, per minute: token requests of an authenticated client (size it for the BFF's refresh rate). */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  RATE_LIMIT_TOKEN_PER_MINUTE = 6000;

  /** Per client IP, per minute: token requests, counted before client authentication. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  RATE_LIMIT_TOKEN_PER_IP_PER_MINUTE = 12000;

  /**
   * Redis for the rate-limit counters (`redis://[:password@]host:port[/db]`, `rediss://` for TLS).
   * Unset: counters in PostgreSQL. Unreachable: counted in PostgreSQL until it answers (ADR 0007).
   */
  @Secret()
  @IsOptional()
  @Matches(/^rediss?:\/\/\S+$/, { message: 'must be a redis:// or rediss:// URL' })
  REDIS_URL?: string;

  /** Longest wait for one Redis answer before a rate-limit hit is counted on the PostgreSQL fallback. */
  @Transform(toInt)
  @IsInt()
  @Min(10)
  @Max(10_000)
  REDIS_TIMEOUT_MS = 250;

  /** Per tenant, per minute: SCIM requests (a tenant's scim_settings row may override it). */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  SCIM_RATE_LIMIT_PER_MINUTE = 3000;

  /** How long a verified SCIM token is remembered per replica at most; token, SCIM-setting and tenant changes drop it on every replica at once. 0 = never. */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(300)
  SCIM_TOKEN_CACHE_SECONDS = 10;

  /**
   * Mass-deprovisioning guard (per-tenant overrides in scim_settings): SCIM deactivations and
   * deletions beyond max(MIN_COUNT, PERCENT % of the tenant's users) within WINDOW_SECONDS are
   * held for an administrator instead of applied.
   */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(100)
  SCIM_DEPROVISION_GUARD_PERCENT = 20;

  @Transform(toInt)
  @IsInt()
  @Min(1)
  SCIM_DEPROVISION_GUARD_WINDOW_SECONDS = 600;

  @Transform(toInt)
  @IsInt()
  @Min(0)
  SCIM_DEPROVISION_GUARD_MIN_COUNT = 10;

  /** Slug of the operators' tenant: only its SUPER_ADMIN users and `admin`-scoped machine clients may use the admin API. */
  @IsString()
  OPERATOR_TENANT = 'operators';

  /**
   * The operator machine client made once per database (the `admin` scope of OPERATOR_TENANT):
   * by the first start (see BOOTSTRAP_ADMIN_ON_START) or by `npm run admin -- bootstrap`.
   */
  @Matches(/^[A-Za-z0-9_.-]{3,100}$/, { message: 'must be a client id (3-100 of A-Z a-z 0-9 _ . -)' })
  BOOTSTRAP_ADMIN_CLIENT_ID = 'ops-admin';

  /** Its secret, from a secret store (at least 32 characters): the first start creates the client with it and prints nothing secret. */
  @Secret()
  @IsOptional()
  @IsString()
  @MinLength(32)
  BOOTSTRAP_ADMIN_CLIENT_SECRET?: string;

  /**
   * Whether a start on a database that has no operator client yet creates one. Default: on in
   * development (a generated secret printed once, last, in the start-up output); off under test;
   * in production only with BOOTSTRAP_ADMIN_CLIENT_SECRET (a secret is never printed there).
   */
  @IsOptional()
  @Transform(toBool)
  @IsBoolean()
  BOOTSTRAP_ADMIN_ON_START?: boolean;

  /** Trust X-Forwarded-For from this many proxy hops (Kong, a load balancer). */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  TRUST_PROXY_HOPS = 0;

  /** Bearer token Prometheus sends to `GET /metrics` (at least 32 characters). Unset: `/metrics` answers 404. */
  @Secret()
  @IsOptional()
  @IsString()
  @MinLength(32)
  METRICS_TOKEN?: string;

  /** Label login metrics with the tenant id (series grow with tenants × adapters × outcomes); false: one `_all` label. */
  @Transform(toBool)
  @IsBoolean()
  METRICS_TENANT_LABEL = true;

  /** Kong Admin API (e.g. http://kong:8001): every published signing key is pushed there as a jwt credential. Unset: no push. */
  @Secret()
  @IsOptional()
  @IsUrl({ require_tld: false, protocols: ['http', 'https'], require_protocol: true })
  KONG_ADMIN_URL?: string;

  /** Sent as `Kong-Admin-Token` to the Kong Admin API (RBAC, or a proxy guarding it). */
  @Secret()
  @IsOptional()
  @IsString()
  KONG_ADMIN_TOKEN?: string;

  /** The Kong consumer that holds the platform's jwt credentials (one per signing key). */
  @Matches(/^[A-Za-z0-9._~-]{1,128}$/, { message: 'must be a Kong consumer username (letters, digits, . _ ~ -)' })
  KONG_CONSUMER = 'auth-service';

  /**
   * Outgoing mail (invitations, password resets, e-mail verification): `smtp://[user:pass@]host:port`
   * (STARTTLS when the server offers it) or `smtps://…` (TLS from the start, usually port 465).
   * Unset: every message is written as an .eml file under DATA_DIR/mailbox instead (development
   * only; production refuses to start without it).
   */
  @Secret()
  @IsOptional()
  @Matches(/^smtps?:\/\/\S+$/, { message: 'must be an smtp:// or smtps:// URL' })
  SMTP_URL?: string;

  /** Envelope and From address of outgoing mail; the display name is the tenant's. Default: no-reply@ the PUBLIC_URL host. */
  @IsOptional()
  @IsEmail({ require_tld: false }, { message: 'must be an e-mail address' })
  MAIL_FROM?: string;

  /**
   * Back-off of a message whose delivery failed: the n-th retry waits MAIL_RETRY_BASE_SECONDS × 4^(n-1)
   * (30 s, 2 min, 8 min, … at most an hour); after MAIL_MAX_ATTEMPTS attempts the message is given up.
   */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(3600)
  MAIL_RETRY_BASE_SECONDS = 30;

  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(50)
  MAIL_MAX_ATTEMPTS = 8;

  @IsIn(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
  LOG_LEVEL: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent' = 'info';

  @Transform(toBool)
  @IsBoolean()
  LOG_PRETTY = false;

  /**
   * `host:port` of the Firebase Auth emulator (development and test only). In emulator mode the
   * firebase_legacy adapter accepts the emulator's unsigned ID tokens, so production refuses it.
   */
  @IsOptional()
  @Matches(/^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9A-Fa-f:]+\]:\d{1,5}$/, { message: 'must be host:port' })
  FIREBASE_AUTH_EMULATOR_HOST?: string;

  /**
   * Keycloak, the platform's base IdP (all optional: without KEYCLOAK_URL the service runs and
   * serves every tenant that is not bound to Keycloak). KEYCLOAK_URL is what the service calls
   * (back channel, e.g. http://keycloak:8080); KEYCLOAK_FRONTEND_URL is what browsers use, and so
   * the base of every realm's issuer (Keycloak's KC_HOSTNAME). Default: KEYCLOAK_URL.
   */
  @Secret()
  @IsOptional()
  @IsUrl({ require_tld: false, protocols: ['http', 'https'], require_protocol: true })
  KEYCLOAK_URL?: string;

  @Secret()
  @IsOptional()
  @IsUrl({ require_tld: false, protocols: ['http', 'https'], require_protocol: true })
  KEYCLOAK_FRONTEND_URL?: string;

  /** The shared realm in which tenants are Organizations. */
  @Matches(/^[A-Za-z0-9._-]{1,100}$/, { message: 'must be a realm name' })
  KEYCLOAK_REALM = 'platform';

  /** This service's confidential client in the shared realm (code flow + PKCE). */
  @Matches(/^[\x21-\x7E]{1,255}$/, { message: 'must be a client id' })
  KEYCLOAK_CLIENT_ID = 'auth-service';

  @Secret()
  @IsOptional()
  @IsString()
  KEYCLOAK_CLIENT_SECRET?: string;

  /** `aud` a Keycloak access token must carry to be exchanged (RFC 8693). Default: KEYCLOAK_CLIENT_ID. */
  @IsOptional()
  @IsString()
  KEYCLOAK_TOKEN_AUDIENCE?: string;

  /**
   * Provisioning (Organizations, dedicated realms, brokered IdPs) through the admin REST API:
   * either a service-account client (KEYCLOAK_ADMIN_CLIENT_ID + _SECRET) or a user
   * (KEYCLOAK_ADMIN_USERNAME + _PASSWORD, through admin-cli), in KEYCLOAK_ADMIN_REALM.
   */
  @Matches(/^[A-Za-z0-9._-]{1,100}$/, { message: 'must be a realm name' })
  KEYCLOAK_ADMIN_REALM = 'master';

  @IsOptional()
  @IsString()
  KEYCLOAK_ADMIN_CLIENT_ID?: string;

  @Secret()
  @IsOptional()
  @IsString()
  KEYCLOAK_ADMIN_CLIENT_SECRET?: string;

  @IsOptional()
  @IsString()
  KEYCLOAK_ADMIN_USERNAME?: string;

  @Secret()
  @IsOptional()
  @IsString()
  KEYCLOAK_ADMIN_PASSWORD?: string;

  get issuer(): string {
    return (this.PUBLIC_URL ?? `http://localhost:${this.PORT}`).replace(/\/+$/, '');
  }

  /** Whether this start makes the operator client when none was ever made (BOOTSTRAP_ADMIN_ON_START). */
  get bootstrapAdminOnStart(): boolean {
    if (this.BOOTSTRAP_ADMIN_ON_START !== undefined) return this.BOOTSTRAP_ADMIN_ON_START;
    return this.NODE_ENV === 'development' || (this.isProduction && this.BOOTSTRAP_ADMIN_CLIENT_SECRET !== undefined);
  }

  /** The From address of outgoing mail (MAIL_FROM, or no-reply@ the issuer's host). */
  get mailFrom(): string {
    return this.MAIL_FROM ?? `no-reply@${new URL(this.issuer).hostname}`;
  }

  get isProduction(): boolean {
    return this.NODE_ENV === 'production';
  }

  /** The Firebase Auth emulator, only ever outside production (loadConfig refuses it there). */
  get firebaseEmulatorHost(): string | undefined {
    return this.NODE_ENV === 'development' || this.NODE_ENV === 'test' ? this.FIREBASE_AUTH_EMULATOR_HOST : undefined;
  }
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Names of the variables declared `@Secret()`: their values are never shown. */
export function secretEnvNames(): string[] {
  return [...SECRET_ENV_NAMES];
}

/**
 * The one place that turns validation failures into words. A non-secret value is quoted (it helps
 * to see the typo); a secret one is not. (No constraint message here quotes `$value`: keep it so.)
 */
const describe = (errors: ValidationError[]): string =>
  errors
    .map((e) => {
      const got =
        e.value === undefined ? 'unset' : SECRET_ENV_NAMES.has(e.property) ? 'value withheld: a secret' : JSON.stringify(String(e.value));
      const why = Object.values(e.constraints ?? {}).join('; ');
      return `${e.property} (${got}): ${why}`;
    })
    .join(' | ');

/** Every environment variable the service reads (docs and deployment checks use the same list). */
export function configEnvNames(): string[] {
  // Every property carries a class-validator decorator (with a default or @IsOptional), so the
  // validation metadata is the complete list, in declaration order: nothing to keep by hand.
  const names = getMetadataStorage()
    .getTargetValidationMetadatas(AppConfig, '', true, false)
    .map((m) => m.propertyName);
  return [...new Set(names)];
}

/** Keycloak settings that only make sense together. */
function keycloakProblems(c: AppConfig): string[] {
  const problems: string[] = [];
  const set = (v: string | undefined) => v !== undefined && v !== '';
  if (!c.KEYCLOAK_URL) {
    const orphans = ['KEYCLOAK_FRONTEND_URL', 'KEYCLOAK_CLIENT_SECRET', 'KEYCLOAK_ADMIN_CLIENT_ID', 'KEYCLOAK_ADMIN_USERNAME'].filter((k) =>
      set(c[k as keyof AppConfig] as string | undefined),
    );
    if (orphans.length > 0) problems.push(`${orphans.join(', ')} set without KEYCLOAK_URL`);
    return problems;
  }
  if (!set(c.KEYCLOAK_CLIENT_SECRET))
    problems.push('KEYCLOAK_CLIENT_SECRET is required with KEYCLOAK_URL (the service is a confidential client)');
  if (set(c.KEYCLOAK_ADMIN_CLIENT_ID) !== set(c.KEYCLOAK_ADMIN_CLIENT_SECRET))
    problems.push('KEYCLOAK_ADMIN_CLIENT_ID and KEYCLOAK_ADMIN_CLIENT_SECRET go together');
  if (set(c.KEYCLOAK_ADMIN_USERNAME) !== set(c.KEYCLOAK_ADMIN_PASSWORD))
    problems.push('KEYCLOAK_ADMIN_USERNAME and KEYCLOAK_ADMIN_PASSWORD go together');
  if (set(c.KEYCLOAK_ADMIN_CLIENT_ID) && set(c.KEYCLOAK_ADMIN_USERNAME))
    problems.push('configure one Keycloak admin credential: a client or a user, not both');
  if (c.isProduction && !(c.KEYCLOAK_FRONTEND_URL ?? c.KEYCLOAK_URL).startsWith('https://'))
    problems.push('KEYCLOAK_FRONTEND_URL (or KEYCLOAK_URL) must be https:// in production: browsers send passwords to it');
  if (c.isProduction && !c.KEYCLOAK_URL.startsWith('https://'))
    problems.push('KEYCLOAK_URL must be https:// in production: the client secret and tokens travel on it');
  return problems;
}

/** Validates the environment; throws one ConfigError naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): AppConfig {
  const raw: Record<string, string> = {};
  for (const key of configEnvNames()) {
    const value = env[key];
    if (value !== undefined && value !== '') raw[key] = value;
  }
  const config = plainToInstance(AppConfig, raw);
  const errors = validateSync(config, { whitelist: true, forbidNonWhitelisted: false });
  if (errors.length > 0) throw new ConfigError(`Invalid configuration: ${describe(errors)}`);
  const keycloak = keycloakProblems(config);
  if (keycloak.length > 0) throw new ConfigError(`Invalid Keycloak configuration: ${keycloak.join(' | ')}`);
  if (config.isProduction) {
    const missing: string[] = [];
    if (!config.PUBLIC_URL) missing.push('PUBLIC_URL (the issuer must be stable in production)');
    if (!config.DATABASE_URL) missing.push('DATABASE_URL (the embedded PostgreSQL is for development only)');
    if (!config.KEY_ENCRYPTION_KEY && !config.KEY_ENCRYPTION_KEY_FILE) missing.push('KEY_ENCRYPTION_KEY or KEY_ENCRYPTION_KEY_FILE');
    if (config.PUBLIC_URL && !config.PUBLIC_URL.startsWith('https://')) missing.push('PUBLIC_URL must be https:// in production');
    if (!config.SMTP_URL) missing.push('SMTP_URL (without it mail is written to files under DATA_DIR/mailbox, for development only)');
    if (env['FIREBASE_AUTH_EMULATOR_HOST'])
      missing.push(
        'FIREBASE_AUTH_EMULATOR_HOST must be unset in production (the Firebase Auth emulator accepts unsigned ID tokens; it is for development and test only)',
      );
    if (config.BOOTSTRAP_ADMIN_ON_START === true && !config.BOOTSTRAP_ADMIN_CLIENT_SECRET)
      missing.push(
        'BOOTSTRAP_ADMIN_ON_START needs BOOTSTRAP_ADMIN_CLIENT_SECRET in production (a generated secret is never printed to production logs; or run `npm run admin -- bootstrap`)',
      );
    if (missing.length > 0) throw new ConfigError(`Invalid configuration for production: ${missing.join(' | ')}`);
  }
  return config;
}
