/**
 * Every 2xx is persisted: the service is stopped in the middle of a provisioning batch and
 * started again on the same database, and everything it acknowledged is there, whole.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { TenantsService } from '../src/tenants/tenants.service.js';
import { CORE_GROUP, PATCH_OP, type ListBody, ScimClient, entraUser, scimClient } from './support/scim.js';

let first: TestApp | undefined;
let second: TestApp | undefined;

afterAll(async () => {
  await first?.close().catch(() => undefined);
  await second?.close();
});

describe('durability across a restart mid-batch', () => {
  it('keeps every acknowledged create and membership change, and nothing half-written', async () => {
    first = await startTestApp();
    const tenantId = (await first.app.get(TenantsService).create('durable', 'Durable')).id;
    const scim = await scimClient(first, tenantId);
    const group = (await scim.post('/Groups', { schemas: [CORE_GROUP], displayName: 'Everyone' })).body['id'] as string;

    const attempted = new Set<string>();
    const acknowledged = new Map<string, string>();
    const acknowledgedMembers = new Set<string>();
    let stopping: Promise<void> | undefined;
    let next = 0;
    const TOTAL = 400;
    const worker = async () => {
      while (next < TOTAL) {
        const i = next++;
        const userName = `batch-${i}@durable.test`;
        attempted.add(userName);
        try {
          const res = await scim.post('/Users', entraUser(userName, randomUUID(), { displayName: `User ${i}` }));
          if (res.status !== 201) continue;
          acknowledged.set(res.body['id'] as string, userName);
          const add = await scim.patch(`/Groups/${group}`, {
            schemas: [PATCH_OP],
            Operations: [{ op: 'Add', path: 'members', value: [{ value: res.body['id'] }] }],
          });
          if (add.status === 204) acknowledgedMembers.add(res.body['id'] as string);
        } catch {
          // The service went away mid-request: not acknowledged.
        }
        if (acknowledged.size >= 120 && !stopping) stopping = first!.close();
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    await stopping;
    expect(acknowledged.size).toBeGreaterThanOrEqual(120);
    expect(acknowledged.size).toBeLessThan(TOTAL);

    second = await startTestApp({ KEY_ENCRYPTION_KEY: first.config.KEY_ENCRYPTION_KEY! }, first.db);
    first = undefined;
    const again = ScimClient.for(second, scim.token);
    for (const [id, userName] of acknowledged) {
      const res = await again.get(`/Users/${id}`);
      expect(res.status, userName).toBe(200);
      expect(res.body).toMatchObject({
        userName,
        displayName: expect.stringMatching(/^User \d+$/),
        emails: [{ value: userName, type: 'work', primary: true }],
      });
    }
    const all = await again.get<ListBody>('/Users?count=1000');
    expect(all.body.totalResults).toBeGreaterThanOrEqual(acknowledged.size);
    for (const r of all.body.Resources) {
      expect(attempted.has(r['userName'] as string)).toBe(true);
      expect(r['emails']).toEqual([{ value: r['userName'], type: 'work', primary: true }]);
    }
    const members = (await again.get(`/Groups/${group}`)).body['members'] as Array<{ value: string }>;
    const memberIds = new Set(members.map((m) => m.value));
    for (const id of acknowledgedMembers) expect(memberIds.has(id)).toBe(true);
  }, 180_000);
});
