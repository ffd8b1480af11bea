/**
 * Native password logins against the hashing rate that bounds them: argon2id at Keycloak's default
 * parameters (5 passes, 7 MiB, parallelism 1; BENCH_ARGON2_TIME_COST / _MEMORY_KIB override them),
 * measured with the service's own `argon2` package and as many verifications in flight as the service
 * runs at once (workers × libuv thread pool), then the hosted-form login over HTTP with the service
 * started with the same parameters.
 */
import type { CpuPerRequest } from './process-cpu.js';
import { performance } from 'node:perf_hooks';
import type { Request } from 'autocannon';
import { TenantsService } from '../src/tenants/tenants.service.js';
import { BindingsService } from '../src/tenants/bindings.service.js';
import { ClientsService } from '../src/clients/clients.service.js';
import { NativeCredentialsService } from '../src/identity/native/native-credentials.service.js';
import { measureRawArgon2 } from './argon2-rate.js';
import {
  authorizeQuery,
  createStack,
  envNumber,
  header,
  load,
  mapLimit,
  percentile,
  progress,
  round,
  type BenchClient,
  type LoadResult,
} from './harness.js';

/** Keycloak's argon2 defaults; the service's ARGON2_* defaults are the same. */
export const KEYCLOAK_ARGON2 = { timeCost: 5, memoryKib: 7168, parallelism: 1 } as const;

export interface Argon2Params {
  timeCost: number;
  memoryKib: number;
  parallelism: 1;
}
const PASSWORD = 'bench-password-1';
const USERS = 64;

export interface Argon2LoginBenchResult {
  params: Argon2Params;
  /** libuv's thread pool size: how many argon2 computations one service process runs at once. */
  threadPool: number;
  /** Service processes (WORKERS), each with its own thread pool. */
  workers: number;
  /** Verifications in flight for the raw rate: workers × thread pool, what the service can run at once. */
  parallel: number;
  rawHashPerSecond: number;
  rawVerifyPerSecond: number;
  connections: number;
  durationSeconds: number;
  loginsPerSecond: number;
  loginP50: number;
  loginP99: number;
  failedLogins: number;
  /** The HTTP requests of the run (three per login). */
  requests: LoadResult;
  /** CPU milliseconds per login (all its requests) of the service, PostgreSQL and the load generator. */
  cpuMsPerLogin?: CpuPerRequest;
}

const scaleCpu = (c: CpuPerRequest, k: number): CpuPerRequest => ({
  service: round(c.service * k, 3),
  postgres: round(c.postgres * k, 3),
  loadGenerator: round(c.loadGenerator * k, 3),
});

