import { plainToInstance, Transform } from 'class-transformer';
import {
  IsBoolean,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  IsUrl,
  Max,
  Min,
  validateSync,
  type ValidationError,
} from 'class-validator';

const toInt = ({ value }: { value: unknown }) =>
  typeof value === 'string' && value.trim() !== '' && /^-?\d+$/.test(value.trim()) ? Number(value) : value;
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

  /** Issuer and base of every absolute URL the service emits. */
  @IsOptional()
  @IsUrl({ require_tld: false, protocols: ['http', 'https'], require_protocol: true })
  PUBLIC_URL?: string;

  /** PostgreSQL connection for a NON-superuser role. Unset: an embedded PostgreSQL under DATA_DIR. */
  @IsOptional()
  @IsString()
  DATABASE_URL?: string;

  @IsString()
  DATA_DIR = '.data';

  @Transform(toInt)
  @IsInt()
  @Min(1024)
  @Max(65535)
  EMBEDDED_POSTGRES_PORT = 54329;

  /** 32 random bytes, base64: encrypts signing keys and IdP secrets at rest (AES-256-GCM). */
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

  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(100)
  NATIVE_LOCKOUT_THRESHOLD = 5;

  @Transform(toInt)
  @IsInt()
  @Min(1)
  NATIVE_LOCKOUT_SECONDS = 900;

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

  /** Trust X-Forwarded-For from this many proxy hops (Kong, a load balancer). */
  @Transform(toInt)
  @IsInt()
  @Min(0)
  TRUST_PROXY_HOPS = 0;

  @IsIn(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
  LOG_LEVEL: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent' = 'info';

  @Transform(toBool)
  @IsBoolean()
  LOG_PRETTY = false;

  get issuer(): string {
    return (this.PUBLIC_URL ?? `http://localhost:${this.PORT}`).replace(/\/+$/, '');
  }

  get isProduction(): boolean {
    return this.NODE_ENV === 'production';
  }
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const describe = (errors: ValidationError[]): string =>
  errors
    .map((e) => {
      const got = e.value === undefined ? 'unset' : JSON.stringify(String(e.value));
      const why = Object.values(e.constraints ?? {}).join('; ');
      return `${e.property} (${got}): ${why}`;
    })
    .join(' | ');

/** Validates the environment; throws one ConfigError naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): AppConfig {
  const known = Object.keys(new AppConfig());
  const raw: Record<string, string> = {};
  for (const key of [...known, 'PUBLIC_URL', 'DATABASE_URL', 'KEY_ENCRYPTION_KEY', 'KEY_ENCRYPTION_KEY_FILE']) {
    const value = env[key];
    if (value !== undefined && value !== '') raw[key] = value;
  }
  const config = plainToInstance(AppConfig, raw);
  const errors = validateSync(config, { whitelist: true, forbidNonWhitelisted: false });
  if (errors.length > 0) throw new ConfigError(`Invalid configuration: ${describe(errors)}`);
  if (config.isProduction) {
    const missing: string[] = [];
    if (!config.PUBLIC_URL) missing.push('PUBLIC_URL (the issuer must be stable in production)');
    if (!config.DATABASE_URL) missing.push('DATABASE_URL (the embedded PostgreSQL is for development only)');
    if (!config.KEY_ENCRYPTION_KEY && !config.KEY_ENCRYPTION_KEY_FILE)
      missing.push('KEY_ENCRYPTION_KEY or KEY_ENCRYPTION_KEY_FILE');
    if (config.PUBLIC_URL && !config.PUBLIC_URL.startsWith('https://'))
      missing.push('PUBLIC_URL must be https:// in production');
    if (missing.length > 0) throw new ConfigError(`Invalid configuration for production: ${missing.join(' | ')}`);
  }
  return config;
}
