/**
 * FirebaseLegacyProvider and the cut-over bridge, end to end over HTTP:
 * - against the real Firebase Auth emulator (firebase-tools), whose ID tokens are exchanged at the
 *   token endpoint (RFC 8693) of a service running in emulator mode;
 * - on the non-emulator path, with the certificate URL pointed at a local server that publishes a
 *   test certificate made with the openssl CLI, for the signature attacks;
 * - the cut-over: a Firebase-format export (hashes made with the published algorithm) imported into
 *   native credentials, the tenant switched to the hosted login, same platform `sub`, argon2id rehash.
 *
 * Emulator mode is process-wide in firebase-admin (FIREBASE_AUTH_EMULATOR_HOST), so this file sets it
 * for its own worker process only and restores it afterwards.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRemoteJWKSet, decodeJwt, importPKCS8, jwtVerify, SignJWT, UnsecuredJWT, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { authorizeUrl, CookieJar, get, nativeLogin, pkcePair, postForm, submitNativeLogin, basic, type BffClient } from './support/bff.js';
import { tenantRows } from './support/tenant-rows.js';
import { useFirebaseEmulator } from './peers/firebase-test-peer.js';
import { ConfigError, loadConfig } from '../src/config/app-config.js';
import { TenantsService, type Tenant } from '../src/tenants/tenants.service.js';
import { BindingsService } from '../src/tenants/bindings.service.js';
import { ClientsService } from '../src/clients/clients.service.js';
import { TOKEN_EXCHANGE_GRANT } from '../src/oauth/token.service.js';
import type { ClaimMappingRules } from '../src/identity/port/identity-provider.port.js';
import { ProblemError } from '../src/common/errors.js';
import { FirebaseImportService } from '../src/identity/firebase/firebase-import.service.js';
import { hashFirebaseScrypt, type FirebaseScryptParams } from '../src/identity/firebase/firebase-scrypt.js';

const PROJECT_ID = 'demo-auth-fb-legacy';
const ID_TOKEN = 'urn:ietf:params:oauth:token-type:id_token';
const JWT_TOKEN = 'urn:ietf:params:oauth:token-type:jwt';
const MAPPING: ClaimMappingRules = { roles: [{ claim: 'role', value: 'admin', role: 'ADMIN' }], defaultRoles: ['USER'] };

async function seedClient(app: TestApp): Promise<BffClient> {
  const id = `spa-bff-${randomBytes(3).toString('hex')}`;
  const redirectUri = 'http://127.0.0.1:9/bff/callback';
  const { secret } = await app.app.get(ClientsService).create({
    id,
    name: 'Firebase-era BFF',
    kind: 'bff',
    redirectUris: [redirectUri],
    grantTypes: ['authorization_code', 'refresh_token', TOKEN_EXCHANGE_GRANT],
  });
  return { clientId: id, clientSecret: secret, redirectUri };
}

async function seedFirebaseTenant(
  app: TestApp,
  slug: string,
  config: Record<string, unknown>,
  claimMapping: ClaimMappingRules = MAPPING,
): Promise<Tenant> {
  const tenant = await app.app.get(TenantsService).create(slug, `${slug} Ltd.`);
  // Ops bringing an existing Firebase project over (ADR-0002): the only way to a new firebase_legacy binding.
  await app.app.get(BindingsService).create(tenant, { kind: 'firebase_legacy', config, claimMapping, migrationImport: true });
  return tenant;
}

async function exchange(
  app: TestApp,
  client: BffClient,
  org: string,
  token: string,
  tokenType = ID_TOKEN,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await postForm(
    `${app.url}/oauth2/token`,
    { grant_type: TOKEN_EXCHANGE_GRANT, subject_token: token, subject_token_type: tokenType, org },
    { headers: { authorization: basic(client.clientId, client.clientSecret) } },
  );
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function platformClaims(app: TestApp, accessToken: unknown): Promise<Record<string, unknown>> {
  const jwks = createRemoteJWKSet(new URL(`${app.url}/.well-known/jwks.json`));
  const { payload } = await jwtVerify(String(accessToken), jwks, { issuer: app.url, audience: 'platform-api', typ: 'at+jwt' });
  return payload;
}

const HASH_CONFIG = {
  algorithm: 'SCRYPT',
  base64_signer_key: randomBytes(64).toString('base64'),
  base64_salt_separator: 'Bw==',
  rounds: 8,
  mem_cost: 14,
};

const refused = (description: RegExp) => ({
  status: 400,
  body: { error: 'invalid_grant', error_description: expect.stringMatching(description) },
});

describe('configuration', () => {
  const production = {
    NODE_ENV: 'production',
    PUBLIC_URL: 'https://auth.example.test',
    DATABASE_URL: 'postgres://auth_service@db.example.test/auth',
    KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    SMTP_URL: 'smtp://mail.example.test:587',
  };

  it('refuses to start in production with FIREBASE_AUTH_EMULATOR_HOST set', () => {
    expect(loadConfig(production).firebaseEmulatorHost).toBeUndefined();
    expect(() => loadConfig({ ...production, FIREBASE_AUTH_EMULATOR_HOST: '127.0.0.1:9099' })).toThrow(ConfigError);
    expect(() => loadConfig({ ...production, FIREBASE_AUTH_EMULATOR_HOST: '127.0.0.1:9099' })).toThrow(
      /FIREBASE_AUTH_EMULATOR_HOST must be unset in production/,
    );
  });

  it('turns emulator mode on only in development and test', () => {
    expect(loadConfig({ NODE_ENV: 'test', FIREBASE_AUTH_EMULATOR_HOST: '127.0.0.1:9099' }).firebaseEmulatorHost).toBe('127.0.0.1:9099');
    expect(loadConfig({ NODE_ENV: 'development', FIREBASE_AUTH_EMULATOR_HOST: '127.0.0.1:9099' }).firebaseEmulatorHost).toBe(
      '127.0.0.1:9099',
    );
    expect(loadConfig({ NODE_ENV: 'test' }).firebaseEmulatorHost).toBeUndefined();
  });
});

/* ------------------------------------------------------------------------------------------------ */
/* The non-emulator path: signatures against a local certificate endpoint                              */
/* ------------------------------------------------------------------------------------------------ */

