/**
 * SCIM throughput: provisioning users over HTTP the way an IdP does (POST /Users, a few requests
 * in flight), then the `userName eq` look-up every IdP makes before it creates or updates a user,
 * at 100,000+ users in the tenant. The service runs in its own process, as in production.
 *
 *   npm run build && node dist/bench/scim.js            (or: npm run bench, which includes it)
 *   SCIM_BENCH_USERS=10000 SCIM_BENCH_TOTAL=100000 SCIM_BENCH_CONCURRENCY=16 SCIM_BENCH_SECONDS=8
 *   SCIM_BENCH_CPU_PROF=<dir> writes a V8 CPU profile of the service process there.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon, { type Result } from 'autocannon';
import pg from 'pg';
import { TenantsService } from '../src/tenants/tenants.service.js';
import { ScimTokensService } from '../src/scim/scim-tokens.service.js';
import { createStack } from './harness.js';
import type { CpuPerRequest } from './process-cpu.js';

const PROVISION = Number(process.env.SCIM_BENCH_USERS ?? 10_000);
/** BENCH_LARGE=true: the look-up at 1,000,000 users (issue #16's size; seeding takes minutes). */
const TOTAL = Number(process.env.SCIM_BENCH_TOTAL ?? (process.env.BENCH_LARGE === 'true' ? 1_000_000 : 100_000));
const CONCURRENCY = Number(process.env.SCIM_BENCH_CONCURRENCY ?? 16);
const LOOKUP_SECONDS = Number(process.env.SCIM_BENCH_SECONDS ?? 8);
/** Service processes (WORKERS): one per core unless BENCH_WORKERS says otherwise. */
const WORKERS = process.env.BENCH_WORKERS ?? String(cpus().length);

export interface ScimBenchResult {
  workers: number;
  provisionedUsers: number;
  provisionSeconds: number;
  provisionPerSecond: number;
  provisionErrors: number;
  /** Mean number of creates per database transaction. */
  provisionMeanBatch: number;
  usersInTenant: number;
  lookups: Array<{
    scenario: string;
    connections: number;
    rps: number;
    p50: number;
    p90: number;
    p99: number;
    errors: number;
    non2xx: number;
    /** CPU milliseconds per look-up of the service, PostgreSQL and the load generator. */
    cpuMs: CpuPerRequest;
  }>;
  /** CPU milliseconds per create. */
  provisionCpuMs: CpuPerRequest;
}

const run = (opts: autocannon.Options) =>
  new Promise<Result>((resolve, reject) => {
    autocannon(opts, (err, res) => (err ? reject(err) : resolve(res)));
  });

const userBody = (i: number) =>
  JSON.stringify({
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:User', 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User'],
    externalId: randomUUID(),
    userName: `user${i}@bench.test`,
    active: true,
    emails: [{ primary: true, type: 'work', value: `user${i}@bench.test` }],
    name: { formatted: `Given${i} Family${i}`, familyName: `Family${i}`, givenName: `Given${i}` },
    displayName: `Given${i} Family${i}`,
    'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User': { department: `Dept ${i % 50}`, employeeNumber: String(i) },
  });

