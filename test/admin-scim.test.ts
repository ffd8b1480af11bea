import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { adminClient, type AdminClient } from './support/admin.js';
import { CORE_USER, PATCH_OP, ScimClient } from './support/scim.js';

let app: TestApp;
let admin: AdminClient;

beforeAll(async () => {
  app = await startTestApp();
  admin = await adminClient(app);
});
afterAll(async () => app?.close());

const json = async <T = Record<string, unknown>>(res: Response) => (await res.json()) as T;

describe('SCIM through the admin API', () => {
  it('issues a SCIM token once, lists it by prefix only, and revoking it locks the directory out', async () => {
    const tenant = await json<{ id: string }>(
      await admin.call('POST', '/admin/v1/tenants', { slug: 'scim-admin', displayName: 'SCIM Admin' }),
    );
    const created = await json<{ id: string; token: string }>(
      await admin.call('POST', `/admin/v1/tenants/${tenant.id}/scim-tokens`, { name: 'Entra ID' }),
    );
    expect(created.token).toMatch(/^st_/);
    const listed = await admin.call('GET', `/admin/v1/tenants/${tenant.id}/scim-tokens`);
    expect(await listed.clone().text()).not.toContain(created.token);
    expect((await json<{ items: unknown[] }>(listed)).items).toHaveLength(1);

    const scim = ScimClient.for(app, created.token);
    expect((await scim.get('/Users')).status).toBe(200);
    expect((await admin.call('DELETE', `/admin/v1/tenants/${tenant.id}/scim-tokens/${created.id}`)).status).toBe(204);
    // The guard caches verified tokens for SCIM_TOKEN_CACHE_SECONDS per replica; a fresh replica proves the revocation.
    const other = await startTestApp({ SCIM_TOKEN_CACHE_SECONDS: '0' }, app.db);
    try {
      expect((await ScimClient.for(other, created.token).get('/Users')).status).toBe(401);
    } finally {
      await other.close();
    }
  });

  it('tunes the mass-deprovisioning guard, then releases what it held', async () => {
    const tenant = await json<{ id: string }>(
      await admin.call('POST', '/admin/v1/tenants', { slug: 'scim-guard', displayName: 'Guarded' }),
    );
    const tuned = await admin.call('PATCH', `/admin/v1/tenants/${tenant.id}/scim/settings`, {
      guardPercent: 10,
      guardMinCount: 2,
      guardWindowSeconds: 600,
    });
    expect(tuned.status, await tuned.clone().text()).toBe(204);
    const { token } = await json<{ token: string }>(
      await admin.call('POST', `/admin/v1/tenants/${tenant.id}/scim-tokens`, { name: 'Okta' }),
    );
    const scim = ScimClient.for(app, token);
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const res = await scim.post('/Users', {
        schemas: [CORE_USER],
        userName: `u${i}@guard.test`,
        externalId: randomUUID(),
        active: true,
        emails: [{ value: `u${i}@guard.test`, type: 'work', primary: true }],
      });
      expect(res.status).toBe(201);
      ids.push(res.body['id'] as string);
    }
    const deactivate = (id: string) =>
      scim.patch(`/Users/${id}`, { schemas: [PATCH_OP], Operations: [{ op: 'Replace', path: 'active', value: 'False' }] });
    const statuses = [];
    for (const id of ids.slice(0, 4)) statuses.push((await deactivate(id)).status);
    expect(statuses).toEqual([200, 200, 503, 503]);

    const held = await json<{ items: Array<{ id: string; userId: string }> }>(
      await admin.call('GET', `/admin/v1/tenants/${tenant.id}/scim/held-operations`),
    );
    expect(held.items.map((h) => h.userId).sort()).toEqual(ids.slice(2, 4).sort());
    const discarded = await json<{ discarded: string[] }>(
      await admin.call('POST', `/admin/v1/tenants/${tenant.id}/scim/held-operations/discard`, {
        ids: [held.items.find((h) => h.userId === ids[3])!.id],
      }),
    );
    expect(discarded.discarded).toHaveLength(1);
    const released = await json<{ released: unknown[]; failed: unknown[] }>(
      await admin.call('POST', `/admin/v1/tenants/${tenant.id}/scim/held-operations/release`, {}),
    );
    expect(released.released).toHaveLength(1);
    expect((await scim.get(`/Users/${ids[2]}`)).body['active']).toBe(false);
    expect((await scim.get(`/Users/${ids[3]}`)).body['active']).toBe(true);

    const audit = await json<{ items: Array<{ action: string }> }>(
      await admin.call('GET', `/admin/v1/audit-events?tenantId=${tenant.id}&limit=500`),
    );
    expect(audit.items.map((e) => e.action)).toEqual(
      expect.arrayContaining(['scim.deprovision_guard_tripped', 'scim.deprovision_released']),
    );
  });
});
