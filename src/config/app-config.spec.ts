import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './app-config.js';

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

  it('refuses production without a stable issuer, a real database and a key-encryption key', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/PUBLIC_URL.*DATABASE_URL.*KEY_ENCRYPTION_KEY/);
    expect(() =>
      loadConfig({ NODE_ENV: 'production', PUBLIC_URL: 'http://auth.example.com', DATABASE_URL: 'postgres://x@db/auth', KEY_ENCRYPTION_KEY: 'a'.repeat(44) }),
    ).toThrow(/https/);
    const ok = loadConfig({ NODE_ENV: 'production', PUBLIC_URL: 'https://auth.example.com/', DATABASE_URL: 'postgres://x@db/auth', KEY_ENCRYPTION_KEY: 'a'.repeat(44) });
    expect(ok.issuer).toBe('https://auth.example.com');
  });
});

describe('HTTP_KEEP_ALIVE_TIMEOUT_SECONDS', () => {
  it('defaults above the 60 s gateways keep idle upstream connections (Kong)', () => {
    expect(loadConfig({}).HTTP_KEEP_ALIVE_TIMEOUT_SECONDS).toBe(75);
    expect(loadConfig({ HTTP_KEEP_ALIVE_TIMEOUT_SECONDS: '650' }).HTTP_KEEP_ALIVE_TIMEOUT_SECONDS).toBe(650);
  });

  it('refuses a value that is not a whole number of seconds from 1 to 3600, naming the variable', () => {
    for (const bad of ['0', '-5', '75s', '1.5', '3601'])
      expect(configErrorOf({ HTTP_KEEP_ALIVE_TIMEOUT_SECONDS: bad })).toMatch(new RegExp(`^Invalid configuration: HTTP_KEEP_ALIVE_TIMEOUT_SECONDS \\("${bad.replace('.', '\\.')}"\\): `));
  });
});