export async function runArgon2LoginBench(duration: number): Promise<Argon2LoginBenchResult> {
  const threadPool = Math.min(1024, Math.max(1, Number(process.env.UV_THREADPOOL_SIZE) || 4));
  // Other parameters show how much of a login is hashing (e.g. BENCH_ARGON2_TIME_COST=1 BENCH_ARGON2_MEMORY_KIB=1024).
  const params: Argon2Params = {
    timeCost: envNumber('BENCH_ARGON2_TIME_COST', KEYCLOAK_ARGON2.timeCost),
    memoryKib: envNumber('BENCH_ARGON2_MEMORY_KIB', KEYCLOAK_ARGON2.memoryKib),
    parallelism: 1,
  };
  const stack = await createStack('argon2-bench', {
    ARGON2_TIME_COST: String(params.timeCost),
    ARGON2_MEMORY_KIB: String(params.memoryKib),
  });
  try {
    // Distinct users: a password check locks its credentials row, so one shared user would serialise the logins.
    progress(`argon2: seeding ${USERS} native users at t=${params.timeCost} m=${params.memoryKib} KiB`);
    const { bff } = await stack.seed(async (app) => {
      const tenant = await app.get(TenantsService).create('argon2', 'Argon2 Bench');
      await app.get(BindingsService).create(tenant, { kind: 'native', claimMapping: { defaultRoles: ['USER'] } });
      const creds = app.get(NativeCredentialsService);
      await mapLimit(
        Array.from({ length: USERS }, (_, i) => i),
        threadPool,
        (i) => creds.createUser(tenant.id, { username: `user${i}@argon2.test`, password: PASSWORD }),
      );
      return {
        bff: await app
          .get(ClientsService)
          .create({ id: 'argon2-bff', name: 'Argon2 BFF', kind: 'bff', redirectUris: ['http://127.0.0.1:9/cb'] }),
      };
    });

    const db = await stack.superuser();
    const [stored] = (await db.query<{ password_hash: string }>(`SELECT password_hash FROM native_credentials LIMIT 1`)).rows;
    await db.end();
    const phc = stored?.password_hash.split('$') ?? []; // ['', 'argon2id', 'v=19', 'm=…,p=…,t=…', salt, hash]
    const storedParams = Object.fromEntries((phc[3] ?? '').split(',').map((kv) => kv.split('=')));
    if (
      phc[1] !== 'argon2id' ||
      storedParams['m'] !== String(params.memoryKib) ||
      storedParams['t'] !== String(params.timeCost) ||
      storedParams['p'] !== String(params.parallelism)
    )
      throw new Error(`the seeded password hash has other parameters than the bench: ${phc.slice(0, 4).join('$')}`);

    // The service runs up to workers × thread pool argon2 computations at once; the raw rate gets as many.
    const parallel = stack.workers * threadPool;
    const connections = envNumber('BENCH_ARGON2_CONNECTIONS', parallel * 2);
    progress(`argon2: raw hash/verify rate, ${parallel} in flight`);
    const raw = await measureRawArgon2({ ...params, password: PASSWORD, parallel });

    await stack.start();
    const client: BenchClient = { id: 'argon2-bff', secret: bff.secret, redirect: 'http://127.0.0.1:9/cb' };
    const authorizePath = `/oauth2/authorize?${authorizeQuery(client, 'argon2')}`;
    let nextUser = 0;
    let ok = 0;
    let failed = 0;
    let latencies: number[] = [];
    interface Ctx {
      user?: string;
      t0?: number;
      form?: string;
      csrf?: string;
    }
    // One login per pass over the three requests (autocannon keeps the context for the pass).
    const requests = (): Request[] => [
      {
        method: 'GET',
        setupRequest: (req, ctx) => {
          const c = ctx as Ctx;
          c.user = `user${nextUser++ % USERS}@argon2.test`;
          c.t0 = performance.now();
          return { ...req, method: 'GET', path: authorizePath };
        },
        onResponse: (status, _body, ctx, headers) => {
          const location = header(headers as Record<string, unknown>, 'location');
          if (status === 302 && location?.includes('/login/native/')) (ctx as Ctx).form = new URL(location).pathname;
        },
      },
      {
        method: 'GET',
        setupRequest: (req, ctx) => {
          const c = ctx as Ctx;
          if (!c.form) {
            failed++;
            return undefined as never; // back to the first request
          }
          return { ...req, method: 'GET', path: c.form };
        },
        onResponse: (_status, body, ctx) => {
          const csrf = /name="csrf" value="([^"]*)"/.exec(body)?.[1];
          if (csrf) (ctx as Ctx).csrf = csrf;
        },
      },
      {
        method: 'POST',
        setupRequest: (req, ctx) => {
          const c = ctx as Ctx;
          if (!c.form || !c.csrf) {
            failed++;
            return undefined as never;
          }
          return {
            ...req,
            method: 'POST',
            path: c.form,
            // The double-submit cookie carries the same value as the form field.
            headers: { cookie: `auth_login_csrf=${c.csrf}`, 'content-type': 'application/x-www-form-urlencoded' },
            body: new URLSearchParams({ csrf: c.csrf, username: c.user!, password: PASSWORD }).toString(),
          };
        },
        onResponse: (status, _body, ctx, headers) => {
          const c = ctx as Ctx;
          if (status === 302 && header(headers as Record<string, unknown>, 'location')?.includes('code=')) {
            ok++;
            latencies.push(performance.now() - c.t0!);
          } else failed++;
        },
      },
    ];
    progress(`argon2: native logins over HTTP, ${connections} connections`);
    await load({ url: stack.base, connections, duration: 2, requests: requests() }, [200, 302]); // warm-up
    ok = 0;
    failed = 0;
    latencies = [];
    const requestsResult = await stack.measure(() => load({ url: stack.base, connections, duration, requests: requests() }, [200, 302]));
    latencies.sort((a, b) => a - b);
    return {
      params,
      threadPool,
      workers: stack.workers,
      parallel,
      rawHashPerSecond: round(raw.hashPerSecond, 1),
      rawVerifyPerSecond: round(raw.verifyPerSecond, 1),
      connections,
      durationSeconds: requestsResult.durationSeconds,
      loginsPerSecond: round(ok / requestsResult.durationSeconds, 1),
      loginP50: round(percentile(latencies, 50)),
      loginP99: round(percentile(latencies, 99)),
      failedLogins: failed,
      requests: requestsResult,
      // The run's CPU per HTTP request, times the requests one login takes.
      cpuMsPerLogin: ok > 0 ? scaleCpu(requestsResult.cpuMs, requestsResult.requests / ok) : undefined,
    };
  } finally {
    await stack.close();
  }
}
