/**
 * The account email flows in a real browser (Debian's chromium through puppeteer-core) with a real
 * SMTP server (aiosmtpd): a person opens the link the service mailed them, sets a password on the
 * hosted page, and signs in to the application with it; and a person who forgot their password
 * asks for a link from the sign-in form, follows it and signs in with the new one; and an invited
 * person of a tenant that requires two-step verification sets a password, enrols an authenticator
 * (the key shown on the page) and signs in with its codes. The application is a tiny redirect
 * target on loopback that shows the code it got.
 */
import { decodeJwt } from 'jose';
import { Secret, TOTP } from 'otpauth';
import type { Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { adminClient, type AdminClient } from './support/admin.js';
import { authorizeUrl, pkcePair, tokenRequest } from './support/bff.js';
import { startCodeCatcher, type CodeCatcher } from './support/code-catcher.js';
import { createNativeUser, nativeTenant, type NativeTenant } from './support/native-tenant.js';
import { peerOrSkip } from './peers/peer-unavailable.js';
import { startChromium, type ChromiumPeer } from './peers/chromium.js';
import { parseMail, SmtpServer } from './peers/smtp.js';

let app: TestApp | undefined;
let admin: AdminClient;
let chromium: ChromiumPeer | undefined;
let smtp: SmtpServer | undefined;
let unavailable: string | undefined;
let callback: CodeCatcher | undefined;
let redirectUri = '';

beforeAll(async () => {
  const browser = await peerOrSkip('chromium', startChromium);
  const mail = await peerOrSkip('aiosmtpd', () => SmtpServer.start());
  chromium = browser.peer;
  smtp = mail.peer;
  unavailable = browser.unavailable ?? mail.unavailable;
  if (unavailable) return;
  callback = await startCodeCatcher();
  redirectUri = callback.redirectUri;
  app = await startTestApp({
    SMTP_URL: smtp!.url,
    RATE_LIMIT_LOGIN_PER_MINUTE: '1000',
    RATE_LIMIT_AUTHORIZE_PER_MINUTE: '1000',
    RATE_LIMIT_FORGOT_PER_MINUTE: '1000',
  });
  admin = await adminClient(app);
}, 180_000);

afterAll(async () => {
  // The browser first: it holds connections to the service open (some opened ahead of need).
  await chromium?.close();
  await app?.close();
  await smtp?.dispose();
  await callback?.close();
});

async function mailedLink(to: string, n = 1): Promise<string> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const links = smtp!
      .messages()
      .map(parseMail)
      .filter((m) => m.to.includes(to))
      .map((m) => /https?:\/\/\S+\/account\/[a-z-]+\/ak_[0-9a-f]{32}_[A-Za-z0-9_-]{43}/.exec(m.text ?? '')?.[0])
      .filter((l): l is string => l !== undefined);
    if (links.length >= n) return `${app!.url}${new URL(links[n - 1]!).pathname}`;
    if (Date.now() > deadline) throw new Error(`no mail to ${to}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The browser signs in from the application's authorization request (with `secondStep` for the
 * pages after the password); returns the tokens the BFF redeems.
 */
async function signInInBrowser(
  t: NativeTenant,
  username: string,
  password: string,
  secondStep?: (page: Page) => Promise<void>,
): Promise<Record<string, unknown>> {
  const page = await chromium!.browser.newPage();
  try {
    const { verifier, challenge } = pkcePair();
    await page.goto(authorizeUrl(app!.url, t.bff, { org: t.slug, state: 'st', code_challenge: challenge, code_challenge_method: 'S256' }));
    await page.waitForSelector('form input[name="password"]');
    await page.type('#username', username);
    await page.type('#password', password);
    await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
    if (secondStep) await secondStep(page);
    expect(page.url().startsWith(redirectUri), await page.content()).toBe(true);
    const code = await page.$eval('#code', (e) => e.textContent);
    const res = await tokenRequest(app!.url, t.bff, {
      grant_type: 'authorization_code',
      code,
      redirect_uri: redirectUri,
      code_verifier: verifier,
    });
    expect(res.status).toBe(200);
    return (await res.json()) as Record<string, unknown>;
  } finally {
    await page.close();
  }
}

const totpOf = (secret: string) => new TOTP({ algorithm: 'SHA1', digits: 6, period: 30, secret: Secret.fromBase32(secret) });

/** Sets the password of an invitation link in the browser. */
async function acceptInvitation(link: string, password: string): Promise<void> {
  const page = await chromium!.browser.newPage();
  await page.goto(link);
  expect(await page.title()).toBe('Set your password');
  await page.type('#password', password);
  await page.type('#confirm', password);
  await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
  expect(await page.$eval('h1', (e) => e.textContent)).toBe('Your password is set');
  await page.close();
}

describe('account email flows in a real browser', { timeout: 180_000 }, () => {
  it('invitation: the mailed link → set password on the hosted page → sign in to the application', async (ctx) => {
    if (unavailable) ctx.skip(unavailable);
    const t = await nativeTenant(app!, admin, 'browser-invite', redirectUri);
    await createNativeUser(admin, t.id, { username: 'ines', email: 'ines@browser.example' });
    const link = await mailedLink('ines@browser.example');

    const page = await chromium!.browser.newPage();
    await page.goto(link);
    expect(await page.title()).toBe('Set your password');
    await page.type('#password', 'a fine invitation passphrase');
    await page.type('#confirm', 'a fine invitation passphrase');
    await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
    expect(await page.$eval('h1', (e) => e.textContent)).toBe('Your password is set');
    // Back (or a second click in the mail): the link is spent, and the page says so.
    await page.goto(link);
    expect(await page.title()).toBe('Account problem');
    await page.close();

    const tokens = await signInInBrowser(t, 'ines', 'a fine invitation passphrase');
    expect(tokens['access_token']).toEqual(expect.any(String));
  });

  it('forgot password: the link on the sign-in form → the mailed link → a new password → sign in with it', async (ctx) => {
    if (unavailable) ctx.skip(unavailable);
    const t = await nativeTenant(app!, admin, 'browser-forgot', redirectUri);
    await createNativeUser(admin, t.id, { username: 'jon', email: 'jon@browser.example', password: 'the password jon forgot' });

    const page = await chromium!.browser.newPage();
    const { challenge } = pkcePair();
    await page.goto(authorizeUrl(app!.url, t.bff, { org: t.slug, state: 'st', code_challenge: challenge, code_challenge_method: 'S256' }));
    await Promise.all([page.waitForNavigation(), page.click('a[href^="/account/forgot/"]')]);
    expect(await page.title()).toBe('Forgot your password?');
    await page.type('#username', 'jon@browser.example');
    await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
    expect(await page.$eval('h1', (e) => e.textContent)).toBe('Check your email');
    // "Back to sign in" returns to the same sign-in.
    await Promise.all([page.waitForNavigation(), page.click('a[href^="/login/native/"]')]);
    expect(await page.title()).toBe('Sign in');

    await page.goto(await mailedLink('jon@browser.example'));
    expect(await page.title()).toBe('Choose a new password');
    await page.type('#password', 'a brand new passphrase for jon');
    await page.type('#confirm', 'a brand new passphrase for jon');
    await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
    expect(await page.$eval('h1', (e) => e.textContent)).toBe('Your password is set');
    await page.close();

    await expect(signInInBrowser(t, 'jon', 'a brand new passphrase for jon')).resolves.toMatchObject({ token_type: 'Bearer' });
  });

  it('invitation → set password → sign in → enrol TOTP → sign in with TOTP, where the tenant requires it', async (ctx) => {
    if (unavailable) ctx.skip(unavailable);
    const t = await nativeTenant(app!, admin, 'browser-mfa', redirectUri, { mfa: 'required' });
    await createNativeUser(admin, t.id, { username: 'kai', email: 'kai@browser.example' });
    await acceptInvitation(await mailedLink('kai@browser.example'), 'kai has a long passphrase');

    let secret = '';
    const enrolled = await signInInBrowser(t, 'kai', 'kai has a long passphrase', async (page) => {
      expect(await page.$eval('h1', (e) => e.textContent)).toBe('Set up two-step verification');
      expect(await page.$eval('img', (e) => e.getAttribute('src')?.startsWith('data:image/png;base64,'))).toBe(true);
      secret = await page.$eval('main code', (e) => e.textContent);
      await page.type('#code', totpOf(secret).generate());
      await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
      expect(await page.$eval('h1', (e) => e.textContent)).toBe('Your recovery codes');
      expect((await page.$$('li code')).length).toBe(10);
      await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
    });
    expect(decodeJwt(enrolled['access_token'] as string)['amr']).toEqual(['pwd', 'otp', 'mfa']);

    // The next sign-in asks for a code; the one used at enrolment would be a replay, so the next period's.
    const again = await signInInBrowser(t, 'kai', 'kai has a long passphrase', async (page) => {
      expect(await page.$eval('h1', (e) => e.textContent)).toBe('Two-step verification');
      await page.type('#code', totpOf(secret).generate({ timestamp: Date.now() + 30_000 }));
      await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
    });
    expect(decodeJwt(again['access_token'] as string)['acr']).toBe('urn:auth-service:acr:mfa');
  });
});
