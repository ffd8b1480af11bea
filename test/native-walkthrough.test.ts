/**
 * README "A tenant with local passwords (native), end to end", as a new operator runs it: the
 * commands are read from the README's block (so a step dropped or changed there fails here), run one
 * by one through `npm run admin`'s own command line in child processes against the real service, and
 * a real browser (Debian's chromium) then signs the new user in: first the test login the README
 * asks for, then through a tiny BFF on loopback (the app the client was registered for) that
 * redeems the code at /oauth2/token and shows who signed in.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { promisify } from 'node:util';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { basic, pkcePair } from './support/bff.js';
import { freePort } from './support/free-port.js';
import { peerOrSkip } from './peers/peer-unavailable.js';
import { startChromium, type ChromiumPeer } from './peers/chromium.js';
import { bootstrapAdmin } from '../src/admin/admin-bootstrap.js';

const run = promisify(execFile);
const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const ADMIN_SCRIPT = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> })
  .scripts['admin']!;
/** Where the README's example BFF lives; the test's BFF stands in for it on loopback. */
const README_APP = 'https://app.globex.example';
const PASSWORD = 'globex: a long first password';

/** Splits one shell line as sh would for these commands: quotes, no expansions; stops at a comment. */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  let quote: "'" | '"' | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      word ??= '';
    } else if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (c === '#' && word === undefined) {
      break;
    } else word = (word ?? '') + c;
  }
  if (quote) throw new Error(`unterminated quote in: ${line}`);
  if (word !== undefined) words.push(word);
  return words;
}

/** The `npm run admin -- …` lines of the README's native walkthrough block, as argument lists. */
function walkthroughCommands(): string[][] {
  const at = README.indexOf('<!-- native-walkthrough -->');
  expect(at, 'README marks the native walkthrough block').toBeGreaterThan(0);
  const block = /```sh\n([\s\S]*?)```/.exec(README.slice(at))![1]!;
  return block
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const words = shellWords(l);
      expect(words.slice(0, 4), l).toEqual(['npm', 'run', 'admin', '--']);
      return words.slice(4);
    });
}

/** The BFF the client is registered for: /login starts the flow, /callback redeems the code. */
interface Bff {
  origin: string;
  clientId?: string;
  clientSecret?: string;
  server: Server;
}

