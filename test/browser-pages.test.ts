/**
 * The OAuth routes a browser is sent to (authorize, logout, the upstream logout's return) answer a
 * browser with a page, and a caller that asks for JSON with the OAuth error JSON. Every page is
 * self-contained, escapes what it shows and carries the hosted form's security headers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { seedBff, seedNativeTenant } from './support/seed.js';
import { authorizeUrl, get, pkcePair, type BffClient } from './support/bff.js';
import { HTML_SECURITY_HEADERS } from '../src/common/html.js';

let app: TestApp;
let bff: BffClient;
let tenantId: string;

beforeAll(async () => {
  app = await startTestApp();
  bff = await seedBff(app);
  tenantId = (await seedNativeTenant(app, 'pages', [])).tenant.id;
});

afterAll(async () => {
  await app?.close();
});

const browse = (url: string, headers: Record<string, string> = {}) =>
  fetch(url, { redirect: 'manual', headers: { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', ...headers } });

function expectPage(res: Response, html: string): void {
  expect(res.headers.get('content-type')).toMatch(/^text\/html/);
  for (const [name, value] of Object.entries(HTML_SECURITY_HEADERS)) expect(res.headers.get(name), name).toBe(value);
  expect(html).toMatch(/^<!doctype html><html lang="en">/);
  expect(html).toMatch(/<title>[^<]+<\/title>/);
  expect(html).toMatch(/<main>.*<h1>[^<]+<\/h1>.*<\/main>/);
  expect(html).not.toMatch(/<script/i);
}

const start = (params: Record<string, string | undefined>) =>
  authorizeUrl(app.url, bff, { org: 'pages', state: 'st', code_challenge: pkcePair().challenge, code_challenge_method: 'S256', ...params });

describe('GET /oauth2/authorize without a client or redirect URI it can trust', () => {
  it('shows an error page for an unknown client, and redirects nowhere', async () => {
    const res = await browse(start({ client_id: 'no-such-client' }));
    const html = await res.text();
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
    expectPage(res, html);
    expect(html).toContain('Unknown client_id.');
    // Nothing known to link back to: the page says what to do instead.
    expect(html).not.toContain('<a ');
    expect(html).toContain('Go back to the application you came from');
  });

  it('shows an error page for an unregistered redirect_uri, and never links to it', async () => {
    const res = await browse(start({ redirect_uri: 'https://evil.example/cb' }));
    const html = await res.text();
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
    expectPage(res, html);
    expect(html).toContain('redirect_uri is not registered for this client');
    expect(html).not.toContain('evil.example');
  });

  it('links back to the page the browser came from, when that is an http(s) URL', async () => {
    const back = await browse(start({ client_id: 'no-such-client' }), { referer: 'https://app.example/start?x=1&y="2"' });
    expect(await back.text()).toContain('<a href="https://app.example/start?x=1&amp;y=%222%22">Return to the application</a>');
    for (const referer of ['javascript:alert(1)', 'data:text/html,hi', 'https://user:pw@app.example/', 'not a url']) {
      const html = await (await browse(start({ client_id: 'no-such-client' }), { referer })).text();
      expect(html, referer).not.toContain('<a ');
    }
  });

  it('escapes what it shows: a parameter name full of markup stays text', async () => {
    const url = new URL(start({}));
    url.searchParams.append('<img src=x onerror=alert(1)>', 'a');
    url.searchParams.append('<img src=x onerror=alert(1)>', 'b');
    const res = await browse(url.toString());
    const html = await res.text();
    expect(res.status).toBe(400);
    expect(html).toContain('Parameter &quot;&lt;img src=x onerror=alert(1)&gt;&quot; must appear once.');
    expect(html).not.toContain('<img');
  });

  it('answers the OAuth error JSON to a caller that asks for JSON', async () => {
    const res = await browse(start({ client_id: 'no-such-client' }), { accept: 'application/json' });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({ error: 'invalid_client', error_description: 'Unknown client_id.' });
  });
});

describe('GET /oauth2/logout', () => {
  it('shows a signed-out page when there is nowhere to redirect', async () => {
    const res = await browse(`${app.url}/oauth2/logout`);
    const html = await res.text();
    expect(res.status).toBe(200);
    expectPage(res, html);
    expect(html).toContain('<h1>Signed out</h1>');
  });

  it('shows an error page for an unverifiable id_token_hint, or OAuth JSON when asked', async () => {
    const page = await browse(`${app.url}/oauth2/logout?id_token_hint=not-a-jwt`);
    const html = await page.text();
    expect(page.status).toBe(400);
    expectPage(page, html);
    expect(html).toContain('<title>Sign-out problem</title>');
    const json = await browse(`${app.url}/oauth2/logout?id_token_hint=not-a-jwt`, { accept: 'application/json' });
    expect(json.status).toBe(400);
    expect(await json.json()).toMatchObject({ error: expect.any(String), error_description: expect.any(String) });
  });

  it('shows an error page for a forged return state after an upstream logout', async () => {
    const res = await browse(`${app.url}/oauth2/logout/return?state=${Buffer.from('https://evil.example/').toString('base64url')}`);
    const html = await res.text();
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
    expectPage(res, html);
    expect(html).not.toContain('evil.example');
  });
});

describe('an expired sign-in link', () => {
  it('links back to the application that started the sign-in', async () => {
    const started = await get(start({}));
    const formUrl = new URL(started.headers.get('location')!, app.url);
    expect(formUrl.pathname).toMatch(/^\/login\/native\//);
    await app.database.transaction({ tenant: tenantId }, (tx) =>
      tx.query(`UPDATE login_transactions SET expires_at = now() - interval '1 second'`),
    );
    const res = await browse(formUrl.toString());
    const html = await res.text();
    expect(res.status).toBe(400);
    expectPage(res, html);
    expect(html).toContain('This sign-in link is invalid or has expired.');
    expect(html).toContain(`<a href="${new URL(bff.redirectUri).origin}/">Return to the application</a>`);
  });

  it('has no link to follow when the link was never valid', async () => {
    const html = await (await browse(`${app.url}/login/native/lt_not-a-handle`)).text();
    expect(html).toContain('This sign-in link is invalid or has expired.');
    expect(html).not.toContain('<a ');
  });
});
