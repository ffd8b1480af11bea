import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './app-config.js';

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

  it('refuses production without a stable issuer, a real database and a key-encryption key', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/PUBLIC_URL.*DATABASE_URL.*KEY_ENCRYPTION_KEY/);
    expect(() =>
      loadConfig({ NODE_ENV: 'production', PUBLIC_URL: 'http://auth.example.com', DATABASE_URL: 'postgres://x@db/auth', KEY_ENCRYPTION_KEY: 'a'.repeat(44) }),
    ).toThrow(/https/);
    const ok = loadConfig({ NODE_ENV: 'production', PUBLIC_URL: 'https://auth.example.com/', DATABASE_URL: 'postgres://x@db/auth', KEY_ENCRYPTION_KEY: 'a'.repeat(44) });
    expect(ok.issuer).toBe('https://auth.example.com');
  });

  it('makes the operator client at start in development only, and in production only from a given secret (a generated one is never printed there)', () => {
    const prod = { NODE_ENV: 'production', PUBLIC_URL: 'https://auth.example.com', DATABASE_URL: 'postgres://x@db/auth', KEY_ENCRYPTION_KEY: 'a'.repeat(44) };
    expect(loadConfig({}).bootstrapAdminOnStart).toBe(true);
    expect(loadConfig({ NODE_ENV: 'test' }).bootstrapAdminOnStart).toBe(false);
    expect(loadConfig({ BOOTSTRAP_ADMIN_ON_START: 'false' }).bootstrapAdminOnStart).toBe(false);
    expect(loadConfig(prod).bootstrapAdminOnStart).toBe(false);
    expect(loadConfig({ ...prod, BOOTSTRAP_ADMIN_CLIENT_SECRET: 's'.repeat(32) }).bootstrapAdminOnStart).toBe(true);
    expect(() => loadConfig({ ...prod, BOOTSTRAP_ADMIN_ON_START: 'true' })).toThrow(/BOOTSTRAP_ADMIN_ON_START needs BOOTSTRAP_ADMIN_CLIENT_SECRET in production/);
    expect(() => loadConfig({ BOOTSTRAP_ADMIN_CLIENT_SECRET: 'short' })).toThrow(/BOOTSTRAP_ADMIN_CLIENT_SECRET/);
    expect(loadConfig({}).EMBEDDED_POSTGRES_PORT).toBeUndefined();
  });
});
