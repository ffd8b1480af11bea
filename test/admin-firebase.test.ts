import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { adminClient, type AdminClient } from './support/admin.js';
import { seedBff } from './support/seed.js';
import { nativeLogin, submitNativeLogin, type BffClient } from './support/bff.js';
import { hashFirebaseScrypt, type FirebaseScryptParams } from '../src/identity/firebase/firebase-scrypt.js';

let app: TestApp;
let admin: AdminClient;
let bff: BffClient;

beforeAll(async () => {
  app = await startTestApp();
  admin = await adminClient(app);
  bff = await seedBff(app);
});
afterAll(async () => app?.close());

const json = async <T = Record<string, unknown>>(res: Response) => (await res.json()) as T;

describe('Firebase legacy through the admin API', () => {
  it('refuses a firebase_legacy binding for a tenant that never had one (ADR-0002)', async () => {
    const t = await json<{ id: string }>(await admin.call('POST', '/admin/v1/tenants', { slug: 'newco', displayName: 'New Co' }));
    const res = await admin.call('POST', `/admin/v1/tenants/${t.id}/bindings`, { kind: 'firebase_legacy', config: { projectId: 'demo-newco' } });
    expect(res.status).toBe(409);
    const body = await json(res);
    expect(body['type']).toBe('urn:auth-service:problem:firebase-legacy-closed');
    expect(String(body['detail'])).toMatch(/legacy/i);
  });

  it('imports a Firebase export through the API and lets users keep their password on the hosted form', async () => {
    const t = await json<{ id: string }>(await admin.call('POST', '/admin/v1/tenants', { slug: 'fbmove', displayName: 'Moving off Firebase' }));
    const fb = await admin.call('POST', `/admin/v1/tenants/${t.id}/bindings`, { kind: 'firebase_legacy', config: { projectId: 'demo-fbmove' }, migrationImport: true });
    expect(fb.status).toBe(201);

    const params: FirebaseScryptParams = { signerKey: randomBytes(64).toString('base64'), saltSeparator: 'Bw==', rounds: 8, memCost: 14 };
    const salt = randomBytes(12).toString('base64');
    const exported = {
      users: [{ localId: 'fb-uid-1', email: 'mia@fbmove.test', emailVerified: true, passwordHash: await hashFirebaseScrypt('old firebase password', salt, params), salt, displayName: 'Mia' }],
    };
    const hashConfig = { algorithm: 'SCRYPT', base64_signer_key: params.signerKey, base64_salt_separator: params.saltSeparator, rounds: params.rounds, mem_cost: params.memCost };
    const imported = await admin.call('POST', `/admin/v1/tenants/${t.id}/firebase-import`, { export: exported, hashConfig });
    expect(imported.status).toBe(200);
    expect(await json(imported)).toMatchObject({ total: 1, created: 1, credentialsCreated: 1 });
    expect(await (await admin.call('GET', `/admin/v1/audit-events?tenantId=${t.id}`)).text()).not.toContain(params.signerKey);

    // Switch: a native binding, proven by a test login with the old password, then activated.
    const native = await json<{ id: string; version: number }>(await admin.call('POST', `/admin/v1/tenants/${t.id}/bindings`, { kind: 'native', priority: 10 }));
    const test = await json<{ url: string }>(await admin.call('POST', `/admin/v1/tenants/${t.id}/bindings/${native.id}/test-login`));
    const wrong = await submitNativeLogin(app.url, test.url.replace(app.config.issuer, app.url), 'mia@fbmove.test', 'not the password');
    expect(wrong.status).toBe(401);
    const done = await submitNativeLogin(app.url, test.url.replace(app.config.issuer, app.url), 'mia@fbmove.test', 'old firebase password');
    expect(done.headers.get('location')).toContain('outcome=success');
    const current = await json<{ version: number }>(await admin.call('GET', `/admin/v1/tenants/${t.id}/bindings/${native.id}`));
    expect((await admin.call('POST', `/admin/v1/tenants/${t.id}/bindings/${native.id}/activate`, undefined, { 'if-match': `"v${current.version}"` })).status).toBe(200);
    const { tokens } = await nativeLogin(app.url, bff, 'fbmove', 'mia@fbmove.test', 'old firebase password');
    expect(JSON.parse(Buffer.from(tokens.access_token.split('.')[1]!, 'base64url').toString())).toMatchObject({ org: 'fbmove', idp: 'native' });
  });
});

describe('OpenAPI UI', () => {
  it('renders Swagger UI at /docs', async () => {
    const res = await fetch(`${app.url}/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(await res.text()).toMatch(/swagger-ui/i);
  });
});
