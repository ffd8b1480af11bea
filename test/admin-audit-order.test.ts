/**
 * The audit listing is newest first by the table's bigint key, across pages: ids that cross digit
 * boundaries (9 → 10, 99 → 100) keep numeric order, and the cursor walks the same order, so every
 * event is listed once. A cursor the listing never returned is a 400, not a 500.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { adminClient, type AdminClient } from './support/admin.js';

let app: TestApp;
let admin: AdminClient;

beforeAll(async () => {
  app = await startTestApp(); // a fresh database: audit ids start at 1
  admin = await adminClient(app);
});
afterAll(async () => {
  await app?.close();
});

type AuditPage = { items: Array<{ id: string; action: string; target: string | null }>; nextCursor: string | null };

async function page(query: Record<string, string>): Promise<AuditPage> {
  const res = await admin.call('GET', `/admin/v1/audit-events?${new URLSearchParams(query).toString()}`);
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as AuditPage;
}

describe('GET /admin/v1/audit-events ordering', () => {
  it('lists every event once, newest first by numeric id, over pages that cross 9 → 10 and 99 → 100', async () => {
    const created: string[] = []; // one audit event each, in this order
    for (let i = 0; i < 120; i++) {
      const res = await admin.call('POST', '/admin/v1/tenants', { slug: `order-${i}`, displayName: `Order ${i}` });
      expect(res.status, await res.clone().text()).toBe(201);
      created.push(((await res.json()) as { id: string }).id);
    }
    const { rows } = await app.database.transaction('audit-reader', (tx) =>
      tx.query<{ count: number }>(`SELECT count(*)::int AS count FROM audit_events`),
    );
    const count = rows[0]!.count;

    const pages: AuditPage['items'][] = [];
    let cursor: string | null = null;
    do {
      const p = await page({ limit: '7', ...(cursor ? { cursor } : {}) });
      pages.push(p.items);
      cursor = p.nextCursor;
      expect(pages.length).toBeLessThan(40);
    } while (cursor);
    const ids = pages.flat().map((e) => BigInt(e.id));

    expect(ids.some((id) => id < 10n) && ids.some((id) => id >= 100n), `ids listed: ${ids.join(', ')}`).toBe(true);
    for (let i = 1; i < ids.length; i++) expect(ids[i]! < ids[i - 1]!, `event ${ids[i]} listed after ${ids[i - 1]}`).toBe(true);
    expect(ids).toHaveLength(count); // strictly descending, so no duplicates; all of them, so none missing
    // Newest first is also the order the tenants were created in, reversed.
    const targets = pages.flat().flatMap((e) => (e.action === 'tenant.created' && created.includes(e.target!) ? [e.target] : []));
    expect(targets).toEqual([...created].reverse());
  }, 120_000);

  it('refuses a cursor it never returned with a 400 problem', async () => {
    for (const cursor of ['abc', '-5', '1.5', '9999999999999999999', '1'.repeat(30)]) {
      const res = await admin.call('GET', `/admin/v1/audit-events?cursor=${encodeURIComponent(cursor)}`);
      expect(res.status, `cursor ${cursor}: ${await res.clone().text()}`).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    }
  });
});
