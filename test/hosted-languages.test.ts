/**
 * The languages of the hosted pages (issue #18, ADR 0021), over HTTP: the sign-in form in the
 * language of the login's `ui_locales`, else of `Accept-Language` (quality values honoured), else
 * of the tenant's default, else English; `<html lang>` and `Content-Language` say which; a header
 * that makes no sense is never an error; error pages speak the same language; the tenant's
 * default is set through the admin API, validated and audited.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { adminClient, type AdminClient } from './support/admin.js';
import { authorizeUrl, CookieJar, formAction, hiddenInput, pkcePair, postForm } from './support/bff.js';
import { createNativeUser, nativeTenant, type NativeTenant } from './support/native-tenant.js';

const PASSWORD = 'correct horse battery staple';

let app: TestApp;
let admin: AdminClient;
let plain: NativeTenant;
let spanish: NativeTenant;

const json = async <T>(res: Response): Promise<T> => (await res.json()) as T;

/** Sets a tenant's default language through the admin API (If-Match as ops send it). */
async function patchTenant(id: string, body: Record<string, unknown>): Promise<Response> {
  const current = await admin.call('GET', `/admin/v1/tenants/${id}`);
  return admin.call('PATCH', `/admin/v1/tenants/${id}`, body, { 'if-match': current.headers.get('etag') ?? '' });
}

/** Starts a login of `t` and returns the hosted form's URL. */
async function startLogin(t: NativeTenant, extra: Record<string, string> = {}): Promise<string> {
  const { challenge } = pkcePair();
  const res = await fetch(
    authorizeUrl(app.url, t.bff, { org: t.slug, state: 's', code_challenge: challenge, code_challenge_method: 'S256', ...extra }),
    {
      redirect: 'manual',
    },
  );
  expect(res.status, await res.clone().text()).toBe(302);
  return res.headers.get('location')!;
}

interface Page {
  res: Response;
  html: string;
  lang: string | undefined;
}

async function open(url: string, headers: Record<string, string> = {}, jar?: CookieJar): Promise<Page> {
  const res = await fetch(url, { redirect: 'manual', headers: { ...headers, ...(jar ? { cookie: jar.header() } : {}) } });
  jar?.store(res);
  const html = await res.text();
  return { res, html, lang: /<html lang="([^"]*)"/.exec(html)?.[1] };
}

/** The sign-in form of a new login of `t`, fetched with `headers`. */
async function signInForm(t: NativeTenant, headers: Record<string, string> = {}, extra: Record<string, string> = {}): Promise<Page> {
  return open(await startLogin(t, extra), headers);
}

const expectLanguage = (p: Page, lang: string) => {
  expect(p.lang).toBe(lang);
  expect(p.res.headers.get('content-language')).toBe(lang);
};

beforeAll(async () => {
  app = await startTestApp({ RATE_LIMIT_LOGIN_PER_MINUTE: '1000', RATE_LIMIT_AUTHORIZE_PER_MINUTE: '1000' });
  admin = await adminClient(app);
  plain = await nativeTenant(app, admin, 'lang-plain');
  spanish = await nativeTenant(app, admin, 'lang-es', 'http://127.0.0.1:9/cb-es');
  expect((await patchTenant(spanish.id, { defaultLocale: 'es' })).status).toBe(200);
  await createNativeUser(admin, plain.id, { username: 'lena', password: PASSWORD });
});
afterAll(async () => app.close());

