/**
 * Every hosted page through axe-core (WCAG 2.1 A and AA rules) in a real browser (Debian's
 * chromium through puppeteer-core): the sign-in form (with its passkey form), its error state,
 * the two-step pages (offer, enrolment with the QR code, recovery codes, verification), the
 * passkey offer, the account pages (forgot password, its answer, set password from an invitation),
 * the error page, the signed-out page and the test-login result. The check fails on any serious or
 * critical violation, and on any page wider than a 320 px screen. axe is injected with the page's CSP bypassed (the pages allow no foreign
 * script, by design); the pages themselves are served exactly as to a person.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Secret, TOTP } from 'otpauth';
import type { Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalhostTestApp, type TestApp } from './support/app-harness.js';
import { adminClient, type AdminClient } from './support/admin.js';
import { authorizeUrl, pkcePair } from './support/bff.js';
import { createNativeUser, nativeTenant, type NativeTenant } from './support/native-tenant.js';
import { peerOrSkip } from './peers/peer-unavailable.js';
import { startChromium, type ChromiumPeer } from './peers/chromium.js';
import { parseMail } from './peers/smtp.js';
import { seriousViolations } from './support/axe.js';

const PASSWORD = 'an accessible passphrase';

let app: TestApp | undefined;
let admin: AdminClient;
let chromium: ChromiumPeer | undefined;
let unavailable: string | undefined;
let origin = '';
let tenant: NativeTenant;

beforeAll(async () => {
  const browser = await peerOrSkip('chromium', startChromium);
  chromium = browser.peer;
  unavailable = browser.unavailable;
  if (unavailable) return;
  const started = await startLocalhostTestApp({ RATE_LIMIT_LOGIN_PER_MINUTE: '1000', RATE_LIMIT_AUTHORIZE_PER_MINUTE: '1000' });
  app = started;
  origin = started.origin;
  admin = await adminClient(app);
  tenant = await nativeTenant(app, admin, 'a11y', 'http://127.0.0.1:9/cb', { mfa: 'optional', passkeys: 'allowed' });
}, 180_000);

afterAll(async () => {
  await chromium?.close();
  await app?.close();
});

/** axe on the page as it is now: the serious and critical violations, readable in a failure. */
async function audit(page: Page, name: string): Promise<void> {
  const grave = await seriousViolations(page);
  expect(grave, `${name}: ${JSON.stringify(grave, null, 1)}`).toEqual([]);
  // Responsive down to 320 px: nothing wider than the screen.
  const viewport = page.viewport();
  await page.setViewport({ width: 320, height: 640 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  expect(overflow, `${name} scrolls sideways at 320 px`).toBeLessThanOrEqual(0);
  if (viewport) await page.setViewport(viewport);
  audited.push(name);
}

const audited: string[] = [];

async function newPage(): Promise<Page> {
  const page = await chromium!.browser.newPage();
  await page.setBypassCSP(true);
  return page;
}

async function openSignIn(page: Page): Promise<void> {
  const { challenge } = pkcePair();
  await page.goto(
    authorizeUrl(origin, tenant.bff, { org: tenant.slug, state: 'st', code_challenge: challenge, code_challenge_method: 'S256' }),
  );
  await page.waitForSelector('#password');
}

async function submit(page: Page, selector = 'form:not([data-webauthn]) button[type="submit"]'): Promise<void> {
  await Promise.all([page.waitForNavigation(), page.click(selector)]);
}

async function signIn(page: Page, username: string, password = PASSWORD): Promise<void> {
  await openSignIn(page);
  await page.type('#username', username);
  await page.type('#password', password);
  await submit(page);
}

const h1 = (page: Page) => page.$eval('h1', (e) => e.textContent);

describe('accessibility of the hosted pages (axe-core in chromium)', { timeout: 180_000 }, () => {
  it('sign-in, its error state, the two-step pages and the passkey offer have no serious or critical violation', async (ctx) => {
    if (unavailable) ctx.skip(unavailable);
    await createNativeUser(admin, tenant.id, { username: 'ally', password: PASSWORD });
    await createNativeUser(admin, tenant.id, { username: 'bo', password: PASSWORD });
    const page = await newPage();
    try {
      await openSignIn(page);
      await audit(page, 'sign-in form');
      await page.type('#username', 'ally');
      await page.type('#password', 'not the password');
      await submit(page);
      expect(await page.$eval('.error', (e) => e.textContent)).toContain('Invalid');
      await audit(page, 'sign-in form with an error');

      await signIn(page, 'ally');
      expect(await h1(page)).toBe('Protect your account');
      await audit(page, 'two-step offer');
      await submit(page, 'form:first-of-type button[type="submit"]');
      expect(await h1(page)).toBe('Set up two-step verification');
      await audit(page, 'two-step enrolment');
      const secret = await page.$eval('main code', (e) => e.textContent);
      const totp = new TOTP({ algorithm: 'SHA1', digits: 6, period: 30, secret: Secret.fromBase32(secret) });
      await page.type('#code', '000000');
      await submit(page, 'form:first-of-type button[type="submit"]');
      await audit(page, 'two-step enrolment with an error');
      await page.type('#code', totp.generate());
      await submit(page, 'form:first-of-type button[type="submit"]');
      expect(await h1(page)).toBe('Your recovery codes');
      await audit(page, 'recovery codes');

      await signIn(page, 'ally');
      expect(await h1(page)).toBe('Two-step verification');
      await audit(page, 'two-step verification');

      await signIn(page, 'bo');
      await submit(page, 'form:nth-of-type(2) button[type="submit"]'); // Skip the TOTP offer
      expect(await h1(page)).toBe('Sign in faster with a passkey');
      await audit(page, 'passkey offer');
    } finally {
      await page.close();
    }
  });

  it('the account pages, the error page, the signed-out page and the test-login result have none either', async (ctx) => {
    if (unavailable) ctx.skip(unavailable);
    const page = await newPage();
    try {
      await openSignIn(page);
      await submit(page, 'a[href^="/account/forgot/"]');
      expect(await h1(page)).toBe('Forgot your password?');
      await audit(page, 'forgot password');
      await page.type('#username', 'nobody@a11y.example');
      await submit(page, 'button[type="submit"]');
      expect(await h1(page)).toBe('Check your email');
      await audit(page, 'forgot password answer');

      // An invitation: the link from the dev mailbox (no SMTP server here).
      await createNativeUser(admin, tenant.id, { username: 'cy', email: 'cy@a11y.example' });
      const mailbox = join(app!.config.DATA_DIR, 'mailbox');
      let link: string | undefined;
      for (let i = 0; i < 200 && !link; i++) {
        const files = (existsSync(mailbox) ? readdirSync(mailbox, { withFileTypes: true }) : []).filter((f) => f.name.endsWith('.eml'));
        for (const f of files)
          link ??= /https?:\/\/\S+\/account\/password\/ak_[0-9a-f]{32}_[A-Za-z0-9_-]{43}/.exec(
            parseMail(readFileSync(join(mailbox, f.name), 'utf8')).text ?? '',
          )?.[0];
        if (!link) await new Promise((r) => setTimeout(r, 50));
      }
      expect(link).toBeDefined();
      await page.goto(link!);
      expect(await page.title()).toBe('Set your password');
      await audit(page, 'set password');
      await page.type('#password', 'a long enough passphrase');
      await page.type('#confirm', 'another long passphrase');
      await submit(page, 'button[type="submit"]');
      await audit(page, 'set password with an error');

      await page.goto(`${origin}/account/password/ak_00000000000000000000000000000000_${'A'.repeat(43)}`);
      await audit(page, 'account error page');
      await page.goto(`${origin}/login/native/not-a-handle`);
      await audit(page, 'sign-in error page');
      await page.goto(`${origin}/oauth2/logout`);
      await audit(page, 'signed out');
      await page.goto(`${origin}/login/test-complete?outcome=success`);
      await audit(page, 'test login succeeded');
      await page.goto(`${origin}/login/test-complete?outcome=failed&error=access_denied`);
      await audit(page, 'test login failed');
    } finally {
      await page.close();
    }
    expect(audited.length).toBeGreaterThanOrEqual(10);
  });
});