export async function runScimBench(): Promise<ScimBenchResult> {
  const metricsToken = randomUUID();
  const stack = await createStack('scim-bench', { WORKERS, METRICS_TOKEN: metricsToken });
  const { tenant, token } = await stack.seed(async (app) => {
    const t = await app.get(TenantsService).create('scim-bench', 'SCIM Bench');
    return { tenant: t, token: (await app.get(ScimTokensService).create(t.id, 'bench')).token };
  });
  const profile = process.env.SCIM_BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.SCIM_BENCH_CPU_PROF}`] : [];
  await stack.start(profile);
  const base = stack.base;
  try {
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/scim+json' };

    // 1. Provisioning over HTTP: POST /Users with CONCURRENCY requests in flight on keep-alive
    //    connections, as an IdP's provisioning agent does. autocannon is the client because the
    //    load generator shares this machine's two cores with the service and PostgreSQL: fetch()
    //    spent ~1 ms of CPU per request, a quarter of what the whole box has for one user.
    let next = 0;
    const started = process.hrtime.bigint();
    const provision = await stack.measure(async () => ({
      ...(await run({
        url: `${base}/scim/v2/Users`,
        connections: CONCURRENCY,
        amount: PROVISION,
        headers,
        requests: [{ method: 'POST', setupRequest: (req) => ({ ...req, body: userBody(next++) }) }],
      })),
      requests: PROVISION,
    }));
    const errors = provision.errors + provision.timeouts + provision.non2xx;
    const provisionSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    // How many creates the service wrote per transaction (summed over its workers).
    const metrics = await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${metricsToken}` } })).text();
    const metric = (name: string) =>
      Number(/^(\S+) (\S+)$/m.exec(metrics.split('\n').find((l) => l.startsWith(`${name} `)) ?? '')?.[2] ?? NaN);
    const meanBatch = metric('auth_scim_user_create_batch_size_sum') / metric('auth_scim_user_create_batch_size_count');

    // 2. Top the tenant up to TOTAL users directly in SQL (same shape as SCIM writes), then ANALYZE.
    const client = new pg.Client({ connectionString: stack.env['DATABASE_URL'] });
    await client.connect();
    await client.query('BEGIN');
    await client.query(`SELECT set_config('app.tenant_id', $1, true)`, [tenant.id]);
    await client.query(
      `INSERT INTO users (tenant_id, user_name, external_id, display_name, given_name, family_name, emails, enterprise, scim_profile, email)
       SELECT $1, 'user' || i || '@bench.test', gen_random_uuid()::text, 'Given' || i || ' Family' || i, 'Given' || i, 'Family' || i,
              jsonb_build_array(jsonb_build_object('primary', true, 'type', 'work', 'value', 'user' || i || '@bench.test')),
              jsonb_build_object('department', 'Dept ' || (i % 50), 'employeeNumber', i::text), '{}'::jsonb, 'user' || i || '@bench.test'
         FROM generate_series($2::int, $3::int - 1) AS i`,
      [tenant.id, PROVISION, TOTAL],
    );
    const [{ n }] = (await client.query(`SELECT count(*)::int AS n FROM users`)).rows as [{ n: number }];
    await client.query('COMMIT');
    await client.query('ANALYZE users');
    await client.query('ANALYZE user_emails');
    await client.end();

    // 3. The IdPs' probe: GET /Users?filter=userName eq "…" for random existing users.
    const lookups: ScimBenchResult['lookups'] = [];
    for (const connections of [1, 8]) {
      const { result: r, cpuMs } = await stack.measure(async () => {
        const res = await run({
          url: `${base}/scim/v2/Users`,
          connections,
          duration: LOOKUP_SECONDS,
          headers: { authorization: `Bearer ${token}` },
          requests: [
            {
              method: 'GET',
              setupRequest: (req) => {
                const i = Math.floor(Math.random() * TOTAL);
                return { ...req, path: `/scim/v2/Users?filter=${encodeURIComponent(`userName eq "USER${i}@bench.test"`)}` };
              },
            },
          ],
        });
        return { result: res, requests: res.requests.total };
      });
      lookups.push({
        scenario: 'GET /Users?filter=userName eq',
        connections,
        rps: Math.round(r.requests.average),
        p50: r.latency.p50,
        p90: r.latency.p90,
        p99: r.latency.p99,
        errors: r.errors,
        non2xx: r.non2xx,
        cpuMs,
      });
    }
    return {
      workers: Number(WORKERS),
      provisionedUsers: PROVISION,
      provisionSeconds: Math.round(provisionSeconds * 100) / 100,
      provisionPerSecond: Math.round(PROVISION / provisionSeconds),
      provisionErrors: errors,
      provisionMeanBatch: Math.round(meanBatch * 10) / 10,
      provisionCpuMs: provision.cpuMs,
      usersInTenant: n,
      lookups,
    };
  } finally {
    await stack.close();
  }
}

export function printScimBench(r: ScimBenchResult): void {
  console.log(
    `\nSCIM provisioning: ${r.provisionedUsers} users in ${r.provisionSeconds} s (${r.provisionPerSecond} users/s, ${CONCURRENCY} in flight, ${r.workers} service worker(s), ${r.provisionErrors} errors, ${r.provisionMeanBatch} creates per transaction; CPU ms per create: service ${r.provisionCpuMs.service}, PostgreSQL ${r.provisionCpuMs.postgres}, load generator ${r.provisionCpuMs.loadGenerator}; target <= 10 s)`,
  );
  console.log(`SCIM userName eq look-up at ${r.usersInTenant} users in the tenant (target p99 < 20 ms):`);
  console.table(
    r.lookups.map(({ cpuMs, ...l }) => ({ ...l, 'svc ms': cpuMs.service, 'pg ms': cpuMs.postgres, 'gen ms': cpuMs.loadGenerator })),
  );
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  runScimBench()
    .then((r) => {
      printScimBench(r);
      mkdirSync('bench/results', { recursive: true });
      const file = join('bench/results', `scim-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
      writeFileSync(
        file,
        JSON.stringify({ machine: { cpus: cpus().length, node: process.version }, concurrency: CONCURRENCY, ...r }, null, 2),
      );
      console.log(`saved ${file}`);
    })
    .catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
}
