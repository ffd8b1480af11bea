/**
 * Native password logins against the hashing rate that bounds them: argon2id at Keycloak's default
 * parameters (5 passes, 7 MiB, parallelism 1; BENCH_ARGON2_TIME_COST / _MEMORY_KIB override them),
 * measured with the service's own `argon2` package and as many verifications in flight as the service
 * runs at once (workers × libuv thread pool), then the hosted-form login over HTTP with the service
 * started with the same parameters, and right after it, on the same service with the same
 * connections and duration, the same login with TOTP two-step verification (issue #17): a tenant
 * whose native binding requires it, every user enrolled, the code computed here as an
 * authenticator app would (BENCH_TOTP_USERS overrides the size of its user pool).
 */
import type { CpuPerRequest } from './process-cpu.js';
import { performance } from 'node:perf_hooks';
import type { Request } from 'autocannon';
import { Secret, TOTP } from 'otpauth';
import { TenantsService } from '../src/tenants/tenants.service.js';
import { BindingsService } from '../src/tenants/bindings.service.js';
import { ClientsService } from '../src/clients/clients.service.js';
import { NativeCredentialsService } from '../src/identity/native/native-credentials.service.js';
import { TotpService } from '../src/identity/native/totp.service.js';
import { Database } from '../src/database/database.js';
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
const WARMUP_SECONDS = 2;
// RFC 6238 as the service checks it (src/identity/native/totp.service.ts).
const TOTP_PARAMS = { algorithm: 'SHA1', digits: 6, period: 30 } as const;

/** One closed-loop run of hosted-form logins. */
export interface LoginRun {
  loginsPerSecond: number;
  loginP50: number;
  loginP99: number;
  /** Logins that did not end in the redirect with a code. */
  failedLogins: number;
  /** The HTTP requests of the run (three per password login, four with TOTP). */
  requests: LoadResult;
  /** CPU milliseconds per login (all its requests) of the service, PostgreSQL and the load generator. */
  cpuMsPerLogin?: CpuPerRequest;
}

export interface TotpLoginResult extends LoginRun {
  /** Enrolled users the logins go round-robin over. */
  users: number;
  /** Failed logins whose code the second step refused (401). */
  refusedCodes: number;
  /** Codes sent for a time step their user had already signed in with: refused by the replay rule, the pool too small. */
  replays: number;
}

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
  /** The same logins with a TOTP second step, same service, connections and duration. */
  totp: TotpLoginResult;
}

const scaleCpu = (c: CpuPerRequest, k: number): CpuPerRequest => ({
  service: round(c.service * k, 3),
  postgres: round(c.postgres * k, 3),
  loadGenerator: round(c.loadGenerator * k, 3),
});

/** A user the logins take turns with; with TOTP, its authenticator and the last time step it signed in with. */
interface BenchUser {
  username: string;
  totp?: TOTP;
  lastStep?: number;
}

interface Tally {
  ok: number;
  failed: number;
  refused: number;
  replays: number;
  latencies: number[];
}

interface Ctx {
  user?: BenchUser;
  t0?: number;
  form?: string;
  csrf?: string;
  stepCsrf?: string;
  step?: number;
}

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const csrfOf = (body: string) => /name="csrf" value="([^"]*)"/.exec(body)?.[1];
const hasCode = (status: number, headers: unknown) =>
  status === 302 && header(headers as Record<string, unknown>, 'location')?.includes('code=') === true;

/**
 * Hosted-form logins, one per pass over the requests (autocannon keeps the context for the pass):
 * authorize → form → password POST → redirect with a code, or with TOTP users, the second-step
 * page after the password and then the code POST. The users go round-robin across runs.
 */