describe('the language of the sign-in form', () => {
  it('is English without any hint, word for word as before, with <html lang="en"> and Content-Language', async () => {
    const p = await signInForm(plain);
    expect(p.res.status).toBe(200);
    expectLanguage(p, 'en');
    expect(p.html).toContain('<title>Sign in</title>');
    expect(p.html).toContain('<h1>Sign in</h1><p>to <strong>lang-plain Ltd</strong></p>');
    expect(p.html).toContain('<label for="username">Email or username</label>');
    expect(p.html).toContain('Forgot your password?</a>');
    expect(p.res.headers.get('vary')).toMatch(/accept-language/i);
  });

  it('follows Accept-Language: German for de-DE,de;q=0.9', async () => {
    const p = await signInForm(plain, { 'accept-language': 'de-DE,de;q=0.9' });
    expectLanguage(p, 'de');
    expect(p.html).toContain('<title>Anmelden</title>');
    expect(p.html).toContain('<p>bei <strong>lang-plain Ltd</strong></p>');
    expect(p.html).toContain('E-Mail-Adresse oder Benutzername');
    expect(p.html).toContain('Passwort vergessen?');
  });

  it('puts ui_locales of the authorization request first: French even with an English Accept-Language', async () => {
    const p = await signInForm(plain, { 'accept-language': 'en-US,en;q=0.9' }, { ui_locales: 'fr-CA en' });
    expectLanguage(p, 'fr');
    expect(p.html).toContain('<title>Connexion</title>');
    expect(p.html).toContain('Mot de passe');
    // ui_locales names no shipped language: the header decides.
    expectLanguage(await signInForm(plain, { 'accept-language': 'es' }, { ui_locales: 'ja ko' }), 'es');
  });

  it("falls back to the tenant's default language when nothing the browser asks for is shipped, else English", async () => {
    const none = await signInForm(spanish);
    expectLanguage(none, 'es');
    expect(none.html).toContain('<title>Iniciar sesión</title>');
    expect(none.html).toContain('<p>en <strong>lang-es Ltd</strong></p>');
    expectLanguage(await signInForm(spanish, { 'accept-language': 'ja, zh-CN;q=0.8' }), 'es');
    // What the browser asks for comes before the tenant's default (Chromium sends en-US).
    expectLanguage(await signInForm(spanish, { 'accept-language': 'en-US' }), 'en');
    expectLanguage(await signInForm(plain, { 'accept-language': 'ja, zh-CN;q=0.8' }), 'en');
  });

  it('honours quality values, whatever the order', async () => {
    expectLanguage(await signInForm(plain, { 'accept-language': 'en;q=0.1, fr;q=0.8, de;q=0.5' }), 'fr');
    expectLanguage(await signInForm(plain, { 'accept-language': 'de;q=0.5, es' }), 'es');
    // q=0 means "not this one".
    expectLanguage(await signInForm(plain, { 'accept-language': 'fr;q=0, de;q=0.2' }), 'de');
    expectLanguage(await signInForm(spanish, { 'accept-language': 'fr;q=0' }), 'es');
    // Equal weights keep the header's order.
    expectLanguage(await signInForm(plain, { 'accept-language': 'fr;q=0.7, de;q=0.7' }), 'fr');
  });

  it('never fails on an Accept-Language or ui_locales that makes no sense', async () => {
    const url = await startLogin(plain);
    for (const header of [
      '',
      ',,,',
      ';;;',
      'q=1',
      '*',
      '*;q=0.5',
      'de;q=abc',
      'de;q=2',
      'de;q=-1, fr',
      'x-klingon-1234567890',
      'de-' + 'x'.repeat(500),
      Array.from({ length: 300 }, (_, i) => `l${i};q=0.${i % 10}`).join(','),
      'é, ü;q=0.5',
      'de\tDE',
    ]) {
      const p = await open(url, { 'accept-language': header });
      expect(p.res.status, header).toBe(200);
      expect(['en', 'fr'], header).toContain(p.lang);
    }
    // A malformed entry is skipped, the rest still counts.
    expectLanguage(await open(url, { 'accept-language': 'de;q=abc, fr;q=0.5' }), 'fr');
    for (const ui of ['', '   ', '<script>', 'de-' + 'x'.repeat(100), 'a'.repeat(2000)]) {
      const p = await signInForm(plain, { 'accept-language': 'es' }, { ui_locales: ui });
      expect(p.res.status, ui).toBe(200);
      expectLanguage(p, 'es');
    }
  });
});

