/**
 * The hosted pages under two tenants' brandings in a real browser (Debian's chromium through
 * puppeteer-core): the colours, logo, heading, footer, legal links and support contact each
 * tenant set through the admin API are what a person sees (computed styles, the logo loaded
 * under the page's CSP), the pages stay free of serious accessibility violations (axe-core, which
 * includes colour contrast), and one tenant's brand never shows on the other's pages. With
 * SCREENSHOTS_DIR set (`npm run screenshots` sets docs/screenshots), each page is saved as a PNG.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Secret, TOTP } from 'otpauth';
import type { Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalhostTestApp, type TestApp } from './support/app-harness.js';
import { adminClient, type AdminClient } from './support/admin.js';
import { authorizeUrl, pkcePair } from './support/bff.js';
import { createNativeUser, nativeTenant, type NativeTenant } from './support/native-tenant.js';
import { png } from './support/images.js';
import { seriousViolations } from './support/axe.js';
import { peerOrSkip } from './peers/peer-unavailable.js';
import { startChromium, type ChromiumPeer } from './peers/chromium.js';

const SHOTS = process.env['SCREENSHOTS_DIR'];
const PASSWORD = 'a branded passphrase';

let app: TestApp | undefined;
let admin: AdminClient;
let chromium: ChromiumPeer | undefined;
let unavailable: string | undefined;
let origin = '';

interface Branded {
  tenant: NativeTenant;
  name: string;
  colors: { primary: string; background: string; text: string };
  logo: boolean;
  heading: string;
  footer: string;
}
const brands: Branded[] = [];

const rgb = (hex: string) => `rgb(${[1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)).join(', ')})`;

async function brand(slug: string, body: Record<string, unknown>, logo?: Buffer): Promise<NativeTenant> {
  const t = await nativeTenant(app!, admin, slug, 'http://127.0.0.1:9/cb', { mfa: 'optional', passkeys: 'allowed' });
  const put = await admin.call('PUT', `/admin/v1/tenants/${t.id}/branding`, body, { 'if-match': '"v0"' });
  expect(put.status, await put.clone().text()).toBe(200);
  if (logo) {
    const res = await fetch(`${app!.url}/admin/v1/tenants/${t.id}/branding/logo`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${admin.token}`, 'content-type': 'image/png' },
      body: new Uint8Array(logo),
    });
    expect(res.status, await res.clone().text()).toBe(200);
  }
  await createNativeUser(admin, t.id, { username: 'pat', password: PASSWORD });
  await createNativeUser(admin, t.id, { username: 'quinn', password: PASSWORD });
  return t;
}

beforeAll(async () => {
  const browser = await peerOrSkip('chromium', startChromium);
  chromium = browser.peer;
  unavailable = browser.unavailable;
  if (unavailable) return;
  const started = await startLocalhostTestApp({ RATE_LIMIT_LOGIN_PER_MINUTE: '1000', RATE_LIMIT_AUTHORIZE_PER_MINUTE: '1000' });
  app = started;
  origin = started.origin;
  admin = await adminClient(app);
  const acme = { primary: '#0b5cad', background: '#ffffff', text: '#1a1a1a' };
  brands.push({
    name: 'acme',
    colors: acme,
    logo: true,
    heading: 'Acme staff sign-in',
    footer: 'Acme Corporation, 1 Main Street, Springfield',
    tenant: await brand(
      'acme-brand',
      {
        displayName: 'Acme',
        colors: acme,
        supportContact: 'it-help@acme.example',
        texts: {
          heading: 'Acme staff sign-in',
          footer: 'Acme Corporation, 1 Main Street, Springfield',
          legalLinks: [{ label: 'Privacy', url: 'https://acme.example/privacy' }],
        },
      },
      png(160, 40, [11, 92, 173]),
    ),
  });
  const globex = { primary: '#5b3fd6', background: '#1d1d35', text: '#f5f5f5' };
  brands.push({
    name: 'globex',
    colors: globex,
    logo: false,
    heading: 'Globex employees',
    footer: 'Globex — internal use only',
    tenant: await brand('globex-brand', {
      displayName: 'Globex',
      colors: globex,
      supportContact: 'https://help.globex.example',
      texts: { heading: 'Globex employees', footer: 'Globex — internal use only' },
    }),
  });
}, 180_000);

afterAll(async () => {
  await chromium?.close();
  await app?.close();
});

/** What the person sees, checked; then axe; then the screenshot when asked for. */
async function check(page: Page, b: Branded, name: string): Promise<void> {
  const seen = await page.evaluate(() => {
    const img = document.querySelector<HTMLImageElement>('.brand img');
    const button = document.querySelector('button:not([hidden])');
    return {
      background: getComputedStyle(document.querySelector('main')!).backgroundColor,
      text: getComputedStyle(document.querySelector('main')!).color,
      button: button ? getComputedStyle(button).backgroundColor : undefined,
      logoWidth: img?.naturalWidth ?? 0,
      heading: document.querySelector('.brand p')?.textContent ?? '',
      footer: document.querySelector('footer')?.textContent ?? '',
    };
  });
  expect(seen.background, name).toBe(rgb(b.colors.background));
  expect(seen.text, name).toBe(rgb(b.colors.text));
  if (seen.button !== undefined) expect(seen.button, name).toBe(rgb(b.colors.primary));
  // Loaded, i.e. allowed by the page's CSP and served by the service.
  if (b.logo) expect(seen.logoWidth, `${name}: the logo`).toBe(160);
  else expect(seen.logoWidth).toBe(0);
  expect(seen.heading).toBe(b.heading);
  expect(seen.footer).toContain(b.footer);
  for (const other of brands.filter((o) => o !== b)) expect(seen.footer).not.toContain(other.footer);
  expect(
    (await seriousViolations(page)).map((v) => v.id),
    name,
  ).toEqual([]);
  if (SHOTS) {
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: join(SHOTS, `${b.name}-${name}.png`), fullPage: true });
  }
}

