/**
 * Passkeys of native users (issue #17) over HTTP, with a software authenticator made in the test
 * (test/support/soft-authenticator.ts) — not a browser: these tests send what an honest browser
 * never would (another origin or RP ID, a replayed assertion, a stale counter, a passkey of another
 * user or tenant). The honest path in a real browser with Chromium's virtual authenticator is
 * test/browser-passkeys.test.ts. Every refusal is checked to change nothing: no code is issued and
 * the passkey's counter and last use stay as they were.
 */
import { decodeJwt } from 'jose';
import type { PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { adminClient, type AdminClient } from './support/admin.js';
import { authorizeUrl, CookieJar, get, hiddenInput, pkcePair, postForm, tokenRequest } from './support/bff.js';
import { createNativeUser, nativeTenant, type NativeTenant } from './support/native-tenant.js';
import { passkeyOptionsOn, SoftAuthenticator } from './support/soft-authenticator.js';
import { ACR_MFA } from '../src/tokens/token-issuer.service.js';

let app: TestApp;
let admin: AdminClient;
let tenant: NativeTenant;
let other: NativeTenant;
let off: NativeTenant;
let authenticator: SoftAuthenticator;
const PASSWORD = 'correct horse battery staple';
const ids: Record<string, string> = {};

beforeAll(async () => {
  app = await startTestApp({ RATE_LIMIT_LOGIN_PER_MINUTE: '1000', RATE_LIMIT_AUTHORIZE_PER_MINUTE: '1000' });
  admin = await adminClient(app);
  authenticator = new SoftAuthenticator(new URL(app.config.issuer).origin, new URL(app.config.issuer).hostname);
  tenant = await nativeTenant(app, admin, 'pk-main', undefined, { passkeys: 'allowed' });
  other = await nativeTenant(app, admin, 'pk-other', undefined, { passkeys: 'allowed' });
  off = await nativeTenant(app, admin, 'pk-off');
  for (const [t, u] of [
    [tenant, 'ada'],
    [tenant, 'bob'],
    [tenant, 'cy'],
    [other, 'oli'],
    [off, 'fay'],
  ] as const)
    ids[u] = (await createNativeUser(admin, t.id, { username: u, password: PASSWORD })).id;
}, 120_000);
afterAll(async () => app.close());

/** One login under way: its cookie jar, PKCE verifier and the page (or redirect) it is on. */
interface Flow {
  t: NativeTenant;
  jar: CookieJar;
  verifier: string;
  res: Response;
  html: string;
}

const pageOf = async (res: Response) => (res.status === 200 || res.status === 401 || res.status === 409 ? await res.text() : '');

async function start(t: NativeTenant, extra: Record<string, string> = {}): Promise<Flow> {
  const { verifier, challenge } = pkcePair();
  const jar = new CookieJar();
  const authorize = await get(
    authorizeUrl(app.url, t.bff, { org: t.slug, state: 's', code_challenge: challenge, code_challenge_method: 'S256', ...extra }),
  );
  expect(authorize.status).toBe(302);
  const res = await get(authorize.headers.get('location')!, jar);
  return { t, jar, verifier, res, html: await pageOf(res) };
}

/** Posts one of the page's forms: the first whose action ends with `suffix`. */
async function post(flow: Flow, suffix: string, fields: Record<string, string>): Promise<Flow> {
  const action = [...flow.html.matchAll(/<form[^>]*action="([^"]*)"/g)]
    .map((m) => m[1]!.replace(/&amp;/g, '&'))
    .find((a) => a.endsWith(suffix));
  expect(action, `a form posting to …${suffix}`).toBeDefined();
  const res = await postForm(new URL(action!, app.url).toString(), { csrf: hiddenInput(flow.html, 'csrf')!, ...fields }, { jar: flow.jar });
  return { ...flow, res, html: await pageOf(res) };
}

const password = (flow: Flow, username: string) => post(flow, `/login/native/${handleOf(flow)}`, { username, password: PASSWORD });
const handleOf = (flow: Flow) => /\/login\/native\/([^/"]+)/.exec(flow.html)![1]!;
const secondStep = (flow: Flow, fields: Record<string, string>) => post(flow, '/second-step', fields);

async function tokensOf(flow: Flow): Promise<Record<string, unknown>> {
  expect(flow.res.status, flow.html).toBe(302);
  const code = new URL(flow.res.headers.get('location')!).searchParams.get('code');
  expect(code).toBeTruthy();
  const res = await tokenRequest(app.url, flow.t.bff, {
    grant_type: 'authorization_code',
    code: code!,
    redirect_uri: flow.t.bff.redirectUri,
    code_verifier: flow.verifier,
  });
  expect(res.status).toBe(200);
  return decodeJwt(((await res.json()) as { access_token: string }).access_token);
}

const requestOptions = (flow: Flow) => passkeyOptionsOn(flow.html) as PublicKeyCredentialRequestOptionsJSON;
const creationOptions = (flow: Flow) => passkeyOptionsOn(flow.html) as PublicKeyCredentialCreationOptionsJSON;

async function factorsOf(t: NativeTenant, user: string) {
  const res = await admin.call('GET', `/admin/v1/tenants/${t.id}/users/${ids[user]}/factors`);
  expect(res.status).toBe(200);
  return (await res.json()) as {
    totp: { confirmed: boolean };
    passkeys: { id: string; lastUsedAt: string | null; deviceType: string; backedUp: boolean; name: string }[];
  };
}

/** Signs in with the password and registers a passkey on the offer that follows. */
async function registerPasskey(t: NativeTenant, user: string, synced = false): Promise<Record<string, unknown>> {
  const offer = await password(await start(t), user);
  expect(offer.res.status).toBe(200);
  expect(offer.html).toContain('Sign in faster with a passkey');
  expect(offer.res.headers.get('content-security-policy')).toContain("script-src 'self'");
  const options = creationOptions(offer);
  expect(options.authenticatorSelection).toMatchObject({ residentKey: 'required', userVerification: 'required' });
  const { response } = authenticator.register(options, { synced });
  return tokensOf(await secondStep(offer, { action: 'passkey-register', credential: JSON.stringify(response), name: `${user}'s laptop` }));
}

const ada = () => authenticator.credentials[0]!;

describe('passkeys on the hosted pages (software authenticator made in the test)', () => {
  it('offers a passkey after a password sign-in and registers it, storing its device type and backup state', async () => {
    const claims = await registerPasskey(tenant, 'ada');
    expect(claims['amr']).toEqual(['pwd']);
    const factors = await factorsOf(tenant, 'ada');
    expect(factors.passkeys).toHaveLength(1);
    expect(factors.passkeys[0]).toMatchObject({ deviceType: 'singleDevice', backedUp: false, name: "ada's laptop", lastUsedAt: null });
    // With a passkey the offer is not shown again: the password alone signs in.
    await tokensOf(await password(await start(tenant), 'ada'));
  });

  it('signs in password-less with the passkey: amr hwk+mfa, acr mfa, the counter stored', async () => {
    const flow = await start(tenant);
    expect(flow.html).toContain('Sign in with a passkey');
    expect(flow.html).toMatch(/<script src="\/login\/assets\/passkeys-[0-9a-f]{12}\.js" defer><\/script>/);
    const options = requestOptions(flow);
    expect(options.allowCredentials ?? []).toEqual([]);
    expect(options.userVerification).toBe('required');
    const claims = await tokensOf(await post(flow, '/passkey', { credential: JSON.stringify(authenticator.assert(options, ada())) }));
    expect(claims['sub']).toBe(ids['ada']);
    expect(claims['amr']).toEqual(['hwk', 'mfa']);
    expect(claims['acr']).toBe(ACR_MFA);
    expect((await factorsOf(tenant, 'ada')).passkeys[0]!.lastUsedAt).not.toBeNull();
  });

  it('marks a synced passkey swk', async () => {
    await registerPasskey(tenant, 'bob', true);
    const bob = authenticator.credentials.at(-1)!;
    expect((await factorsOf(tenant, 'bob')).passkeys[0]).toMatchObject({ deviceType: 'multiDevice', backedUp: true });
    const flow = await start(tenant);
    const claims = await tokensOf(
      await post(flow, '/passkey', { credential: JSON.stringify(authenticator.assert(requestOptions(flow), bob)) }),
    );
    expect(claims['amr']).toEqual(['swk', 'mfa']);
  });

  it('refuses forged or replayed assertions with the sign-in page again, and changes nothing', async () => {
    const before = (await factorsOf(tenant, 'ada')).passkeys[0]!;
    const counter = ada().counter;
    const refusals: [string, (o: PublicKeyCredentialRequestOptionsJSON) => Record<string, unknown>][] = [
      ['another origin', (o) => authenticator.assert(o, ada(), { origin: 'https://evil.example' })],
      ['another RP ID', (o) => authenticator.assert(o, ada(), { rpId: 'evil.example' })],
      ['no user verification', (o) => authenticator.assert(o, ada(), { userVerified: false })],
      ['a counter that did not grow (a cloned authenticator)', (o) => authenticator.assert(o, ada(), { counter: 1 })],
      [
        'another user handle',
        (o) => authenticator.assert(o, ada(), { userHandle: Buffer.from(ids['bob']!.replace(/-/g, ''), 'hex').toString('base64url') }),
      ],
      ['an unknown credential', (o) => ({ ...authenticator.assert(o, ada()), id: 'AAAA', rawId: 'AAAA' })],
      [
        'the challenge of another page',
        () => authenticator.assert({ challenge: Buffer.from('not the challenge').toString('base64url') }, ada()),
      ],
    ];
    for (const [why, make] of refusals) {
      const flow = await start(tenant);
      const refused = await post(flow, '/passkey', { credential: JSON.stringify(make(requestOptions(flow))) });
      expect(refused.res.status, why).toBe(401);
      expect(refused.html, why).toContain('That passkey could not be verified');
      // The page is the sign-in form again, with a fresh challenge.
      expect(requestOptions(refused).challenge, why).not.toBe(requestOptions(flow).challenge);
      ada().counter = counter;
    }
    for (const junk of ['', '{', '{"id":"x"}', 'x'.repeat(20_000)]) {
      const flow = await start(tenant);
      const refused = await post(flow, '/passkey', { credential: junk });
      expect(refused.res.status).toBe(401);
    }
    const after = (await factorsOf(tenant, 'ada')).passkeys[0]!;
    expect(after.lastUsedAt).toBe(before.lastUsedAt);
  });

  it('accepts an assertion once: a replay of the same response is refused', async () => {
    const flow = await start(tenant);
    const credential = JSON.stringify(authenticator.assert(requestOptions(flow), ada()));
    const refused = await post(flow, '/passkey', { credential });
    await tokensOf(refused);
    const again = await start(tenant);
    // The same response to another transaction: its challenge is not this one's.
    expect((await post(again, '/passkey', { credential })).res.status).toBe(401);
  });

  it("refuses a passkey of another tenant's user", async () => {
    await registerPasskey(other, 'oli');
    const oli = authenticator.credentials.at(-1)!;
    const flow = await start(tenant);
    expect((await post(flow, '/passkey', { credential: JSON.stringify(authenticator.assert(requestOptions(flow), oli)) })).res.status).toBe(
      401,
    );
  });

  it('uses a passkey as the second step where one is required, and only the user’s own', async () => {
    const mfa = { acr_values: ACR_MFA };
    const verify = await password(await start(tenant, mfa), 'ada');
    expect(verify.res.status).toBe(200);
    expect(verify.html).toContain('Use your passkey');
    expect(verify.html).not.toContain('authenticator app');
    const options = requestOptions(verify);
    expect(options.allowCredentials?.map((c) => c.id)).toEqual([ada().id.toString('base64url')]);
    const bob = authenticator.credentials[1]!;
    const wrong = await secondStep(verify, { action: 'passkey', credential: JSON.stringify(authenticator.assert(options, bob)) });
    expect(wrong.res.status).toBe(401);
    expect(wrong.html).toContain('Use your passkey');
    const claims = await tokensOf(
      await secondStep(wrong, { action: 'passkey', credential: JSON.stringify(authenticator.assert(requestOptions(wrong), ada())) }),
    );
    expect(claims['sub']).toBe(ids['ada']);
    expect(claims['amr']).toEqual(['pwd', 'hwk', 'mfa']);
    expect(claims['acr']).toBe(ACR_MFA);
  });

  it('skips the offer with "Not now"; a step the login does not wait on is refused', async () => {
    const offer = await password(await start(tenant), 'cy');
    expect(offer.html).toContain('Sign in faster with a passkey');
    const early = await secondStep(offer, { action: 'passkey', credential: '{}' });
    expect(early.res.status).toBe(409);
    const skipped = await password(await start(tenant), 'cy');
    expect((await tokensOf(await secondStep(skipped, { action: 'passkey-skip' })))['amr']).toEqual(['pwd']);
    expect((await factorsOf(tenant, 'cy')).passkeys).toEqual([]);
  });

  it('shows no passkey where the tenant does not allow them, and refuses a posted one', async () => {
    const flow = await start(off);
    expect(flow.html).not.toContain('passkey');
    expect(flow.res.headers.get('content-security-policy')).not.toContain('script-src');
    const handle = /\/login\/native\/([^/"]+)/.exec(flow.html)![1]!;
    const res = await postForm(
      `${app.url}/login/native/${handle}/passkey`,
      { csrf: hiddenInput(flow.html, 'csrf')!, credential: '{}' },
      { jar: flow.jar },
    );
    expect(res.status).toBe(409);
    // And the password alone signs in, with no offer.
    await tokensOf(await password(await start(off), 'fay'));
  });

  it('serves the script from this origin, cacheable, and nothing else under /login/assets', async () => {
    const flow = await start(tenant);
    const src = /<script src="([^"]+)"/.exec(flow.html)![1]!;
    const res = await fetch(`${app.url}${src}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(res.headers.get('cache-control')).toContain('immutable');
    expect(await res.text()).toContain('navigator.credentials.get');
    expect((await fetch(`${app.url}/login/assets/passkeys-000000000000.js`)).status).toBe(404);
  });

  it('refuses a binding config with an unknown passkey policy', async () => {
    const res = await admin.call('POST', `/admin/v1/tenants/${off.id}/bindings`, { kind: 'native', config: { passkeys: 'yes' } });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(JSON.stringify(await res.json())).toContain('config.passkeys');
  });
});

describe('removing passkeys', () => {
  it('lets the user list and remove their own passkey with their token; it signs in nowhere afterwards', async () => {
    await registerPasskey(tenant, 'cy');
    const cy = authenticator.credentials.at(-1)!;
    const flow = await start(tenant);
    const signedIn = await post(flow, '/passkey', { credential: JSON.stringify(authenticator.assert(requestOptions(flow), cy)) });
    expect(signedIn.res.status).toBe(302);
    const code = new URL(signedIn.res.headers.get('location')!).searchParams.get('code')!;
    const tokenRes = await tokenRequest(app.url, tenant.bff, {
      grant_type: 'authorization_code',
      code,
      redirect_uri: tenant.bff.redirectUri,
      code_verifier: flow.verifier,
    });
    const { access_token: token } = (await tokenRes.json()) as { access_token: string };
    const call = (method: string, path: string) => fetch(`${app.url}${path}`, { method, headers: { authorization: `Bearer ${token}` } });
    const listed = (await (await call('GET', '/account/v1/passkeys')).json()) as { passkeys: { id: string }[] };
    expect(listed.passkeys).toHaveLength(1);
    // Another user's passkey id is not the caller's to remove.
    const adas = (await factorsOf(tenant, 'ada')).passkeys[0]!.id;
    expect((await call('DELETE', `/account/v1/passkeys/${adas}`)).status).toBe(404);
    expect((await call('DELETE', `/account/v1/passkeys/${listed.passkeys[0]!.id}`)).status).toBe(204);
    expect((await call('DELETE', `/account/v1/passkeys/${listed.passkeys[0]!.id}`)).status).toBe(404);
    const again = await start(tenant);
    expect(
      (await post(again, '/passkey', { credential: JSON.stringify(authenticator.assert(requestOptions(again), cy)) })).res.status,
    ).toBe(401);
  });

  it('lets an admin remove a passkey, audited; a missing one is 404', async () => {
    const id = (await factorsOf(tenant, 'bob')).passkeys[0]!.id;
    const path = `/admin/v1/tenants/${tenant.id}/users/${ids['bob']}/factors/passkeys`;
    expect((await admin.call('DELETE', `${path}/${id}`)).status).toBe(204);
    expect((await admin.call('DELETE', `${path}/${id}`)).status).toBe(404);
    expect((await admin.call('DELETE', `${path}/not-a-uuid`)).status).toBe(404);
    expect((await factorsOf(tenant, 'bob')).passkeys).toEqual([]);
    const audit = await admin.call('GET', `/admin/v1/audit-events?tenantId=${tenant.id}&action=user.passkey_removed`);
    expect(JSON.stringify(await audit.json())).toContain(id);
    const flow = await start(tenant);
    const bob = authenticator.credentials[1]!;
    expect((await post(flow, '/passkey', { credential: JSON.stringify(authenticator.assert(requestOptions(flow), bob)) })).res.status).toBe(
      401,
    );
  });

  it("erases a deleted user's passkeys", async () => {
    expect((await admin.call('DELETE', `/admin/v1/tenants/${tenant.id}/users/${ids['ada']}`)).status).toBe(204);
    const flow = await start(tenant);
    expect(
      (await post(flow, '/passkey', { credential: JSON.stringify(authenticator.assert(requestOptions(flow), ada())) })).res.status,
    ).toBe(401);
  });
});
