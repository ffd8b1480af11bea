/**
 * Two-step verification of native logins (issue #17): TOTP (RFC 6238) and recovery codes on the
 * hosted form, by the tenant's policy (`config.mfa` of the native binding) or `acr_values`; `amr`
 * and `acr` in the tokens; the admin reset. Every login is a real hosted-form login over HTTP, and
 * codes are computed here from the secret the enrolment page shows. No assertion reads the clock:
 * codes are made for a fixed instant and the time step after it, both within the ±1 window.
 */
import { decodeJwt } from 'jose';
import { Secret, TOTP } from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { adminClient, type AdminClient } from './support/admin.js';
import { seedBff } from './support/seed.js';
import { authorizeUrl, CookieJar, formAction, get, hiddenInput, pkcePair, postForm, tokenRequest, type BffClient } from './support/bff.js';
import { TenantsService } from '../src/tenants/tenants.service.js';
import { BindingsService } from '../src/tenants/bindings.service.js';
import { NativeCredentialsService } from '../src/identity/native/native-credentials.service.js';

let app: TestApp;
let bff: BffClient;
let admin: AdminClient;
const PASSWORD = 'correct horse battery staple';
const ids: Record<string, string> = {};
const tenantIds: Record<string, string> = {};

async function seedTenant(slug: string, mfa: string | undefined, usernames: string[]): Promise<void> {
  const tenant = await app.app.get(TenantsService).create(slug, `${slug} Inc.`);
  tenantIds[slug] = tenant.id;
  await app.app.get(BindingsService).create(tenant, { kind: 'native', config: mfa ? { mfa } : {} });
  for (const u of usernames)
    ids[u] = await app.app
      .get(NativeCredentialsService)
      .createUser(tenant.id, { username: u, password: PASSWORD, email: u, emailVerified: true });
}

beforeAll(async () => {
  app = await startTestApp({ RATE_LIMIT_LOGIN_PER_MINUTE: '1000', RATE_LIMIT_AUTHORIZE_PER_MINUTE: '1000' });
  bff = await seedBff(app);
  admin = await adminClient(app);
  await seedTenant('mfa-req', 'required', ['ann@req.test', 'ben@req.test', 'cid@req.test']);
  await seedTenant('mfa-opt', 'optional', ['ola@opt.test', 'oz@opt.test']);
  await seedTenant('mfa-off', undefined, ['fay@off.test']);
});
afterAll(async () => app.close());

/** One login under way: its cookie jar, PKCE verifier and the last page. */
interface Flow {
  jar: CookieJar;
  verifier: string;
  res: Response;
  html: string;
}

async function startAndSubmitPassword(org: string, username: string, extra: Record<string, string> = {}): Promise<Flow> {
  const { verifier, challenge } = pkcePair();
  const jar = new CookieJar();
  const start = await get(
    authorizeUrl(app.url, bff, { org, state: 's', code_challenge: challenge, code_challenge_method: 'S256', ...extra }),
  );
  expect(start.status).toBe(302);
  const form = await get(start.headers.get('location')!, jar);
  const html = await form.text();
  const res = await postForm(
    new URL(formAction(html)!, app.url).toString(),
    { csrf: hiddenInput(html, 'csrf')!, username, password: PASSWORD },
    { jar },
  );
  return { jar, verifier, res, html: res.status === 200 || res.status === 401 ? await res.text() : '' };
}

async function step(flow: Flow, action: string, code?: string): Promise<Flow> {
  const res = await postForm(
    new URL(formAction(flow.html)!, app.url).toString(),
    { csrf: hiddenInput(flow.html, 'csrf')!, action, ...(code !== undefined ? { code } : {}) },
    { jar: flow.jar },
  );
  return { ...flow, res, html: res.status === 200 || res.status === 401 ? await res.text() : '' };
}

