/**
 * Shared by the bench modules: a throw-away service stack (embedded PostgreSQL + the service in its
 * own process), autocannon runs with sub-millisecond latency percentiles, and the BFF login flow.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { INestApplication } from '@nestjs/common';
import autocannon from 'autocannon';
import pg from 'pg';
import { configEnvNames, loadConfig } from '../src/config/app-config.js';
import { createApp } from '../src/bootstrap.js';
import { APP_ROLE, runningEmbeddedPostgres, startEmbeddedPostgres, type EmbeddedDatabase } from '../src/database/embedded-postgres.js';
import { cpuPerRequest, cpuSnapshot, peakRssMiB, type CpuPerRequest } from './process-cpu.js';

/** The repository root, from bench/ (source) or dist/bench/ (built). */
export function repoRoot(): string {
  const up1 = fileURLToPath(new URL('../', import.meta.url));
  return existsSync(join(up1, 'package.json')) ? up1 : fileURLToPath(new URL('../../', import.meta.url));
}

export const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const envFlag = (name: string) => process.env[name] !== 'false' && process.env[name] !== '0';
export const envNumber = (name: string, fallback: number) => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
};

export const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

const benchStarted = Date.now();
export const progress = (msg: string) => process.stderr.write(`[bench +${Math.round((Date.now() - benchStarted) / 1000)}s] ${msg}\n`);

/** A header of an autocannon response (its keys keep the case the server sent). */
export function header(headers: Record<string, unknown>, name: string): string | undefined {
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return Array.isArray(v) ? String(v[0]) : String(v);
  return undefined;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

export interface LoadResult {
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  /** Socket errors and time-outs. */
  errors: number;
  non2xx: number;
  /** Responses with another status than the scenario expects (200, or 302 for redirects). */
  unexpected: number;
  requests: number;
  durationSeconds: number;
  /** Responses per HTTP status. */
  statuses: Record<string, number>;
  /** CPU milliseconds per request of the service, PostgreSQL and the load generator (BenchStack.measure). */
  cpuMs?: CpuPerRequest;
}

/**
 * One autocannon run. Latencies come from every response, in fractional milliseconds
 * (autocannon's own histogram has whole milliseconds and keeps 2xx only).
 */
export function load(opts: autocannon.Options, expectStatus: number | number[] = 200): Promise<LoadResult> {
  const expected = new Set([expectStatus].flat());
  const latencies: number[] = [];
  let unexpected = 0;
  const statuses: Record<string, number> = {};
  return new Promise((resolve, reject) => {
    const instance = autocannon(opts, (err, r) => {
      if (err) {
        reject(err);
        return;
      }
      latencies.sort((a, b) => a - b);
      resolve({
        rps: Math.round(r.requests.average),
        p50: round(percentile(latencies, 50)),
        p90: round(percentile(latencies, 90)),
        p99: round(percentile(latencies, 99)),
        errors: r.errors + r.timeouts,
        non2xx: r.non2xx,
        unexpected,
        requests: latencies.length,
        durationSeconds: r.duration,
        statuses,
      });
    });
    instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
      latencies.push(ms);
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (!expected.has(status)) unexpected++;
    });
  });
}

/**
 * Open-loop load: requests start at evenly spaced instants (`rate` per second), whether or not
 * earlier ones have answered, the way independent clients arrive. autocannon's `overallRate` sends
 * its connections' requests in bursts, which measures queueing within a burst, not the latency a
 * client sees at that load. `send` returns the HTTP status.
 */
export async function openLoop(rate: number, seconds: number, send: () => Promise<number>, expectStatus = 200): Promise<LoadResult> {
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let errors = 0;
  let unexpected = 0;
  const inFlight: Promise<void>[] = [];
  const started = performance.now();
  const total = Math.round(rate * seconds);
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    const t0 = performance.now();
    inFlight.push(
      send().then(
        (status) => {
          latencies.push(performance.now() - t0);
          statuses[status] = (statuses[status] ?? 0) + 1;
          if (status !== expectStatus) unexpected++;
        },
        () => {
          errors++;
        },
      ),
    );
  }
  await Promise.all(inFlight);
  const durationSeconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    rps: Math.round(latencies.length / durationSeconds),
    p50: round(percentile(latencies, 50)),
    p90: round(percentile(latencies, 90)),
    p99: round(percentile(latencies, 99)),
    errors,
    non2xx: latencies.length - (statuses['200'] ?? 0) - (statuses['201'] ?? 0) - (statuses['204'] ?? 0),
    unexpected,
    requests: latencies.length,
    durationSeconds: round(durationSeconds),
    statuses,
  };
}

/** Every rate limit the configuration knows, raised so the bench measures the work, not the limiter. */
export function unlimitedRateLimits(): Record<string, string> {
  return Object.fromEntries(
    configEnvNames()
      .filter((n) => n.includes('RATE_LIMIT'))
      .map((n) => [n, '10000000']),
  );
}

