import { randomBytes } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { adminClient, type AdminClient } from './support/admin.js';
import { seedBff } from './support/seed.js';
import { authorizeUrl, basic, get, nativeLogin, pkcePair, postForm, submitNativeLogin, type BffClient } from './support/bff.js';
import type { FirebaseAuthEmulator } from './peers/firebase-emulator.js';
import { useFirebaseEmulator } from './peers/firebase-test-peer.js';
import { ClientsService } from '../src/clients/clients.service.js';
import { TOKEN_EXCHANGE_GRANT } from '../src/oauth/token.service.js';
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
    const res = await admin.call('POST', `/admin/v1/tenants/${t.id}/bindings`, {
      kind: 'firebase_legacy',
      config: { projectId: 'demo-newco' },
    });
    expect(res.status).toBe(409);
    const body = await json(res);
    expect(body['type']).toBe('urn:auth-service:problem:firebase-legacy-closed');
    expect(String(body['detail'])).toMatch(/legacy/i);
  });

  it('imports a Firebase export through the API and lets users keep their password on the hosted form', async () => {
    const t = await json<{ id: string }>(
      await admin.call('POST', '/admin/v1/tenants', { slug: 'fbmove', displayName: 'Moving off Firebase' }),
    );
    const fb = await admin.call('POST', `/admin/v1/tenants/${t.id}/bindings`, {
      kind: 'firebase_legacy',
      config: { projectId: 'demo-fbmove' },
      migrationImport: true,
    });
    expect(fb.status).toBe(201);

    const params: FirebaseScryptParams = { signerKey: randomBytes(64).toString('base64'), saltSeparator: 'Bw==', rounds: 8, memCost: 14 };
    const salt = randomBytes(12).toString('base64');
    const exported = {
      users: [
        {
          localId: 'fb-uid-1',
          email: 'mia@fbmove.test',
          emailVerified: true,
          passwordHash: await hashFirebaseScrypt('old firebase password', salt, params),
          salt,
          displayName: 'Mia',
        },
      ],
    };
    const hashConfig = {
      algorithm: 'SCRYPT',
      base64_signer_key: params.signerKey,
      base64_salt_separator: params.saltSeparator,
      rounds: params.rounds,
      mem_cost: params.memCost,
    };
    const imported = await admin.call('POST', `/admin/v1/tenants/${t.id}/firebase-import`, { export: exported, hashConfig });
    expect(imported.status).toBe(200);
    expect(await json(imported)).toMatchObject({ total: 1, created: 1, credentialsCreated: 1 });
    expect(await (await admin.call('GET', `/admin/v1/audit-events?tenantId=${t.id}`)).text()).not.toContain(params.signerKey);

    // Switch: a native binding, proven by a test login with the old password, then activated.
    const native = await json<{ id: string; version: number }>(
      await admin.call('POST', `/admin/v1/tenants/${t.id}/bindings`, { kind: 'native', priority: 10 }),
    );
    const test = await json<{ url: string }>(await admin.call('POST', `/admin/v1/tenants/${t.id}/bindings/${native.id}/test-login`));
    const wrong = await submitNativeLogin(app.url, test.url.replace(app.config.issuer, app.url), 'mia@fbmove.test', 'not the password');
    expect(wrong.status).toBe(401);
    const done = await submitNativeLogin(app.url, test.url.replace(app.config.issuer, app.url), 'mia@fbmove.test', 'old firebase password');
    expect(done.headers.get('location')).toContain('outcome=success');
    const current = await json<{ version: number }>(await admin.call('GET', `/admin/v1/tenants/${t.id}/bindings/${native.id}`));
    expect(
      (
        await admin.call('POST', `/admin/v1/tenants/${t.id}/bindings/${native.id}/activate`, undefined, {
          'if-match': `"v${current.version}"`,
        })
      ).status,
    ).toBe(200);
    const { tokens } = await nativeLogin(app.url, bff, 'fbmove', 'mia@fbmove.test', 'old firebase password');
    expect(JSON.parse(Buffer.from(tokens.access_token.split('.')[1]!, 'base64url').toString())).toMatchObject({
      org: 'fbmove',
      idp: 'native',
    });
  });
});