async function startBff(app: TestApp): Promise<Bff> {
  const port = await freePort();
  const bff: Bff = { origin: `http://127.0.0.1:${port}`, server: createServer() };
  const pending = new Map<string, { verifier: string; nonce: string }>();
  const jwks = createRemoteJWKSet(new URL(`${app.url}/.well-known/jwks.json`));
  bff.server.on('request', (req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', bff.origin);
      const html = (status: number, body: string) => {
        res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' });
        res.end(`<!doctype html><title>Globex</title>${body}`);
      };
      if (url.pathname === '/login') {
        const { verifier, challenge } = pkcePair();
        const state = `st-${pending.size}`;
        const nonce = `n-${pending.size}`;
        pending.set(state, { verifier, nonce });
        const authorize = new URL('/oauth2/authorize', app.url);
        for (const [k, v] of Object.entries({
          response_type: 'code',
          client_id: bff.clientId!,
          redirect_uri: `${bff.origin}/callback`,
          scope: 'openid email profile',
          state,
          nonce,
          code_challenge: challenge,
          code_challenge_method: 'S256',
          org: 'globex',
        }))
          authorize.searchParams.set(k, v);
        res.writeHead(302, { location: authorize.toString() });
        return res.end();
      }
      if (url.pathname === '/callback') {
        const flow = pending.get(url.searchParams.get('state') ?? '');
        const code = url.searchParams.get('code');
        if (!flow || !code) {
          html(400, `<p id="error">${url.searchParams.get('error') ?? 'bad callback'}</p>`);
          return;
        }
        pending.delete(url.searchParams.get('state')!);
        const token = await fetch(`${app.url}/oauth2/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(bff.clientId!, bff.clientSecret!) },
          body: new URLSearchParams({
            grant_type: 'authorization_code',
            code,
            redirect_uri: `${bff.origin}/callback`,
            code_verifier: flow.verifier,
          }).toString(),
        });
        const tokens = (await token.json()) as { id_token?: string; access_token?: string; error?: string };
        if (!tokens.id_token || !tokens.access_token) {
          html(502, `<p id="error">token: ${tokens.error ?? token.status}</p>`);
          return;
        }
        const { payload: id } = await jwtVerify(tokens.id_token, jwks, { issuer: app.config.issuer, audience: bff.clientId! });
        const { payload: access } = await jwtVerify(tokens.access_token, jwks, { issuer: app.config.issuer });
        if (id['nonce'] !== flow.nonce) {
          html(400, '<p id="error">nonce mismatch</p>');
          return;
        }
        html(
          200,
          `<p id="who">Signed in as ${String(id['email'])}</p><p id="verified">${String(id['email_verified'])}</p><p id="name">${String(id['name'])}</p><p id="roles">${(access['roles'] as string[]).join(',')}</p>`,
        );
        return;
      }
      html(404, 'not found');
    })().catch((err: unknown) => {
      res.writeHead(500);
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve) => bff.server.listen(port, '127.0.0.1', resolve));
  return bff;
}

let app: TestApp;
let env: Record<string, string>;
let chromium: ChromiumPeer | undefined;
let unavailable: string | undefined;
let bff: Bff;

beforeAll(async () => {
  const got = await peerOrSkip('native-walkthrough', () => startChromium());
  chromium = got.peer;
  unavailable = got.unavailable;
  app = await startTestApp();
  // Step 0 of the README (bootstrap) is the admin CLI test's; this one starts with its operator client.
  const { clientId, clientSecret } = await bootstrapAdmin(app.app, 'walkthrough-ops');
  env = { ...(process.env as Record<string, string>), ADMIN_URL: app.url, ADMIN_CLIENT_ID: clientId, ADMIN_CLIENT_SECRET: clientSecret };
  bff = await startBff(app);
}, 180_000);
afterAll(async () => {
  await chromium?.close();
  if (bff) await new Promise((resolve) => bff.server.close(resolve));
  await app?.close();
});

/** `npm run admin -- <args>`, as package.json defines it, in a child process; stdin closed after `input`. */
async function admin(args: string[], input = ''): Promise<Record<string, unknown>> {
  const [cmd, ...scriptArgs] = shellWords(ADMIN_SCRIPT);
  expect(cmd).toBe('node');
  const pending = run(process.execPath, [...scriptArgs, ...args], { env, timeout: 120_000 });
  pending.child.stdin!.end(input);
  const { stdout } = await pending;
  return JSON.parse(stdout) as Record<string, unknown>;
}

describe('README: a tenant with local passwords (native), end to end', { timeout: 300_000 }, () => {
  it('the README block, command by command, then a browser signs the new user in through the BFF', async (ctx) => {
    if (unavailable) ctx.skip(unavailable);
    const commands = walkthroughCommands();
    expect(commands.map((c) => c.slice(0, 2).join(' '))).toEqual([
      'tenants create',
      'bindings create',
      'users create',
      'clients create',
      'bindings test-login',
      'bindings preview',
      'bindings activate',
    ]);
    const page = await chromium!.browser.newPage();
    const signIn = async (username: string) => {
      await page.waitForSelector('form input[name="password"]');
      expect(page.url().startsWith(`${app.config.issuer}/login/`)).toBe(true);
      await page.type('#username', username);
      await page.type('#password', PASSWORD);
      await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
    };

    const ids: Record<string, string> = {};
    for (const command of commands) {
      const args = command.map((a) =>
        a
          .replace('<tenantId>', ids['tenantId'] ?? '<tenantId>')
          .replace('<bindingId>', ids['bindingId'] ?? '<bindingId>')
          .replace(README_APP, bff.origin),
      );
      expect(args.join(' '), 'a placeholder is filled by an earlier step').not.toMatch(/<\w+>/);
      const step = command.slice(0, 2).join(' ');
      const out = await admin(args, step === 'users create' ? `${PASSWORD}\n` : '');
      switch (step) {
        case 'tenants create':
          expect(out).toMatchObject({ slug: 'globex', status: 'active' });
          ids['tenantId'] = out['id'] as string;
          break;
        case 'bindings create':
          expect(out).toMatchObject({ kind: 'native', status: 'draft' });
          ids['bindingId'] = out['id'] as string;
          break;
        case 'users create':
          expect(out).toMatchObject({
            username: 'ann@globex.example',
            email: 'ann@globex.example',
            emailVerified: true,
            displayName: 'Ann Globex',
          });
          expect(JSON.stringify(out)).not.toContain(PASSWORD);
          break;
        case 'clients create':
          expect(out).toMatchObject({ id: 'globex-web', kind: 'bff', redirectUris: [`${bff.origin}/callback`] });
          bff.clientId = out['id'] as string;
          bff.clientSecret = out['clientSecret'] as string;
          break;
        case 'bindings test-login': {
          // "open the printed link and sign in as ann@globex.example"
          await page.goto(out['url'] as string);
          await signIn('ann@globex.example');
          expect(page.url()).toBe(`${app.config.issuer}/login/test-complete?outcome=success`);
          break;
        }
        case 'bindings preview':
          expect(out).toMatchObject({
            source: 'test-login',
            platformClaims: {
              org: 'globex',
              email: 'ann@globex.example',
              email_verified: true,
              name: 'Ann Globex',
              roles: ['MEMBER'],
              idp: 'native',
            },
          });
          ids['preview'] = JSON.stringify(out['platformClaims']);
          break;
        case 'bindings activate':
          expect(out).toMatchObject({ id: ids['bindingId'], status: 'active' });
          break;
      }
    }

    // "Users now sign in through the BFF": the app's login → /oauth2/authorize?org=globex → hosted form → the app.
    await page.goto(`${bff.origin}/login`);
    await signIn('ann@globex.example');
    expect(page.url().startsWith(`${bff.origin}/callback?`)).toBe(true);
    expect(await page.$eval('#who', (e) => e.textContent)).toBe('Signed in as ann@globex.example');
    // What the tokens carry is what the preview showed.
    const preview = JSON.parse(ids['preview']!) as { email_verified: boolean; name: string; roles: string[] };
    expect(await page.$eval('#verified', (e) => e.textContent)).toBe(String(preview.email_verified));
    expect(await page.$eval('#name', (e) => e.textContent)).toBe(preview.name);
    expect(await page.$eval('#roles', (e) => e.textContent)).toBe(preview.roles.join(','));
    await page.close();
  });
});
