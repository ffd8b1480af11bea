/**
 * `npm run demo`: the service, the example BFF and SPA (examples/bff-spa), and two demo tenants,
 * in one process, with no setup beyond `npm ci`:
 *
 * - auth-service (src/bootstrap.ts's createApp, as `npm start` runs it) on its own port, with its
 *   own embedded PostgreSQL and keys under its own DATA_DIR (default `.data/demo`);
 * - `demo-native`: a native binding (the hosted form, passkeys allowed) and one user with a password;
 * - `demo-oidc`: an OIDC binding to a local OpenID Provider (oidc-provider, the same peer the tests
 *   use) with one account;
 * - the example BFF, registered as the client `demo-bff`.
 *
 * Everything is provisioned through the admin API, as ops do it (create, test login, activate), and
 * idempotently: a second run finds what the first made. Ctrl-C stops it all.
 *
 * Ports and paths (all optional): DEMO_PORT (the service, 4000), DEMO_BFF_PORT (4001),
 * DEMO_IDP_PORT (4002), DEMO_POSTGRES_PORT (54339), DEMO_DATA_DIR (.data/demo). LOG_LEVEL (warn).
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { loadConfig } from '../src/config/app-config.js';
import { createApp, type RunningApp } from '../src/bootstrap.js';
import { BootstrapRefused, bootstrapAdmin, rotateAdminSecret } from '../src/admin/admin-bootstrap.js';
import { startOidcProvider, type OidcProviderPeer } from '../test/peers/oidc-provider.js';
import { oidcProviderLogin } from '../test/peers/oidc-provider-login.js';
import { createBff } from '../examples/bff-spa/bff.js';
import { hostedFormLogin } from './demo-hosted-form.js';
import { DEMO } from './demo-accounts.js';

const env = process.env;
const port = (name: string, fallback: number) => Number(env[name] ?? fallback);
const SERVICE_PORT = port('DEMO_PORT', 4000);
const BFF_PORT = port('DEMO_BFF_PORT', 4001);
const IDP_PORT = port('DEMO_IDP_PORT', 4002);
const DATA_DIR = env['DEMO_DATA_DIR'] ?? join('.data', 'demo');
// `localhost`, not 127.0.0.1: WebAuthn accepts http only on localhost, so passkeys work in the demo.
const SERVICE_URL = `http://localhost:${SERVICE_PORT}`;
const BFF_URL = `http://localhost:${BFF_PORT}`;

type Json = Record<string, unknown>;
interface Binding {
  id: string;
  kind: string;
  status: string;
  config: Json;
}

/** The admin API with a client_credentials token of the demo's operator client. */
async function adminApi(running: RunningApp) {
  // The same in-process bootstrap `npm run admin -- bootstrap` runs; on a later run the client
  // exists and its secret was not kept, so it gets a new one (`bootstrap --rotate`).
  let made;
  try {
    made = await bootstrapAdmin(running.app, DEMO.adminClientId, { source: 'npm run demo' });
  } catch (err) {
    if (!(err instanceof BootstrapRefused)) throw err;
    made = await rotateAdminSecret(running.app, DEMO.adminClientId);
  }
  const tokenRes = await fetch(`${SERVICE_URL}/oauth2/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${made.clientId}:${made.clientSecret}`).toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'admin' }),
  });
  if (!tokenRes.ok) throw new Error(`admin token: ${tokenRes.status} ${await tokenRes.text()}`);
  const { access_token: token } = (await tokenRes.json()) as { access_token: string };
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    fetch(`${SERVICE_URL}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
  /** A call that must answer one of `ok`; its JSON body, typed by the caller (the API's documented answer). */
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- a typed view of the JSON, as Response.json() is
  const json = async <T>(method: string, path: string, body?: unknown, ok = [200, 201], headers?: Record<string, string>) => {
    const res = await call(method, path, body, headers);
    if (!ok.includes(res.status)) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return { status: res.status, etag: res.headers.get('etag'), body: (res.status === 204 ? {} : await res.json()) as T };
  };
  return { json, credentials: made };
}
type Admin = Awaited<ReturnType<typeof adminApi>>;

async function ensureTenant(admin: Admin, slug: string, displayName: string): Promise<string> {
  const created = await admin.json<{ id: string }>('POST', '/admin/v1/tenants', { slug, displayName }, [201, 409]);
  if (created.status === 201) return created.body.id;
  for (let cursor: string | null = null; ;) {
    const page: { body: { items: { id: string; slug: string }[]; nextCursor: string | null } } = await admin.json(
      'GET',
      `/admin/v1/tenants?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    const found = page.body.items.find((t) => t.slug === slug);
    if (found) return found.id;
    cursor = page.body.nextCursor;
    if (!cursor) throw new Error(`tenant ${slug} exists but was not listed`);
  }
}

