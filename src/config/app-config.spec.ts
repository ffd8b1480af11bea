import { describe, expect, it } from 'vitest';
import { loadKeyEncryptionKey } from '../crypto/key-encryption-key.js';
import { ConfigError, configEnvNames, loadConfig, secretEnvNames } from './app-config.js';

const MARKER = 'S3CRETMARKER';

/** The message loadConfig (or `then`, on its result) throws for env; fails if nothing is thrown. */
function configErrorOf(env: Record<string, string>, then: (c: ReturnType<typeof loadConfig>) => unknown = () => undefined): string {
  try {
    then(loadConfig(env));
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error(`no configuration error for ${JSON.stringify(Object.keys(env))}`);
}

describe('loadConfig', () => {
  it('runs with no configuration at all, on development defaults', () => {
    const c = loadConfig({});
    expect(c.NODE_ENV).toBe('development');
    expect(c.PORT).toBe(3000);
    expect(c.issuer).toBe('http://localhost:3000');
    expect(c.DATABASE_URL).toBeUndefined();
  });

  it('names the variable that is wrong', () => {
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(/PORT \("eighty"\)/);
    expect(() => loadConfig({ ACCESS_TOKEN_TTL_SECONDS: '5' })).toThrow(/ACCESS_TOKEN_TTL_SECONDS/);
    expect(() => loadConfig({ PUBLIC_URL: 'not a url' })).toThrow(ConfigError);
  });

  it('refuses production without a stable issuer, a real database, a key-encryption key and a mail server', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/PUBLIC_URL.*DATABASE_URL.*KEY_ENCRYPTION_KEY.*SMTP_URL/);
    expect(() =>
      loadConfig({
        NODE_ENV: 'production',
        PUBLIC_URL: 'http://auth.example.com',
        DATABASE_URL: 'postgres://x@db/auth',
        KEY_ENCRYPTION_KEY: 'a'.repeat(44),
        SMTP_URL: 'smtp://mail.example.com:587',
      }),
    ).toThrow(/https/);
    const prod = {
      NODE_ENV: 'production',
      PUBLIC_URL: 'https://auth.example.com/',
      DATABASE_URL: 'postgres://x@db/auth',
      KEY_ENCRYPTION_KEY: 'a'.repeat(44),
    };
    // Without SMTP_URL mail would only be written to files under DATA_DIR: never in production.
    expect(() => loadConfig(prod)).toThrow(/SMTP_URL \(without it mail is written to files under DATA_DIR\/mailbox/);
    const ok = loadConfig({ ...prod, SMTP_URL: 'smtps://user:pass@mail.example.com:465' });
    expect(ok.issuer).toBe('https://auth.example.com');
    expect(ok.mailFrom).toBe('no-reply@auth.example.com');
    expect(loadConfig({ ...prod, SMTP_URL: 'smtp://mail.example.com', MAIL_FROM: 'accounts@example.com' }).mailFrom).toBe(
      'accounts@example.com',
    );
    expect(() => loadConfig({ SMTP_URL: 'http://mail.example.com' })).toThrow(/SMTP_URL \(value withheld: a secret\)/);
  });

  it('makes the operator client at start in development only, and in production only from a given secret (a generated one is never printed there)', () => {
    const prod = {
      NODE_ENV: 'production',
      PUBLIC_URL: 'https://auth.example.com',
      DATABASE_URL: 'postgres://x@db/auth',
      KEY_ENCRYPTION_KEY: 'a'.repeat(44),
      SMTP_URL: 'smtp://mail.example.com:587',
    };
    expect(loadConfig({}).bootstrapAdminOnStart).toBe(true);
    expect(loadConfig({ NODE_ENV: 'test' }).bootstrapAdminOnStart).toBe(false);
    expect(loadConfig({ BOOTSTRAP_ADMIN_ON_START: 'false' }).bootstrapAdminOnStart).toBe(false);
    expect(loadConfig(prod).bootstrapAdminOnStart).toBe(false);
    expect(loadConfig({ ...prod, BOOTSTRAP_ADMIN_CLIENT_SECRET: 's'.repeat(32) }).bootstrapAdminOnStart).toBe(true);
    expect(() => loadConfig({ ...prod, BOOTSTRAP_ADMIN_ON_START: 'true' })).toThrow(
      /BOOTSTRAP_ADMIN_ON_START needs BOOTSTRAP_ADMIN_CLIENT_SECRET in production/,
    );
    expect(() => loadConfig({ BOOTSTRAP_ADMIN_CLIENT_SECRET: 'short' })).toThrow(/BOOTSTRAP_ADMIN_CLIENT_SECRET/);
    expect(loadConfig({}).EMBEDDED_POSTGRES_PORT).toBeUndefined();
  });
});

