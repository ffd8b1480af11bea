/**
 * `npm run admin -- …` as ops run it: the CLI in a child process against the real service. The
 * README's "Onboard a tenant" walkthrough is run command by command (bootstrap, tenants, an OIDC
 * binding by discovery URL against the `oidc-provider` peer, a SAML binding by pasted metadata, test
 * login, preview, activate, health, change, rollback, retire, SCIM tokens, delete), and so are the
 * commands of the Firebase migration guide (firebase-import with fixture files, switch, end, rollback).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { seedBff } from './support/seed.js';
import { freePort } from './support/free-port.js';
import { authorizeUrl, get, nativeLogin, pkcePair, submitNativeLogin, tokenRequest, type BffClient } from './support/bff.js';
import { startOidcProvider, type OidcProviderPeer } from './peers/oidc-provider.js';
import { oidcProviderLogin } from './peers/oidc-provider-login.js';
import { bootstrapAdmin } from '../src/admin/admin-bootstrap.js';
import { hashFirebaseScrypt, type FirebaseScryptParams } from '../src/identity/firebase/firebase-scrypt.js';
import { TS_LOADER } from './support/ts-loader.js';
import { SVG, png } from './support/images.js';

const run = promisify(execFile);
const OP_CLIENT_ID = 'auth-service';
const OP_CLIENT_SECRET = `acme-op-secret-${randomBytes(8).toString('hex')}`;

let app: TestApp;
let env: Record<string, string>;
let bff: BffClient;
let op: OidcProviderPeer;
let callbackUrl: string;
let workDir: string;

beforeAll(async () => {
  app = await startTestApp({ RATE_LIMIT_AUTHORIZE_PER_MINUTE: '1000', RATE_LIMIT_LOGIN_PER_MINUTE: '1000' });
  const { clientId, clientSecret } = await bootstrapAdmin(app.app, 'cli-ops');
  env = { ...(process.env as Record<string, string>), ADMIN_URL: app.url, ADMIN_CLIENT_ID: clientId, ADMIN_CLIENT_SECRET: clientSecret };
  bff = await seedBff(app);
  callbackUrl = `${app.url}/login/callback/oidc`;
  op = await startOidcProvider({
    issuerPath: '/acme-op',
    clients: [{ client_id: OP_CLIENT_ID, client_secret: OP_CLIENT_SECRET, redirect_uris: [callbackUrl] }],
    accounts: [
      {
        sub: 'acme-ann',
        password: 'acme-ann-pw',
        claims: { email: 'ann@acme.example', email_verified: true, roles: ['MY_PROJECT_SUPER_ADMIN'] },
      },
    ],
  });
  workDir = await mkdtemp(join(tmpdir(), 'admin-cli-'));
});
afterAll(async () => {
  await op?.stop();
  await app?.close();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

const cliWith = (e: Record<string, string>, ...args: string[]) =>
  run(process.execPath, [...TS_LOADER, 'src/cli/admin.ts', ...args], { env: e, timeout: 120_000 });
const cli = (...args: string[]) => cliWith(env, ...args);

/** A file in the work dir, as ops would write it next to the command. */
const file = async (name: string, content: unknown): Promise<string> => {
  const path = join(workDir, name);
  await writeFile(path, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return path;
};

const platformClaims = async (accessToken: string): Promise<JWTPayload> =>
  (
    await jwtVerify(accessToken, createRemoteJWKSet(new URL(`${app.url}/.well-known/jwks.json`)), {
      issuer: app.url,
      audience: 'platform-api',
    })
  ).payload;

/** Where /oauth2/authorize sends the browser for an organisation. */
const authorizeLands = async (org: string): Promise<string> => {
  const { challenge } = pkcePair();
  const res = await get(authorizeUrl(app.url, bff, { org, state: 's', code_challenge: challenge, code_challenge_method: 'S256' }));
  expect(res.status).toBe(302);
  return res.headers.get('location')!;
};

/** A user of the customer's OP signs in through the BFF flow: authorize → OP → callback → code → platform JWT. */
async function bffOidcLogin(org: string): Promise<JWTPayload> {
  const { verifier, challenge } = pkcePair();
  const start = await get(
    authorizeUrl(app.url, bff, { org, state: 'st', code_challenge: challenge, code_challenge_method: 'S256', nonce: 'n-st' }),
  );
  expect(start.status).toBe(302);
  const upstream = start.headers.get('location')!;
  expect(upstream.startsWith(`${op.issuer}/`)).toBe(true);
  const back = await get(await oidcProviderLogin(upstream, { login: 'acme-ann', password: 'acme-ann-pw', callbackPrefix: callbackUrl }));
  expect(back.status).toBe(302);
  const code = new URL(back.headers.get('location')!).searchParams.get('code')!;
  const res = await tokenRequest(app.url, bff, {
    grant_type: 'authorization_code',
    code,
    redirect_uri: bff.redirectUri,
    code_verifier: verifier,
  });
  expect(res.status).toBe(200);
  return platformClaims(((await res.json()) as { access_token: string }).access_token);
}

/** A native binding activated straight away (test login through the form), then a BFF login. */
async function nativeLoginAfterBinding(tenantId: string, org: string, username: string, password: string) {
  const binding = JSON.parse((await cli('bindings', 'create', tenantId, '--kind', 'native')).stdout) as { id: string };
  const { url } = JSON.parse((await cli('bindings', 'test-login', tenantId, binding.id)).stdout) as { url: string };
  expect((await submitNativeLogin(app.url, url, username, password)).headers.get('location')).toContain('outcome=success');
  await cli('bindings', 'activate', tenantId, binding.id);
  return nativeLogin(app.url, bff, org, username, password);
}

describe('admin CLI', { timeout: 120_000 }, () => {
  it('prints help', async () => {
    const { stdout } = await cli('--help');
    expect(stdout).toContain('Usage: npm run admin -- <command>');
    expect(stdout).toContain('bindings activate <tenantId> <bindingId>');
    expect(stdout).toContain('bindings retire <tenantId> <bindingId>');
    expect(stdout).toContain('firebase-import <tenantId> --file users.json --hash-config hash.json');
  });

  it('lists users create, clients update and --id in its help', async () => {
    const { stdout } = await cli('--help');
    expect(stdout).toContain('users create <tenantId> <username>');
    expect(stdout).toContain('clients update <clientId>');
    expect(stdout).toContain('--post-logout-redirect-uri <uri>');
    expect(stdout).toMatch(/^ {2}--id <id> /m);
  });

  it('tenants branding get/set and tenants logo set/remove: only the options given change, a refusal names the field', async () => {
    const { stdout: help } = await cli('--help');
    expect(help).toContain('tenants branding set <tenantId> [--primary #rrggbb]');
    expect(help).toContain('tenants logo set <tenantId> <file>');
    const tenant = JSON.parse((await cli('tenants', 'create', 'cli-brand', 'Brand by CLI')).stdout) as { id: string };
    expect(JSON.parse((await cli('tenants', 'branding', 'get', tenant.id)).stdout)).toMatchObject({
      version: 0,
      colors: { primary: null, background: null, text: null },
      logo: null,
    });
    const set = JSON.parse(
      (
        await cli(
          'tenants',
          'branding',
          'set',
          tenant.id,
          '--primary',
          '#1A73E8',
          '--heading',
          'Welcome to Brand',
          '--support',
          'help@brand.example',
          '--legal-link',
          'Privacy=https://brand.example/privacy',
        )
      ).stdout,
    ) as Record<string, unknown>;
    expect(set).toMatchObject({
      version: 1,
      colors: { primary: '#1a73e8', background: null, text: null },
      supportContact: 'help@brand.example',
      texts: { heading: 'Welcome to Brand', legalLinks: [{ label: 'Privacy', url: 'https://brand.example/privacy' }] },
    });
    const more = JSON.parse((await cli('tenants', 'branding', 'set', tenant.id, '--text', '#202124', '--heading', '')).stdout) as Record<
      string,
      unknown
    >;
    expect(more).toMatchObject({
      version: 2,
      colors: { primary: '#1a73e8', text: '#202124' },
      supportContact: 'help@brand.example',
      texts: { heading: null, legalLinks: [{ label: 'Privacy' }] },
    });
    const refused = async (...args: string[]) =>
      (await cli(...args).then(
        () => ({ code: 0, stderr: '' }),
        (e: unknown) => e,
      )) as { code: number; stderr: string };
    const contrast = await refused('tenants', 'branding', 'set', tenant.id, '--text', '#777777');
    expect(contrast.code).toBe(2);
    expect(contrast.stderr).toContain('422 Insufficient contrast: colors.text on the default background #ffffff: 4.47:1, needs 4.5:1');
    const nothing = await refused('tenants', 'branding', 'set', tenant.id);
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toContain('Nothing to change');
    expect(JSON.parse((await cli('tenants', 'branding', 'get', tenant.id)).stdout)).toMatchObject({ version: 2 });

    const logoFile = join(workDir, 'logo.png');
    await writeFile(logoFile, png(120, 40));
    const logo = JSON.parse((await cli('tenants', 'logo', 'set', tenant.id, logoFile)).stdout) as { url: string; contentType: string };
    expect(logo).toMatchObject({ contentType: 'image/png', width: 120, height: 40 });
    const served = await fetch(`${app.url}${logo.url}`);
    expect(served.status).toBe(200);
    expect(Buffer.from(await served.arrayBuffer()).equals(await readFile(logoFile))).toBe(true);
    const svgFile = join(workDir, 'logo.svg');
    await writeFile(svgFile, SVG);
    const svg = await refused('tenants', 'logo', 'set', tenant.id, svgFile);
    expect(svg.code).toBe(2);
    expect(svg.stderr).toContain('422 Invalid logo: logo: SVG is not accepted');
    expect(JSON.parse((await cli('tenants', 'logo', 'remove', tenant.id)).stdout)).toEqual({ removed: 'logo', tenant: tenant.id });
    expect(JSON.parse((await cli('tenants', 'branding', 'get', tenant.id)).stdout)).toMatchObject({ logo: null });
    expect((await fetch(`${app.url}${logo.url}`)).status).toBe(404);
  });

  it('names the URL it cannot reach, and says what is wrong with an empty or malformed ADMIN_URL', async () => {
    const port = await freePort();
    await expect(cliWith({ ...env, ADMIN_URL: `http://127.0.0.1:${port}` }, 'tenants', 'list')).rejects.toMatchObject({
      code: 2,
      stderr: `admin: cannot reach http://127.0.0.1:${port}: connection refused (is the service running there?)\n`,
    });
    await expect(cliWith({ ...env, ADMIN_URL: '' }, 'tenants', 'list')).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('admin: ADMIN_URL is empty: set it to the service'),
    });
    await expect(cliWith({ ...env, ADMIN_URL: 'auth.example.com' }, 'tenants', 'list')).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('ADMIN_URL "auth.example.com" is not a URL'),
    });
    await expect(cliWith(env, '--url', 'ftp://auth.example.com', 'tenants', 'list')).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--url "ftp://auth.example.com" is not an http(s) URL'),
    });
  });

  it('users create reads the password from stdin (never an argument) and refuses an empty one', async () => {
    const tenant = JSON.parse((await cli('tenants', 'create', 'cli-users', 'Users by CLI')).stdout) as { id: string };
    const withStdin = (input: string, ...args: string[]) => {
      const p = cli(...args);
      p.child.stdin!.end(input);
      return p;
    };
    const { stdout } = await withStdin(
      'cli user password\n',
      'users',
      'create',
      tenant.id,
      'cli-user',
      '--email',
      'cli@users.example',
      '--role',
      'EDITOR',
      '--role',
      'VIEWER',
    );
    expect(JSON.parse(stdout)).toMatchObject({
      username: 'cli-user',
      email: 'cli@users.example',
      emailVerified: false,
      roles: ['EDITOR', 'VIEWER'],
    });
    const { tokens } = await nativeLoginAfterBinding(tenant.id, 'cli-users', 'cli-user', 'cli user password');
    expect(tokens.access_token).toBeTruthy();
    await expect(withStdin('', 'users', 'create', tenant.id, 'other')).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('No password on stdin'),
    });
    await expect(withStdin('cli user password', 'users', 'create', tenant.id, 'cli-user')).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('409 Username taken'),
    });
  });

  it("users factors shows a user's sign-in methods; removing a passkey or TOTP the user does not have is a clear error", async () => {
    const tenant = JSON.parse((await cli('tenants', 'create', 'cli-factors', 'Factors by CLI')).stdout) as { id: string };
    const created = cli('users', 'create', tenant.id, 'fac');
    created.child.stdin!.end('a cli factors password\n');
    const user = JSON.parse((await created).stdout) as { id: string };
    expect(JSON.parse((await cli('users', 'factors', tenant.id, user.id)).stdout)).toEqual({ totp: { confirmed: false }, passkeys: [] });
    const refused = async (...args: string[]) =>
      (await cli(...args).then(
        () => ({ code: 0, stderr: '' }),
        (e: unknown) => e,
      )) as { code: number; stderr: string };
    const passkey = await refused('users', 'remove-passkey', tenant.id, user.id, '00000000-0000-4000-8000-000000000000');
    expect(passkey.code).toBe(2);
    expect(passkey.stderr).toContain('no passkey with that id');
    const totp = await refused('users', 'remove-totp', tenant.id, user.id);
    expect(totp.code).toBe(2);
    expect(totp.stderr).toContain('no two-step verification');
  });

  it('clients update replaces redirect URIs, post-logout redirect URIs and scopes', async () => {
    const created = JSON.parse(
      (await cli('clients', 'create', '--id', 'cli-bff', '--name', 'CLI BFF', '--kind', 'bff', '--redirect-uri', 'https://old.example/cb'))
        .stdout,
    ) as { clientSecret: string };
    expect(created.clientSecret).toBeTruthy();
    const updated = JSON.parse(
      (
        await cli(
          'clients',
          'update',
          'cli-bff',
          '--redirect-uri',
          'https://new.example/cb',
          '--redirect-uri',
          'https://new.example/cb2',
          '--post-logout-redirect-uri',
          'https://new.example/bye',
          '--scope',
          'openid',
          '--scope',
          'email',
        )
      ).stdout,
    ) as Record<string, unknown>;
    expect(updated).toMatchObject({
      id: 'cli-bff',
      redirectUris: ['https://new.example/cb', 'https://new.example/cb2'],
      postLogoutRedirectUris: ['https://new.example/bye'],
      scopes: ['openid', 'email'],
    });
    expect(JSON.stringify(updated)).not.toContain(created.clientSecret);
    await expect(cli('clients', 'update', 'cli-bff', '--redirect-uri', 'not a url')).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('400 Invalid redirect URI'),
    });
    await expect(cli('clients', 'update', 'cli-bff')).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('Nothing to change'),
    });
  });

  it('creates and lists a tenant through the API', async () => {
    const created = JSON.parse((await cli('tenants', 'create', 'cli-made', 'Made by CLI')).stdout) as { id: string; slug: string };
    expect(created.slug).toBe('cli-made');
    const listed = JSON.parse((await cli('tenants', 'list')).stdout) as { items: Array<{ slug: string }> };
    expect(listed.items.map((t) => t.slug)).toContain('cli-made');
  });

  it('exits 2 with the API problem on bad input', async () => {
    await expect(cli('tenants', 'create', 'Bad Slug', 'x')).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('400') });
  });

  it('exits 2 on an unknown command or a missing argument', async () => {
    await expect(cli('tenants', 'rename', 'x')).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('Unknown command "tenants rename x"'),
    });
    await expect(cli('firebase-import', '--file', 'users.json', '--hash-config', 'hash.json')).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('Missing tenantId'),
    });
    await expect(
      cli('bindings', 'create', '00000000-0000-4000-8000-000000000000', '--kind', 'native', '--priority', 'high'),
    ).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--priority must be an integer'),
    });
  });
});

