/**
 * The account email flows of issue #17 against a real SMTP server (aiosmtpd on loopback): the
 * service sends through its outbox, the test reads the links from what the server received and
 * follows them on the hosted pages over HTTP. Invitation, forgot password, forced reset, email
 * verification, a signed-in user's password change, the tenant's password policy, and every way a
 * link can be bad (reused, expired, retired by a newer one, of another purpose or tenant, forged).
 */
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { adminClient, type AdminClient } from './support/admin.js';
import { authorizeUrl, get, nativeLogin, pkcePair, postForm, tokenRequest } from './support/bff.js';
import { createNativeUser, nativeTenant, signedInCaller, type NativeTenant } from './support/native-tenant.js';
import { parseMail, SmtpServer, type ParsedMail } from './peers/smtp.js';
import { peersRequired, PeerUnavailableError } from './peers/peer-unavailable.js';
import { ScimClient } from './support/scim.js';

const PASSWORD = 'correct horse battery staple';
const NEW_PASSWORD = 'purple elephant juggling teacups';

let smtp: SmtpServer | undefined;
let smtpMissing = '';
let app: TestApp;
let started: TestApp | undefined;
let admin: AdminClient;
const logLines: string[] = [];

beforeAll(async () => {
  try {
    smtp = await SmtpServer.start();
  } catch (err) {
    if (!(err instanceof PeerUnavailableError) || peersRequired()) throw err;
    smtpMissing = err.message;
    return;
  }
  app = await startTestApp(
    {
      SMTP_URL: smtp.url,
      MAIL_FROM: 'accounts@auth.example.test',
      RATE_LIMIT_LOGIN_PER_MINUTE: '1000',
      RATE_LIMIT_AUTHORIZE_PER_MINUTE: '1000',
      RATE_LIMIT_FORGOT_PER_MINUTE: '1000',
      RATE_LIMIT_FORGOT_PER_ACCOUNT_PER_HOUR: '3',
    },
    undefined,
    { write: (line: string) => void logLines.push(line) },
  );
  started = app;
  admin = await adminClient(app);
}, 120_000);
afterAll(async () => {
  await started?.close();
  await smtp?.dispose();
});

const needSmtp = (ctx: TestContext): SmtpServer => {
  if (!smtp) ctx.skip(`${smtpMissing} — install python3-aiosmtpd (apt-get install python3-aiosmtpd); under CI=true this fails`);
  return smtp;
};

const json = async <T = Record<string, unknown>>(res: Response) => (await res.json()) as T;

/** The messages the SMTP server received for `to`, oldest first as the service numbered them. */
function mailsTo(server: SmtpServer, to: string): ParsedMail[] {
  return server
    .messages()
    .map(parseMail)
    .filter((m) => m.to.toLowerCase().includes(to.toLowerCase()));
}

const LINK = /https?:\/\/\S+\/account\/[a-z-]+\/ak_[0-9a-f]{32}_[A-Za-z0-9_-]{43}/;

