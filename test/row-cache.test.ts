/**
 * Clients and tenants are cached per replica (they are read on every token request). A change on
 * one replica, or by hand in psql, must reach every other replica's cache at once; while a
 * replica cannot hear changes it must not answer from its cache at all.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { seedBff, seedNativeTenant } from './support/seed.js';
import { authorizeUrl, basic, get, pkcePair, postForm, type BffClient } from './support/bff.js';
import { ClientsService } from '../src/clients/clients.service.js';
import { ROW_CHANGES_APPLICATION, ROW_CHANGES_CHANNEL } from '../src/database/row-cache.js';

let a: TestApp;
let b: TestApp;
let bff: BffClient;
let tenantId: string;
let superuser: pg.Client;

beforeAll(async () => {
  a = await startTestApp({ RATE_LIMIT_AUTHORIZE_PER_MINUTE: '1000' });
  b = await startTestApp({ RATE_LIMIT_AUTHORIZE_PER_MINUTE: '1000', PUBLIC_URL: a.config.issuer }, a.db);
  bff = await seedBff(a);
  ({
    tenant: { id: tenantId },
  } = await seedNativeTenant(a, 'cacheco', [{ username: 'ann@cacheco.test', password: 'correct horse battery staple' }]));
  const u = new URL(inject('pgAdminUrl'));
  superuser = new pg.Client({ connectionString: `postgres://${u.username}:${u.password}@${u.host}/${a.db.name}` });
  await superuser.connect();
});

afterAll(async () => {
  await superuser?.end();
  await Promise.allSettled([b?.close(), a?.close()]);
});

async function machineClient(): Promise<{ id: string; secret: string }> {
  const id = `svc-${randomBytes(3).toString('hex')}`;
  const { secret } = await a.app.get(ClientsService).create({ id, name: 'Machine', kind: 'machine', tenantId, scopes: ['api'] });
  return { id, secret };
}

const clientCredentials = (replica: TestApp, c: { id: string; secret: string }) =>
  postForm(
    `${replica.url}/oauth2/token`,
    { grant_type: 'client_credentials', scope: 'api' },
    { headers: { authorization: basic(c.id, c.secret) } },
  );

const loginStart = (replica: TestApp) => {
  const { challenge } = pkcePair();
  return get(authorizeUrl(replica.url, bff, { org: 'cacheco', state: 's', code_challenge: challenge, code_challenge_method: 'S256' }));
};

const refused = async (res: Response) => ({ status: res.status, error: ((await res.json()) as { error?: string }).error });

describe('cached clients and tenants', () => {
  it('refuses on replica B a client disabled through replica A, after B had it cached', async () => {
    const c = await machineClient();
    expect((await clientCredentials(b, c)).status).toBe(200); // now cached on B
    expect((await clientCredentials(b, c)).status).toBe(200);
    await a.app.get(ClientsService).disable(c.id);
    await vi.waitFor(async () => expect(await refused(await clientCredentials(b, c))).toEqual({ status: 401, error: 'invalid_client' }), {
      timeout: 3_000,
      interval: 20,
    });
  });

  it('refuses a client whose secret was changed by hand in psql, on both replicas', async () => {
    const c = await machineClient();
    expect((await clientCredentials(a, c)).status).toBe(200);
    expect((await clientCredentials(b, c)).status).toBe(200);
    await superuser.query(`UPDATE clients SET secret_hash = 'rotated-by-hand' WHERE id = $1`, [c.id]);
    for (const replica of [a, b])
      await vi.waitFor(async () => expect((await clientCredentials(replica, c)).status).toBe(401), { timeout: 3_000, interval: 20 });
  });

  it('stops logins and grants for a tenant suspended by hand, on both replicas', async () => {
    const c = await machineClient();
    expect((await loginStart(b)).headers.get('location')).toMatch(/\/login\/native\//);
    expect((await clientCredentials(b, c)).status).toBe(200);
    await superuser.query(`UPDATE tenants SET status = 'suspended' WHERE id = $1`, [tenantId]);
    try {
      await vi.waitFor(
        async () => expect(new URL((await loginStart(b)).headers.get('location')!).searchParams.get('error')).toBe('unknown_organization'),
        { timeout: 3_000, interval: 20 },
      );
      await vi.waitFor(async () => expect(await refused(await clientCredentials(b, c))).toEqual({ status: 400, error: 'invalid_grant' }), {
        timeout: 3_000,
        interval: 20,
      });
    } finally {
      await superuser.query(`UPDATE tenants SET status = 'active' WHERE id = $1`, [tenantId]);
    }
    await vi.waitFor(async () => expect((await clientCredentials(b, c)).status).toBe(200), { timeout: 3_000, interval: 20 });
  });

  it('follows a binding disabled by hand on both replicas; a login stamp on the binding is not announced', async () => {
    const startError = async (replica: TestApp) => new URL((await loginStart(replica)).headers.get('location')!).searchParams.get('error');
    expect(await startError(b)).toBeNull(); // the binding is cached on B now
    // Every login stamps the binding's row: that must not empty every replica's cache. Listen as
    // the replicas do, stamp, then make a real change: only the real change is announced.
    const heard: string[] = [];
    superuser.on('notification', (n) => heard.push(`${n.channel}:${n.payload}`));
    await superuser.query(`LISTEN ${ROW_CHANGES_CHANNEL}`);
    await superuser.query(
      `UPDATE tenant_identity_providers SET last_login_succeeded_at = now(), health_checked_at = now() WHERE tenant_id = $1`,
      [tenantId],
    );
    await superuser.query(`UPDATE tenant_identity_providers SET enabled = false WHERE tenant_id = $1`, [tenantId]);
    await vi.waitFor(() => expect(heard).toEqual([`${ROW_CHANGES_CHANNEL}:tenant_identity_providers`]), { timeout: 3_000, interval: 20 });
    await superuser.query(`UNLISTEN ${ROW_CHANGES_CHANNEL}`);
    try {
      for (const replica of [a, b])
        await vi.waitFor(async () => expect(await startError(replica)).toBe('temporarily_unavailable'), { timeout: 3_000, interval: 20 });
    } finally {
      await superuser.query(`UPDATE tenant_identity_providers SET enabled = true WHERE tenant_id = $1`, [tenantId]);
    }
    await vi.waitFor(async () => expect(await startError(b)).toBeNull(), { timeout: 3_000, interval: 20 });
  });

  it('reads from the database while a replica cannot hear changes, and caches again once it can', async () => {
    const c = await machineClient();
    expect((await clientCredentials(b, c)).status).toBe(200);
    // Cut every replica's listening connection; the change below is made while nobody listens.
    const cut = await superuser.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND datname = $2`,
      [ROW_CHANGES_APPLICATION, a.db.name],
    );
    expect(cut.rowCount).toBe(2);
    await vi.waitFor(() => expect(b.database.rowChanges?.live).toBe(false), { timeout: 3_000, interval: 5 });
    // Read while deaf: a cache that still stored this answer would serve it after the disable below.
    expect((await clientCredentials(b, c)).status).toBe(200);
    await a.app.get(ClientsService).disable(c.id);
    // No notification can reach B, yet B refuses: it does not answer from its cache while deaf (and drops it on reconnecting).
    expect(await refused(await clientCredentials(b, c))).toEqual({ status: 401, error: 'invalid_client' });
    // The feed comes back by itself (replicas reconnect), and a fresh client is served again.
    await vi.waitFor(
      async () => {
        const { rows } = await superuser.query(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND datname = $2`,
          [ROW_CHANGES_APPLICATION, a.db.name],
        );
        expect(rows[0].n).toBe(2);
      },
      { timeout: 5_000, interval: 50 },
    );
    const again = await machineClient();
    expect((await clientCredentials(b, again)).status).toBe(200);
    await a.app.get(ClientsService).disable(again.id);
    await vi.waitFor(async () => expect((await clientCredentials(b, again)).status).toBe(401), { timeout: 3_000, interval: 20 });
  });
});