describe('OpenAPI UI', () => {
  it('renders Swagger UI at /docs', async () => {
    const res = await fetch(`${app.url}/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(await res.text()).toMatch(/swagger-ui/i);
  });

  it('documents retire and rollback with the other binding routes, behind the admin guard', async () => {
    const doc = await json<{ paths: Record<string, Record<string, { tags?: string[]; security?: unknown[] }>> }>(
      await fetch(`${app.url}/docs/openapi.json`),
    );
    for (const path of ['/admin/v1/tenants/{tenantId}/bindings/{bindingId}/retire', '/admin/v1/tenants/{tenantId}/bindings/rollback']) {
      expect(doc.paths[path]?.['post'], path).toMatchObject({ tags: ['admin: identity-provider bindings'], security: [{ bearer: [] }] });
      const anonymous = await fetch(
        `${app.url}${path.replace('{tenantId}', '00000000-0000-4000-8000-000000000000').replace('{bindingId}', '00000000-0000-4000-8000-000000000000')}`,
        { method: 'POST' },
      );
      expect(anonymous.status, path).toBe(401);
    }
  });
});

/* ------------------------------------------------------------------------------------------------ */
/* The README's Firebase migration guide through the admin API, against the real Firebase Auth emulator */
/* ------------------------------------------------------------------------------------------------ */

describe('Firebase migration guide: switch, end and rollback against the Firebase Auth emulator', () => {
  const PROJECT = 'demo-admin-fb-cutover';
  const ID_TOKEN = 'urn:ietf:params:oauth:token-type:id_token';
  const firebase = useFirebaseEmulator(PROJECT);
  let svc: TestApp;
  let ops: AdminClient;
  let spa: BffClient;

  interface View {
    id: string;
    kind: string;
    status: string;
    version: number;
  }

  beforeAll(async () => {
    const emulator = firebase.emulator;
    if (!emulator) return;
    svc = await startTestApp({
      FIREBASE_AUTH_EMULATOR_HOST: emulator.host,
      RATE_LIMIT_LOGIN_PER_MINUTE: '1000',
      RATE_LIMIT_AUTHORIZE_PER_MINUTE: '1000',
    });
    ops = await adminClient(svc);
    // The tenant's app: a BFF that exchanges Firebase ID tokens (overlap) and runs the hosted login (after the switch).
    const id = `fb-spa-${randomBytes(3).toString('hex')}`;
    const redirectUri = 'http://127.0.0.1:9/bff/callback';
    const { secret } = await svc.app.get(ClientsService).create({
      id,
      name: 'Firebase-era BFF',
      kind: 'bff',
      redirectUris: [redirectUri],
      grantTypes: ['authorization_code', 'refresh_token', TOKEN_EXCHANGE_GRANT],
    });
    spa = { clientId: id, clientSecret: secret, redirectUri };
  }, 120_000);

  afterAll(async () => {
    await svc?.close();
  }, 30_000);

  const peer = firebase.peer;

  const verified = async (accessToken: unknown): Promise<JWTPayload> =>
    (
      await jwtVerify(String(accessToken), createRemoteJWKSet(new URL(`${svc.url}/.well-known/jwks.json`)), {
        issuer: svc.url,
        audience: 'platform-api',
      })
    ).payload;

  /** The Firebase era's flow: sign in with Firebase, exchange the ID token at the token endpoint. */
  const exchange = async (fb: FirebaseAuthEmulator, org: string, email: string, password: string) => {
    const { idToken } = await fb.signInWithPassword(email, password);
    const res = await postForm(
      `${svc.url}/oauth2/token`,
      { grant_type: TOKEN_EXCHANGE_GRANT, subject_token: idToken, subject_token_type: ID_TOKEN, org },
      { headers: { authorization: basic(spa.clientId, spa.clientSecret) } },
    );
    const body = (await res.json()) as Record<string, unknown>;
    return { status: res.status, body, claims: res.status === 200 ? await verified(body['access_token']) : undefined };
  };

  /** Where /oauth2/authorize sends the browser: the hosted form, or back to the BFF with an error. */
  const authorizeLands = async (org: string): Promise<string> => {
    const { challenge } = pkcePair();
    const res = await get(authorizeUrl(svc.url, spa, { org, state: 's', code_challenge: challenge, code_challenge_method: 'S256' }));
    expect(res.status).toBe(302);
    return res.headers.get('location')!;
  };

  const bindingsPath = (tenantId: string) => `/admin/v1/tenants/${tenantId}/bindings`;
  const read = async (tenantId: string, id: string) => {
    const res = await ops.call('GET', `${bindingsPath(tenantId)}/${id}`);
    return { view: await json<View>(res), etag: res.headers.get('etag')! };
  };
  const statuses = async (tenantId: string) =>
    Object.fromEntries((await json<{ items: View[] }>(await ops.call('GET', bindingsPath(tenantId)))).items.map((b) => [b.kind, b.status]));
  const post = (tenantId: string, path: string, etag?: string, headers: Record<string, string> = {}) =>
    ops.call('POST', `${bindingsPath(tenantId)}${path}`, undefined, { ...(etag ? { 'if-match': etag } : {}), ...headers });

  const EMAIL = 'ivy@fbcut.test';
  const PASSWORD = 'ivy firebase-era password';
  let tenantId: string;
  let firebaseBindingId: string;
  let nativeBindingId: string;
  let firebaseSub: unknown;

  it('import → switch to native → rollback: Firebase token exchange works with the same sub, the hosted form is no longer served', async (ctx) => {
    const fb = peer(ctx);
    tenantId = (await json<{ id: string }>(await ops.call('POST', '/admin/v1/tenants', { slug: 'fbcut', displayName: 'Cutting over' }))).id;

    // 1. Overlap: the tenant's existing Firebase project, brought over by ops (migrationImport) and activated.
    const created = await ops.call('POST', bindingsPath(tenantId), {
      kind: 'firebase_legacy',
      config: { projectId: PROJECT },
      claimMapping: { defaultRoles: ['USER'] },
      migrationImport: true,
    });
    expect(created.status).toBe(201);
    firebaseBindingId = (await json<View>(created)).id;
    expect((await post(tenantId, `/${firebaseBindingId}/activate`, (await read(tenantId, firebaseBindingId)).etag)).status).toBe(200);
    const user = await firebase.auth.createUser({ email: EMAIL, password: PASSWORD, emailVerified: true });
    const era = await exchange(fb, 'fbcut', EMAIL, PASSWORD);
    expect(era.status, JSON.stringify(era.body)).toBe(200);
    expect(era.claims).toMatchObject({ org: 'fbcut', idp: 'firebase_legacy', idp_sub: user.uid });
    firebaseSub = era.claims!.sub;
    expect(new URL(await authorizeLands('fbcut')).searchParams.get('error')).toBe('temporarily_unavailable');

    // 2. Import: the export (Firebase's modified scrypt, the project's parameters).
    const params: FirebaseScryptParams = { signerKey: randomBytes(64).toString('base64'), saltSeparator: 'Bw==', rounds: 8, memCost: 14 };
    const salt = randomBytes(12).toString('base64');
    const exported = {
      users: [
        { localId: user.uid, email: EMAIL, emailVerified: true, passwordHash: await hashFirebaseScrypt(PASSWORD, salt, params), salt },
      ],
    };
    const hashConfig = {
      algorithm: 'SCRYPT',
      base64_signer_key: params.signerKey,
      base64_salt_separator: params.saltSeparator,
      rounds: params.rounds,
      mem_cost: params.memCost,
    };
    const imported = await ops.call('POST', `/admin/v1/tenants/${tenantId}/firebase-import`, { export: exported, hashConfig });
    expect(await json(imported)).toMatchObject({ total: 1, created: 0, matched: 1, credentialsCreated: 1 });

    // 3. Switch: a native binding (above the Firebase one), proven by a test login with the old password, activated.
    const native = await json<View>(
      await ops.call('POST', bindingsPath(tenantId), { kind: 'native', priority: 10, claimMapping: { defaultRoles: ['USER'] } }),
    );
    nativeBindingId = native.id;
    const test = await json<{ url: string }>(await post(tenantId, `/${native.id}/test-login`));
    expect(
      (await submitNativeLogin(svc.url, test.url.replace(svc.config.issuer, svc.url), EMAIL, PASSWORD)).headers.get('location'),
    ).toContain('outcome=success');
    expect((await post(tenantId, `/${native.id}/activate`, (await read(tenantId, native.id)).etag)).status).toBe(200);
    expect(await statuses(tenantId)).toEqual({ firebase_legacy: 'active', native: 'active' });
    const viaForm = await verified((await nativeLogin(svc.url, spa, 'fbcut', EMAIL, PASSWORD)).tokens.access_token);
    expect(viaForm).toMatchObject({ sub: firebaseSub, idp: 'native' });

    // Rollback (before, this was 409 "Nothing to roll back": Firebase has no browser login style).
    const rolled = await post(tenantId, '/rollback', undefined, { 'idempotency-key': 'undo-the-switch' });
    expect(rolled.status).toBe(200);
    const body = await json<View & { rollback: { activated: string[]; retired: string[] } }>(rolled);
    expect(body).toMatchObject({ id: native.id, kind: 'native', status: 'retired', rollback: { activated: [], retired: [native.id] } });
    expect(rolled.headers.get('etag')).toBe(`"v${body.version}"`);
    // A retried rollback (same Idempotency-Key) is answered from the first one, not applied twice.
    const retried = await post(tenantId, '/rollback', undefined, { 'idempotency-key': 'undo-the-switch' });
    expect(retried.headers.get('idempotent-replayed')).toBe('true');
    expect(await json(retried)).toEqual(body);

    // Exactly the state before the switch: Firebase only.
    expect(await statuses(tenantId)).toEqual({ firebase_legacy: 'active', native: 'retired' });
    const back = await exchange(fb, 'fbcut', EMAIL, PASSWORD);
    expect(back.status, JSON.stringify(back.body)).toBe(200);
    expect(back.claims).toMatchObject({ sub: firebaseSub, idp: 'firebase_legacy', idp_sub: user.uid });
    const landing = await authorizeLands('fbcut');
    expect(landing).not.toContain('/login/native/');
    expect(new URL(landing).searchParams.get('error')).toBe('temporarily_unavailable');

    const audit = await json<{ items: Array<{ actor: string; target: string; data: Record<string, unknown> }> }>(
      await ops.call('GET', `/admin/v1/audit-events?tenantId=${tenantId}&action=binding.rolled_back`),
    );
    expect(audit.items).toHaveLength(1);
    expect(audit.items[0]).toMatchObject({
      actor: expect.stringMatching(/^client:ops-/),
      target: native.id,
      data: { activated: [], retired: [native.id], after: { status: 'retired' } },
    });
  });

  it('end of the overlap: retire the Firebase binding (If-Match, Idempotency-Key), roll the end back, then retire the native binding', async (ctx) => {
    const fb = peer(ctx);
    if (!tenantId) ctx.skip('depends on the previous test');

    // A second rollback undoes the first: the switch is back (native active, Firebase still active).
    const redo = await json<View & { rollback: { activated: string[]; retired: string[] } }>(await post(tenantId, '/rollback'));
    expect(redo).toMatchObject({ id: nativeBindingId, status: 'active', rollback: { activated: [nativeBindingId], retired: [] } });
    expect((await verified((await nativeLogin(svc.url, spa, 'fbcut', EMAIL, PASSWORD)).tokens.access_token)).sub).toBe(firebaseSub);

    // Status changes only through the dedicated routes.
    const patched = await ops.call(
      'PATCH',
      `${bindingsPath(tenantId)}/${firebaseBindingId}`,
      { status: 'retired' },
      { 'if-match': (await read(tenantId, firebaseBindingId)).etag },
    );
    expect(patched.status).toBe(400);
    expect((await json(patched))['type']).toBe('urn:auth-service:problem:status-not-editable');

    // 4. End: retire the Firebase binding, guarded like activate.
    const { view: fbView, etag } = await read(tenantId, firebaseBindingId);
    expect((await post(tenantId, `/${firebaseBindingId}/retire`)).status).toBe(428);
    expect((await post(tenantId, `/${firebaseBindingId}/retire`, `"v${fbView.version - 1}"`)).status).toBe(412);
    const retired = await post(tenantId, `/${firebaseBindingId}/retire`, etag, { 'idempotency-key': 'end-firebase' });
    expect(retired.status).toBe(200);
    const retiredView = await json<View>(retired);
    expect(retiredView).toMatchObject({ id: firebaseBindingId, kind: 'firebase_legacy', status: 'retired', version: fbView.version + 1 });
    expect(retired.headers.get('etag')).toBe(`"v${fbView.version + 1}"`);
    const replay = await post(tenantId, `/${firebaseBindingId}/retire`, etag, { 'idempotency-key': 'end-firebase' });
    expect(replay.status).toBe(200);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(await json(replay)).toEqual(retiredView);
    // Only an active binding can be retired.
    const again = await post(tenantId, `/${firebaseBindingId}/retire`, (await read(tenantId, firebaseBindingId)).etag);
    expect(again.status).toBe(409);
    expect((await json(again))['type']).toBe('urn:auth-service:problem:not-active');

    expect(await statuses(tenantId)).toEqual({ firebase_legacy: 'retired', native: 'active' });
    expect(await exchange(fb, 'fbcut', EMAIL, PASSWORD)).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    expect((await verified((await nativeLogin(svc.url, spa, 'fbcut', EMAIL, PASSWORD)).tokens.access_token)).sub).toBe(firebaseSub);
    const events = await json<{ items: Array<{ target: string; data: { before: View; after: View } }> }>(
      await ops.call('GET', `/admin/v1/audit-events?tenantId=${tenantId}&action=binding.retired`),
    );
    expect(events.items).toHaveLength(1);
    expect(events.items[0]).toMatchObject({
      target: firebaseBindingId,
      data: { before: { status: 'active' }, after: { status: 'retired' } },
    });

    // Rollback of the end: Firebase token exchange works again, for the same platform user.
    const rolled = await json<View & { rollback: { activated: string[]; retired: string[] } }>(await post(tenantId, '/rollback'));
    expect(rolled).toMatchObject({ id: firebaseBindingId, status: 'active', rollback: { activated: [firebaseBindingId], retired: [] } });
    const back = await exchange(fb, 'fbcut', EMAIL, PASSWORD);
    expect(back.status, JSON.stringify(back.body)).toBe(200);
    expect(back.claims).toMatchObject({ sub: firebaseSub, idp: 'firebase_legacy' });

    // And back to Firebase alone: retire the native binding; the hosted form is no longer served.
    const native = await read(tenantId, nativeBindingId);
    expect((await post(tenantId, `/${nativeBindingId}/retire`, native.etag)).status).toBe(200);
    expect(await statuses(tenantId)).toEqual({ firebase_legacy: 'active', native: 'retired' });
    expect(new URL(await authorizeLands('fbcut')).searchParams.get('error')).toBe('temporarily_unavailable');
    expect((await exchange(fb, 'fbcut', EMAIL, PASSWORD)).claims).toMatchObject({ sub: firebaseSub, idp: 'firebase_legacy' });
  });
});
