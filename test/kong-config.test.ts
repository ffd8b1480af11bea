/**
 * The Kong contract: Kong's open-source jwt plugin holds one static RSA key per credential, so the
 * service renders one credential per published signing key (pending, active, retired), keyed by
 * the kid that access tokens repeat in their `at_kid` claim (ADR 0006). No Kong runs here: tokens
 * are checked with jose against the rendered PEMs and with an emulation of the plugin's own steps
 * (test/support/kong-jwt.ts); the Admin API push is checked against a recorded fake.
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT, decodeProtectedHeader, exportJWK, generateKeyPair, importSPKI, jwtVerify, type JWK } from 'jose';
import { parse as parseYaml } from 'yaml';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { basic, nativeLogin, postForm } from './support/bff.js';
import { seedBff, seedNativeTenant } from './support/seed.js';
import { verifyLikeKong, type KongCredential, type KongPluginConfig } from './support/kong-jwt.js';
import { startFakeKongAdmin, type FakeKongAdmin } from './support/fake-kong-admin.js';
import { bootstrapAdmin } from '../src/admin/admin-bootstrap.js';
import { SigningKeysService } from '../src/tokens/signing-keys.service.js';
import {
  KONG_TAG,
  kongConfigYaml,
  kongCredentials,
  kongDeclarativeConfig,
  kongJwtPluginConfig,
  type KongConfigOptions,
  type PublishedKey,
} from '../src/gateway/kong-config.js';
import { TS_LOADER } from './support/ts-loader.js';

const run = promisify(execFile);
const PASSWORD = 'correct horse battery staple';
const EXAMPLE = new URL('../kong/kong.yml', import.meta.url);

interface KongDoc {
  _format_version: string;
  _info?: { select_tags: string[] };
  consumers: Array<{ username: string; custom_id: string; tags: string[]; jwt_secrets: Array<KongCredential & { tags: string[] }> }>;
  services?: Array<{ name: string; plugins: Array<{ name: string; config: KongPluginConfig & Record<string, unknown> }> }>;
}

interface Operator {
  clientId: string;
  clientSecret: string;
  token(): Promise<string>;
  call(method: string, path: string, body?: unknown): Promise<Response>;
}

async function operator(app: TestApp, id: string): Promise<Operator> {
  const { clientId, clientSecret } = await bootstrapAdmin(app.app, id);
  const token = async () => {
    const res = await postForm(
      `${app.url}/oauth2/token`,
      { grant_type: 'client_credentials', scope: 'admin' },
      { headers: { authorization: basic(clientId, clientSecret) } },
    );
    return ((await res.json()) as { access_token: string }).access_token;
  };
  return {
    clientId,
    clientSecret,
    token,
    call: async (method, path, body) =>
      fetch(`${app.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${await token()}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body !== undefined ? JSON.stringify(body) : undefined,
      }),
  };
}

const kidOf = (token: string) => decodeProtectedHeader(token).kid!;
const plugin = (app: TestApp): KongPluginConfig =>
  kongJwtPluginConfig({
    maximumExpiration: app.config.ACCESS_TOKEN_TTL_SECONDS + app.config.CLOCK_SKEW_SECONDS,
  }) as unknown as KongPluginConfig;

describe('Kong declarative configuration', () => {
  let app: TestApp;
  let ops: Operator;
  let keys: SigningKeysService;
  const tokens: Record<string, string> = {};
  let doc: KongDoc;

  beforeAll(async () => {
    app = await startTestApp({ RATE_LIMIT_AUTHORIZE_PER_MINUTE: '10000', RATE_LIMIT_LOGIN_PER_MINUTE: '10000' });
    keys = app.app.get(SigningKeysService);
    ops = await operator(app, 'kong-ops');
    tokens['retired'] = await ops.token();
    expect((await ops.call('POST', '/admin/v1/signing-keys/rotate', { publishDelaySeconds: 0 })).status).toBe(201);
    tokens['active'] = await ops.token();
    expect((await ops.call('POST', '/admin/v1/signing-keys/rotate', { publishDelaySeconds: 3600 })).status).toBe(201);
    const res = await ops.call('GET', '/admin/v1/gateway/kong?format=json');
    expect(res.status).toBe(200);
    doc = (await res.json()) as KongDoc;
  });

  afterAll(async () => app?.close());

  it('has one RS256 credential per published kid — pending, active and retired — on one tagged consumer', async () => {
    const jwks = (await (await fetch(`${app.url}/.well-known/jwks.json`)).json()) as { keys: JWK[] };
    expect(jwks.keys).toHaveLength(3);
    expect(doc._format_version).toBe('3.0');
    expect(doc._info!.select_tags).toEqual([KONG_TAG]);
    expect(doc.consumers).toHaveLength(1);
    const consumer = doc.consumers[0]!;
    expect(consumer).toMatchObject({ username: app.config.KONG_CONSUMER, custom_id: app.config.issuer, tags: [KONG_TAG] });
    expect(consumer.jwt_secrets.map((c) => c.key).sort()).toEqual(jwks.keys.map((k) => k.kid).sort());
    const statuses = Object.fromEntries((await keys.list()).map((k) => [k.kid, k.status]));
    for (const c of consumer.jwt_secrets) {
      expect(c.algorithm).toBe('RS256');
      expect(c.tags).toEqual([KONG_TAG, `key-${statuses[c.key]}`]);
      // The PEM is the same public key the JWKS publishes under that kid.
      const fromPem = await exportJWK(await importSPKI(c.rsa_public_key, 'RS256', { extractable: true }));
      const published = jwks.keys.find((k) => k.kid === c.key)!;
      expect({ n: fromPem.n, e: fromPem.e }).toEqual({ n: published.n, e: published.e });
    }
    expect(new Set(consumer.jwt_secrets.map((c) => c.tags[1]))).toEqual(new Set(['key-pending', 'key-active', 'key-retired']));
  });

  it('each PEM verifies the tokens its key signed (jose importSPKI), and Kong’s plugin steps accept them', async () => {
    const creds = doc.consumers[0]!.jwt_secrets;
    for (const which of ['retired', 'active'] as const) {
      const token = tokens[which]!;
      const cred = creds.find((c) => c.key === kidOf(token))!;
      expect(cred.tags).toContain(`key-${which}`);
      const { payload } = await jwtVerify(token, await importSPKI(cred.rsa_public_key, 'RS256'), {
        issuer: app.config.issuer,
        audience: app.config.ACCESS_TOKEN_AUDIENCE,
      });
      expect(payload['at_kid']).toBe(cred.key);
      expect(await verifyLikeKong(token, creds, plugin(app))).toEqual({ ok: true, key: cred.key });
      // Another key's PEM does not verify it.
      const other = creds.find((c) => c.key !== cred.key)!;
      await expect(jwtVerify(token, await importSPKI(other.rsa_public_key, 'RS256'))).rejects.toThrow();
    }
  });

  it('the credential pushed while the key was pending verifies the first tokens it signs after activation', async () => {
    const pending = (await keys.list()).find((k) => k.status === 'pending')!;
    const cred = doc.consumers[0]!.jwt_secrets.find((c) => c.key === pending.kid)!;
    await keys.maintain(new Date(pending.activatesAt.getTime() + 1000));
    const token = await ops.token();
    expect(kidOf(token)).toBe(pending.kid);
    await jwtVerify(token, await importSPKI(cred.rsa_public_key, 'RS256'));
    expect(await verifyLikeKong(token, doc.consumers[0]!.jwt_secrets, plugin(app))).toEqual({ ok: true, key: pending.kid });
  });

  it('Kong refuses ID tokens (no at_kid claim), forged signatures and over-long lifetimes', async () => {
    await seedNativeTenant(app, 'kong-users', [{ username: 'ada@kong-users.test', password: PASSWORD }]);
    const bff = await seedBff(app);
    const { tokens: user } = await nativeLogin(app.url, bff, 'kong-users', 'ada@kong-users.test', PASSWORD);
    const creds = ((await (await ops.call('GET', '/admin/v1/gateway/kong?format=json')).json()) as KongDoc).consumers[0]!.jwt_secrets;
    expect(await verifyLikeKong(user.access_token, creds, plugin(app))).toMatchObject({ ok: true });
    // Same key, same issuer — but an ID token must not pass as an access token at the gateway.
    expect(await verifyLikeKong(user.id_token, creds, plugin(app))).toEqual({ ok: false, message: "No mandatory 'at_kid' in claims" });
    // The same check keyed on the header kid (key_claim_name: kid) would have let the ID token through.
    expect(await verifyLikeKong(user.id_token, creds, { ...plugin(app), key_claim_name: 'kid' })).toMatchObject({ ok: true });

    const claims = JSON.parse(Buffer.from(user.access_token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    const { privateKey } = await generateKeyPair('RS256');
    const forged = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: kidOf(user.access_token) })
      .sign(privateKey);
    expect(await verifyLikeKong(forged, creds, plugin(app))).toEqual({ ok: false, message: 'Invalid signature' });
    const longLived = { ...claims, exp: Math.floor(Date.now() / 1000) + 86_400 };
    const unknownKey = await new SignJWT({ ...longLived, at_kid: 'not-a-published-kid' })
      .setProtectedHeader({ alg: 'RS256' })
      .sign(privateKey);
    expect(await verifyLikeKong(unknownKey, creds, plugin(app))).toEqual({ ok: false, message: "No credentials found for given 'at_kid'" });
  });

  it('YAML (the default) says the same as JSON', async () => {
    const res = await ops.call('GET', '/admin/v1/gateway/kong');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/yaml/);
    const text = await res.text();
    expect(text).toContain('key_claim_name: "at_kid"');
    const json = (await (await ops.call('GET', '/admin/v1/gateway/kong?format=json')).json()) as KongDoc;
    expect(parseYaml(text)).toEqual(json);
    // DB-less Kong has no `_info` section (it is decK's).
    const dbless = parseYaml(await (await ops.call('GET', '/admin/v1/gateway/kong?flavor=dbless')).text()) as KongDoc;
    expect(dbless._info).toBeUndefined();
    expect(dbless.consumers).toEqual(json.consumers);
  });

  it('is for operators only', async () => {
    expect((await fetch(`${app.url}/admin/v1/gateway/kong`)).status).toBe(401);
    await seedNativeTenant(app, 'kong-outsider', [{ username: 'eve@kong-outsider.test', password: PASSWORD }]);
    const bff = await seedBff(app);
    const { tokens: eve } = await nativeLogin(app.url, bff, 'kong-outsider', 'eve@kong-outsider.test', PASSWORD);
    expect((await fetch(`${app.url}/admin/v1/gateway/kong`, { headers: { authorization: `Bearer ${eve.access_token}` } })).status).toBe(
      403,
    );
  });

  it('npm run kong:config prints the same document from the running service', async () => {
    const env = {
      ...(process.env as Record<string, string>),
      ADMIN_URL: app.url,
      ADMIN_CLIENT_ID: ops.clientId,
      ADMIN_CLIENT_SECRET: ops.clientSecret,
    };
    const script = [...TS_LOADER, 'scripts/kong-config.ts'];
    const { stdout } = await run(process.execPath, script, { env, timeout: 60_000 });
    const printed = parseYaml(stdout) as KongDoc;
    const jwks = (await (await fetch(`${app.url}/.well-known/jwks.json`)).json()) as { keys: JWK[] };
    expect(printed.consumers[0]!.jwt_secrets.map((c) => c.key).sort()).toEqual(jwks.keys.map((k) => k.kid).sort());
    await expect(run(process.execPath, script, { env: { ...env, ADMIN_CLIENT_SECRET: 'wrong' }, timeout: 60_000 })).rejects.toMatchObject({
      code: 2,
    });
  });
});

describe('the checked-in example kong/kong.yml', () => {
  const opts: KongConfigOptions = {
    consumer: 'auth-service',
    issuer: 'https://auth.example.com',
    maximumExpiration: 360,
    flavor: 'dbless',
    exampleService: { name: 'platform-api', url: 'http://platform-api.internal:8080', paths: ['/api'] },
  };

  it('is exactly what the renderer produces for its keys (UPDATE_KONG_EXAMPLE=1 regenerates it from fresh test keys)', async () => {
    let published: PublishedKey[];
    if (process.env['UPDATE_KONG_EXAMPLE'] === '1') {
      published = [];
      for (const status of ['pending', 'active', 'retired'] as const) {
        const { publicKey } = await generateKeyPair('RS256', { extractable: true });
        const jwk = await exportJWK(publicKey);
        const { calculateJwkThumbprint } = await import('jose');
        published.push({ kid: await calculateJwkThumbprint(jwk), status, jwk });
      }
      writeFileSync(EXAMPLE, kongConfigYaml(kongDeclarativeConfig(await kongCredentials(published), opts), opts));
    }
    const text = readFileSync(EXAMPLE, 'utf8');
    const example = parseYaml(text) as KongDoc;
    published = await Promise.all(
      example.consumers[0]!.jwt_secrets.map(async (c) => ({
        kid: c.key,
        status: c.tags[1]!.replace('key-', '') as PublishedKey['status'],
        jwk: await exportJWK(await importSPKI(c.rsa_public_key, 'RS256', { extractable: true })),
      })),
    );
    expect(published.map((k) => k.status).sort()).toEqual(['active', 'pending', 'retired']);
    expect(kongConfigYaml(kongDeclarativeConfig(await kongCredentials(published), opts), opts)).toBe(text);
    const jwt = example.services![0]!.plugins.find((p) => p.name === 'jwt')!;
    expect(jwt.config).toMatchObject({ key_claim_name: 'at_kid', claims_to_verify: ['exp'], uri_param_names: [] });
    expect(Object.keys(example).filter((k) => k.startsWith('_'))).toEqual(['_format_version']); // valid for DB-less Kong
  });
});

describe('pushing credentials to the Kong Admin API (recorded fake: no Kong runs here)', () => {
  let app: TestApp;
  let kong: FakeKongAdmin;
  let ops: Operator;
  let keys: SigningKeysService;
  const consumerCreds = () => kong.credentials.get('auth-service') ?? new Map();

  const until = async (what: string, check: () => boolean, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  beforeAll(async () => {
    kong = await startFakeKongAdmin();
    // Left by an earlier key (ours: tagged) and by someone else (untagged): only ours may go.
    kong.consumers.set('auth-service', { username: 'auth-service' });
    kong.credentials.set(
      'auth-service',
      new Map([
        [
          'stale-kid',
          { key: 'stale-kid', algorithm: 'RS256', rsa_public_key: '-----BEGIN PUBLIC KEY-----', tags: [KONG_TAG, 'key-retired'] },
        ],
        ['hand-made', { key: 'hand-made', algorithm: 'RS256', rsa_public_key: '-----BEGIN PUBLIC KEY-----', tags: null }],
      ]),
    );
    app = await startTestApp({ KONG_ADMIN_URL: kong.url, KONG_ADMIN_TOKEN: 'kong-admin-test-token' });
    keys = app.app.get(SigningKeysService);
    ops = await operator(app, 'kong-push-ops');
  });

  afterAll(async () => {
    await app?.close();
    await kong?.close();
  });

  it('upserts the consumer and the active key at start, and removes only its own stale credentials', async () => {
    const [active] = (await keys.list()).filter((k) => k.status === 'active');
    await until('the active key in Kong', () => consumerCreds().has(active!.kid) && !consumerCreds().has('stale-kid'));
    expect(kong.consumers.get('auth-service')).toMatchObject({ custom_id: app.config.issuer, tags: [KONG_TAG] });
    expect(consumerCreds().has('hand-made')).toBe(true);
    const put = kong.calls.find((c) => c.method === 'PUT' && c.path === `/consumers/auth-service/jwt/${active!.kid}`)!;
    expect(put.headers['kong-admin-token']).toBe('kong-admin-test-token');
    expect(put.body).toMatchObject({ algorithm: 'RS256', tags: [KONG_TAG, 'key-active'] });
    expect(kong.calls.some((c) => c.method === 'GET' && c.path.includes('offset='))).toBe(true); // followed `next`
  });

  it('pushes a rotated key while it is still pending — before it signs anything', async () => {
    const res = await ops.call('POST', '/admin/v1/signing-keys/rotate', { publishDelaySeconds: 3600 });
    const { kid } = (await res.json()) as { kid: string };
    await until('the pending key in Kong', () => consumerCreds().has(kid));
    expect((await keys.list()).find((k) => k.kid === kid)!.status).toBe('pending');
    const pem = consumerCreds().get(kid)!.rsa_public_key;
    await keys.maintain(new Date(Date.now() + 3_601_000));
    const token = await ops.token();
    expect(kidOf(token)).toBe(kid);
    await jwtVerify(token, await importSPKI(pem, 'RS256'));
  });

  it('deletes the credential of a key once it has expired, on the next sync', async () => {
    const retired = (await keys.list()).find((k) => k.status === 'retired')!;
    expect(consumerCreds().has(retired.kid)).toBe(true);
    await keys.maintain(new Date(retired.expiresAt!.getTime() + 1000));
    const res = await ops.call('POST', '/admin/v1/gateway/kong/sync');
    expect(res.status).toBe(200);
    expect(((await res.json()) as { deleted: string[] }).deleted).toEqual([retired.kid]);
    expect(consumerCreds().has(retired.kid)).toBe(false);
    expect([...consumerCreds().keys()].sort()).toEqual([...(await keys.published()).map((k) => k.kid), 'hand-made'].sort());
  });

  it('reports a failing Kong Admin API as 502', async () => {
    kong.failWith = 500;
    try {
      const res = await ops.call('POST', '/admin/v1/gateway/kong/sync');
      expect(res.status).toBe(502);
      expect(((await res.json()) as { type: string }).type).toBe('urn:auth-service:problem:kong-sync-failed');
    } finally {
      kong.failWith = undefined;
    }
  });
});