// Each command is a fresh Node process (about a second or more on a busy machine): generous timeouts.
describe('README "Onboard a tenant", command by command', { timeout: 240_000 }, () => {
  let ops: Record<string, string>;
  let tenantId: string;
  let oidcId: string;
  let changedId: string;
  const out = async <T = Record<string, unknown>>(...args: string[]): Promise<T> => JSON.parse((await cliWith(ops, ...args)).stdout) as T;
  const refused = (...args: string[]) =>
    cliWith(ops, ...args).then(
      (r) => {
        throw new Error(`expected a refusal, got: ${r.stdout}`);
      },
      (err: { code: number; stderr: string }) => err,
    );

  it('0. bootstrap (same environment as the service) prints an operator client once; the CLI signs in with it', async () => {
    const serviceEnv = {
      ...(process.env as Record<string, string>),
      NODE_ENV: 'test',
      DATABASE_URL: app.db.url,
      KEY_ENCRYPTION_KEY: app.db.kek,
      PUBLIC_URL: app.url,
      DATA_DIR: workDir,
      LOG_LEVEL: 'silent',
    };
    const boot = JSON.parse((await cliWith(serviceEnv, 'bootstrap')).stdout) as {
      tenantId: string;
      clientId: string;
      clientSecret: string;
      note: string;
    };
    expect(boot).toMatchObject({
      clientId: 'ops-admin',
      clientSecret: expect.stringMatching(/^\S{32,}$/),
      note: expect.stringContaining('shown once'),
    });
    ops = {
      ...(process.env as Record<string, string>),
      ADMIN_URL: app.url,
      ADMIN_CLIENT_ID: boot.clientId,
      ADMIN_CLIENT_SECRET: boot.clientSecret,
    };
    const clients = (await cliWith(ops, 'clients', 'list')).stdout;
    expect(clients).toContain('"ops-admin"');
    expect(clients).not.toContain(boot.clientSecret);
    // A wrong secret gets no token.
    await expect(cliWith({ ...ops, ADMIN_CLIENT_SECRET: 'wrong' }, 'tenants', 'list')).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('Could not get an admin token'),
    });
  });

  it('1. tenants create acme "Acme Corporation": note the id; the slug is unique', async () => {
    const tenant = await out<{ id: string; slug: string; displayName: string; status: string }>(
      'tenants',
      'create',
      'acme',
      'Acme Corporation',
    );
    expect(tenant).toMatchObject({ slug: 'acme', displayName: 'Acme Corporation', status: 'active' });
    tenantId = tenant.id;
    expect(await refused('tenants', 'create', 'acme', 'Another Acme')).toMatchObject({ code: 2, stderr: expect.stringContaining('409') });
    expect(await out('tenants', 'get', tenantId)).toMatchObject({ id: tenantId, slug: 'acme' });
    // The default language of its hosted pages: a shipped one, or none.
    expect(await out('tenants', 'update', tenantId, '--default-locale', 'de')).toMatchObject({ defaultLocale: 'de' });
    const badLocale = await refused('tenants', 'update', tenantId, '--default-locale', 'xx');
    expect(badLocale.code).toBe(2);
    expect(badLocale.stderr).toContain('400');
    expect(await out('tenants', 'update', tenantId, '--default-locale', 'none')).toMatchObject({ defaultLocale: null });
  });

  it('2a. bindings create <tenantId> --file acme-oidc.json: checked at the door, the secret never printed', async () => {
    const binding = {
      kind: 'oidc',
      config: { discoveryUrl: op.discoveryUrl, clientId: OP_CLIENT_ID },
      secrets: { clientSecret: OP_CLIENT_SECRET },
      claimMapping: { roles: [{ claim: 'roles', value: 'MY_PROJECT_SUPER_ADMIN', role: 'SUPER_ADMIN' }], defaultRoles: ['MEMBER'] },
    };
    const unreachable = await file('acme-oidc-typo.json', {
      ...binding,
      config: { ...binding.config, discoveryUrl: 'http://127.0.0.1:9/.well-known/openid-configuration' },
    });
    expect(await refused('bindings', 'create', tenantId, '--file', unreachable)).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('422'),
    });
    expect((await out<{ items: unknown[] }>('bindings', 'list', tenantId)).items).toEqual([]);

    const { stdout } = await cliWith(ops, 'bindings', 'create', tenantId, '--file', await file('acme-oidc.json', binding));
    expect(stdout).not.toContain(OP_CLIENT_SECRET);
    const created = JSON.parse(stdout) as { id: string; kind: string; status: string; secretFields: string[] };
    expect(created).toMatchObject({ kind: 'oidc', status: 'draft', secretFields: ['clientSecret'] });
    oidcId = created.id;
  });

  it('2b. bindings create <tenantId> --file acme-saml.json: pasted metadata is parsed; one without a signing certificate is refused', async () => {
    const key = join(workDir, 'idp.key');
    const crt = join(workDir, 'idp.crt');
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      crt,
      '-days',
      '365',
      '-subj',
      '/CN=idp.acme.example',
    ]);
    const cert = (await readFile(crt, 'utf8')).replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, '');
    const metadata = (keyDescriptor: string) =>
      `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.acme.example/saml">` +
      `<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">${keyDescriptor}` +
      `<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.acme.example/sso"/>` +
      `</md:IDPSSODescriptor></md:EntityDescriptor>`;
    const saml = (xml: string) => ({
      kind: 'saml',
      config: { idpMetadataXml: xml },
      claimMapping: {
        email: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress',
        trustEmailVerified: true,
        defaultRoles: ['MEMBER'],
      },
    });
    const unsigned = await refused('bindings', 'create', tenantId, '--file', await file('acme-saml-nocert.json', saml(metadata(''))));
    expect(unsigned).toMatchObject({ code: 2, stderr: expect.stringMatching(/422.*certificate/i) });

    const signing = `<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`;
    const created = await out<{ kind: string; status: string; config: Record<string, unknown> }>(
      'bindings',
      'create',
      tenantId,
      '--file',
      await file('acme-saml.json', saml(metadata(signing))),
    );
    expect(created).toMatchObject({
      kind: 'saml',
      status: 'draft',
      config: { idpEntityId: 'https://idp.acme.example/saml', idpSsoUrl: 'https://idp.acme.example/sso' },
    });
    // Not proven by a test login: it cannot be activated.
    const samlId = (created as unknown as { id: string }).id;
    expect(await refused('bindings', 'activate', tenantId, samlId)).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('409 Test login required'),
    });
  });

  it('3. test-login → preview → activate; users then sign in through the BFF with org=acme', async () => {
    expect(await refused('bindings', 'activate', tenantId, oidcId)).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('409 Test login required'),
    });

    const { url } = await out<{ url: string }>('bindings', 'test-login', tenantId, oidcId);
    expect(url.startsWith(`${op.issuer}/`)).toBe(true);
    const done = await get(await oidcProviderLogin(url, { login: 'acme-ann', password: 'acme-ann-pw', callbackPrefix: callbackUrl }));
    expect(done.headers.get('location')).toBe(`${app.url}/login/test-complete?outcome=success`);

    const captured = await out<{ source: string; platformClaims: { org: string; email: string; roles: string[]; idp_sub: string } }>(
      'bindings',
      'preview',
      tenantId,
      oidcId,
    );
    expect(captured).toMatchObject({
      source: 'test-login',
      platformClaims: { org: 'acme', email: 'ann@acme.example', idp_sub: 'acme-ann' },
    });
    expect([...captured.platformClaims.roles].sort()).toEqual(['MEMBER', 'SUPER_ADMIN']);
    const sample = await out<{ source: string; platformClaims: { email: string; roles: string[] } }>(
      'bindings',
      'preview',
      tenantId,
      oidcId,
      '--claims',
      '{"email":"a@acme.example","roles":["MY_PROJECT_SUPER_ADMIN"]}',
    );
    expect(sample).toMatchObject({ source: 'sample', platformClaims: { email: 'a@acme.example' } });
    expect(sample.platformClaims.roles).toContain('SUPER_ADMIN');

    expect(await out('bindings', 'activate', tenantId, oidcId)).toMatchObject({ id: oidcId, status: 'active' });
    const claims = await bffOidcLogin('acme');
    expect(claims).toMatchObject({ org: 'acme', idp: 'oidc', idp_sub: 'acme-ann' });
    expect(claims['roles']).toContain('SUPER_ADMIN');
  });

  it('4. health; a change becomes a draft; rollback and retire — logins follow at once', async () => {
    expect(await out('bindings', 'health', tenantId, oidcId)).toMatchObject({
      bindingId: oidcId,
      status: 'active',
      health: { ok: true },
      lastLoginSucceededAt: expect.any(String),
    });

    // A change to the active binding is a new draft; the running one serves logins until the draft is activated.
    const changed = await out<{ id: string; status: string }>(
      'bindings',
      'update',
      tenantId,
      oidcId,
      '--file',
      await file('patch.json', { claimMapping: { defaultRoles: ['V2'] } }),
    );
    expect(changed).toMatchObject({ status: 'draft' });
    expect(changed.id).not.toBe(oidcId);
    changedId = changed.id;
    expect((await bffOidcLogin('acme'))['roles']).toContain('SUPER_ADMIN');
    const { url } = await out<{ url: string }>('bindings', 'test-login', tenantId, changedId);
    await get(await oidcProviderLogin(url, { login: 'acme-ann', password: 'acme-ann-pw', callbackPrefix: callbackUrl }));
    expect(await out('bindings', 'activate', tenantId, changedId)).toMatchObject({ id: changedId, status: 'active' });
    expect((await bffOidcLogin('acme'))['roles']).toEqual(['V2']);

    // Rollback: back to the previous binding in one call.
    expect(await out('bindings', 'rollback', tenantId)).toMatchObject({
      id: oidcId,
      status: 'active',
      rollback: { activated: [oidcId], retired: [changedId] },
    });
    expect((await bffOidcLogin('acme'))['roles']).toContain('SUPER_ADMIN');

    // Retire: the binding stops serving logins; rollback undoes that too.
    expect(await out('bindings', 'retire', tenantId, oidcId)).toMatchObject({ id: oidcId, status: 'retired' });
    expect(new URL(await authorizeLands('acme')).searchParams.get('error')).toBe('temporarily_unavailable');
    expect(await refused('bindings', 'retire', tenantId, oidcId)).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('409 Not active'),
    });
    expect(await out('bindings', 'rollback', tenantId)).toMatchObject({
      id: oidcId,
      status: 'active',
      rollback: { activated: [oidcId], retired: [] },
    });
    expect(await bffOidcLogin('acme')).toMatchObject({ org: 'acme', idp: 'oidc' });

    const listed = await out<{ items: Array<{ id: string; kind: string; status: string }> }>('bindings', 'list', tenantId);
    expect(Object.fromEntries(listed.items.map((b) => [b.id, b.status]))).toMatchObject({ [oidcId]: 'active', [changedId]: 'retired' });
    const audit = await out<{ items: Array<{ action: string; actor: string }> }>('audit', '--tenant', tenantId, '--limit', '100');
    const actions = audit.items.map((e) => e.action);
    for (const a of ['tenant.created', 'binding.created', 'binding.activated', 'binding.retired', 'binding.rolled_back'])
      expect(actions).toContain(a);
    expect(audit.items.filter((e) => e.action === 'binding.rolled_back').map((e) => e.actor)).toEqual([
      'client:ops-admin',
      'client:ops-admin',
    ]);
  });

  it('SCIM provisioning: scim-tokens create prints the token once; list shows its prefix; revoke', async () => {
    const created = await out<{ id: string; token: string; prefix: string }>('scim-tokens', 'create', tenantId, 'Entra ID');
    expect(created.token).toMatch(/^st_/);
    const scim = (token: string) => fetch(`${app.url}/scim/v2/Users`, { headers: { authorization: `Bearer ${token}` } });
    expect((await scim(created.token)).status).toBe(200);
    const listed = (await cliWith(ops, 'scim-tokens', 'list', tenantId)).stdout;
    expect(listed).toContain(created.prefix);
    expect(listed).not.toContain(created.token);
    expect(await out('scim-tokens', 'revoke', tenantId, created.id)).toEqual({ revoked: created.id });
    expect((await scim(created.token)).status).toBe(401);
  });

  it('tenants delete <tenantId>: a soft delete, logins stop at once', async () => {
    expect(await out('tenants', 'delete', tenantId)).toEqual({ deleted: tenantId });
    expect(new URL(await authorizeLands('acme')).searchParams.get('error')).toBe('unknown_organization');
    expect(await refused('tenants', 'get', tenantId)).toMatchObject({ code: 2, stderr: expect.stringContaining('404') });
  });
});