/** Service processes (WORKERS): one per core unless BENCH_WORKERS says otherwise, as in bench/scim.ts. */
export const benchWorkers = () => envNumber('BENCH_WORKERS', cpus().length);

export interface BenchStack {
  readonly base: string;
  readonly env: Record<string, string>;
  readonly workers: number;
  /** Runs `fn` against an in-process instance of the service (no HTTP), for seeding. */
  seed<T>(fn: (app: INestApplication) => Promise<T>): Promise<T>;
  /** A connection as the cluster's superuser: bypasses row-level security, for bulk seeding in SQL. */
  superuser(): Promise<pg.Client>;
  /** Starts the service in its own process and waits until it is ready. */
  start(execArgv?: string[]): Promise<void>;
  stopService(): Promise<void>;
  /** Runs a load and adds the CPU milliseconds per request of each process group to its result. */
  measure<T extends { requests: number }>(run: () => Promise<T>): Promise<T & { cpuMs: CpuPerRequest }>;
  /** Peak resident set of each service process so far (MiB), the cluster primary first. */
  peakRss(): { pid: number; peakMiB: number }[];
  /** Stops the service and the database and deletes the data directory. */
  close(): Promise<void>;
}

/** An embedded PostgreSQL and the service's configuration for it; `extraEnv` wins over the defaults. */
export async function createStack(name: string, extraEnv: Record<string, string> = {}): Promise<BenchStack> {
  const dataDir = mkdtempSync(join(tmpdir(), `auth-service-${name}-`));
  const pgPort = await freePort();
  let db: EmbeddedDatabase;
  try {
    db = await startEmbeddedPostgres(dataDir, pgPort, () => undefined);
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  const port = await freePort();
  const env: Record<string, string> = {
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    PUBLIC_URL: 'https://bench.invalid',
    DATABASE_URL: db.url,
    KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    // Production needs a mail server; the bench sends no mail, so nothing listens on it.
    SMTP_URL: 'smtp://127.0.0.1:25',
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    WORKERS: String(benchWorkers()),
    ...unlimitedRateLimits(),
    ...extraEnv,
  };
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(env); // fails here, naming the variable, rather than in the child
  } catch (err) {
    await db.stop();
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  const base = `http://127.0.0.1:${port}`;
  let server: ChildProcess | undefined;
  const kill = () => server?.kill('SIGKILL');

  const stopService = async () => {
    const s = server;
    if (!s) return;
    server = undefined;
    process.off('exit', kill);
    if (s.exitCode === null && s.signalCode === null) {
      const exited = new Promise((r) => s.once('exit', r));
      s.kill('SIGTERM');
      await Promise.race([exited, sleep(15_000)]);
      if (s.exitCode === null && s.signalCode === null) s.kill('SIGKILL');
    }
  };

  return {
    base,
    env,
    workers: config.WORKERS,
    async seed(fn) {
      const app = await createApp(config, { listen: false });
      try {
        return await fn(app.app);
      } finally {
        await app.close();
      }
    },
    async superuser() {
      // startEmbeddedPostgres keeps the cluster's superuser password in the data directory.
      const { superPassword } = JSON.parse(readFileSync(join(dataDir, 'postgres-credentials.json'), 'utf8')) as { superPassword: string };
      const client = new pg.Client({ host: '127.0.0.1', port: pgPort, user: 'postgres', password: superPassword, database: APP_ROLE });
      await client.connect();
      return client;
    },
    async start(execArgv = []) {
      if (server) throw new Error('service already running');
      const fromSource = import.meta.url.endsWith('.ts');
      const entry = fileURLToPath(new URL(fromSource ? '../src/main.ts' : '../src/main.js', import.meta.url));
      server = fork(entry, [], {
        env: { ...process.env, ...env },
        stdio: ['inherit', 'pipe', 'inherit', 'ipc'],
        execArgv: [...(fromSource ? ['--disable-warning=DEP0205', '--import', '@swc-node/register/esm-register'] : []), ...execArgv],
      });
      process.on('exit', kill);
      const s = server;
      // Every process (each worker under WORKERS > 1) prints one "auth-service listening" line when it serves.
      let listening = 0;
      let buffered = '';
      s.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        buffered += chunk;
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, nl + 1);
          buffered = buffered.slice(nl + 1);
          if (line.includes('"msg":"auth-service listening"')) listening++;
          else process.stdout.write(line);
        }
      });
      for (let i = 0; ; i++) {
        if (s.exitCode !== null || s.signalCode !== null)
          throw new Error(`service exited (${s.exitCode ?? s.signalCode}) before it was ready`);
        if (listening >= config.WORKERS) {
          try {
            if ((await fetch(`${base}/health/ready`)).ok) return;
          } catch {
            /* not up yet */
          }
        }
        if (i > 900) throw new Error(`service did not start within 90 s (${listening} of ${config.WORKERS} processes listening)`);
        await sleep(100);
      }
    },
    stopService,
    async measure(run) {
      const groups = { service: server?.pid, postgres: runningEmbeddedPostgres(dataDir)?.pid };
      const before = cpuSnapshot(groups);
      const result = await run();
      return { ...result, cpuMs: cpuPerRequest(before, cpuSnapshot(groups), result.requests) };
    },
    peakRss() {
      return server?.pid ? peakRssMiB(server.pid) : [];
    },
    async close() {
      await stopService();
      await db.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface BenchClient {
  id: string;
  secret: string;
  redirect: string;
}

/** A valid S256 code_challenge (the value does not matter to a login that never redeems its code). */
export const CODE_CHALLENGE = createHash('sha256').update('bench').digest('base64url');

export function authorizeQuery(client: BenchClient, org: string, challenge = CODE_CHALLENGE): string {
  return new URLSearchParams({
    response_type: 'code',
    client_id: client.id,
    redirect_uri: client.redirect,
    scope: 'openid',
    state: 's',
    org,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }).toString();
}

export interface LoginCode {
  code: string;
  verifier: string;
}

/** The BFF flow through the hosted form up to the redirect with the code. */
export async function loginCode(base: string, client: BenchClient, org: string, username: string, password: string): Promise<LoginCode> {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const start = await fetch(`${base}/oauth2/authorize?${authorizeQuery(client, org, challenge)}`, { redirect: 'manual' });
  const location = start.headers.get('location');
  if (start.status !== 302 || !location) throw new Error(`authorize for ${org} answered ${start.status}`);
  const formUrl = `${base}${new URL(location).pathname}`;
  const page = await fetch(formUrl);
  const cookie = page.headers
    .getSetCookie()
    .map((c) => c.split(';')[0])
    .join('; ');
  const html = await page.text();
  const csrf = /name="csrf" value="([^"]*)"/.exec(html)?.[1];
  if (!csrf) throw new Error(`login form for ${org} answered ${page.status} without a csrf field`);
  const done = await fetch(formUrl, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrf, username, password }),
  });
  const code = new URL(done.headers.get('location') ?? 'x:/').searchParams.get('code');
  if (!code) throw new Error(`password login for ${org} answered ${done.status}`);
  return { code, verifier };
}

