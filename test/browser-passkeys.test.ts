/**
 * Passkeys in a real browser (Debian's chromium through puppeteer-core) with the DevTools virtual
 * authenticator (`WebAuthn.addVirtualAuthenticator`: CTAP2, internal transport, resident keys and
 * user verification): a person signs in with their password, accepts the offer to add a passkey
 * (the page's own script runs the ceremony), then signs in with the passkey alone; and, where a
 * second step is asked for, uses it after the password. WebAuthn needs a domain as RP ID and a
 * secure context, so the service's PUBLIC_URL here is http://localhost.
 */
import { decodeJwt } from 'jose';
import type { CDPSession, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalhostTestApp, type TestApp } from './support/app-harness.js';
import { adminClient, type AdminClient } from './support/admin.js';
import { authorizeUrl, pkcePair, tokenRequest } from './support/bff.js';
import { startCodeCatcher, type CodeCatcher } from './support/code-catcher.js';
import { createNativeUser, nativeTenant, type NativeTenant } from './support/native-tenant.js';
import { peerOrSkip } from './peers/peer-unavailable.js';
import { startChromium, type ChromiumPeer } from './peers/chromium.js';
import { ACR_MFA } from '../src/tokens/token-issuer.service.js';

let app: TestApp | undefined;
let admin: AdminClient;
let chromium: ChromiumPeer | undefined;
let unavailable: string | undefined;
let callback: CodeCatcher | undefined;
let redirectUri = '';
let origin = '';
const PASSWORD = 'a passphrase before passkeys';

beforeAll(async () => {
  const browser = await peerOrSkip('chromium', startChromium);
  chromium = browser.peer;
  unavailable = browser.unavailable;
  if (unavailable) return;
  callback = await startCodeCatcher();
  redirectUri = callback.redirectUri;
  const started = await startLocalhostTestApp({ RATE_LIMIT_LOGIN_PER_MINUTE: '1000', RATE_LIMIT_AUTHORIZE_PER_MINUTE: '1000' });
  app = started;
  origin = started.origin;
  admin = await adminClient(app);
}, 180_000);

afterAll(async () => {
  // The browser first: it holds connections to the service open (some opened ahead of need).
  await chromium?.close();
  await app?.close();
  await callback?.close();
});

/** A page with its own virtual platform authenticator (it answers without a prompt, user verified). */
async function pageWithAuthenticator(): Promise<{ page: Page; cdp: CDPSession; authenticatorId: string }> {
  const page = await chromium!.browser.newPage();
  const cdp = await page.createCDPSession();
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return { page, cdp, authenticatorId };
}

/** Opens the application's authorization request on `page`; returns the PKCE verifier. */
async function startSignIn(page: Page, t: NativeTenant, extra: Record<string, string> = {}): Promise<string> {
  const { verifier, challenge } = pkcePair();
  await page.goto(
    authorizeUrl(origin, t.bff, { org: t.slug, state: 'st', code_challenge: challenge, code_challenge_method: 'S256', ...extra }),
  );
  await page.waitForSelector('form input[name="password"]');
  return verifier;
}

async function submitPassword(page: Page, username: string): Promise<void> {
  await page.type('#username', username);
  await page.type('#password', PASSWORD);
  await Promise.all([page.waitForNavigation(), page.click('form:not([data-webauthn]) button[type="submit"]')]);
}

/** Back at the application: the access token's claims from the code it got. */
async function claimsAtApp(page: Page, t: NativeTenant, verifier: string): Promise<Record<string, unknown>> {
  await page.waitForSelector('#code');
  expect(page.url().startsWith(redirectUri), await page.content()).toBe(true);
  const code = await page.$eval('#code', (e) => e.textContent);
  const res = await tokenRequest(app!.url, t.bff, {
    grant_type: 'authorization_code',
    code,
    redirect_uri: redirectUri,
    code_verifier: verifier,
  });
  expect(res.status).toBe(200);
  return decodeJwt(((await res.json()) as { access_token: string }).access_token);
}