describe('Firebase ID token verification without the emulator', () => {
  const SIGNED_PROJECT = 'legacy-signed-project';
  let app: TestApp;
  let client: BffClient;
  let certServer: Server;
  let certHits = 0;
  let certUrl: string;
  let keyA: CryptoKey;
  let keyB: CryptoKey;
  let certA: string;
  let signedCo: Tenant;
  let workDir: string;

  const openssl = (dir: string, name: string) => {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        join(dir, `${name}.key`),
        '-out',
        join(dir, `${name}.crt`),
        '-days',
        '2',
        '-subj',
        `/CN=${name}`,
      ],
      {
        stdio: 'ignore',
      },
    );
    return { key: readFileSync(join(dir, `${name}.key`), 'utf8'), cert: readFileSync(join(dir, `${name}.crt`), 'utf8') };
  };

  beforeAll(async () => {
    workDir = mkdtempSync(join(tmpdir(), 'firebase-test-certs-'));
    const a = openssl(workDir, 'key-a');
    const b = openssl(workDir, 'key-b');
    certA = a.cert;
    keyA = await importPKCS8(a.key, 'RS256');
    keyB = await importPKCS8(b.key, 'RS256');
    // Google's endpoint shape: a JSON map kid → X.509 PEM, cacheable for max-age seconds.
    certServer = createServer((req, res) => {
      if (req.url !== '/certs') return void res.writeHead(404).end();
      certHits++;
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=300, must-revalidate, no-transform' });
      res.end(JSON.stringify({ 'kid-a': a.cert }));
    });
    await new Promise<void>((resolve) => certServer.listen(0, '127.0.0.1', resolve));
    const addr = certServer.address();
    certUrl = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/certs`;

    app = await startTestApp(); // no FIREBASE_AUTH_EMULATOR_HOST: the production code path
    client = await seedClient(app);
    const common = { certificateUrl: certUrl, checkRevoked: false };
    signedCo = await seedFirebaseTenant(app, 'signed-co', { projectId: SIGNED_PROJECT, ...common });
    await seedFirebaseTenant(app, 'signed-mt', { projectId: SIGNED_PROJECT, tenantId: 'tenant-a', ...common });
    await seedFirebaseTenant(app, 'unsigned-co', { projectId: PROJECT_ID, ...common });
    await seedFirebaseTenant(app, 'certs-down', {
      projectId: SIGNED_PROJECT,
      checkRevoked: false,
      certificateUrl: 'http://127.0.0.1:9/certs',
    });
  });

  afterAll(async () => {
    await app?.close();
    await new Promise<void>((resolve) => (certServer ? certServer.close(() => resolve()) : resolve()));
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  let seq = 0;
  const claims = (over: Record<string, unknown> = {}): Record<string, unknown> => {
    const now = Math.floor(Date.now() / 1000);
    const uid = `uid-signed-${++seq}`;
    return {
      iss: `https://securetoken.google.com/${SIGNED_PROJECT}`,
      aud: SIGNED_PROJECT,
      sub: uid,
      user_id: uid,
      auth_time: now - 30,
      iat: now - 10,
      exp: now + 3600,
      email: `${uid}@signed.test`,
      email_verified: true,
      role: 'admin',
      firebase: { identities: { email: [`${uid}@signed.test`] }, sign_in_provider: 'password' },
      ...over,
    };
  };
  const sign = (payload: Record<string, unknown>, key: CryptoKey = keyA, kid = 'kid-a') =>
    new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' }).sign(key);

  it('exchanges a token signed with a published certificate (and fetches the certificates once, per max-age)', async () => {
    const hitsBefore = certHits;
    const first = claims();
    const res = await exchange(app, client, 'signed-co', await sign(first));
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const platform = await platformClaims(app, res.body['access_token']);
    expect(platform).toMatchObject({ org: 'signed-co', idp: 'firebase_legacy', idp_sub: first['sub'], roles: ['ADMIN', 'USER'] });
    expect(await exchange(app, client, 'signed-co', await sign(claims()), JWT_TOKEN)).toMatchObject({ status: 200 });
    expect(certHits - hitsBefore).toBe(1);
  });

  it('refuses a token whose payload was altered after signing (forged signature)', async () => {
    const [h, , s] = (await sign(claims())).split('.');
    const forgedPayload = Buffer.from(JSON.stringify(claims({ role: 'admin', sub: 'someone-else' }))).toString('base64url');
    expect(await exchange(app, client, 'signed-co', `${h}.${forgedPayload}.${s}`)).toMatchObject(refused(/signature is invalid/));
  });

  it('refuses a token signed by another key under a published kid', async () => {
    expect(await exchange(app, client, 'signed-co', await sign(claims(), keyB, 'kid-a'))).toMatchObject(refused(/signature is invalid/));
  });

  it('refuses a token naming a kid the endpoint does not publish', async () => {
    expect(await exchange(app, client, 'signed-co', await sign(claims(), keyB, 'kid-b'))).toMatchObject(refused(/unknown key/));
  });

  it('refuses an unsigned (alg none) token when the emulator mode is off', async () => {
    expect(await exchange(app, client, 'signed-co', new UnsecuredJWT(claims()).encode())).toMatchObject(refused(/not signed/));
    // The emulator's own token shape (alg none, empty signature) for the emulator's project.
    const now = Math.floor(Date.now() / 1000);
    const emulatorShaped = new UnsecuredJWT(
      claims({ iss: `https://securetoken.google.com/${PROJECT_ID}`, aud: PROJECT_ID, iat: now, auth_time: now }),
    ).encode();
    expect(await exchange(app, client, 'unsigned-co', emulatorShaped)).toMatchObject(refused(/not signed/));
  });

  it('refuses an HS256 token keyed with the published certificate (algorithm confusion)', async () => {
    const hs = await new SignJWT(claims()).setProtectedHeader({ alg: 'HS256', kid: 'kid-a' }).sign(new TextEncoder().encode(certA));
    expect(await exchange(app, client, 'signed-co', hs)).toMatchObject(refused(/RS256/));
  });

  it('refuses a token for another Firebase project (audience, issuer, or an audience list)', async () => {
    expect(await exchange(app, client, 'signed-co', await sign(claims({ aud: 'another-project' })))).toMatchObject(
      refused(/another Firebase project/),
    );
    expect(
      await exchange(app, client, 'signed-co', await sign(claims({ iss: 'https://securetoken.google.com/another-project' }))),
    ).toMatchObject(refused(/another Firebase project/));
    expect(await exchange(app, client, 'signed-co', await sign(claims({ aud: [SIGNED_PROJECT, 'another-project'] })))).toMatchObject(
      refused(/another Firebase project/),
    );
  });

  it('refuses an expired token', async () => {
    const now = Math.floor(Date.now() / 1000);
    expect(
      await exchange(app, client, 'signed-co', await sign(claims({ iat: now - 7200, auth_time: now - 7200, exp: now - 3600 }))),
    ).toMatchObject(refused(/expired/));
  });

  it('refuses a token issued or authenticated in the future, beyond the clock skew', async () => {
    const later = Math.floor(Date.now() / 1000) + 600;
    expect(await exchange(app, client, 'signed-co', await sign(claims({ iat: later, exp: later + 3600 })))).toMatchObject(
      refused(/issued in the future/),
    );
    expect(await exchange(app, client, 'signed-co', await sign(claims({ auth_time: later })))).toMatchObject(refused(/auth_time/));
    expect(await exchange(app, client, 'signed-co', await sign(claims({ auth_time: undefined })))).toMatchObject(refused(/auth_time/));
  });

  it('refuses a token whose subject is empty or longer than 128 characters', async () => {
    expect(await exchange(app, client, 'signed-co', await sign(claims({ sub: 'x'.repeat(129) })))).toMatchObject(refused(/subject/));
    expect(await exchange(app, client, 'signed-co', await sign(claims({ sub: '' })))).toMatchObject(refused(/subject/));
  });

  it('accepts only the Firebase tenant a binding is configured for', async () => {
    const tenantClaims = (tenant: string) => claims({ firebase: { sign_in_provider: 'password', tenant } });
    expect(await exchange(app, client, 'signed-mt', await sign(tenantClaims('tenant-a')))).toMatchObject({ status: 200 });
    expect(await exchange(app, client, 'signed-mt', await sign(tenantClaims('tenant-b')))).toMatchObject(
      refused(/another Firebase tenant/),
    );
    expect(await exchange(app, client, 'signed-mt', await sign(claims()))).toMatchObject(refused(/another Firebase tenant/));
    // A project-level binding does not take tokens of the project's Firebase tenants either.
    expect(await exchange(app, client, 'signed-co', await sign(tenantClaims('tenant-a')))).toMatchObject(
      refused(/another Firebase tenant/),
    );
  });

  it('refuses a new firebase_legacy binding for a tenant that has none (ADR-0002)', async () => {
    const tenants = app.app.get(TenantsService);
    const bindings = app.app.get(BindingsService);
    const fresh = await tenants.create(`new-co-${randomBytes(2).toString('hex')}`, 'New Co');
    const attempt = bindings.create(fresh, { kind: 'firebase_legacy', config: { projectId: 'new-firebase-project' } });
    await expect(attempt).rejects.toBeInstanceOf(ProblemError);
    await expect(attempt).rejects.toMatchObject({
      status: 409,
      type: 'urn:auth-service:problem:firebase-legacy-closed',
      detail: expect.stringMatching(/ADR-0002/),
    });
    const rows = await tenantRows(app, fresh.id, `SELECT kind FROM tenant_identity_providers`);
    expect(rows).toEqual([]);
    // Other kinds are unaffected; a tenant already on Firebase may get another Firebase binding; ops may import.
    await expect(bindings.create(fresh, { kind: 'native' })).resolves.toMatchObject({ kind: 'native' });
    await expect(
      bindings.create(signedCo, { kind: 'firebase_legacy', config: { projectId: SIGNED_PROJECT }, status: 'draft' }),
    ).resolves.toMatchObject({
      kind: 'firebase_legacy',
    });
    await expect(
      bindings.create(fresh, { kind: 'firebase_legacy', config: { projectId: 'new-firebase-project' }, migrationImport: true }),
    ).resolves.toMatchObject({
      kind: 'firebase_legacy',
    });
  });

  it('refuses an import without a firebase_legacy binding or with invalid hash parameters', async () => {
    const tenant = await app.app.get(TenantsService).create(`no-fb-${randomBytes(2).toString('hex')}`, 'No Firebase');
    const importer = app.app.get(FirebaseImportService);
    await expect(importer.importUsers(tenant.id, { users: [] }, HASH_CONFIG)).rejects.toMatchObject({
      status: 409,
      type: 'urn:auth-service:problem:firebase-binding-missing',
    });
    await expect(importer.importUsers(signedCo.id, { users: [] }, { ...HASH_CONFIG, mem_cost: 15 })).rejects.toMatchObject({ status: 400 });
    await expect(importer.importUsers(signedCo.id, { accounts: [] }, HASH_CONFIG)).rejects.toMatchObject({ status: 400 });
  });

  it('answers temporarily_unavailable when the certificate endpoint cannot be reached', async () => {
    const res = await exchange(app, client, 'certs-down', await sign(claims()));
    expect(res).toMatchObject({ status: 503, body: { error: 'temporarily_unavailable' } });
  });
});