/**
 * The tenant's active binding of `kind` when it matches `matches`; otherwise a new draft, its test
 * login (`testLogin` plays the customer's IT admin), and activation (which retires the old one).
 */
async function ensureActiveBinding(
  admin: Admin,
  tenantId: string,
  binding: Json & { kind: string },
  matches: (b: Binding) => boolean,
  testLogin: (url: string) => Promise<void>,
): Promise<void> {
  const path = `/admin/v1/tenants/${tenantId}/bindings`;
  const { body } = await admin.json<{ items: Binding[] }>('GET', path);
  if (body.items.some((b) => b.kind === binding.kind && b.status === 'active' && matches(b))) return;
  const draft = (await admin.json<Binding>('POST', path, binding)).body;
  const { url } = (await admin.json<{ url: string }>('POST', `${path}/${draft.id}/test-login`)).body;
  await testLogin(url);
  const current = await admin.json<Binding>('GET', `${path}/${draft.id}`);
  await admin.json('POST', `${path}/${draft.id}/activate`, undefined, [200], { 'if-match': current.etag ?? '' });
}

/** The BFF's client. Its secret is shown once, at creation: the demo keeps it in DATA_DIR for the next run. */
async function ensureBffClient(admin: Admin): Promise<string> {
  const file = join(DATA_DIR, 'demo-bff-client.json');
  const uris = { redirectUris: [`${BFF_URL}/callback`], postLogoutRedirectUris: [`${BFF_URL}/`] };
  const created = await admin.json<{ clientSecret: string }>(
    'POST',
    '/admin/v1/clients',
    { id: DEMO.bffClientId, name: 'Demo BFF (examples/bff-spa)', kind: 'bff', ...uris },
    [201, 409],
  );
  if (created.status === 201) {
    writeFileSync(file, JSON.stringify({ clientSecret: created.body.clientSecret }));
    chmodSync(file, 0o600);
    return created.body.clientSecret;
  }
  if (!existsSync(file))
    throw new Error(`the client ${DEMO.bffClientId} exists but its secret is not in ${file}: delete ${DATA_DIR} to start the demo afresh`);
  // Another DEMO_BFF_PORT than last time: the registered URIs follow.
  const current = await admin.json<{ redirectUris: string[] }>('GET', `/admin/v1/clients/${DEMO.bffClientId}`);
  if (current.body.redirectUris.join() !== uris.redirectUris.join())
    await admin.json('PATCH', `/admin/v1/clients/${DEMO.bffClientId}`, uris, [200], { 'if-match': current.etag ?? '' });
  return (JSON.parse(readFileSync(file, 'utf8')) as { clientSecret: string }).clientSecret;
}

async function provision(admin: Admin, idp: OidcProviderPeer): Promise<string> {
  // Tenant 1: local passwords on the service's hosted form.
  const nativeId = await ensureTenant(admin, DEMO.native.org, DEMO.native.name);
  const n = DEMO.native;
  await admin.json(
    'POST',
    `/admin/v1/tenants/${nativeId}/users`,
    { username: n.username, password: n.password, email: n.email, emailVerified: true, displayName: 'Ann Demo', roles: ['DEMO_USER'] },
    [201, 409],
  );
  await ensureActiveBinding(
    admin,
    nativeId,
    { kind: 'native', config: { passkeys: 'allowed' }, claimMapping: { defaultRoles: ['MEMBER'] } },
    () => true,
    async (url) => {
      const done = await hostedFormLogin(SERVICE_URL, url, n.username, n.password);
      if (!done.startsWith(`${SERVICE_URL}/login/test-complete?outcome=success`)) throw new Error(`native test login: ${done}`);
    },
  );

  // Tenant 2: the customer's own OpenID Provider (here: oidc-provider on loopback).
  const oidcId = await ensureTenant(admin, DEMO.oidc.org, DEMO.oidc.name);
  await ensureActiveBinding(
    admin,
    oidcId,
    {
      kind: 'oidc',
      config: { issuer: idp.issuer, clientId: DEMO.idpClient.id },
      secrets: { clientSecret: DEMO.idpClient.secret },
      claimMapping: { defaultRoles: ['MEMBER'], roles: [{ claim: 'groups', value: 'demo-admins', role: 'DEMO_ADMIN' }] },
    },
    (b) => b.config['issuer'] === idp.issuer,
    async (url) => {
      const callback = await oidcProviderLogin(url, {
        login: DEMO.oidc.login,
        password: DEMO.oidc.password,
        callbackPrefix: `${SERVICE_URL}/login/callback/oidc`,
      });
      const done = await fetch(callback, { redirect: 'manual' });
      if (!done.headers.get('location')?.endsWith('/login/test-complete?outcome=success'))
        throw new Error(`OIDC test login: ${done.status} ${done.headers.get('location') ?? (await done.text())}`);
    },
  );
  return ensureBffClient(admin);
}