describe('passkeys in a real browser (virtual authenticator)', { timeout: 180_000 }, () => {
  it('password → add a passkey on the offer → sign in with the passkey alone; the counter and flags are stored', async (ctx) => {
    if (unavailable) ctx.skip(unavailable);
    const t = await nativeTenant(app!, admin, 'browser-passkey', redirectUri, { passkeys: 'allowed' });
    const user = await createNativeUser(admin, t.id, { username: 'pia', password: PASSWORD });
    const { page, cdp, authenticatorId } = await pageWithAuthenticator();
    try {
      let verifier = await startSignIn(page, t);
      await submitPassword(page, 'pia');
      expect(await page.$eval('h1', (e) => e.textContent)).toBe('Sign in faster with a passkey');
      // The script revealed the passkey form: this browser has WebAuthn.
      await page.waitForSelector('section[data-passkey]:not([hidden])');
      await page.type('#passkey-name', 'Test laptop');
      await Promise.all([page.waitForNavigation(), page.click('form[data-webauthn="create"] button[type="submit"]')]);
      expect((await claimsAtApp(page, t, verifier))['amr']).toEqual(['pwd']);

      const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
      expect(credentials).toHaveLength(1);
      expect(credentials[0]!.isResidentCredential).toBe(true);
      const factors = (await (await admin.call('GET', `/admin/v1/tenants/${t.id}/users/${user.id}/factors`)).json()) as {
        passkeys: { name: string; deviceType: string; backedUp: boolean; transports: string[] }[];
      };
      expect(factors.passkeys).toEqual([expect.objectContaining({ name: 'Test laptop', deviceType: 'singleDevice', backedUp: false })]);

      verifier = await startSignIn(page, t);
      await page.waitForSelector('section[data-passkey]:not([hidden])');
      await Promise.all([page.waitForNavigation(), page.click('form[data-webauthn="get"] button[type="submit"]')]);
      const claims = await claimsAtApp(page, t, verifier);
      expect(claims['sub']).toBe(user.id);
      expect(claims['amr']).toEqual(['hwk', 'mfa']);
      expect(claims['acr']).toBe(ACR_MFA);
      const after = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
      expect(after.credentials[0]!.signCount).toBeGreaterThan(credentials[0]!.signCount);

      // Where a second step is asked for (acr_values), the passkey is it, after the password.
      verifier = await startSignIn(page, t, { acr_values: ACR_MFA });
      await submitPassword(page, 'pia');
      expect(await page.$eval('h1', (e) => e.textContent)).toBe('Two-step verification');
      await page.waitForSelector('section[data-passkey]:not([hidden])');
      await Promise.all([page.waitForNavigation(), page.click('form[data-webauthn="get"] button[type="submit"]')]);
      expect((await claimsAtApp(page, t, verifier))['amr']).toEqual(['pwd', 'hwk', 'mfa']);
    } finally {
      await page.close();
    }
  });

  it('a browser without the passkey stays on the sign-in page with a message, and the password still works', async (ctx) => {
    if (unavailable) ctx.skip(unavailable);
    const t = await nativeTenant(app!, admin, 'browser-passkey-none', redirectUri, { passkeys: 'allowed' });
    await createNativeUser(admin, t.id, { username: 'quin', password: PASSWORD });
    // An authenticator that holds no credential for this site: the browser's request fails.
    const { page } = await pageWithAuthenticator();
    try {
      const verifier = await startSignIn(page, t);
      await page.waitForSelector('section[data-passkey]:not([hidden])');
      await page.click('form[data-webauthn="get"] button[type="submit"]');
      await page.waitForFunction(() => (document.querySelector('[data-passkey-status]')?.textContent ?? '') !== '', { timeout: 120_000 });
      expect(page.url()).toContain('/login/native/');
      await submitPassword(page, 'quin');
      expect(await page.$eval('h1', (e) => e.textContent)).toBe('Sign in faster with a passkey');
      await Promise.all([page.waitForNavigation(), page.click('form:not([data-webauthn]) button[type="submit"]')]);
      expect((await claimsAtApp(page, t, verifier))['amr']).toEqual(['pwd']);
    } finally {
      await page.close();
    }
  });
});