/** The authorization_code grant's form body for a minted code. */
export const codeBody = (client: BenchClient, { code, verifier }: LoginCode) =>
  new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: client.redirect, code_verifier: verifier }).toString();

/** The whole BFF flow through the hosted form: returns the refresh token. */
export async function login(base: string, client: BenchClient, org: string, username: string, password: string): Promise<string> {
  const minted = await loginCode(base, client, org, username, password);
  const tok = await fetch(`${base}/oauth2/token`, {
    method: 'POST',
    headers: { authorization: basic(client.id, client.secret), 'content-type': 'application/x-www-form-urlencoded' },
    body: codeBody(client, minted),
  });
  const body = (await tok.json()) as { refresh_token?: string };
  if (!body.refresh_token) throw new Error(`code exchange for ${org} answered ${tok.status}`);
  return body.refresh_token;
}

/** authorization_code redemptions, one minted code per request (run with `amount: codes.length`). */
export function codeRequests(client: BenchClient, codes: LoginCode[]): autocannon.Request[] {
  const pool = [...codes];
  return [
    {
      method: 'POST',
      setupRequest: (req) => {
        const next = pool.shift();
        return {
          ...req,
          headers: { authorization: basic(client.id, client.secret), 'content-type': 'application/x-www-form-urlencoded' },
          body: next ? codeBody(client, next) : 'grant_type=authorization_code&code=exhausted',
        };
      },
    },
  ];
}

/**
 * Refresh-token rotation under load. autocannon resets a connection's context after every request,
 * so the chains live in a pool: a request takes one token, its response puts the rotated one back.
 */
export function refreshRequests(client: BenchClient, chains: string[]): autocannon.Request[] {
  const pool = [...chains];
  return [
    {
      method: 'POST',
      setupRequest: (req) => ({
        ...req,
        headers: { authorization: basic(client.id, client.secret), 'content-type': 'application/x-www-form-urlencoded' },
        body: `grant_type=refresh_token&refresh_token=${encodeURIComponent(pool.shift() ?? 'exhausted')}`,
      }),
      onResponse: (status, body) => {
        if (status === 200) pool.push((JSON.parse(body) as { refresh_token: string }).refresh_token);
      },
    },
  ];
}

/** Runs `fn` over `items` with at most `parallel` at a time. */
export async function mapLimit<T, R>(items: T[], parallel: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(parallel, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}
