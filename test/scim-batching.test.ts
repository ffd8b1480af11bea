/**
 * Concurrent POST /Users of one tenant are written together (one transaction per batch). What a
 * client sees must not change: every request gets its own answer, a userName taken by another
 * request of the same batch is 409, a user who logged in first is adopted, one bad request does not
 * fail its neighbours, and every created user has its own audit event with its request id.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { seedNativeTenant } from './support/seed.js';
import { ERROR_SCHEMA, type ScimClient, entraUser, scimClient } from './support/scim.js';
import { tenantRows } from './support/tenant-rows.js';
import { TenantsService } from '../src/tenants/tenants.service.js';
import { MetricsService } from '../src/metrics/metrics.service.js';

let app: TestApp;

beforeAll(async () => {
  app = await startTestApp({ SCIM_RATE_LIMIT_PER_MINUTE: '100000' });
});

afterAll(async () => {
  await app?.close();
});

async function query<T>(tenantId: string, sql: string, params: unknown[] = []): Promise<T[]> {
  return tenantRows<T>(app, tenantId, sql, params);
}

/** Creates written and transactions used so far, from the service's own histogram. */
async function batchStats(): Promise<{ creates: number; batches: number }> {
  const metric = (await app.app.get(MetricsService).registry.getSingleMetric('auth_scim_user_create_batch_size')!.get()).values;
  const value = (name: string) => metric.find((v) => (v as { metricName?: string }).metricName === name)?.value ?? 0;
  return { creates: value('auth_scim_user_create_batch_size_sum'), batches: value('auth_scim_user_create_batch_size_count') };
}

async function newTenant(slug: string): Promise<{ tenantId: string; scim: ScimClient }> {
  const t = await app.app.get(TenantsService).create(`${slug}-${randomUUID().slice(0, 6)}`, slug);
  return { tenantId: t.id, scim: await scimClient(app, t.id) };
}

