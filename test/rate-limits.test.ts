/**
 * Rate limits shared across replicas: against a real redis-server (REDIS_URL), against the
 * PostgreSQL counters without it, and through a Redis outage (killed, then frozen) — in the error
 * format of each route family. Limits are per fixed minute, so each test starts in a window with
 * enough of it left to finish (see freshWindow).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it, type TestContext } from 'vitest';
import { createClient } from 'redis';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { seedBff, seedNativeTenant } from './support/seed.js';
import { authorizeUrl, basic, CookieJar, formAction, get, hiddenInput, pkcePair, postForm, type BffClient } from './support/bff.js';
import { ERROR_SCHEMA, scimClient } from './support/scim.js';
import { RedisServer } from './peers/redis.js';
import { peersRequired, PeerUnavailableError } from './peers/peer-unavailable.js';
import { ClientsService } from '../src/clients/clients.service.js';
import { TenantsService } from '../src/tenants/tenants.service.js';
import { ScimSettingsService } from '../src/scim/scim-tokens.service.js';
import { MetricsService } from '../src/metrics/metrics.service.js';
import { RedisRateLimiter } from '../src/rate-limit/redis-rate-limiter.js';
import { ALLOWED, type RateLimitRule } from '../src/rate-limit/rate-limiter.js';
import type { PostgresRateLimiter } from '../src/rate-limit/postgres-rate-limiter.js';
import { Registry } from 'prom-client';

const PASSWORD = 'correct horse battery staple';
const KEY_PREFIX = 'auth-service:rl:';

let redis: RedisServer | undefined;
let redisMissing: string | undefined;
let probe: ReturnType<typeof createClient> | undefined;
const apps: TestApp[] = [];

beforeAll(async () => {
  try {
    redis = await RedisServer.start();
  } catch (err) {
    if (!(err instanceof PeerUnavailableError) || peersRequired()) throw err;
    redisMissing = err.message;
    return;
  }
  probe = createClient({ url: redis.url });
  probe.on('error', () => undefined);
  await probe.connect();
});

afterAll(async () => {
  await Promise.allSettled(apps.map((a) => a.close()));
  probe?.destroy();
  await redis?.stop();
});

/** Every test counts from zero: per-IP buckets (127.0.0.1) would otherwise carry over. */
beforeEach(async () => {
  if (probe?.isReady) await probe.flushAll();
});

const needRedis = (ctx: TestContext): RedisServer => {
  if (!redis) ctx.skip(`${redisMissing} — install redis-server (apt-get install redis-server); under CI=true this fails`);
  return redis;
};

async function start(env: Record<string, string>, db?: TestApp['db']): Promise<TestApp> {
  const app = await startTestApp(env, db);
  apps.push(app);
  return app;
}

async function close(...some: TestApp[]): Promise<void> {
  for (const app of some) {
    apps.splice(apps.indexOf(app), 1);
    await app.close();
  }
}

/** Waits for the next minute when less than `needMs` of the current fixed window is left. */
async function freshWindow(needMs = 10_000): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < needMs) await new Promise((r) => setTimeout(r, left + 50));
}