describe('secret-bearing variables in configuration errors', () => {
  it('declares every token, password, key, secret and URL as secret-bearing', () => {
    const secret = new Set(secretEnvNames());
    const looksSecret = configEnvNames().filter((n) => /TOKEN$|SECRET|PASSWORD|_KEY$|_URL$/.test(n));
    expect(looksSecret.filter((n) => !secret.has(n))).toEqual([]);
    expect(secretEnvNames().filter((n) => !configEnvNames().includes(n))).toEqual([]);
    for (const n of [
      'METRICS_TOKEN',
      'KONG_ADMIN_TOKEN',
      'KEY_ENCRYPTION_KEY',
      'KEYCLOAK_CLIENT_SECRET',
      'KEYCLOAK_ADMIN_CLIENT_SECRET',
      'KEYCLOAK_ADMIN_PASSWORD',
      'DATABASE_URL',
      'REDIS_URL',
      'KONG_ADMIN_URL',
    ])
      expect(secret, n).toContain(n);
  });

  it('names every secret-bearing variable it refuses, never its value', () => {
    // Whatever the variable's check, a value that is not even a string fails it: this reaches the
    // error formatting for every declared variable, including those no string can fail.
    for (const name of secretEnvNames()) {
      const value = [`postgres://user:${MARKER}@host/db`] as unknown as string; // String([x]) is x
      const message = configErrorOf({ [name]: value });
      expect(message, name).toContain(name);
      expect(message, name).not.toContain(MARKER);
    }
  });

  it('does not echo a refused token, URL with credentials or key', () => {
    const refused: Record<string, string> = {
      METRICS_TOKEN: `short${MARKER}`,
      DATABASE_URL: `postgress://user:${MARKER}@db.example.test/auth`,
      REDIS_URL: `redis//:${MARKER}@redis:6379`,
      KONG_ADMIN_URL: `http://admin:${MARKER}@kong admin:8001`,
      KEYCLOAK_URL: `ftp://svc:${MARKER}@keycloak:8080`,
      KEYCLOAK_FRONTEND_URL: `https://svc:${MARKER}@`,
      PUBLIC_URL: `auth.example.com/?token=${MARKER}`,
    };
    for (const [name, value] of Object.entries(refused)) {
      const message = configErrorOf({ [name]: value });
      expect(message, name).toMatch(new RegExp(`${name} \\(value withheld: a secret\\): .+`));
      expect(message, name).not.toContain(MARKER);
    }
    // The example of the issue: the error says what is wrong, not what the token is.
    expect(configErrorOf({ METRICS_TOKEN: 'short' })).toBe(
      'Invalid configuration: METRICS_TOKEN (value withheld: a secret): METRICS_TOKEN must be longer than or equal to 32 characters',
    );
    // Secrets refused by the checks after validation are named, never shown.
    expect(configErrorOf({ KEYCLOAK_CLIENT_SECRET: MARKER })).toMatch(/KEYCLOAK_CLIENT_SECRET set without KEYCLOAK_URL/);
    const keycloak: Array<Record<string, string>> = [
      { KEYCLOAK_CLIENT_SECRET: MARKER },
      { KEYCLOAK_URL: 'http://keycloak:8080', KEYCLOAK_CLIENT_SECRET: 's', KEYCLOAK_ADMIN_CLIENT_SECRET: MARKER },
      { KEYCLOAK_URL: 'http://keycloak:8080', KEYCLOAK_CLIENT_SECRET: 's', KEYCLOAK_ADMIN_PASSWORD: MARKER },
    ];
    for (const env of keycloak) expect(configErrorOf(env)).not.toContain(MARKER);
    const kek = configErrorOf({ KEY_ENCRYPTION_KEY: `${MARKER}${MARKER}` }, (c) => loadKeyEncryptionKey(c));
    expect(kek).toMatch(/^KEY_ENCRYPTION_KEY must be 32 random bytes/);
    expect(kek).not.toContain(MARKER);
  });

  it('still quotes a refused value that is not a secret', () => {
    expect(configErrorOf({ KONG_CONSUMER: 'no spaces allowed' })).toContain('KONG_CONSUMER ("no spaces allowed")');
  });
});

describe('HTTP_KEEP_ALIVE_TIMEOUT_SECONDS', () => {
  it('defaults above the 60 s gateways keep idle upstream connections (Kong)', () => {
    expect(loadConfig({}).HTTP_KEEP_ALIVE_TIMEOUT_SECONDS).toBe(75);
    expect(loadConfig({ HTTP_KEEP_ALIVE_TIMEOUT_SECONDS: '650' }).HTTP_KEEP_ALIVE_TIMEOUT_SECONDS).toBe(650);
  });

  it('refuses a value that is not a whole number of seconds from 1 to 3600, naming the variable', () => {
    for (const bad of ['0', '-5', '75s', '1.5', '3601'])
      expect(configErrorOf({ HTTP_KEEP_ALIVE_TIMEOUT_SECONDS: bad })).toMatch(
        new RegExp(`^Invalid configuration: HTTP_KEEP_ALIVE_TIMEOUT_SECONDS \\("${bad.replace('.', '\\.')}"\\): `),
      );
  });
});
