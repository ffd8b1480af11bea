import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { inject } from 'vitest';
import { loadConfig, type AppConfig } from '../../src/config/app-config.js';
import { createApp, type RunningApp } from '../../src/bootstrap.js';
import { freePort } from './free-port.js';

export interface TestDatabase {
  /** URL for the service role (non-superuser): what the service connects with. */
  url: string;
  name: string;
  /** Every replica of one deployment shares the key-encryption key. */
  kek: string;
}

/** A fresh database in the suite's embedded PostgreSQL, owned by the non-superuser service role. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const admin = new pg.Client({ connectionString: inject('pgAdminUrl') });
  await admin.connect();
  const name = `t_${randomBytes(6).toString('hex')}`;
  await admin.query(`CREATE DATABASE ${name} OWNER auth_service`);
  await admin.end();
  const u = new URL(inject('pgAdminUrl'));
  return { name, url: `postgres://auth_service:auth_service@${u.host}/${name}`, kek: randomBytes(32).toString('base64') };
}

export interface TestApp extends RunningApp {
  config: AppConfig;
  db: TestDatabase;
}

/**
 * The service on a fresh test database (or `db`). Logs are silent unless `logDestination` is given:
 * then they are written there at LOG_LEVEL (default info), one JSON line per call.
 */
export async function startTestApp(
  env: Record<string, string> = {},
  db?: TestDatabase,
  logDestination?: { write(line: string): void },
): Promise<TestApp> {
  const database = db ?? (await createTestDatabase());
  const port = env['PORT'] ?? String(await freePort());
  const config = loadConfig({
    NODE_ENV: 'test',
    PORT: port,
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    DATABASE_URL: database.url,
    DATA_DIR: mkdtempSync(join(tmpdir(), 'auth-service-test-data-')),
    KEY_ENCRYPTION_KEY: database.kek,
    LOG_LEVEL: logDestination ? 'info' : 'silent',
    ARGON2_TIME_COST: '2',
    ARGON2_MEMORY_KIB: '4096',
    ...env,
  });
  const running = await createApp(config, { logDestination });
  return Object.assign(running, { config, db: database });
}

/**
 * The service with PUBLIC_URL on `localhost` (a free port): what a browser needs for WebAuthn
 * (a domain as RP ID, a secure context). `origin` is what the browser opens.
 */
export async function startLocalhostTestApp(env: Record<string, string> = {}): Promise<TestApp & { origin: string }> {
  const port = env['PORT'] ?? String(await freePort());
  const origin = `http://localhost:${port}`;
  return Object.assign(await startTestApp({ PORT: port, PUBLIC_URL: origin, ...env }), { origin });
}