describe('the other hosted pages in the same language', () => {
  it('shows a wrong password on the form in the language of the login', async () => {
    const jar = new CookieJar();
    const form = await open(await startLogin(plain, { ui_locales: 'de' }), {}, jar);
    expectLanguage(form, 'de');
    const res = await postForm(
      new URL(formAction(form.html)!, app.url).toString(),
      { csrf: hiddenInput(form.html, 'csrf')!, username: 'lena', password: 'not the password' },
      { jar },
    );
    expect(res.status).toBe(401);
    expect(res.headers.get('content-language')).toBe('de');
    expect(await res.text()).toContain('<p class="error" role="alert">Benutzername oder Passwort ist falsch.</p>');
  });

  it('shows the two-step verification pages in the language of the login, the QR code and key unchanged', async () => {
    const strict = await nativeTenant(app, admin, 'lang-mfa', 'http://127.0.0.1:9/cb-mfa', { mfa: 'required' });
    await createNativeUser(admin, strict.id, { username: 'marc', password: PASSWORD });
    const jar = new CookieJar();
    const form = await open(await startLogin(strict, { ui_locales: 'fr' }), { 'accept-language': 'de' }, jar);
    expectLanguage(form, 'fr');
    const enrol = await postForm(
      new URL(formAction(form.html)!, app.url).toString(),
      { csrf: hiddenInput(form.html, 'csrf')!, username: 'marc', password: PASSWORD },
      { jar },
    );
    expect(enrol.status).toBe(200);
    expect(enrol.headers.get('content-language')).toBe('fr');
    const html = await enrol.text();
    expect(html).toContain('<html lang="fr">');
    expect(html).toContain('<h1>Configurer la validation en deux étapes</h1>');
    expect(html).toContain('alt="Code QR de votre secret de validation en deux étapes"');
    expect(html).toMatch(/Ou saisissez cette clé à la main\u00a0: <code>[A-Z2-7]+<\/code>/);
    expect(html).toContain('<button type="submit">Confirmer</button>');
    // A wrong code: the refusal in French too.
    const wrong = await postForm(
      new URL(formAction(html)!, app.url).toString(),
      { csrf: hiddenInput(html, 'csrf')!, action: 'confirm', code: '000000' },
      { jar },
    );
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toContain('Ce code n&#39;est pas valide.');
  });

  it('translates an error page by its problem type: the language of the login (csrf), or of the browser (an unknown link)', async () => {
    const form = await open(await startLogin(plain, { ui_locales: 'es' }));
    // No CSRF cookie: refused after the login was loaded, so its ui_locales still decide.
    const refused = await postForm(new URL(formAction(form.html)!, app.url).toString(), { csrf: 'x', username: 'lena', password: 'x' });
    expect(refused.status).toBe(403);
    expect(refused.headers.get('content-language')).toBe('es');
    const refusedHtml = await refused.text();
    expect(refusedHtml).toContain('<html lang="es">');
    expect(refusedHtml).toContain('<h1>Problema al iniciar sesión</h1>');
    expect(refusedHtml).toContain('El formulario de inicio de sesión ha caducado.');

    const expired = await open(`${app.url}/login/native/lt_nothing_here`, { 'accept-language': 'fr-FR,fr;q=0.9,en;q=0.5' });
    expect(expired.res.status).toBe(400);
    expectLanguage(expired, 'fr');
    expect(expired.html).toContain('<h1>Problème de connexion</h1>');
    expect(expired.html).toContain('Ce lien de connexion n&#39;est pas valide ou a expiré.');
    expect(expired.html).toContain('Erreur 400.');

    // English keeps the detail word for word.
    const english = await open(`${app.url}/login/native/lt_nothing_here`);
    expectLanguage(english, 'en');
    expect(english.html).toContain('This sign-in link is invalid or has expired. Start again from the application.');
    expect(english.html).toContain('<h1>Sign-in problem</h1>');
  });

  it('renders the authorization error page in the language of its ui_locales', async () => {
    const p = await open(`${app.url}/oauth2/authorize?response_type=code&ui_locales=de`);
    expect(p.res.status).toBeGreaterThanOrEqual(400);
    expectLanguage(p, 'de');
    expect(p.html).toContain('<h1>Problem bei der Anmeldung</h1>');
  });

  it('shows the forgot-password page in the language of the login, and the signed-out page in the browser’s', async () => {
    const form = await open(await startLogin(plain, { ui_locales: 'fr' }));
    const forgot = await open(new URL(/href="(\/account\/forgot\/[^"]+)"/.exec(form.html)![1]!, app.url).toString());
    expectLanguage(forgot, 'fr');
    expect(forgot.html).toContain('<h1>Mot de passe oublié\u00a0?</h1>');
    expect(forgot.html).toContain('Envoyer le lien');

    const out = await open(`${app.url}/oauth2/logout`, { 'accept-language': 'es-ES' });
    expect(out.res.status).toBe(200);
    expectLanguage(out, 'es');
    expect(out.html).toContain('<h1>Sesión cerrada</h1>');
    const outEnglish = await open(`${app.url}/oauth2/logout`);
    expect(outEnglish.html).toContain('<h1>Signed out</h1><p>You are signed out. You can close this window.</p>');
  });
});

describe("the tenant's default language in the admin API", () => {
  it('takes a shipped language or null, refuses anything else, and audits the change', async () => {
    const t = await json<{ id: string; defaultLocale: string | null }>(
      await admin.call('POST', '/admin/v1/tenants', { slug: 'lang-admin', displayName: 'Lang Admin' }),
    );
    expect(t.defaultLocale).toBeNull();
    for (const bad of ['xx', 'DE', 'de-DE', 7, '', 'en '])
      expect((await patchTenant(t.id, { defaultLocale: bad })).status, String(bad)).toBe(400);
    const set = await patchTenant(t.id, { defaultLocale: 'fr' });
    expect(set.status).toBe(200);
    expect(await json(set)).toMatchObject({ defaultLocale: 'fr' });
    // A rename leaves it as it is; null clears it.
    expect(await json(await patchTenant(t.id, { displayName: 'Lang Admin SA' }))).toMatchObject({ defaultLocale: 'fr' });
    expect(await json(await patchTenant(t.id, { defaultLocale: null }))).toMatchObject({ defaultLocale: null });

    const events = await json<{
      items: { action: string; data: { before: { defaultLocale: unknown }; after: { defaultLocale: unknown } } }[];
    }>(await admin.call('GET', `/admin/v1/audit-events?tenantId=${t.id}&action=tenant.updated`));
    const changes = events.items.map((e) => [e.data.before.defaultLocale, e.data.after.defaultLocale]);
    expect(changes).toContainEqual([null, 'fr']);
    expect(changes).toContainEqual(['fr', null]);
  });
});