describe('concurrent creates of one tenant', () => {
  it('answers each request for itself, audits each user with its own request id, and shares transactions', async () => {
    const { tenantId, scim } = await newTenant('batch-many');
    const before = await batchStats();
    const n = 60;
    const requestIds = Array.from({ length: n }, (_, i) => `batch-req-${i}-${randomUUID().slice(0, 8)}`);
    const results = await Promise.all(
      requestIds.map((rid, i) =>
        scim.post('/Users', entraUser(`user${i}@batch.test`, `ext-${i}`, { displayName: `User ${i}` }), { 'x-request-id': rid }),
      ),
    );
    for (const [i, r] of results.entries()) {
      expect(r.status).toBe(201);
      expect(r.body).toMatchObject({ userName: `user${i}@batch.test`, externalId: `ext-${i}`, displayName: `User ${i}`, active: true });
      expect(r.headers.get('location')).toBe(`${scim.baseUrl}/Users/${r.body['id'] as string}`);
      expect(r.headers.get('etag')).toBe((r.body['meta'] as { version: string }).version);
      expect(r.body).not.toHaveProperty('groups');
    }
    expect(new Set(results.map((r) => r.body['id'])).size).toBe(n);
    // Each answer is the stored user.
    const stored = await scim.get(`/Users/${results[17]!.body['id'] as string}`);
    expect(stored.body).toEqual(results[17]!.body);

    const events = await query<{ target: string; request_id: string; actor: string; data: unknown }>(
      tenantId,
      `SELECT target, request_id, actor, data FROM audit_events WHERE action = 'scim.user_created'`,
    );
    expect(events).toHaveLength(n);
    const byTarget = new Map(events.map((e) => [e.target, e]));
    for (const [i, r] of results.entries()) {
      const e = byTarget.get(r.body['id'] as string)!;
      expect(e.request_id).toBe(requestIds[i]);
      expect(e.actor).toMatch(/^scim:/);
      expect(e.data).toEqual({ active: true, adopted: false });
    }

    const after = await batchStats();
    expect(after.creates - before.creates).toBe(n);
    // 60 requests in flight at once cannot have taken 60 transactions.
    expect(after.batches - before.batches).toBeLessThan(n);
  });

  it('lets exactly one of several requests for the same userName (in any case) win; the others get 409 uniqueness', async () => {
    const { tenantId, scim } = await newTenant('batch-dup');
    const names = ['Same@Batch.test', 'same@batch.test', 'SAME@BATCH.TEST', 'same@Batch.test', 'Same@batch.TEST', 'sAme@batch.test'];
    const results = await Promise.all([...names, ...names].map((u, i) => scim.post('/Users', entraUser(u, `dup-${i}`))));
    const created = results.filter((r) => r.status === 201);
    expect(created).toHaveLength(1);
    for (const r of results.filter((x) => x.status !== 201)) {
      expect(r.status).toBe(409);
      expect(r.body).toMatchObject({ schemas: [ERROR_SCHEMA], scimType: 'uniqueness', status: '409' });
    }
    const rows = await query<{ id: string }>(tenantId, `SELECT id FROM users WHERE user_name_ci = 'same@batch.test'`);
    expect(rows.map((r) => r.id)).toEqual([created[0]!.body['id']]);
    const events = await query(tenantId, `SELECT 1 FROM audit_events WHERE action = 'scim.user_created'`);
    expect(events).toHaveLength(1);
  });

  it('adopts users who logged in first while creating the others of the same burst', async () => {
    const seeded = await seedNativeTenant(app, `batch-adopt-${randomUUID().slice(0, 6)}`, [
      { username: 'first@adopt.test', password: 'correct horse battery staple' },
      { username: 'second@adopt.test', password: 'correct horse battery staple' },
    ]);
    const tenantId = seeded.tenant.id;
    const scim = await scimClient(app, tenantId);
    const names = [
      'fresh1@adopt.test',
      'First@adopt.test',
      'fresh2@adopt.test',
      'fresh3@adopt.test',
      'second@adopt.test',
      'fresh4@adopt.test',
    ];
    const results = await Promise.all(names.map((u, i) => scim.post('/Users', entraUser(u, `adopt-${i}`))));
    expect(results.map((r) => r.status)).toEqual(names.map(() => 201));
    expect(results[1]!.body['id']).toBe(seeded.userIds[0]);
    expect(results[4]!.body['id']).toBe(seeded.userIds[1]);
    const { n } = (await query<{ n: number }>(tenantId, `SELECT count(*)::int AS n FROM users`))[0]!;
    expect(n).toBe(6);
    const adopted = await query<{ target: string }>(
      tenantId,
      `SELECT target FROM audit_events WHERE action = 'scim.user_adopted' ORDER BY target`,
    );
    expect(adopted.map((a) => a.target)).toEqual([...seeded.userIds].sort());
    const created = await query<{ data: { adopted: boolean } }>(
      tenantId,
      `SELECT data FROM audit_events WHERE action = 'scim.user_created'`,
    );
    expect(created.filter((e) => e.data.adopted)).toHaveLength(2);
    expect(created).toHaveLength(6);
  });

  it('refuses a NUL character (which PostgreSQL cannot store) as invalidValue, and creates the rest of the burst', async () => {
    const { tenantId, scim } = await newTenant('batch-nul');
    const bodies = Array.from({ length: 12 }, (_, i) =>
      entraUser(`ok${i}@nul.test`, `nul-${i}`, i === 5 ? { displayName: 'nul\u0000inside' } : {}),
    );
    const results = await Promise.all(bodies.map((b) => scim.post('/Users', b)));
    expect(results[5]!.status).toBe(400);
    expect(results[5]!.body).toMatchObject({ schemas: [ERROR_SCHEMA], scimType: 'invalidValue' });
    expect(results[5]!.body['detail']).toMatch(/displayName.*U\+0000/);
    for (const [i, r] of results.entries()) if (i !== 5) expect(r.status).toBe(201);
    const { n } = (await query<{ n: number }>(tenantId, `SELECT count(*)::int AS n FROM users`))[0]!;
    expect(n).toBe(11);
  });

  it('when the database refuses one request of a batch, retries the others alone: only that one fails', async () => {
    const { tenantId, scim } = await newTenant('batch-refused');
    // A rule only the database knows (as a trigger or constraint added by an operator would be).
    await app.database.query(`ALTER TABLE users ADD CONSTRAINT test_refuse_me CHECK (display_name IS DISTINCT FROM 'refuse me') NOT VALID`);
    try {
      const before = await batchStats();
      const bodies = Array.from({ length: 12 }, (_, i) =>
        entraUser(`ok${i}@refused.test`, `refused-${i}`, { displayName: i === 5 ? 'refuse me' : `fine ${i}` }),
      );
      const results = await Promise.all(bodies.map((b) => scim.post('/Users', b)));
      const after = await batchStats();
      // The burst did share a transaction (so the refusal failed a batch, not just its own request).
      expect(after.batches - before.batches).toBeLessThan(12);
      expect(results[5]!.status).toBe(500);
      expect(results[5]!.body).toMatchObject({ schemas: [ERROR_SCHEMA], status: '500' });
      for (const [i, r] of results.entries()) if (i !== 5) expect(r.status).toBe(201);
      const rows = await query<{ user_name: string }>(tenantId, `SELECT user_name FROM users ORDER BY user_name`);
      expect(rows.map((r) => r.user_name)).toEqual(
        bodies
          .map((b) => b['userName'] as string)
          .filter((u) => u !== 'ok5@refused.test')
          .sort(),
      );
      const events = await query(tenantId, `SELECT 1 FROM audit_events WHERE action = 'scim.user_created'`);
      expect(events).toHaveLength(11);
    } finally {
      await app.database.query(`ALTER TABLE users DROP CONSTRAINT test_refuse_me`);
    }
  });
});