describe('README Firebase migration guide, command by command', { timeout: 240_000 }, () => {
  const params: FirebaseScryptParams = { signerKey: randomBytes(64).toString('base64'), saltSeparator: 'Bw==', rounds: 8, memCost: 14 };
  const out = async <T = Record<string, unknown>>(...args: string[]): Promise<T> => JSON.parse((await cli(...args)).stdout) as T;

  it('firebase-import <tenantId> --file users.json --hash-config hash.json, then switch, end and rollback', async () => {
    const tenant = await out<{ id: string }>('tenants', 'create', 'fbcli', 'Firebase via CLI');
    // Nobody new is onboarded onto Firebase; ops bringing an existing project pass migrationImport.
    await expect(
      cli('bindings', 'create', tenant.id, '--kind', 'firebase_legacy', '--config', '{"projectId":"demo-fbcli"}'),
    ).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('409 Firebase is closed to new tenants'),
    });
    const firebase = await out<{ id: string; status: string }>(
      'bindings',
      'create',
      tenant.id,
      '--file',
      await file('firebase.json', { kind: 'firebase_legacy', config: { projectId: 'demo-fbcli' }, migrationImport: true }),
    );
    expect(firebase.status).toBe('draft');
    expect(await out('bindings', 'activate', tenant.id, firebase.id)).toMatchObject({ status: 'active' }); // token exchange only: no test login

    // 2. Import (this is the command that answered "Unknown command" before).
    const salt = randomBytes(12).toString('base64');
    const users = await file('users.json', {
      users: [
        {
          localId: 'fb-uid-cli',
          email: 'noa@fbcli.test',
          emailVerified: true,
          passwordHash: await hashFirebaseScrypt('noa firebase password', salt, params),
          salt,
          displayName: 'Noa',
        },
      ],
    });
    const hash = await file('hash.json', {
      algorithm: 'SCRYPT',
      base64_signer_key: params.signerKey,
      base64_salt_separator: params.saltSeparator,
      rounds: params.rounds,
      mem_cost: params.memCost,
    });
    expect(await out('firebase-import', tenant.id, '--file', users, '--hash-config', hash)).toMatchObject({
      total: 1,
      created: 1,
      credentialsCreated: 1,
    });
    expect(await out('firebase-import', tenant.id, '--file', users, '--hash-config', hash)).toMatchObject({
      total: 1,
      created: 0,
      matched: 1,
    });

    // 3. Switch: a native binding above the Firebase one, tested with the old password, activated.
    const native = await out<{ id: string; priority: number }>('bindings', 'create', tenant.id, '--kind', 'native', '--priority', '10');
    expect(native.priority).toBe(10);
    const { url } = await out<{ url: string }>('bindings', 'test-login', tenant.id, native.id);
    expect(
      (await submitNativeLogin(app.url, url.replace(app.config.issuer, app.url), 'noa@fbcli.test', 'noa firebase password')).headers.get(
        'location',
      ),
    ).toContain('outcome=success');
    expect(await out('bindings', 'activate', tenant.id, native.id)).toMatchObject({ status: 'active' });
    const { tokens } = await nativeLogin(app.url, bff, 'fbcli', 'noa@fbcli.test', 'noa firebase password');
    expect(await platformClaims(tokens.access_token)).toMatchObject({ org: 'fbcli', idp: 'native' });

    // 4. End, and its rollback.
    expect(await out('bindings', 'retire', tenant.id, firebase.id)).toMatchObject({ id: firebase.id, status: 'retired' });
    expect(await out('bindings', 'rollback', tenant.id)).toMatchObject({
      id: firebase.id,
      status: 'active',
      rollback: { activated: [firebase.id], retired: [] },
    });
    // Back to Firebase alone: retire the native binding; the hosted form is no longer served.
    expect(await out('bindings', 'retire', tenant.id, native.id)).toMatchObject({ status: 'retired' });
    expect(new URL(await authorizeLands('fbcli')).searchParams.get('error')).toBe('temporarily_unavailable');
    const statuses = await out<{ items: Array<{ kind: string; status: string }> }>('bindings', 'list', tenant.id);
    expect(Object.fromEntries(statuses.items.map((b) => [b.kind, b.status]))).toEqual({ firebase_legacy: 'active', native: 'retired' });
  });
});
