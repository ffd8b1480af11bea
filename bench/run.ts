/**
 * `npm run bench`: throughput and latency of the hot paths, beside the raw RS256 signing rate of
 * this machine measured in the same run (the ceiling for anything that signs a token).
 * The service runs in its own process (as in production); this process seeds it and drives load.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon, { type Result } from 'autocannon';
import { loadConfig } from '../src/config/app-config.js';
import { createApp } from '../src/bootstrap.js';
import { startEmbeddedPostgres } from '../src/database/embedded-postgres.js';
import { TenantsService } from '../src/tenants/tenants.service.js';
import { BindingsService } from '../src/tenants/bindings.service.js';
import { ClientsService } from '../src/oauth/clients.service.js';
import { NativeCredentialsService } from '../src/identity/native/native-credentials.service.js';
import { printScimBench, runScimBench } from './scim.js';

const DURATION = Number(process.env.BENCH_SECONDS ?? 8);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });

function rawSigningRate(seconds = 3): number {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const payload = Buffer.from('x'.repeat(600));
  const end = Date.now() + seconds * 1000;
  let n = 0;
  while (Date.now() < end) {
    for (let i = 0; i < 50; i++) sign('sha256', payload, privateKey);
    n += 50;
  }
  return n / seconds;
}

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

async function login(base: string, client: { id: string; secret: string; redirect: string }, username: string, password: string): Promise<string> {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const q = new URLSearchParams({ response_type: 'code', client_id: client.id, redirect_uri: client.redirect, scope: 'openid', state: 's', org: 'bench', code_challenge: challenge, code_challenge_method: 'S256' });
  const start = await fetch(`${base}/oauth2/authorize?${q}`, { redirect: 'manual' });
  const hosted = new URL(start.headers.get('location')!);
  const formUrl = `${base}${hosted.pathname}`;
  const page = await fetch(formUrl);
  const cookie = page.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const html = await page.text();
  const csrf = /name="csrf" value="([^"]*)"/.exec(html)![1]!;
  const done = await fetch(formUrl, { method: 'POST', redirect: 'manual', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ csrf, username, password }) });
  const code = new URL(done.headers.get('location')!).searchParams.get('code')!;
  const tok = await fetch(`${base}/oauth2/token`, {
    method: 'POST',
    headers: { authorization: basic(client.id, client.secret), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: client.redirect, code_verifier: verifier }),
  });
  return ((await tok.json()) as { refresh_token: string }).refresh_token;
}

const run = (opts: autocannon.Options) =>
  new Promise<Result>((resolve, reject) => {
    autocannon(opts, (err, res) => (err ? reject(err) : resolve(res)));
  });

interface Row {
  scenario: string;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
}
const row = (scenario: string, r: Result): Row => ({ scenario, rps: Math.round(r.requests.average), p50: r.latency.p50, p99: r.latency.p99, errors: r.errors, non2xx: r.non2xx });

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'auth-service-bench-'));
  mkdirSync(dataDir, { recursive: true });
  const pgPort = await freePort();
  const pg = await startEmbeddedPostgres(dataDir, pgPort, () => undefined);
  const kek = randomBytes(32).toString('base64');
  const port = await freePort();
  const env = {
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    PUBLIC_URL: `https://bench.invalid`,
    DATABASE_URL: pg.url,
    KEY_ENCRYPTION_KEY: kek,
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    RATE_LIMIT_AUTHORIZE_PER_MINUTE: '100000',
    RATE_LIMIT_LOGIN_PER_MINUTE: '100000',
    ARGON2_TIME_COST: '2',
    ARGON2_MEMORY_KIB: '4096',
  };
  // Seed through the services (the admin API is not needed for a benchmark).
  const seeding = await createApp(loadConfig(env), { listen: false });
  const tenant = await seeding.app.get(TenantsService).create('bench', 'Bench Inc.');
  await seeding.app.get(BindingsService).create(tenant, { kind: 'native', claimMapping: { defaultRoles: ['USER'] } });
  await seeding.app.get(NativeCredentialsService).createUser(tenant.id, { username: 'bench@bench.test', password: 'bench-password-1', email: 'bench@bench.test' });
  const bff = await seeding.app.get(ClientsService).create({ id: 'bench-bff', name: 'Bench BFF', kind: 'bff', redirectUris: ['http://127.0.0.1:9/cb'] });
  const m2m = await seeding.app.get(ClientsService).create({ id: 'bench-m2m', name: 'Bench M2M', kind: 'machine', tenantId: tenant.id, scopes: ['api'] });
  await seeding.close();

  // BENCH_CPU_PROF=<dir>: a V8 CPU profile of the service process, to find what bounds a figure.
  const profile = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const server: ChildProcess = fork(fileURLToPath(new URL('../src/main.js', import.meta.url)), [], { env: { ...process.env, ...env }, stdio: 'inherit', execArgv: profile });
  const killServer = () => server.kill('SIGKILL');
  process.on('exit', killServer);
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${base}/health/ready`)).ok) break;
    } catch {
      /* not up yet */
    }
    if (i > 300) throw new Error('service did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  // The issuer is https://bench.invalid; requests go to the loopback port directly.
  const client = { id: 'bench-bff', secret: bff.secret, redirect: 'http://127.0.0.1:9/cb' };
  const results: Row[] = [];

  const ceiling = rawSigningRate();

  results.push(row('JWKS (200, full body)', await run({ url: `${base}/.well-known/jwks.json`, connections: CONNECTIONS, duration: DURATION })));
  const etag = (await fetch(`${base}/.well-known/jwks.json`)).headers.get('etag')!;
  results.push(row('JWKS (304, If-None-Match)', await run({ url: `${base}/.well-known/jwks.json`, connections: CONNECTIONS, duration: DURATION, headers: { 'if-none-match': etag } })));

  // Each connection rotates its own refresh-token chain: every request is a real rotation (DB writes + signing).
  const chains: string[] = [];
  for (let i = 0; i < CONNECTIONS; i++) chains.push(await login(base, client, 'bench@bench.test', 'bench-password-1'));
  // autocannon resets a connection's context after every request, so the chains live in a pool:
  // a request takes one token, its response puts the rotated token back.
  const pool = [...chains];
  const refresh = await run({
    url: `${base}/oauth2/token`,
    connections: CONNECTIONS,
    duration: DURATION,
    requests: [
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
    ],
  });
  results.push(row('token: refresh_token (rotation, DB writes)', refresh));
  results.push(
    row(
      'token: client_credentials',
      await run({
        url: `${base}/oauth2/token`,
        method: 'POST',
        connections: CONNECTIONS,
        duration: DURATION,
        headers: { authorization: basic('bench-m2m', m2m.secret), 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials&scope=api',
      }),
    ),
  );

  process.off('exit', killServer);
  server.kill('SIGTERM');
  await new Promise((r) => server.once('exit', r));
  await pg.stop();

  const report = { machine: { cpus: (await import('node:os')).cpus().length, node: process.version }, rawRs256SignsPerSecond: Math.round(ceiling), durationSeconds: DURATION, connections: CONNECTIONS, results };
  console.log(`\nraw RS256 signing (node:crypto, 2048-bit, one core): ${Math.round(ceiling)} signatures/s  <- ceiling for token issuance\n`);
  console.table(results.map((r) => ({ ...r, 'share of ceiling': r.scenario.startsWith('token') ? `${Math.round((r.rps / ceiling) * 100)}%` : '' })));
  mkdirSync('bench/results', { recursive: true });
  const file = join('bench/results', `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(report, null, 2));
  console.log(`saved ${file}`);

  if (process.env.BENCH_SCIM !== 'false') {
    const scim = await runScimBench();
    printScimBench(scim);
    writeFileSync(file, JSON.stringify({ ...report, scim }, null, 2));
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