/** Waits until `n` mails to `to` arrived and returns each with the account link its text part carries (in no order). */
async function waitForMails(server: SmtpServer, to: string, n: number): Promise<Array<{ link: string; mail: ParsedMail }>> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const found = mailsTo(server, to).flatMap((mail) => {
      const link = LINK.exec(mail.text ?? '')?.[0];
      return link ? [{ link, mail }] : [];
    });
    if (found.length >= n) return found;
    if (Date.now() > deadline) throw new Error(`fewer than ${n} mails to ${to} within 30 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The one mail to `to` (waits for it) and its link. */
async function linkFrom(server: SmtpServer, to: string): Promise<{ link: string; mail: ParsedMail }> {
  const [first] = await waitForMails(server, to, 1);
  if (!first) throw new Error(`no mail to ${to}`);
  return first;
}

/** The link's path on this service (the mail carries PUBLIC_URL, the test app's issuer). */
const local = (link: string) => `${app.url}${new URL(link).pathname}`;

const setPassword = (link: string, password: string, confirm = password) => postForm(local(link), { password, confirm });

async function userOf(tenantId: string, userId: string): Promise<Record<string, unknown>> {
  return json(await admin.call('GET', `/admin/v1/tenants/${tenantId}/users/${userId}`));
}

/** The hosted form's page for a fresh authorization request of the tenant: its HTML and handle. */
async function hostedForm(t: NativeTenant): Promise<{ html: string; handle: string }> {
  const { challenge } = pkcePair();
  const start = await get(
    authorizeUrl(app.url, t.bff, { org: t.slug, state: 's1', code_challenge: challenge, code_challenge_method: 'S256' }),
  );
  expect(start.status).toBe(302);
  const location = start.headers.get('location')!;
  const handle = decodeURIComponent(new URL(location, app.url).pathname.split('/').pop()!);
  const form = await get(new URL(location, app.url).toString());
  return { html: await form.text(), handle };
}

describe('invitation: a user created without a password sets it through the emailed link', () => {
  it('mails the link from the tenant; the page sets a password once; the address counts as verified; then the user signs in', async (ctx) => {
    const server = needSmtp(ctx);
    const t = await nativeTenant(app, admin, 'inv-flow');
    const user = await createNativeUser(admin, t.id, { username: 'olga', email: 'olga@invite.example' });
    // Until the invitation is accepted, no password signs olga in.
    await expect(nativeLogin(app.url, t.bff, t.slug, 'olga', PASSWORD)).rejects.toThrow();

    const { link, mail } = await linkFrom(server, 'olga@invite.example');
    expect(mail.fromName).toBe('inv-flow Ltd');
    expect(mail.subject).toMatch(/inv-flow Ltd/);
    expect(mail.html).toContain(link.replaceAll('&', '&amp;'));
    expect(new URL(link).pathname).toMatch(/^\/account\/password\/ak_/);

    const page = await get(local(link));
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('Set your password');
    expect(html).toContain('olga');
    expect(html).toMatch(/<label for="password">/);
    // A GET spends nothing (mail scanners follow links): the page opens again.
    expect((await get(local(link))).status).toBe(200);

    const mismatch = await setPassword(link, NEW_PASSWORD, 'something else entirely');
    expect(mismatch.status).toBe(400);
    expect(await mismatch.text()).toContain('not the same');
    const weak = await setPassword(link, 'password123');
    expect(weak.status).toBe(400);
    expect(await weak.text()).toMatch(/role="alert"[^>]*>This password is/);
    const own = await setPassword(link, 'olga@invite.example');
    expect(own.status).toBe(400);

    const done = await setPassword(link, NEW_PASSWORD);
    expect(done.status).toBe(200);
    expect(await done.text()).toContain('Your password is set');
    const reused = await setPassword(link, 'another fine passphrase here');
    expect(reused.status).toBe(400);
    const reusedHtml = await reused.text();
    expect(reusedHtml).toContain('Account problem');
    expect(reusedHtml).toContain('invalid, has expired or was already used');

    expect(await userOf(t.id, user.id)).toMatchObject({ emailVerified: true, username: 'olga' });
    await expect(nativeLogin(app.url, t.bff, t.slug, 'olga', NEW_PASSWORD)).resolves.toBeDefined();
    await expect(nativeLogin(app.url, t.bff, t.slug, 'olga', 'another fine passphrase here')).rejects.toThrow();
  });

  it('needs an email to invite (400); a SCIM-provisioned user is invited to set a local password and signs in with it', async (ctx) => {
    const server = needSmtp(ctx);
    const t = await nativeTenant(app, admin, 'inv-scim');
    const noEmail = await admin.call('POST', `/admin/v1/tenants/${t.id}/users`, { username: 'pia' });
    expect(noEmail.status).toBe(400);
    expect((await json<{ detail: string }>(noEmail)).detail).toMatch(/email/);

    const scimToken = await json<{ token: string }>(await admin.call('POST', `/admin/v1/tenants/${t.id}/scim-tokens`, { name: 'Okta' }));
    const scim = ScimClient.for(app, scimToken.token);
    const created = await scim.request<{ id: string }>('POST', '/Users', {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      userName: 'quinn@scim-invite.example',
      emails: [{ value: 'quinn@scim-invite.example', primary: true }],
    });
    expect(created.status).toBe(201);
    const invited = await admin.call('POST', `/admin/v1/tenants/${t.id}/users/${created.body.id}/invitation`, {});
    expect(invited.status).toBe(202);
    const { link } = await linkFrom(server, 'quinn@scim-invite.example');
    expect((await setPassword(link, NEW_PASSWORD)).status).toBe(200);
    await expect(nativeLogin(app.url, t.bff, t.slug, 'quinn@scim-invite.example', NEW_PASSWORD)).resolves.toBeDefined();
    // Once a password exists, an invitation is refused: that is a reset.
    const again = await admin.call('POST', `/admin/v1/tenants/${t.id}/users/${created.body.id}/invitation`, {});
    expect(again.status).toBe(409);
    expect(await json(again)).toMatchObject({ type: 'urn:auth-service:problem:password-exists' });
  });
});

describe('forgot password from the hosted sign-in form', () => {
  it('answers the same for a known and an unknown name, mails only the known one, and the link replaces the password and ends sessions', async (ctx) => {
    const server = needSmtp(ctx);
    const t = await nativeTenant(app, admin, 'forgot-flow');
    const user = await createNativeUser(admin, t.id, { username: 'rita', password: PASSWORD, email: 'rita@forgot.example' });
    const { tokens } = await nativeLogin(app.url, t.bff, t.slug, 'rita', PASSWORD);

    const { html, handle } = await hostedForm(t);
    const forgotHref = /href="([^"]*\/account\/forgot\/[^"]+)"/.exec(html)?.[1];
    expect(forgotHref).toBe(`/account/forgot/${encodeURIComponent(handle)}`);
    const form = await get(`${app.url}${forgotHref!}`);
    expect(form.status).toBe(200);
    expect(await form.text()).toContain('Forgot your password?');

    const known = await postForm(`${app.url}${forgotHref!}`, { username: 'RITA' });
    const unknown = await postForm(`${app.url}${forgotHref!}`, { username: 'nobody-here' });
    expect(known.status).toBe(200);
    expect(unknown.status).toBe(200);
    expect(await known.text()).toBe(await unknown.text());

    const { link } = await linkFrom(server, 'rita@forgot.example');
    expect(new URL(link).pathname).toMatch(/^\/account\/password\//);
    expect(await (await get(local(link))).text()).toContain('Choose a new password');
    // The current password again is no reset.
    const same = await setPassword(link, PASSWORD);
    expect(same.status).toBe(400);
    expect(await same.text()).toContain('other than the current one');
    expect((await setPassword(link, NEW_PASSWORD)).status).toBe(200);

    await expect(nativeLogin(app.url, t.bff, t.slug, 'rita', PASSWORD)).rejects.toThrow();
    await expect(nativeLogin(app.url, t.bff, t.slug, 'rita', NEW_PASSWORD)).resolves.toBeDefined();
    const refreshed = await tokenRequest(app.url, t.bff, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
    expect(refreshed.status).toBe(400);
    expect(mailsTo(server, 'nobody-here')).toHaveLength(0);

    const audit = await json<{ items: Array<{ action: string; target: string }> }>(
      await admin.call('GET', `/admin/v1/audit-events?tenantId=${t.id}&action=user.password_set`),
    );
    expect(audit.items).toEqual([expect.objectContaining({ target: user.id })]);
    // The link's secret never reached a log line (request paths are redacted).
    // The secret is base64url, which has '_' too: it is everything after the tenant part.
    const secret = /\/ak_[0-9a-f]{32}_([A-Za-z0-9_-]{43})$/.exec(new URL(link).pathname)![1]!;
    expect(logLines.join('\n')).not.toContain(secret);
  });

  it('limits requests per account name (429 page), and an empty name is a 400 page', async (ctx) => {
    needSmtp(ctx);
    const t = await nativeTenant(app, admin, 'forgot-limit');
    const { handle } = await hostedForm(t);
    const url = `${app.url}/account/forgot/${encodeURIComponent(handle)}`;
    const empty = await postForm(url, { username: '  ' });
    expect(empty.status).toBe(400);
    expect(empty.headers.get('content-type')).toMatch(/text\/html/);
    for (let i = 0; i < 3; i++) expect((await postForm(url, { username: 'sam' })).status).toBe(200);
    const limited = await postForm(url, { username: 'SAM' });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(limited.headers.get('content-type')).toMatch(/text\/html/);
    expect((await postForm(url, { username: 'someone-else' })).status).toBe(200);
    expect((await get(`${app.url}/account/forgot/lt_not_a_handle`)).status).toBe(400);
  });
});

describe('bad links change nothing', () => {
  it('refuses an expired, a retired, a forged, another purpose’s and another tenant’s link with a readable page', async (ctx) => {
    const server = needSmtp(ctx);
    const t = await nativeTenant(app, admin, 'bad-links');
    const other = await nativeTenant(app, admin, 'bad-links-other');
    const user = await createNativeUser(admin, t.id, { username: 'tom', password: PASSWORD, email: 'tom@bad-links.example' });
    const reset = () => admin.call('POST', `/admin/v1/tenants/${t.id}/users/${user.id}/password-reset`, {});

    expect((await reset()).status).toBe(202);
    const firstToken = new URL((await linkFrom(server, 'tom@bad-links.example')).link).pathname.split('/').pop()!;
    expect((await reset()).status).toBe(202);
    const both = await waitForMails(server, 'tom@bad-links.example', 2);
    const newest = both.map((m) => new URL(m.link).pathname.split('/').pop()!).find((x) => x !== firstToken)!;
    expect(newest).toBeDefined();

    const refused = async (url: string, what: string) => {
      const res = await postForm(url, { password: NEW_PASSWORD, confirm: NEW_PASSWORD });
      expect(res.status, what).toBe(400);
      expect(res.headers.get('content-type'), what).toMatch(/text\/html/);
      expect(await res.text(), what).toContain('invalid, has expired or was already used');
    };
    // The older link was retired by the newer one.
    await refused(`${app.url}/account/password/${firstToken}`, 'retired');
    // Another tenant's id with the same secret: not a link of that tenant.
    const secret = newest.split('_').slice(2).join('_'); // base64url: may itself hold '_'
    await refused(`${app.url}/account/password/ak_${other.id.replaceAll('-', '')}_${secret}`, 'other tenant');
    await refused(`${app.url}/account/password/ak_${t.id.replaceAll('-', '')}_${'A'.repeat(43)}`, 'forged');
    await refused(`${app.url}/account/password/not-a-token`, 'malformed');
    // A reset link is not a verification link.
    expect((await postForm(`${app.url}/account/verify-email/${newest}`, {})).status).toBe(400);
    // Expired: its time passes (moved in the database, not waited for).
    await app.database.transaction({ tenant: t.id }, (tx) =>
      tx.query(`UPDATE account_action_tokens SET expires_at = now() - interval '1 second' WHERE user_id = $1 AND used_at IS NULL`, [
        user.id,
      ]),
    );
    await refused(`${app.url}/account/password/${newest}`, 'expired');
    expect((await get(`${app.url}/account/password/${newest}`)).status).toBe(400);

    // Nothing changed: the forced reset cleared the password, and no bad link set one.
    await expect(nativeLogin(app.url, t.bff, t.slug, 'tom', NEW_PASSWORD)).rejects.toThrow();
    const audit = await json<{ items: unknown[] }>(
      await admin.call('GET', `/admin/v1/audit-events?tenantId=${t.id}&action=user.password_set`),
    );
    expect(audit.items).toHaveLength(0);
  });
});

describe('forced reset, email verification and a signed-in password change', () => {
  it('a forced reset stops the password and the sessions at once and mails a reset link', async (ctx) => {
    const server = needSmtp(ctx);
    const t = await nativeTenant(app, admin, 'forced-reset');
    const user = await createNativeUser(admin, t.id, { username: 'uma', password: PASSWORD, email: 'uma@forced.example' });
    const { tokens } = await nativeLogin(app.url, t.bff, t.slug, 'uma', PASSWORD);
    expect((await admin.call('POST', `/admin/v1/tenants/${t.id}/users/${user.id}/password-reset`, {})).status).toBe(202);
    await expect(nativeLogin(app.url, t.bff, t.slug, 'uma', PASSWORD)).rejects.toThrow();
    expect((await tokenRequest(app.url, t.bff, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token })).status).toBe(400);
    const { link } = await linkFrom(server, 'uma@forced.example');
    expect((await setPassword(link, NEW_PASSWORD)).status).toBe(200);
    await expect(nativeLogin(app.url, t.bff, t.slug, 'uma', NEW_PASSWORD)).resolves.toBeDefined();

    const noEmail = await createNativeUser(admin, t.id, { username: 'vic', password: PASSWORD });
    const refused = await admin.call('POST', `/admin/v1/tenants/${t.id}/users/${noEmail.id}/password-reset`, {});
    expect(refused.status).toBe(409);
    await expect(nativeLogin(app.url, t.bff, t.slug, 'vic', PASSWORD)).resolves.toBeDefined();
  });

  it('verifies an email address through its link, only while it is still the user’s address', async (ctx) => {
    const server = needSmtp(ctx);
    const t = await nativeTenant(app, admin, 'verify-flow');
    const user = await createNativeUser(admin, t.id, { username: 'wes', password: PASSWORD, email: 'wes@verify.example' });
    expect((await admin.call('POST', `/admin/v1/tenants/${t.id}/users/${user.id}/verification-email`, {})).status).toBe(202);
    const { link } = await linkFrom(server, 'wes@verify.example');
    expect(new URL(link).pathname).toMatch(/^\/account\/verify-email\//);
    const page = await get(local(link));
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('wes@verify.example');
    expect((await userOf(t.id, user.id))['emailVerified']).toBe(false);
    expect((await postForm(local(link), {})).status).toBe(200);
    expect((await userOf(t.id, user.id))['emailVerified']).toBe(true);
    expect((await postForm(local(link), {})).status).toBe(400);
    const twice = await admin.call('POST', `/admin/v1/tenants/${t.id}/users/${user.id}/verification-email`, {});
    expect(twice.status).toBe(409);

    // A link sent to an address the user no longer has verifies nothing.
    const yan = await createNativeUser(admin, t.id, { username: 'yan', password: PASSWORD, email: 'yan@verify.example' });
    expect((await admin.call('POST', `/admin/v1/tenants/${t.id}/users/${yan.id}/verification-email`, {})).status).toBe(202);
    const old = await linkFrom(server, 'yan@verify.example');
    const current = await admin.call('GET', `/admin/v1/tenants/${t.id}/users/${yan.id}`);
    expect(
      (
        await admin.call(
          'PATCH',
          `/admin/v1/tenants/${t.id}/users/${yan.id}`,
          { email: 'yan.new@verify.example' },
          { 'if-match': current.headers.get('etag')! },
        )
      ).status,
    ).toBe(200);
    expect((await postForm(local(old.link), {})).status).toBe(400);
    expect((await userOf(t.id, yan.id))['emailVerified']).toBe(false);
  });

  it('a signed-in user changes their own password with the current one; the policy applies', async (ctx) => {
    needSmtp(ctx);
    const t = await nativeTenant(app, admin, 'change-pw');
    await createNativeUser(admin, t.id, { username: 'zoe', password: PASSWORD, email: 'zoe@change.example' });
    const zoe = await signedInCaller(app, t, 'zoe', PASSWORD);
    const change = (body: Record<string, unknown>) => zoe.call('POST', '/account/v1/password', body);
    const wrong = await change({ currentPassword: 'not my password at all', newPassword: NEW_PASSWORD });
    expect(wrong.status).toBe(400);
    expect(wrong.headers.get('content-type')).toMatch(/problem\+json/);
    expect((await change({ currentPassword: PASSWORD, newPassword: PASSWORD })).status).toBe(400);
    expect((await change({ currentPassword: PASSWORD, newPassword: 'qwerty123' })).status).toBe(400);
    expect((await change({ currentPassword: PASSWORD })).status).toBe(400);
    expect((await fetch(`${app.url}/account/v1/password`, { method: 'POST' })).status).toBe(401);
    expect((await change({ currentPassword: PASSWORD, newPassword: NEW_PASSWORD })).status).toBe(204);
    await expect(nativeLogin(app.url, t.bff, t.slug, 'zoe', NEW_PASSWORD)).resolves.toBeDefined();
    await expect(nativeLogin(app.url, t.bff, t.slug, 'zoe', PASSWORD)).rejects.toThrow();
  });

  it("applies the tenant's password policy to admin-set passwords; out-of-range settings are a 400 and change nothing", async (ctx) => {
    needSmtp(ctx);
    const t = await nativeTenant(app, admin, 'pw-policy');
    const path = `/admin/v1/tenants/${t.id}`;
    const patch = async (body: unknown) => {
      const current = await admin.call('GET', path);
      return admin.call('PATCH', path, body, { 'if-match': current.headers.get('etag')! });
    };
    expect((await patch({ passwordPolicy: { minLength: 4 } })).status).toBe(400);
    expect((await patch({ passwordPolicy: { minStrength: 5 } })).status).toBe(400);
    expect((await admin.call('POST', `${path}/users`, { username: 'ada', password: 'Tr0ub4dor&3x' })).status).toBe(201);
    const set = await patch({ passwordPolicy: { minLength: 20, minStrength: 3 } });
    expect(set.status).toBe(200);
    expect(await json(set)).toMatchObject({ passwordPolicy: { minLength: 20, minStrength: 3 } });
    const short = await admin.call('POST', `${path}/users`, { username: 'bea', password: 'Tr0ub4dor&3x' });
    expect(short.status).toBe(400);
    expect((await json<{ detail: string }>(short)).detail).toContain('20');
    expect((await admin.call('POST', `${path}/users`, { username: 'bea', password: PASSWORD })).status).toBe(201);
  });
});
