/**
 * A binding's last login outcome (the connection-health view): a success is written at most once a
 * minute per binding and process, a failure always, and the first success after a failure at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BindingsService } from '../src/tenants/bindings.service.js';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { seedNativeTenant } from './support/seed.js';

let app: TestApp;
let tenantId: string;
let bindingId: string;

beforeAll(async () => {
  app = await startTestApp();
  const { tenant } = await seedNativeTenant(app, 'outcome', []);
  tenantId = tenant.id;
  bindingId = (await app.app.get(BindingsService).allActive(tenant))[0]!.id;
});
afterAll(async () => {
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
  await app?.close();
});

async function outcome(): Promise<{ succeeded: Date | null; failed: Date | null }> {
  const { rows } = await app.database.transaction({ tenant: tenantId }, (tx) =>
    tx.query<{ succeeded: Date | null; failed: Date | null }>(
      `SELECT last_login_succeeded_at AS succeeded, last_login_failed_at AS failed FROM tenant_identity_providers WHERE id = $1`,
      [bindingId],
    ),
  );
  return rows[0]!;
}

describe('recordLoginOutcome', () => {
  it('writes the first success, skips the next within the minute, and writes a success right after a failure', async () => {
    const bindings = app.app.get(BindingsService);
    await bindings.recordLoginOutcome(tenantId, bindingId, true);
    const first = (await outcome()).succeeded;
    expect(first).not.toBeNull();

    await new Promise((r) => setTimeout(r, 20));
    await bindings.recordLoginOutcome(tenantId, bindingId, true);
    expect((await outcome()).succeeded).toEqual(first);

    await bindings.recordLoginOutcome(tenantId, bindingId, false, 'wrong password');
    const failed = (await outcome()).failed;
    expect(failed).not.toBeNull();
    await new Promise((r) => setTimeout(r, 20));
    await bindings.recordLoginOutcome(tenantId, bindingId, true);
    const after = (await outcome()).succeeded!;
    expect(after.getTime()).toBeGreaterThan(failed!.getTime());
  });
});