/* ------------------------------------------------------------------------------------------------ */
/* Against the real Firebase Auth emulator                                                             */
/* ------------------------------------------------------------------------------------------------ */

describe('Firebase legacy tenants against the Firebase Auth emulator', () => {
  const firebase = useFirebaseEmulator(PROJECT_ID);
  let app: TestApp;
  let client: BffClient;
  let legacyCo: Tenant;
  let fbTenantId: string;

  beforeAll(async () => {
    const emulator = firebase.emulator;
    if (!emulator) return;
    const auth = firebase.auth;
    fbTenantId = (
      await auth.tenantManager().createTenant({ displayName: 'TenantA', emailSignInConfig: { enabled: true, passwordRequired: true } })
    ).tenantId;

    app = await startTestApp({
      FIREBASE_AUTH_EMULATOR_HOST: emulator.host,
      NATIVE_LOCKOUT_THRESHOLD: '3',
      RATE_LIMIT_LOGIN_PER_MINUTE: '1000',
    });
    client = await seedClient(app);
    legacyCo = await seedFirebaseTenant(app, 'legacy-co', { projectId: PROJECT_ID });
    await seedFirebaseTenant(app, 'other-project-co', { projectId: 'demo-another-project' });
    await seedFirebaseTenant(app, 'fb-tenant-co', { projectId: PROJECT_ID, tenantId: fbTenantId });
  }, 120_000);

  afterAll(async () => {
    await app?.close();
  }, 30_000);

  const peer = firebase.peer;

  let seq = 0;
  const newFirebaseUser = async (claims?: Record<string, unknown>) => {
    const email = `fb${++seq}-${randomBytes(3).toString('hex')}@legacy.test`;
    const password = `firebase-era password ${seq}`;
    const user = await firebase.auth.createUser({ email, password, displayName: `Firebase User ${seq}`, emailVerified: true });
    if (claims) await firebase.auth.setCustomUserClaims(user.uid, claims);
    return { uid: user.uid, email, password };
  };

  const platformUserCount = (tenantId: string) =>
    tenantRows<{ n: number }>(app, tenantId, `SELECT count(*)::int AS n FROM users`).then((rows) => rows[0]!.n);
  const passwordHashOf = (tenantId: string, username: string) =>
    tenantRows<{ password_hash: string }>(app, tenantId, `SELECT password_hash FROM native_credentials WHERE lower(username) = lower($1)`, [
      username,
    ]).then((rows) => rows[0]?.password_hash);

  it('exchanges an emulator ID token for a platform token: tenant, roles from custom claims, idp firebase_legacy, one platform user per uid', async (ctx) => {
    const fb = peer(ctx);
    const u = await newFirebaseUser({ role: 'admin' });
    const { idToken } = await fb.signInWithPassword(u.email, u.password);

    const res = await exchange(app, client, 'legacy-co', idToken);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ token_type: 'Bearer', issued_token_type: 'urn:ietf:params:oauth:token-type:access_token' });
    const platform = await platformClaims(app, res.body['access_token']);
    expect(platform).toMatchObject({
      tid: legacyCo.id,
      org: 'legacy-co',
      idp: 'firebase_legacy',
      idp_sub: u.uid,
      roles: ['ADMIN', 'USER'],
      client_id: client.clientId,
    });
    expect(platform.sub).toMatch(/^[0-9a-f-]{36}$/);
    expect(platform.sub).not.toBe(u.uid);

    // Another sign-in, another token type: the same platform user, never a second one.
    await sleep(1_100);
    const again = await fb.signInWithPassword(u.email, u.password);
    const second = await exchange(app, client, 'legacy-co', again.idToken, JWT_TOKEN);
    expect((await platformClaims(app, second.body['access_token'])).sub).toBe(platform.sub);

    // A user without the custom claim gets only the default role.
    const plain = await newFirebaseUser();
    const plainRes = await exchange(app, client, 'legacy-co', (await fb.signInWithPassword(plain.email, plain.password)).idToken);
    expect((await platformClaims(app, plainRes.body['access_token'])).roles).toEqual(['USER']);
  });

  it('refuses the token of a disabled Firebase account', async (ctx) => {
    const fb = peer(ctx);
    const u = await newFirebaseUser();
    const { idToken } = await fb.signInWithPassword(u.email, u.password);
    expect(await exchange(app, client, 'legacy-co', idToken)).toMatchObject({ status: 200 });
    await firebase.auth.updateUser(u.uid, { disabled: true });
    expect(await exchange(app, client, 'legacy-co', idToken)).toMatchObject(refused(/disabled/));
  });

  it('refuses a token issued before revokeRefreshTokens', async (ctx) => {
    const fb = peer(ctx);
    const u = await newFirebaseUser();
    const { idToken } = await fb.signInWithPassword(u.email, u.password);
    expect(await exchange(app, client, 'legacy-co', idToken)).toMatchObject({ status: 200 });
    await sleep(1_100); // revocation compares auth_time with tokensValidAfterTime at one-second resolution
    await firebase.auth.revokeRefreshTokens(u.uid);
    expect(await exchange(app, client, 'legacy-co', idToken)).toMatchObject(refused(/revoked/));
    await sleep(1_100);
    const fresh = await fb.signInWithPassword(u.email, u.password);
    expect(await exchange(app, client, 'legacy-co', fresh.idToken)).toMatchObject({ status: 200 });
  });

  it('refuses an expired token', async (ctx) => {
    const fb = peer(ctx);
    const u = await newFirebaseUser();
    const { idToken } = await fb.signInWithPassword(u.email, u.password);
    // The emulator issues one-hour tokens: the same token, its clock moved two hours back.
    const c = decodeJwt(idToken);
    const back = (t: unknown) => Number(t) - 7200;
    const expired = new UnsecuredJWT({ ...c, iat: back(c.iat), auth_time: back(c['auth_time']), exp: back(c.exp) }).encode();
    expect(await exchange(app, client, 'legacy-co', expired)).toMatchObject(refused(/expired/));
    const sameButCurrent = new UnsecuredJWT({ ...c }).encode();
    expect(await exchange(app, client, 'legacy-co', sameButCurrent)).toMatchObject({ status: 200 });
  });

  it('refuses a token for another Firebase project', async (ctx) => {
    const fb = peer(ctx);
    const u = await newFirebaseUser();
    const { idToken } = await fb.signInWithPassword(u.email, u.password);
    expect(await exchange(app, client, 'other-project-co', idToken)).toMatchObject(refused(/another Firebase project/));
  });

  it('maps a Firebase tenant’s users only through the binding of that Firebase tenant', async (ctx) => {
    const fb = peer(ctx);
    const tenantAuth = firebase.auth.tenantManager().authForTenant(fbTenantId);
    const email = `mt-${randomBytes(3).toString('hex')}@legacy.test`;
    await tenantAuth.createUser({ email, password: 'tenant user password' });
    const res = await fetch(`http://${fb.host}/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword?key=${fb.apiKey}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password: 'tenant user password', returnSecureToken: true, tenantId: fbTenantId }),
    });
    const { idToken } = (await res.json()) as { idToken: string };
    expect(await exchange(app, client, 'fb-tenant-co', idToken)).toMatchObject({ status: 200 });
    expect(await exchange(app, client, 'legacy-co', idToken)).toMatchObject(refused(/another Firebase tenant/));
    const projectUser = await newFirebaseUser();
    expect(
      await exchange(app, client, 'fb-tenant-co', (await fb.signInWithPassword(projectUser.email, projectUser.password)).idToken),
    ).toMatchObject(refused(/another Firebase tenant/));
  });

  describe('cut-over to native logins', () => {
    // Firebase's hash parameters are per project; these are this fixture's, made like the console's.
    const hashParams: FirebaseScryptParams = {
      signerKey: randomBytes(64).toString('base64'),
      saltSeparator: 'Bw==',
      rounds: 8,
      memCost: 14,
    };
    const hashConfig = {
      algorithm: 'SCRYPT',
      base64_signer_key: hashParams.signerKey,
      base64_salt_separator: hashParams.saltSeparator,
      rounds: 8,
      mem_cost: 14,
    };
    const exportedUser = async (localId: string, email: string, password: string | undefined, extra: Record<string, unknown> = {}) => {
      const salt = randomBytes(12).toString('base64');
      return {
        localId,
        email,
        emailVerified: true,
        ...(password ? { passwordHash: await hashFirebaseScrypt(password, salt, hashParams), salt } : {}),
        displayName: `Imported ${localId}`,
        disabled: false,
        createdAt: '1700000000000',
        lastSignedInAt: '1700000000000',
        providerUserInfo: [],
        ...extra,
      };
    };

    it('imports the export, switches to the hosted form, keeps the sub, and upgrades the hash to argon2id', async (ctx) => {
      const fb = peer(ctx);
      const tenant = await seedFirebaseTenant(app, 'cutover-co', { projectId: PROJECT_ID });

      // Firebase era: the user signs in with Firebase and exchanges the token.
      const u = await newFirebaseUser({ role: 'admin' });
      const era = await exchange(app, client, 'cutover-co', (await fb.signInWithPassword(u.email, u.password)).idToken);
      expect(era.status, JSON.stringify(era.body)).toBe(200);
      const firebaseEraSub = (await platformClaims(app, era.body['access_token'])).sub;

      // The export: the same user (same uid), one never seen here, a Google-only user, a disabled one, a broken row.
      const importedPassword = 'imported-only password';
      const exported = {
        users: [
          await exportedUser(u.uid, u.email, u.password, { customAttributes: '{"role":"admin"}' }),
          await exportedUser('imported-only-1', 'only@legacy.test', importedPassword),
          await exportedUser('google-only-1', 'google@legacy.test', undefined),
          await exportedUser('disabled-1', 'disabled@legacy.test', 'disabled password', { disabled: true }),
          { email: 'no-local-id@legacy.test' },
        ],
      };
      const before = await platformUserCount(tenant.id);
      const importer = app.app.get(FirebaseImportService);
      const report = await importer.importUsers(tenant.id, exported, hashConfig, { actor: 'ops:test' });
      expect(report).toMatchObject({
        total: 5,
        created: 3,
        matched: 1,
        credentialsCreated: 3,
        withoutPassword: 1,
        skipped: [{ index: 4 }],
      });
      expect(await platformUserCount(tenant.id)).toBe(before + 3);

      // Stored self-describing, salt in the row, the project's signer key nowhere in the row or in clear.
      const imported = await passwordHashOf(tenant.id, u.email);
      expect(imported).toMatch(/^\$firebase-scrypt\$v=1\$cfg=[0-9a-f-]{36}\$/);
      expect(imported).not.toContain(hashParams.signerKey);
      const sealed = await tenantRows<{ params: Buffer }>(app, tenant.id, `SELECT params FROM firebase_password_hash_configs`);
      expect(sealed).toHaveLength(1);
      expect(Buffer.from(sealed[0]!.params).toString('latin1')).not.toContain(hashParams.signerKey);

      // The switch: logins use the native binding even below the Firebase one's priority (Firebase has no
      // browser login); token exchange keeps working (overlap).
      await app.app.get(BindingsService).create(tenant, { kind: 'native', priority: -10, claimMapping: { defaultRoles: ['USER'] } });

      const { tokens } = await nativeLogin(app.url, client, 'cutover-co', u.email, u.password);
      const native = await platformClaims(app, tokens.access_token);
      expect(native).toMatchObject({ sub: firebaseEraSub, idp: 'native', org: 'cutover-co' });
      expect(native.roles).toEqual(['ADMIN', 'USER']);
      expect(await passwordHashOf(tenant.id, u.email)).toMatch(/^\$argon2id\$/);
      const audit = await tenantRows(
        app,
        tenant.id,
        `SELECT action, data FROM audit_events WHERE action = 'native.password_rehashed' AND target = $1`,
        [firebaseEraSub],
      );
      expect(audit).toEqual([{ action: 'native.password_rehashed', data: { from: 'firebase-scrypt' } }]);
      // The argon2id hash takes over: the same password keeps working.
      expect(
        (await platformClaims(app, (await nativeLogin(app.url, client, 'cutover-co', u.email, u.password)).tokens.access_token)).sub,
      ).toBe(firebaseEraSub);

      // Overlap: a Firebase token still exchanges to the same platform user.
      const overlap = await exchange(app, client, 'cutover-co', (await fb.signInWithPassword(u.email, u.password)).idToken);
      expect((await platformClaims(app, overlap.body['access_token'])).sub).toBe(firebaseEraSub);

      // A user only the export knew: a wrong password fails and leaves the Firebase hash in place; the right one upgrades it.
      const formStart = async () => {
        const { challenge } = pkcePair();
        const start = await get(
          authorizeUrl(app.url, client, { org: 'cutover-co', state: 's', code_challenge: challenge, code_challenge_method: 'S256' }),
        );
        return start.headers.get('location')!;
      };
      const wrong = await submitNativeLogin(app.url, await formStart(), 'only@legacy.test', 'not the imported password', new CookieJar());
      expect(wrong.status).toBe(401);
      expect(await passwordHashOf(tenant.id, 'only@legacy.test')).toMatch(/^\$firebase-scrypt\$/);
      const onlyLogin = await platformClaims(
        app,
        (await nativeLogin(app.url, client, 'cutover-co', 'only@legacy.test', importedPassword)).tokens.access_token,
      );
      const [onlyIdentity] = await tenantRows<{ user_id: string }>(
        app,
        tenant.id,
        `SELECT user_id FROM user_identities WHERE subject = 'imported-only-1'`,
      );
      expect(onlyLogin.sub).toBe(onlyIdentity!.user_id);
      expect(await passwordHashOf(tenant.id, 'only@legacy.test')).toMatch(/^\$argon2id\$/);

      // Firebase's disabled flag came along.
      const [disabled] = await tenantRows<{ status: string }>(
        app,
        tenant.id,
        `SELECT status FROM users WHERE email = 'disabled@legacy.test'`,
      );
      expect(disabled!.status).toBe('disabled');

      // Importing again (a fresher export) creates nobody and leaves upgraded hashes alone.
      const again = await importer.importUsers(tenant.id, exported, hashConfig);
      expect(again).toMatchObject({ created: 0, matched: 4, credentialsCreated: 0, credentialsKept: 2, credentialsUpdated: 1 });
      expect(await platformUserCount(tenant.id)).toBe(before + 3);
      expect(await passwordHashOf(tenant.id, u.email)).toMatch(/^\$argon2id\$/);
    });

    it('locks an imported account after repeated wrong passwords, before its hash is ever upgraded', async (ctx) => {
      peer(ctx);
      const tenant = await seedFirebaseTenant(app, 'lockout-co', { projectId: PROJECT_ID });
      const password = 'lockout user password';
      await app.app.get(FirebaseImportService).importUsers(
        tenant.id,
        {
          users: [await exportedUser('lock-1', 'lock@legacy.test', password), await exportedUser('lock-2', 'free@legacy.test', password)],
        },
        hashConfig,
      );
      await app.app.get(BindingsService).create(tenant, { kind: 'native', priority: 10 });
      const formStart = async () => {
        const { challenge } = pkcePair();
        const start = await get(
          authorizeUrl(app.url, client, { org: 'lockout-co', state: 's', code_challenge: challenge, code_challenge_method: 'S256' }),
        );
        return start.headers.get('location')!;
      };
      for (let i = 0; i < 3; i++)
        expect((await submitNativeLogin(app.url, await formStart(), 'lock@legacy.test', `wrong ${i}`)).status).toBe(401);
      expect((await submitNativeLogin(app.url, await formStart(), 'lock@legacy.test', password)).status).toBe(401);
      expect(await passwordHashOf(tenant.id, 'lock@legacy.test')).toMatch(/^\$firebase-scrypt\$/);
      // The same password on an account that is not locked goes through.
      expect((await submitNativeLogin(app.url, await formStart(), 'free@legacy.test', password)).status).toBe(302);
    });
  });
});
