/**
 * SessionsRepository's bulk revocations, for the callers that end many sessions at once (SCIM
 * deprovisioning a user, an operator suspending or deleting a tenant): only live sessions of that
 * user or tenant end, with the caller's reason, in the caller's transaction.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { seedBff, seedNativeTenant } from './support/seed.js';
import { nativeLogin, type BffClient } from './support/bff.js';
import { SessionsRepository } from '../src/sessions/sessions.repository.js';

const PASSWORD = 'correct horse battery staple';
let app: TestApp;
let bff: BffClient;
let repo: SessionsRepository;
let acme: { tenantId: string; userIds: string[] };
let globex: { tenantId: string };

const login = async (org: string, user: string) =>
  decodeJwt((await nativeLogin(app.url, bff, org, user, PASSWORD)).tokens.access_token) as { sid: string; tid: string };

async function reasons(tenantId: string): Promise<Array<string | null>> {
  const { rows } = await app.database.transaction({ tenant: tenantId }, (tx) =>
    tx.query<{ revoked_reason: string | null }>(`SELECT revoked_reason FROM sessions ORDER BY revoked_reason NULLS FIRST`),
  );
  return rows.map((r) => r.revoked_reason);
}

beforeAll(async () => {
  app = await startTestApp({ RATE_LIMIT_AUTHORIZE_PER_MINUTE: '1000', RATE_LIMIT_LOGIN_PER_MINUTE: '1000' });
  bff = await seedBff(app);
  const a = await seedNativeTenant(app, 'acme-sessions', [
    { username: 'ann@acme-sessions.test', password: PASSWORD },
    { username: 'bob@acme-sessions.test', password: PASSWORD },
  ]);
  const g = await seedNativeTenant(app, 'globex-sessions', [{ username: 'gus@globex-sessions.test', password: PASSWORD }]);
  acme = { tenantId: a.tenant.id, userIds: a.userIds };
  globex = { tenantId: g.tenant.id };
  repo = app.app.get(SessionsRepository);
  await login('acme-sessions', 'ann@acme-sessions.test');
  await login('acme-sessions', 'ann@acme-sessions.test');
  await login('acme-sessions', 'bob@acme-sessions.test');
  await login('globex-sessions', 'gus@globex-sessions.test');
});

afterAll(async () => {
  await app.close();
});

describe('SessionsRepository', () => {
  it('revokeAllOfUser ends the live sessions of that user only, once', async () => {
    const ann = acme.userIds[0]!;
    expect(await app.database.transaction({ tenant: acme.tenantId }, (tx) => repo.revokeAllOfUser(tx, ann, 'scim_deprovisioned'))).toBe(2);
    expect(await app.database.transaction({ tenant: acme.tenantId }, (tx) => repo.revokeAllOfUser(tx, ann, 'again'))).toBe(0);
    expect(await reasons(acme.tenantId)).toEqual([null, 'scim_deprovisioned', 'scim_deprovisioned']);
  });

  it('revokeAllOfTenant ends the tenant’s remaining live sessions, and no other tenant’s', async () => {
    expect(
      await app.database.transaction({ tenant: acme.tenantId }, (tx) => repo.revokeAllOfTenant(tx, acme.tenantId, 'tenant_suspended')),
    ).toBe(1);
    expect(await reasons(acme.tenantId)).toEqual(['scim_deprovisioned', 'scim_deprovisioned', 'tenant_suspended']);
    expect(await reasons(globex.tenantId)).toEqual([null]);
  });
});