function signIns(authorizePath: string, users: BenchUser[]) {
  const tally: Tally = { ok: 0, failed: 0, refused: 0, replays: 0, latencies: [] };
  const withTotp = users[0]?.totp !== undefined;
  let nextUser = 0;
  const done = (c: Ctx) => {
    tally.ok++;
    tally.latencies.push(performance.now() - c.t0!);
  };
  // The code an authenticator app shows now; a login whose step the user already signed in with is counted as a replay.
  const secondStep: Request = {
    method: 'POST',
    setupRequest: (req, ctx) => {
      const c = ctx as Ctx;
      if (!c.form || !c.stepCsrf) {
        tally.failed++;
        return undefined as never;
      }
      const now = Date.now();
      const totp = c.user!.totp!;
      c.step = totp.counter({ timestamp: now });
      if (c.user!.lastStep !== undefined && c.user!.lastStep >= c.step) tally.replays++;
      return {
        ...req,
        method: 'POST',
        path: `${c.form}/second-step`,
        headers: { cookie: `auth_login_csrf=${c.stepCsrf}`, ...FORM },
        body: new URLSearchParams({ csrf: c.stepCsrf, action: 'verify', code: totp.generate({ timestamp: now }) }).toString(),
      };
    },
    onResponse: (status, _body, ctx, headers) => {
      const c = ctx as Ctx;
      if (hasCode(status, headers)) {
        done(c);
        c.user!.lastStep = c.step;
      } else {
        tally.failed++;
        if (status === 401) tally.refused++;
      }
    },
  };
  const requests = (): Request[] => [
    {
      method: 'GET',
      setupRequest: (req, ctx) => {
        const c = ctx as Ctx;
        c.user = users[nextUser++ % users.length];
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
          tally.failed++;
          return undefined as never; // back to the first request
        }
        return { ...req, method: 'GET', path: c.form };
      },
      onResponse: (_status, body, ctx) => {
        const csrf = csrfOf(body);
        if (csrf) (ctx as Ctx).csrf = csrf;
      },
    },
    {
      method: 'POST',
      setupRequest: (req, ctx) => {
        const c = ctx as Ctx;
        if (!c.form || !c.csrf) {
          tally.failed++;
          return undefined as never;
        }
        return {
          ...req,
          method: 'POST',
          path: c.form,
          // The double-submit cookie carries the same value as the form field.
          headers: { cookie: `auth_login_csrf=${c.csrf}`, ...FORM },
          body: new URLSearchParams({ csrf: c.csrf, username: c.user!.username, password: PASSWORD }).toString(),
        };
      },
      onResponse: (status, body, ctx, headers) => {
        const c = ctx as Ctx;
        if (withTotp) {
          // The second-step page comes with a CSRF token (and cookie) of its own.
          if (status === 200 && body.includes('value="verify"')) c.stepCsrf = csrfOf(body);
        } else if (hasCode(status, headers)) done(c);
        else tally.failed++;
      },
    },
    ...(withTotp ? [secondStep] : []),
  ];
  const reset = () => {
    tally.ok = tally.failed = tally.refused = tally.replays = 0;
    tally.latencies = [];
  };
  return { requests, tally, reset };
}

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
    // The service runs up to workers × thread pool argon2 computations at once; the raw rate gets as many.
    const parallel = stack.workers * threadPool;
    const connections = envNumber('BENCH_ARGON2_CONNECTIONS', parallel * 2);
    progress(`argon2: raw hash/verify rate, ${parallel} in flight`);
    const raw = await measureRawArgon2({ ...params, password: PASSWORD, parallel });

    // A TOTP code is accepted once per user and time step (30 s): the logins go round-robin over
    // enough users that none comes back within a step (in a run shorter than a step, none comes
    // back at all). Every login verifies a password, so the raw verify rate bounds the login rate
    // and sizes the pool before anything is measured; `replays` in the result says if it fell short.
    const totpUsers = envNumber(
      'BENCH_TOTP_USERS',
      Math.ceil(raw.verifyPerSecond * Math.min(WARMUP_SECONDS + duration, TOTP_PARAMS.period + 1) * 1.25) + 2 * connections,
    );
    // Distinct users: a password check locks its credentials row, so one shared user would serialise the logins.
    progress(`argon2: seeding ${USERS} native users and ${totpUsers} with TOTP at t=${params.timeCost} m=${params.memoryKib} KiB`);
    const { bff, totpSecrets } = await stack.seed(async (app) => {
      const tenants = app.get(TenantsService);
      const bindings = app.get(BindingsService);
      const tenant = await tenants.create('argon2', 'Argon2 Bench');
      await bindings.create(tenant, { kind: 'native', claimMapping: { defaultRoles: ['USER'] } });
      const creds = app.get(NativeCredentialsService);
      await mapLimit(
        Array.from({ length: USERS }, (_, i) => i),
        threadPool,
        (i) => creds.createUser(tenant.id, { username: `user${i}@argon2.test`, password: PASSWORD }),
      );
      const totpTenant = await tenants.create('argon2-totp', 'Argon2 TOTP Bench');
      await bindings.create(totpTenant, { kind: 'native', config: { mfa: 'required' }, claimMapping: { defaultRoles: ['USER'] } });
      // Created without a password (as invited), then all given one hash: hashing thousands of
      // passwords at these parameters would take minutes, and a verification costs the same whatever the salt.
      const hash = await creds.hasher.hash(PASSWORD);
      const totp = app.get(TotpService);
      const secrets = await mapLimit(
        Array.from({ length: totpUsers }, (_, i) => i),
        16,
        async (i) => {
          const username = `totp${i}@argon2.test`;
          const userId = await creds.createUser(totpTenant.id, { username });
          return { username, secret: (await totp.beginEnrolment(totpTenant.id, userId, username, totpTenant.displayName)).secret };
        },
      );
      await app.get(Database).transaction({ tenant: totpTenant.id }, async (tx) => {
        await tx.query(`UPDATE native_credentials SET password_hash = $2 WHERE tenant_id = $1 AND password_hash IS NULL`, [
          totpTenant.id,
          hash,
        ]);
        // Confirmed here rather than with a code through the service, which would spend every user's current time step.
        await tx.query(`UPDATE user_totp SET confirmed_at = now() WHERE tenant_id = $1 AND confirmed_at IS NULL`, [totpTenant.id]);
      });
      return {
        bff: await app
          .get(ClientsService)
          .create({ id: 'argon2-bff', name: 'Argon2 BFF', kind: 'bff', redirectUris: ['http://127.0.0.1:9/cb'] }),
        totpSecrets: secrets,
      };
    });

    const db = await stack.superuser();
    const stored = (await db.query<{ password_hash: string | null }>(`SELECT password_hash FROM native_credentials`)).rows;
    await db.end();
    for (const { password_hash } of stored) {
      const phc = password_hash?.split('$') ?? []; // ['', 'argon2id', 'v=19', 'm=…,p=…,t=…', salt, hash]
      const storedParams = Object.fromEntries((phc[3] ?? '').split(',').map((kv) => kv.split('=')));
      if (
        phc[1] !== 'argon2id' ||
        storedParams['m'] !== String(params.memoryKib) ||
        storedParams['t'] !== String(params.timeCost) ||
        storedParams['p'] !== String(params.parallelism)
      )
        throw new Error(`a seeded password hash has other parameters than the bench: ${phc.slice(0, 4).join('$') || 'none'}`);
    }

    await stack.start();
    const client: BenchClient = { id: 'argon2-bff', secret: bff.secret, redirect: 'http://127.0.0.1:9/cb' };
    /** A warm-up, then the measured run, of the same flow. */
    const run = async (flow: ReturnType<typeof signIns>): Promise<LoginRun> => {
      await load({ url: stack.base, connections, duration: WARMUP_SECONDS, requests: flow.requests() }, [200, 302]);
      flow.reset();
      const requests = await stack.measure(() => load({ url: stack.base, connections, duration, requests: flow.requests() }, [200, 302]));
      const { ok, failed, latencies } = flow.tally;
      latencies.sort((a, b) => a - b);
      return {
        loginsPerSecond: round(ok / requests.durationSeconds, 1),
        loginP50: round(percentile(latencies, 50)),
        loginP99: round(percentile(latencies, 99)),
        failedLogins: failed,
        requests,
        // The run's CPU per HTTP request, times the requests one login takes.
        cpuMsPerLogin: ok > 0 ? scaleCpu(requests.cpuMs, requests.requests / ok) : undefined,
      };
    };

    progress(`argon2: native logins over HTTP, ${connections} connections`);
    const password = await run(
      signIns(
        `/oauth2/authorize?${authorizeQuery(client, 'argon2')}`,
        Array.from({ length: USERS }, (_, i) => ({ username: `user${i}@argon2.test` })),
      ),
    );
    progress(`argon2: native sign-ins with TOTP over HTTP, ${connections} connections, ${totpUsers} users`);
    const totpFlow = signIns(
      `/oauth2/authorize?${authorizeQuery(client, 'argon2-totp')}`,
      totpSecrets.map(({ username, secret }) => ({ username, totp: new TOTP({ ...TOTP_PARAMS, secret: Secret.fromBase32(secret) }) })),
    );
    const withTotp = await run(totpFlow);
    return {
      params,
      threadPool,
      workers: stack.workers,
      parallel,
      rawHashPerSecond: round(raw.hashPerSecond, 1),
      rawVerifyPerSecond: round(raw.verifyPerSecond, 1),
      connections,
      durationSeconds: password.requests.durationSeconds,
      ...password,
      totp: { ...withTotp, users: totpUsers, refusedCodes: totpFlow.tally.refused, replays: totpFlow.tally.replays },
    };
  } finally {
    await stack.close();
  }
}