async function pollUntil(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function machineClient(app: TestApp, slug = `m-${randomBytes(3).toString('hex')}`) {
  const tenant = await app.app.get(TenantsService).create(slug, `${slug} Inc.`);
  const id = `svc-${randomBytes(4).toString('hex')}`;
  const { secret } = await app.app
    .get(ClientsService)
    .create({ id, name: 'Machine', kind: 'machine', tenantId: tenant.id, scopes: ['api'] });
  return { id, secret };
}

const clientCredentials = (app: TestApp, c: { id: string; secret: string }, secret = c.secret) =>
  postForm(`${app.url}/oauth2/token`, { grant_type: 'client_credentials' }, { headers: { authorization: basic(c.id, secret) } });

async function expectSlowDown(res: Response): Promise<void> {
  expect(res.status).toBe(429);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const retryAfter = Number(res.headers.get('retry-after'));
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(60);
  expect(await res.json()).toEqual({
    error: 'slow_down',
    error_description: expect.stringMatching(/^Too many token requests .*; retry after \d+ s\.$/),
  });
}

const redisCount = async (bucket: string): Promise<number> => {
  const keys = await probe!.keys(`${KEY_PREFIX}${bucket}:*`);
  let total = 0;
  for (const k of keys) total += Number(await probe!.get(k));
  return total;
};

const pgCount = async (app: TestApp, bucket: string): Promise<number> => {
  const [row] = await app.database.query<{ hits: number }>(
    `SELECT coalesce(sum(hits), 0)::int AS hits FROM rate_limit_counters WHERE bucket = $1`,
    [bucket],
  );
  return row?.hits ?? 0;
};

const ready = async (app: TestApp) =>
  (await (await fetch(`${app.url}/health/ready`)).json()) as { status: string; checks: Record<string, string> };

describe('with Redis (REDIS_URL)', () => {
  it('two replicas share one limit: hits spread across both are refused once the total passes it', async (ctx) => {
    const server = needRedis(ctx);
    const env = { REDIS_URL: server.url, RATE_LIMIT_TOKEN_PER_MINUTE: '6' };
    const a = await start(env);
    const b = await start(env, a.db);
    const machine = await machineClient(a);
    await freshWindow();

    const statuses: number[] = [];
    const refused: Response[] = [];
    for (let i = 0; i < 10; i++) {
      const res = await clientCredentials(i % 2 === 0 ? a : b, machine);
      statuses.push(res.status);
      if (res.status === 429) refused.push(res);
    }
    // One atomic counter: exactly the limit passes, whichever replica each request reached.
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200, 429, 429, 429, 429]);
    await expectSlowDown(refused[0]!);
    expect(await redisCount(`token-client:${machine.id}`)).toBe(10);
    expect(await pgCount(a, `token-client:${machine.id}`)).toBe(0); // counted in Redis only
    expect((await ready(a)).checks).toMatchObject({ redis: 'up', rate_limits: 'redis' });
    await close(b, a);
    // Closing a replica closes its Redis connection: only this test's own client is left.
    await pollUntil('the replicas disconnected', async () => /^connected_clients:1\r?$/m.test(await probe!.info('clients')));
  });

  it('answers 429 + Retry-After in each route family’s format: token (per IP), authorize (per tenant), native login (per tenant), SCIM', async (ctx) => {
    const server = needRedis(ctx);
    const app = await start({
      REDIS_URL: server.url,
      RATE_LIMIT_TOKEN_PER_IP_PER_MINUTE: '4',
      RATE_LIMIT_AUTHORIZE_PER_MINUTE: '1000',
      RATE_LIMIT_AUTHORIZE_PER_TENANT_PER_MINUTE: '3',
      RATE_LIMIT_LOGIN_PER_MINUTE: '1000',
      RATE_LIMIT_LOGIN_PER_TENANT_PER_MINUTE: '3',
      NATIVE_LOCKOUT_THRESHOLD: '100',
    });
    const bff = await seedBff(app);
    const machine = await machineClient(app);
    await seedNativeTenant(app, 'busy', []);
    await seedNativeTenant(app, 'quiet', []);
    await seedNativeTenant(app, 'guessed', [{ username: 'gus@guessed.test', password: PASSWORD }]);
    await seedNativeTenant(app, 'other', [{ username: 'olga@other.test', password: PASSWORD }]);
    const scimTenant = (await app.app.get(TenantsService).create('provisioned', 'Provisioned')).id;
    await app.app.get(ScimSettingsService).update(scimTenant, { rateLimitPerMinute: 3 });
    const scim = await scimClient(app, scimTenant);
    const authorize = (org: string) =>
      get(authorizeUrl(app.url, bff, { org, state: 'st', code_challenge: pkcePair().challenge, code_challenge_method: 'S256' }));
    await freshWindow();

    // Token endpoint, per IP, counted before client authentication: secret guessing ends in 429.
    const guesses: number[] = [];
    for (let i = 0; i < 6; i++) guesses.push((await clientCredentials(app, machine, `wrong-${i}`)).status);
    expect(guesses).toEqual([401, 401, 401, 401, 429, 429]);
    await expectSlowDown(await clientCredentials(app, machine));

    // Authorization endpoint, per tenant: back to the client with temporarily_unavailable (RFC 6749 §4.1.2.1).
    const outcomes: string[] = [];
    for (let i = 0; i < 5; i++) {
      const location = new URL((await authorize('busy')).headers.get('location')!, app.url);
      outcomes.push(
        location.pathname.startsWith('/login/native/')
          ? 'form'
          : `${location.origin}${location.pathname} ${location.searchParams.get('error')}`,
      );
      if (i === 4)
        expect(location.searchParams.get('error_description')).toMatch(
          /^Too many sign-ins for this organisation right now; try again in \d+ s\.$/,
        );
    }
    expect(outcomes).toEqual([
      'form',
      'form',
      'form',
      `${bff.redirectUri} temporarily_unavailable`,
      `${bff.redirectUri} temporarily_unavailable`,
    ]);
    expect(new URL((await authorize('quiet')).headers.get('location')!, app.url).pathname).toMatch(/^\/login\/native\//);
    expect(await redisCount(`authorize-tenant:${(await app.app.get(TenantsService).findActiveBySlug('busy'))!.id}`)).toBe(5);

    // Native login form, per tenant: problem+json (for a client asking for JSON) with Retry-After.
    const form = await openForm(app, bff, 'guessed');
    const attempts: number[] = [];
    let limited: Response | undefined;
    for (let i = 0; i < 4 && !limited; i++) {
      const res = await form.submit('gus@guessed.test', `wrong ${i}`);
      attempts.push(res.status);
      if (res.status === 429) limited = res;
    }
    expect(attempts).toEqual([401, 401, 401, 429]);
    expect(limited!.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(Number(limited!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await limited!.json()).toMatchObject({
      type: 'urn:auth-service:problem:rate-limited',
      status: 429,
      detail: expect.stringMatching(/^Too many sign-in attempts for this organisation; retry after \d+ s\.$/),
      retry_after: Number(limited!.headers.get('retry-after')),
    });
    // Another organisation, same network: still answered (the per-IP limit is far away).
    expect((await (await openForm(app, bff, 'other')).submit('olga@other.test', 'wrong')).status).toBe(401);

    // SCIM, per tenant: the SCIM error schema.
    const scimStatuses: number[] = [];
    let scimRefusal: Awaited<ReturnType<typeof scim.get>> | undefined;
    for (let i = 0; i < 5; i++) {
      const res = await scim.get('/Users?count=1');
      scimStatuses.push(res.status);
      scimRefusal ??= res.status === 429 ? res : undefined;
    }
    expect(scimStatuses).toEqual([200, 200, 200, 429, 429]);
    expect(scimRefusal!.headers.get('content-type')).toMatch(/^application\/scim\+json/);
    expect(Number(scimRefusal!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(scimRefusal!.body).toMatchObject({
      schemas: [ERROR_SCHEMA],
      status: '429',
      detail: expect.stringMatching(/^Too many SCIM requests for this tenant/),
    });
    expect(await redisCount(`scim:${scimTenant}`)).toBe(5);
    await close(app);
  });

  it('counts a hit in Redis when its answer arrived in time but the event loop stalled past the timeout', async (ctx) => {
    const server = needRedis(ctx);
    const registry = new Registry();
    const onFallback: string[] = [];
    const fallback = {
      count: (rules: readonly RateLimitRule[]) => (onFallback.push(rules[0]!.bucket), ALLOWED),
      onModuleDestroy: () => undefined,
    } as unknown as PostgresRateLimiter;
    const limiter = await RedisRateLimiter.start({ url: server.url, timeoutMs: 50, registry }, fallback);
    try {
      expect((await limiter.health()).rate_limits).toBe('redis');
      // One hit first: it loads the script into Redis, so the hit below is one round trip (EVALSHA).
      await limiter.check([{ bucket: 'warm-up', limit: 10 }]);
      expect(onFallback).toEqual([]);
      const checked = limiter.check([{ bucket: 'stall', limit: 10 }]);
      // The client writes the command from setImmediate; this one runs after it. Blocking here for
      // longer than the timeout lets Redis answer while neither the timer nor the socket can run:
      // when the loop resumes, both are due, and the expired timer runs first.
      await new Promise<void>((resolve) =>
        setImmediate(() => {
          const until = performance.now() + 500;
          while (performance.now() < until);
          resolve();
        }),
      );
      expect(await checked).toEqual(ALLOWED);
      expect(onFallback).toEqual([]);
      expect(await registry.getSingleMetricAsString('auth_rate_limit_fallback_total')).toMatch(/^auth_rate_limit_fallback_total 0$/m);
      expect(await redisCount('stall')).toBe(1);
    } finally {
      await limiter.onModuleDestroy();
    }
  });

  it('keeps enforcing limits on the PostgreSQL fallback while Redis is down or frozen, never answers 5xx, and returns to Redis', async (ctx) => {
    needRedis(ctx);
    // Its own Redis: this test kills it.
    const own = await RedisServer.start();
    try {
      // A timeout long enough that a loaded machine's Redis still answers within it before the
      // outage (the frozen phase below needs only that it ends), short enough to keep the test quick.
      const app = await start({ REDIS_URL: own.url, REDIS_TIMEOUT_MS: '1000', RATE_LIMIT_TOKEN_PER_MINUTE: '5' });
      const machine = await machineClient(app);
      const bucket = `token-client:${machine.id}`;
      const counter = createClient({ url: own.url });
      counter.on('error', () => undefined);
      await counter.connect();
      const inRedis = async () => {
        let n = 0;
        for (const k of await counter.keys(`${KEY_PREFIX}${bucket}:*`)) n += Number(await counter.get(k));
        return n;
      };
      await freshWindow(15_000);
      // Start-up waits only so long for Redis: on a busy machine the first hits could otherwise be
      // counted on the fallback before the connection is ready.
      await pollUntil('Redis counts', async () => (await ready(app)).checks['rate_limits'] === 'redis');

      expect((await clientCredentials(app, machine)).status).toBe(200);
      expect((await clientCredentials(app, machine)).status).toBe(200);
      expect(await inRedis()).toBe(2);

      // Killed: the fallback takes over at once (its window starts from zero, documented in ADR 0007).
      counter.destroy();
      await own.stop();
      const down = [];
      for (let i = 0; i < 8; i++) down.push(await clientCredentials(app, machine));
      expect(down.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
      await expectSlowDown(down[5]!);
      const health = await fetch(`${app.url}/health/ready`);
      expect(health.status).toBe(200); // degraded, still ready
      expect(((await health.json()) as { checks: unknown }).checks).toMatchObject({
        database: 'up',
        redis: 'down',
        rate_limits: 'postgres-fallback',
      });
      const metrics = await app.app.get(MetricsService).registry.metrics();
      expect(metrics).toMatch(/^auth_rate_limit_redis_up 0$/m);
      expect(Number(/^auth_rate_limit_fallback_total (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(8);
      // The fallback's counts are merged into PostgreSQL, where other replicas on the fallback see them.
      await pollUntil('the fallback merged its hits', async () => (await pgCount(app, bucket)) === 8);

      // Back: counted in Redis again.
      await own.restart();
      await pollUntil('Redis is used again', async () => (await ready(app)).checks['rate_limits'] === 'redis');
      const reconnected = createClient({ url: own.url });
      reconnected.on('error', () => undefined);
      await reconnected.connect();
      try {
        expect((await clientCredentials(app, machine)).status).toBe(200);
        expect(await reconnected.keys(`${KEY_PREFIX}${bucket}:*`)).toHaveLength(1);

        // Frozen (connections open, no answers): each check gives up after REDIS_TIMEOUT_MS and
        // counts on the fallback, which remembers this window's 8 hits.
        own.freeze();
        const frozen = [];
        for (let i = 0; i < 3; i++) frozen.push(await clientCredentials(app, machine).then((r) => r.status));
        expect(frozen).toEqual([429, 429, 429]);
        const h = await fetch(`${app.url}/health/ready`, { signal: AbortSignal.timeout(5_000) });
        expect(h.status).toBe(200);
        expect(((await h.json()) as { checks: unknown }).checks).toMatchObject({ redis: 'down', rate_limits: 'postgres-fallback' });
        own.thaw();
        await pollUntil('Redis answers again', async () => (await ready(app)).checks['redis'] === 'up');
      } finally {
        reconnected.destroy();
      }
      await close(app);
    } finally {
      await own.stop();
    }
  });
});

describe('without Redis (PostgreSQL counters)', () => {
  it('two replicas share one limit within a merge interval', async () => {
    const a = await start({ RATE_LIMIT_TOKEN_PER_MINUTE: '5' });
    const b = await start({ RATE_LIMIT_TOKEN_PER_MINUTE: '5' }, a.db);
    const machine = await machineClient(a);
    const bucket = `token-client:${machine.id}`;
    expect((await ready(a)).checks).not.toHaveProperty('redis');
    await freshWindow();

    const onA: number[] = [];
    for (let i = 0; i < 6; i++) onA.push((await clientCredentials(a, machine)).status);
    expect(onA).toEqual([200, 200, 200, 200, 200, 429]);
    await pollUntil('A merged its hits', async () => (await pgCount(a, bucket)) === 6);

    // B has not merged yet, so it does not know A's count: its first hit passes (the documented
    // bound: one merge interval's worth of hits per replica). Its merge returns the shared total.
    expect((await clientCredentials(b, machine)).status).toBe(200);
    await pollUntil('B merged its hit', async () => (await pgCount(a, bucket)) === 7);
    await expectSlowDown(await clientCredentials(b, machine));
    await expectSlowDown(await clientCredentials(a, machine));
    await close(b, a);
  });
});

/** Opens the hosted login form of `org`; submit() posts a password and keeps the form's CSRF token fresh. */
async function openForm(app: TestApp, bff: BffClient, org: string) {
  const started = await get(
    authorizeUrl(app.url, bff, { org, state: 'st', code_challenge: pkcePair().challenge, code_challenge_method: 'S256' }),
  );
  const formUrl = new URL(started.headers.get('location')!, app.url).toString();
  expect(new URL(formUrl).pathname).toMatch(/^\/login\/native\//);
  const jar = new CookieJar();
  let html = await (await get(formUrl, jar)).text();
  return {
    async submit(username: string, password: string): Promise<Response> {
      const res = await postForm(
        new URL(formAction(html)!, app.url).toString(),
        { csrf: hiddenInput(html, 'csrf')!, username, password },
        { jar, headers: { accept: 'application/json' } },
      );
      if (res.status === 401) html = await res.clone().text();
      return res;
    },
  };
}