async function submit(page: Page, selector = 'form:not([data-webauthn]) button[type="submit"]'): Promise<void> {
  await Promise.all([page.waitForNavigation(), page.click(selector)]);
}

describe('hosted pages under two brandings (chromium)', { timeout: 180_000 }, () => {
  it('applies each tenant’s brand to its sign-in, error, two-step, passkey and account pages', async (ctx) => {
    if (unavailable) ctx.skip(unavailable);
    for (const b of brands) {
      const page = await chromium!.browser.newPage();
      await page.setViewport({ width: 480, height: 720 });
      // axe needs its script on the page; the pages' own CSP admits none from elsewhere.
      await page.setBypassCSP(true);
      try {
        const { challenge } = pkcePair();
        const start = authorizeUrl(origin, b.tenant.bff, {
          org: b.tenant.slug,
          state: 'st',
          code_challenge: challenge,
          code_challenge_method: 'S256',
        });
        await page.goto(start);
        // The brand's display name, not the tenant's.
        expect(await page.$eval('main p strong', (e) => e.textContent)).toBe(b.name === 'acme' ? 'Acme' : 'Globex');
        await check(page, b, 'sign-in');
        await page.type('#username', 'pat');
        await page.type('#password', 'not the password');
        await submit(page);
        await check(page, b, 'sign-in-error');
        // The form keeps the username it was given.
        expect(await page.$eval('#username', (e) => (e as HTMLInputElement).value)).toBe('pat');
        await page.type('#password', PASSWORD);
        await submit(page);
        expect(await page.$eval('h1', (e) => e.textContent)).toBe('Protect your account');
        await check(page, b, 'two-step-offer');
        await submit(page, 'form:nth-of-type(2) button[type="submit"]');
        expect(await page.$eval('h1', (e) => e.textContent)).toBe('Sign in faster with a passkey');
        await check(page, b, 'passkey-offer');
        // Another user sets up two-step verification: the enrolment page and the recovery codes.
        await page.goto(start);
        await page.type('#username', 'quinn');
        await page.type('#password', PASSWORD);
        await submit(page);
        await submit(page, 'form:first-of-type button[type="submit"]');
        expect(await page.$eval('h1', (e) => e.textContent)).toBe('Set up two-step verification');
        await check(page, b, 'two-step-enrolment');
        const secret = await page.$eval('main code', (e) => e.textContent);
        await page.type('#code', new TOTP({ algorithm: 'SHA1', digits: 6, period: 30, secret: Secret.fromBase32(secret) }).generate());
        await submit(page, 'form:first-of-type button[type="submit"]');
        expect(await page.$eval('h1', (e) => e.textContent)).toBe('Your recovery codes');
        await check(page, b, 'recovery-codes');
        await page.goto(start);
        await submit(page, 'a[href^="/account/forgot/"]');
        await check(page, b, 'forgot-password');
        // A sign-in link that names the tenant but no open sign-in.
        await page.goto(start);
        const handleUrl = page.url();
        await page.goto(handleUrl.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')));
        expect(await page.$eval('h1', (e) => e.textContent)).toBe('Sign-in problem');
        await check(page, b, 'expired');
        // A sign-in whose CSRF cookie is gone: the form cannot be posted.
        await page.goto(start);
        const client = await page.createCDPSession();
        await client.send('Network.clearBrowserCookies');
        await page.type('#username', 'pat');
        await page.type('#password', PASSWORD);
        await submit(page);
        expect(await page.$eval('h1', (e) => e.textContent)).toBe('Sign-in problem');
        await check(page, b, 'error');
      } finally {
        await page.close();
      }
    }
  });
});
