/**
 * `npm run demo` end to end: the package.json command, started as a child process on free ports
 * and its own DATA_DIR, driven over HTTP with a cookie jar as a browser would drive it: the SPA
 * page, the organisation → the BFF → auth-service → the tenant's login (the hosted form; the
 * local OIDC IdP's pages) → back to the BFF → `/api/me` → sign out; once more in headless Chromium
 * (the SPA's script under its CSP, the sign-out form), skipped only outside CI when no browser can
 * be provisioned. Then a second run on the same DATA_DIR (the provisioning is idempotent) and
 * Ctrl-C (SIGINT) stopping it cleanly.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CookieJar, basic, get } from './support/bff.js';
import { freePort } from './support/free-port.js';
import { oidcProviderLogin } from './peers/oidc-provider-login.js';
import { startChromium, type ChromiumPeer } from './peers/chromium.js';
import { peerOrSkip } from './peers/peer-unavailable.js';
import { hostedFormLogin } from '../scripts/demo-hosted-form.js';
import { DEMO } from '../scripts/demo-accounts.js';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));

interface Demo {
  child: ChildProcess;
  output: () => string;
  bff: string;
  service: string;
  adminSecret: string;
}

let dataDir: string;
let ports: { service: number; bff: number; idp: number; postgres: number };
let demo: Demo | undefined;
let chromium: ChromiumPeer | undefined;
let browserUnavailable: string | undefined;

/** Starts `npm run demo`'s command (from package.json) and waits for its banner. */
async function startDemo(): Promise<Demo> {
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const [node, ...args] = pkg.scripts['demo']!.split(' ');
  expect(node).toBe('node');
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: {
      ...process.env,
      DEMO_PORT: String(ports.service),
      DEMO_BFF_PORT: String(ports.bff),
      DEMO_IDP_PORT: String(ports.idp),
      DEMO_POSTGRES_PORT: String(ports.postgres),
      DEMO_DATA_DIR: dataDir,
      // Shorter than the BFF's 60 s refresh margin: every /api/me call refreshes the access token.
      ACCESS_TOKEN_TTL_SECONDS: '30',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`the demo printed no URL in 180 s:\n${out}`)), 180_000);
    const check = () => {
      if (/demo: open http:\/\/localhost:\d+\//.test(out)) {
        clearTimeout(timer);
        done();
      }
    };
    child.stdout.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`the demo exited (${code}) before it was ready:\n${out}`));
    });
  });
  return {
    child,
    output: () => out,
    bff: /demo: open (http:\/\/localhost:\d+)\//.exec(out)![1]!,
    service: /auth-service (http:\/\/localhost:\d+) /.exec(out)![1]!,
    adminSecret: /ADMIN_CLIENT_SECRET=(\S+)/.exec(out)![1]!,
  };
}

/** Ctrl-C: SIGINT, and the exit code. */
async function stopDemo(d: Demo): Promise<number | null> {
  if (d.child.exitCode !== null) return d.child.exitCode;
  const exited = new Promise<number | null>((done) => d.child.once('exit', (code) => done(code)));
  d.child.kill('SIGINT');
  return exited;
}