async function main(): Promise<void> {
  mkdirSync(DATA_DIR, { recursive: true });
  const { DATABASE_URL: _ignored, ...rest } = env; // the demo always runs on its own embedded PostgreSQL
  const config = loadConfig({
    ...rest,
    NODE_ENV: 'development',
    PORT: String(SERVICE_PORT),
    PUBLIC_URL: SERVICE_URL,
    DATA_DIR,
    EMBEDDED_POSTGRES_PORT: env['DEMO_POSTGRES_PORT'] ?? '54339',
    LOG_LEVEL: env['LOG_LEVEL'] ?? 'warn',
  });

  const stops: (() => Promise<unknown>)[] = [];
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('\ndemo: stopping…\n');
    for (const s of stops.reverse()) await s().catch((err: unknown) => process.stderr.write(`demo: ${inspect(err)}\n`));
    process.exit(code);
  };
  process.once('SIGINT', () => void stop(0));
  process.once('SIGTERM', () => void stop(0));
  process.once('SIGHUP', () => void stop(0));

  try {
    const running = await createApp(config);
    stops.push(() => running.close());
    const idp = await startOidcProvider({
      port: IDP_PORT,
      clients: [
        { client_id: DEMO.idpClient.id, client_secret: DEMO.idpClient.secret, redirect_uris: [`${SERVICE_URL}/login/callback/oidc`] },
      ],
      accounts: [
        {
          sub: 'olivia',
          password: DEMO.oidc.password,
          claims: { email: DEMO.oidc.login, email_verified: true, name: 'Olivia Demo', groups: ['demo-admins'] },
        },
      ],
    });
    stops.push(() => idp.stop());

    const admin = await adminApi(running);
    const clientSecret = await provision(admin, idp);

    const bff = await createBff({ issuer: SERVICE_URL, clientId: DEMO.bffClientId, clientSecret, publicUrl: BFF_URL });
    const server = await new Promise<Server>((resolve, reject) => {
      const s = bff.listen(BFF_PORT, config.HOST, () => resolve(s)).once('error', reject);
    });
    stops.push(
      () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    );

    const { adminClientId, native: n, oidc: o } = DEMO;
    process.stdout.write(
      [
        '',
        '='.repeat(78),
        `demo: open ${BFF_URL}/`,
        '',
        `  organisation "${n.org}" (native, the hosted form):   user ${n.username}  password ${n.password}`,
        `  organisation "${o.org}" (an OIDC IdP, oidc-provider): user ${o.login}  password ${o.password}`,
        '',
        `  auth-service ${SERVICE_URL} (discovery: ${SERVICE_URL}/.well-known/openid-configuration)`,
        `  the admin CLI: export ADMIN_URL=${SERVICE_URL} ADMIN_CLIENT_ID=${adminClientId} ADMIN_CLIENT_SECRET=${admin.credentials.clientSecret}`,
        `  data: ${DATA_DIR} (delete it to start afresh). Ctrl-C stops everything.`,
        '='.repeat(78),
        '',
      ].join('\n'),
    );
  } catch (err) {
    process.stderr.write(`demo: failed to start: ${err instanceof Error ? err.message : inspect(err)}\n`);
    await stop(1);
  }
}

await main();