async function tokensOf(flow: Flow): Promise<Record<string, unknown>> {
  expect(flow.res.status).toBe(302);
  const code = new URL(flow.res.headers.get('location')!).searchParams.get('code');
  expect(code).toBeTruthy();
  const res = await tokenRequest(app.url, bff, {
    grant_type: 'authorization_code',
    code: code!,
    redirect_uri: bff.redirectUri,
    code_verifier: flow.verifier,
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { access_token: string; id_token: string };
  expect(decodeJwt(body.id_token)['amr']).toEqual(decodeJwt(body.access_token)['amr']);
  return decodeJwt(body.access_token);
}

const totpOf = (secret: string) => new TOTP({ algorithm: 'SHA1', digits: 6, period: 30, secret: Secret.fromBase32(secret) });
const secretOn = (html: string) => /<code>([A-Z2-7]{16,})<\/code>/.exec(html)?.[1];
const recoveryCodesOn = (html: string) => [...html.matchAll(/<li><code>([a-z0-9-]+)<\/code><\/li>/g)].map((m) => m[1]!);

/** Enrols a user on the enrolment page shown; returns the secret, the confirmation instant and the recovery codes. */
async function enrol(flow: Flow): Promise<{ secret: string; at: number; codes: string[]; done: Flow }> {
  expect(flow.res.status).toBe(200);
  expect(flow.res.headers.get('content-security-policy')).toContain('img-src data:');
  expect(flow.html).toMatch(/<img [^>]*src="data:image\/png;base64,/);
  const secret = secretOn(flow.html)!;
  expect(secret).toBeTruthy();
  const at = Date.now();
  const codesPage = await step(flow, 'confirm', totpOf(secret).generate({ timestamp: at }));
  expect(codesPage.res.status).toBe(200);
  const codes = recoveryCodesOn(codesPage.html);
  expect(codes).toHaveLength(10);
  for (const c of codes) expect(c).toMatch(/^[a-hj-km-np-z2-9]{4}-[a-hj-km-np-z2-9]{4}-[a-hj-km-np-z2-9]{4}$/);
  return { secret, at, codes, done: await step(codesPage, 'continue') };
}

const enrolled: Record<string, { secret: string; at: number; codes: string[] }> = {};

describe('two-step verification on the hosted form', () => {
  it('enrols a user of a tenant that requires it, shows the recovery codes once, and issues amr pwd+otp+mfa', async () => {
    const first = await startAndSubmitPassword('mfa-req', 'ann@req.test');
    expect(first.html).toContain('Set up two-step verification');
    expect(first.html).not.toContain('value="skip"');
    const e = await enrol(first);
    enrolled['ann'] = e;
    const claims = await tokensOf(e.done);
    expect(claims['amr']).toEqual(['pwd', 'otp', 'mfa']);
    expect(claims['acr']).toBe('urn:auth-service:acr:mfa');
    const stored = await app.database.transaction({ tenant: tenantIds['mfa-req']! }, (tx) =>
      tx.query<{ secret: Buffer }>(`SELECT secret FROM user_totp WHERE user_id = $1`, [ids['ann@req.test']]),
    );
    expect(stored.rows[0]!.secret.toString('latin1')).not.toContain(e.secret);
  });

  it('asks an enrolled user for the code, and a code works once: replayed in a second login it is refused', async () => {
    const { secret, at } = enrolled['ann']!;
    const code = totpOf(secret).generate({ timestamp: at + 30_000 });
    const login = await startAndSubmitPassword('mfa-req', 'ann@req.test');
    expect(login.html).toContain('Two-step verification');
    const claims = await tokensOf(await step(login, 'verify', code));
    expect(claims['amr']).toEqual(['pwd', 'otp', 'mfa']);

    const again = await startAndSubmitPassword('mfa-req', 'ann@req.test');
    const replay = await step(again, 'verify', code);
    expect(replay.res.status).toBe(401);
    expect(replay.html).toContain('role="alert"');
    expect(replay.res.headers.get('location')).toBeNull();
  });

  it("refuses a wrong code and a code of another user's secret, and issues nothing", async () => {
    const ben = await enrol(await startAndSubmitPassword('mfa-req', 'ben@req.test'));
    await tokensOf(ben.done);
    const login = await startAndSubmitPassword('mfa-req', 'ann@req.test');
    const foreign = await step(login, 'verify', totpOf(ben.secret).generate({ timestamp: ben.at + 30_000 }));
    expect(foreign.res.status).toBe(401);
    expect(foreign.html).toContain('role="alert"');
    const wrong = await step(foreign, 'verify', 'not-a-code');
    expect(wrong.res.status).toBe(401);
    // The page again, on the same transaction: no code was issued, and steps out of order are refused.
    const outOfOrder = await step(wrong, 'continue');
    expect(outOfOrder.res.status).toBe(409);
  });

  it('bounds a brute force: NATIVE_LOCKOUT_THRESHOLD refused codes lock the account, even for the right code', async () => {
    const cid = await enrol(await startAndSubmitPassword('mfa-req', 'cid@req.test'));
    await tokensOf(cid.done);
    let login = await startAndSubmitPassword('mfa-req', 'cid@req.test');
    for (let i = 0; i < app.config.NATIVE_LOCKOUT_THRESHOLD; i++) {
      login = await step(login, 'verify', '000000' === totpOf(cid.secret).generate({ timestamp: cid.at + 30_000 }) ? '111111' : '000000');
      expect(login.res.status).toBe(401);
    }
    const right = await step(login, 'verify', totpOf(cid.secret).generate({ timestamp: cid.at + 30_000 }));
    expect(right.res.status).toBe(401);
    // The password is locked too: the form answers as for a wrong password.
    expect((await startAndSubmitPassword('mfa-req', 'cid@req.test')).res.status).toBe(401);
  });

  it('accepts a recovery code once', async () => {
    const [code] = enrolled['ann']!.codes;
    const ok = await step(await startAndSubmitPassword('mfa-req', 'ann@req.test'), 'verify', code!.toUpperCase());
    expect((await tokensOf(ok))['amr']).toEqual(['pwd', 'otp', 'mfa']);
    const reused = await step(await startAndSubmitPassword('mfa-req', 'ann@req.test'), 'verify', code);
    expect(reused.res.status).toBe(401);
  });

  it('lets a user of an optional tenant skip, with a password-only token', async () => {
    const offer = await startAndSubmitPassword('mfa-opt', 'oz@opt.test');
    expect(offer.html).toContain('Set up two-step verification');
    const claims = await tokensOf(await step(offer, 'skip'));
    expect(claims['amr']).toEqual(['pwd']);
    expect(claims['acr']).toBe('urn:auth-service:acr:pwd');
  });

  it('signs in password-only when the policy is off, and enrols when acr_values asks for mfa', async () => {
    const plain = await startAndSubmitPassword('mfa-off', 'fay@off.test');
    expect((await tokensOf(plain))['amr']).toEqual(['pwd']);
    const asked = await startAndSubmitPassword('mfa-off', 'fay@off.test', { acr_values: 'urn:auth-service:acr:mfa' });
    expect(asked.html).not.toContain('value="skip"');
    expect((await tokensOf((await enrol(asked)).done))['acr']).toBe('urn:auth-service:acr:mfa');
  });

  it('after an admin removes the factor, the next login asks for the password only (optional policy)', async () => {
    const offer = await startAndSubmitPassword('mfa-opt', 'ola@opt.test');
    const started = await step(offer, 'start');
    await tokensOf((await enrol(started)).done);
    expect((await startAndSubmitPassword('mfa-opt', 'ola@opt.test')).html).toContain('value="verify"');

    const path = `/admin/v1/tenants/${tenantIds['mfa-opt']}/users/${ids['ola@opt.test']}/factors/totp`;
    expect((await admin.call('DELETE', path)).status).toBe(204);
    expect((await admin.call('DELETE', path)).status).toBe(404);
    const audit = await app.database.transaction({ tenant: tenantIds['mfa-opt']! }, (tx) =>
      tx.query(`SELECT 1 FROM audit_events WHERE action = 'user.totp_removed' AND target = $1`, [ids['ola@opt.test']]),
    );
    expect(audit.rowCount).toBe(1);

    const next = await startAndSubmitPassword('mfa-opt', 'ola@opt.test');
    expect(next.html).not.toContain('value="verify"');
    expect((await tokensOf(await step(next, 'skip')))['amr']).toEqual(['pwd']);
  });
});