/** The admin API with the operator client the demo printed (to check the `sub` the SPA shows). */
async function adminCall(d: Demo, path: string): Promise<unknown> {
  const token = await fetch(`${d.service}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(DEMO.adminClientId, d.adminSecret) },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'admin' }),
  });
  const { access_token } = (await token.json()) as { access_token: string };
  const res = await fetch(`${d.service}${path}`, { headers: { authorization: `Bearer ${access_token}` } });
  expect(res.status).toBe(200);
  return res.json();
}

async function userIdOf(d: Demo, org: string, username: string): Promise<string> {
  const tenants = (await adminCall(d, '/admin/v1/tenants?limit=100')) as { items: { id: string; slug: string }[] };
  const tenant = tenants.items.find((t) => t.slug === org)!;
  const users = (await adminCall(d, `/admin/v1/tenants/${tenant.id}/users?q=${encodeURIComponent(username)}`)) as {
    items: { id: string; username: string | null; email: string | null }[];
  };
  return users.items.find((u) => u.username === username || u.email === username)!.id;
}

interface Me {
  org: string;
  idToken: Record<string, unknown>;
  accessToken: Record<string, unknown>;
  accessTokenExpiresAt: string;
  userinfo: Record<string, unknown>;
}

/** The SPA's first step: the organisation typed in → the BFF → auth-service's /oauth2/authorize. */
async function startSignIn(d: Demo, jar: CookieJar, org: string): Promise<URL> {
  const res = await get(`${d.bff}/login?org=${org}`, jar);
  expect(res.status).toBe(303);
  const cookie = res.headers.getSetCookie().find((c) => c.startsWith('bff_session='));
  expect(cookie).toMatch(/HttpOnly/);
  expect(cookie).toMatch(/SameSite=Lax/);
  const authorize = new URL(res.headers.get('location')!);
  expect(`${authorize.origin}${authorize.pathname}`).toBe(`${d.service}/oauth2/authorize`);
  expect(Object.fromEntries(authorize.searchParams)).toMatchObject({
    client_id: DEMO.bffClientId,
    redirect_uri: `${d.bff}/callback`,
    response_type: 'code',
    org,
    code_challenge_method: 'S256',
    scope: 'openid email profile',
  });
  for (const p of ['state', 'nonce', 'code_challenge']) expect(authorize.searchParams.get(p)).toMatch(/^[\w-]{20,}$/);
  return authorize;
}

/** auth-service sends the browser back to the BFF's callback (code, state, RFC 9207 iss); the BFF redeems it and goes home. */
async function finishSignIn(d: Demo, jar: CookieJar, callback: string): Promise<void> {
  const back = new URL(callback);
  expect(`${back.origin}${back.pathname}`).toBe(`${d.bff}/callback`);
  expect(back.searchParams.get('iss')).toBe(d.service);
  expect(back.searchParams.get('code')).toBeTruthy();
  const res = await get(callback, jar);
  expect(res.headers.get('location')).toBe('/');
  expect(res.status).toBe(303);
}

async function me(d: Demo, jar: CookieJar): Promise<{ status: number; body: Me }> {
  const res = await get(`${d.bff}/api/me`, jar);
  return { status: res.status, body: (await res.json()) as Me };
}

/** Sign-out: the BFF session ends, then auth-service's end-session endpoint, then back to the SPA. */
async function signOut(d: Demo, jar: CookieJar): Promise<void> {
  const before = jar.header();
  const res = await fetch(`${d.bff}/logout`, { method: 'POST', redirect: 'manual', headers: { cookie: jar.header(), origin: d.bff } });
  jar.store(res);
  expect(res.status).toBe(303);
  const logout = new URL(res.headers.get('location')!);
  expect(`${logout.origin}${logout.pathname}`).toBe(`${d.service}/oauth2/logout`);
  expect(logout.searchParams.get('post_logout_redirect_uri')).toBe(`${d.bff}/`);
  expect(logout.searchParams.get('id_token_hint')).toBeTruthy();
  const ended = await get(logout.toString(), jar);
  expect(ended.status).toBe(302);
  expect(ended.headers.get('location')).toBe(`${d.bff}/`);
  expect((await me(d, jar)).status).toBe(401);
  // The old session cookie is dead too, not only forgotten by this browser.
  expect((await fetch(`${d.bff}/api/me`, { headers: { cookie: before } })).status).toBe(401);
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'demo-test-'));
  ports = { service: await freePort(), bff: await freePort(), idp: await freePort(), postgres: await freePort() };
  demo = await startDemo();
  const browser = await peerOrSkip('chromium', startChromium);
  chromium = browser.peer;
  browserUnavailable = browser.unavailable;
}, 240_000);

afterAll(async () => {
  // The browser first: it holds connections to the service and the BFF open.
  await chromium?.close();
  if (demo) await stopDemo(demo);
  await rm(dataDir, { recursive: true, force: true });
});

describe('npm run demo', () => {
  it('serves the SPA: one page, one same-origin script, a strict CSP, signed out at first', async () => {
    const d = demo!;
    const page = await get(`${d.bff}/`);
    expect(page.status).toBe(200);
    const csp = page.headers.get('content-security-policy')!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    const html = await page.text();
    expect(html).toContain('Enter your organisation');
    expect(html).toContain('<form action="/login" method="get">');
    // No inline script: every <script> has a src.
    expect([...html.matchAll(/<script\b[^>]*>/g)].map((m) => m[0])).toEqual(['<script type="module" src="/app.js">']);
    const js = await get(`${d.bff}/app.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    expect((await me(d, new CookieJar())).status).toBe(401);
  });

  it('signs in through the native demo tenant (hosted form), shows the right claims, refreshes silently, signs out', async () => {
    const d = demo!;
    const jar = new CookieJar();
    const authorize = await startSignIn(d, jar, DEMO.native.org);
    const callback = await hostedFormLogin(d.service, authorize.toString(), DEMO.native.username, DEMO.native.password, jar);
    await finishSignIn(d, jar, callback);

    const first = await me(d, jar);
    expect(first.status).toBe(200);
    const sub = await userIdOf(d, DEMO.native.org, DEMO.native.username);
    expect(first.body.org).toBe(DEMO.native.org);
    expect(first.body.idToken).toMatchObject({
      sub,
      aud: DEMO.bffClientId,
      iss: d.service,
      email: DEMO.native.email,
      email_verified: true,
    });
    expect(first.body.accessToken).toMatchObject({ sub, org: DEMO.native.org, client_id: DEMO.bffClientId, idp: 'native', amr: ['pwd'] });
    expect(first.body.accessToken['roles']).toEqual(expect.arrayContaining(['MEMBER', 'DEMO_USER']));
    expect(first.body.userinfo).toMatchObject({ sub, email: DEMO.native.email, name: 'Ann Demo' });

    // Access tokens live 30 s here, inside the BFF's 60 s margin: each call refreshes (and the
    // rotated refresh token is kept, else the second refresh would be reuse and end the session).
    const second = await me(d, jar);
    const third = await me(d, jar);
    expect(third.status).toBe(200);
    const jtis = [first, second, third].map((r) => r.body.accessToken['jti']);
    expect(new Set(jtis).size).toBe(3);
    expect(third.body.accessToken['sub']).toBe(sub);

    await signOut(d, jar);
  });

  it('signs in through the OIDC demo tenant (the local oidc-provider pages), with the mapped roles, and signs out', async () => {
    const d = demo!;
    const jar = new CookieJar();
    const authorize = await startSignIn(d, jar, DEMO.oidc.org);
    const toIdp = await get(authorize.toString(), jar);
    expect(toIdp.status).toBe(302);
    const idpUrl = new URL(toIdp.headers.get('location')!);
    expect(idpUrl.origin).toBe(`http://127.0.0.1:${ports.idp}`);
    // The OP's own sign-in and consent pages; it sends the browser to auth-service's OIDC callback.
    const serviceCallback = await oidcProviderLogin(idpUrl, {
      login: DEMO.oidc.login,
      password: DEMO.oidc.password,
      callbackPrefix: `${d.service}/login/callback/oidc`,
    });
    const toBff = await get(serviceCallback, jar);
    expect(toBff.status).toBe(302);
    await finishSignIn(d, jar, toBff.headers.get('location')!);

    const { status, body } = await me(d, jar);
    expect(status).toBe(200);
    const sub = await userIdOf(d, DEMO.oidc.org, DEMO.oidc.login);
    expect(body.org).toBe(DEMO.oidc.org);
    expect(body.idToken).toMatchObject({ sub, email: DEMO.oidc.login, name: 'Olivia Demo' });
    expect(body.accessToken).toMatchObject({ sub, org: DEMO.oidc.org, idp: 'oidc', idp_sub: 'olivia' });
    expect(body.accessToken['roles']).toEqual(expect.arrayContaining(['MEMBER', 'DEMO_ADMIN']));
    expect(body.userinfo).toMatchObject({ sub, email: DEMO.oidc.login });

    await signOut(d, jar);
  });

  it('works in a real browser: the SPA script under its CSP, the hosted form, the claims on the page, the sign-out button', async (ctx) => {
    if (browserUnavailable) ctx.skip(browserUnavailable);
    const d = demo!;
    const page = await chromium!.browser.newPage();
    const problems: string[] = [];
    page.on('pageerror', (err) => problems.push(String(err)));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`${m.text()} ${m.location().url ?? ''}`);
    });
    try {
      await page.goto(`${d.bff}/`);
      await page.waitForSelector('#signed-out:not([hidden])');
      await page.type('#org', DEMO.native.org);
      await Promise.all([page.waitForNavigation(), page.click('#signed-out button[type="submit"]')]);
      expect(page.url().startsWith(`${d.service}/login/native/`)).toBe(true);
      await page.type('#username', DEMO.native.username);
      await page.type('#password', DEMO.native.password);
      await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
      // The passkey offer after a password sign-in (the demo tenant allows passkeys): "Not now".
      const skip = await page.$('form:has(input[value="passkey-skip"]) button');
      if (skip) await Promise.all([page.waitForNavigation(), skip.click()]);
      expect(page.url()).toBe(`${d.bff}/`);
      await page.waitForSelector('#signed-in:not([hidden])');
      expect(await page.$eval('#who', (e) => e.textContent)).toBe('Ann Demo');
      expect(await page.$eval('#org-name', (e) => e.textContent)).toBe(DEMO.native.org);
      const sub = await userIdOf(d, DEMO.native.org, DEMO.native.username);
      expect(JSON.parse(await page.$eval('#access-claims', (e) => e.textContent))).toMatchObject({ sub, idp: 'native' });
      await page.click('#call-api');
      await page.waitForSelector('#signed-in:not([hidden])');

      await Promise.all([page.waitForNavigation(), page.click('form[action="/logout"] button')]);
      expect(page.url()).toBe(`${d.bff}/`);
      await page.waitForSelector('#signed-out:not([hidden])');
      // No script error, no CSP violation (Chromium reports those on the console).
      expect(problems.filter((p) => !p.includes(`status of 401 (Unauthorized) ${d.bff}/api/me`))).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('tells the SPA about an unknown organisation, and refuses a sign-out posted from another origin', async () => {
    const d = demo!;
    const jar = new CookieJar();
    const authorize = await startSignIn(d, jar, 'no-such-org');
    const back = await get(authorize.toString(), jar);
    expect(back.status).toBe(302);
    const callback = new URL(back.headers.get('location')!);
    expect(callback.searchParams.get('error')).toBe('unknown_organization');
    const home = await get(callback.toString(), jar);
    expect(home.headers.get('location')).toBe('/?error=unknown_organization');

    const cross = await fetch(`${d.bff}/logout`, { method: 'POST', redirect: 'manual', headers: { origin: 'https://evil.example' } });
    expect(cross.status).toBe(403);
  });

  it('runs again on the same data (nothing is created twice) and stops cleanly on Ctrl-C', async () => {
    expect(await stopDemo(demo!)).toBe(0);
    demo = await startDemo();
    const d = demo;
    const jar = new CookieJar();
    const authorize = await startSignIn(d, jar, DEMO.native.org);
    await finishSignIn(d, jar, await hostedFormLogin(d.service, authorize.toString(), DEMO.native.username, DEMO.native.password, jar));
    expect((await me(d, jar)).body.accessToken['sub']).toBe(await userIdOf(d, DEMO.native.org, DEMO.native.username));
    const tenants = (await adminCall(d, '/admin/v1/tenants?limit=100')) as { items: { slug: string }[] };
    expect(
      tenants.items
        .filter((t) => t.slug.startsWith('demo-'))
        .map((t) => t.slug)
        .sort(),
    ).toEqual([DEMO.native.org, DEMO.oidc.org]);
    expect(await stopDemo(d)).toBe(0);
    demo = undefined;
  }, 240_000);
});
