/**
 * The hosted "enter your organisation" page (issue #18): a BFF registered with
 * `organizationPrompt` may send the browser to /oauth2/authorize without `org`; the service asks
 * for it (never listing organisations), carries the authorization request over, asks again for an
 * unknown one, remembers the last one in a cookie, and limits look-ups like every authorization
 * request. A client without the setting keeps the OAuth error.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { adminClient, type AdminClient } from './support/admin.js';
import { CookieJar, get, pkcePair, type BffClient } from './support/bff.js';
import { nativeTenant, type NativeTenant } from './support/native-tenant.js';

let app: TestApp;
let admin: AdminClient;
let tenant: NativeTenant;
let prompting: BffClient;

beforeAll(async () => {
  app = await startTestApp({ RATE_LIMIT_AUTHORIZE_PER_MINUTE: '8' });
  admin = await adminClient(app);
  tenant = await nativeTenant(app, admin, 'org-page-co');
  await nativeTenant(app, admin, 'secret-other-co');
  const res = await admin.call('POST', '/admin/v1/clients', {
    id: 'prompting-bff',
    name: 'Prompting BFF',
    kind: 'bff',
    redirectUris: ['http://127.0.0.1:9/cb'],
    organizationPrompt: true,
  });
  expect(res.status).toBe(201);
  const body = (await res.json()) as { clientSecret: string; organizationPrompt: boolean };
  expect(body.organizationPrompt).toBe(true);
  prompting = { clientId: 'prompting-bff', clientSecret: body.clientSecret, redirectUri: 'http://127.0.0.1:9/cb' };
}, 120_000);
afterAll(async () => app.close());

const request = (client: BffClient, extra: Record<string, string> = {}) => {
  const url = new URL('/oauth2/authorize', app.url);
  const params = {
    response_type: 'code',
    client_id: client.clientId,
    redirect_uri: client.redirectUri,
    scope: 'openid',
    state: 'st-1',
    code_challenge: pkcePair().challenge,
    code_challenge_method: 'S256',
    ...extra,
  };
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url;
};

/** Submits the page's GET form as a browser would: its hidden fields and the typed organisation. */
function submitted(html: string, org: string): string {
  const url = new URL(/<form method="get" action="([^"]+)"/.exec(html)![1]!, app.url);
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g))
    url.searchParams.set(m[1]!, m[2]!.replace(/&amp;/g, '&').replace(/&quot;/g, '"'));
  url.searchParams.set('org', org);
  return url.toString();
}

describe('the hosted organisation page', () => {
  it('asks for the organisation, lists none, and carries the whole request over to the sign-in', async () => {
    const jar = new CookieJar();
    const page = await get(request(prompting, { nonce: 'n-1', acr_values: 'x y' }).toString(), jar);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('<label for="org">Organisation</label>');
    expect(html).not.toContain('org-page-co');
    expect(html).not.toContain('secret-other-co');
    expect(html).toContain('name="nonce" value="n-1"');
    const next = await get(submitted(html, ' Org-Page-Co '), jar);
    expect(next.status).toBe(302);
    expect(next.headers.get('location')).toContain('/login/native/');
    expect(next.headers.getSetCookie().join()).toMatch(/auth_last_org=org-page-co; .*HttpOnly/i);
    // The next time, the page offers the last organisation.
    const again = await (await get(request(prompting).toString(), jar)).text();
    expect(again).toContain('value="org-page-co"');
  });

  it('asks again for an unknown organisation, on the page, without telling the application', async () => {
    const html = await (await get(request(prompting).toString())).text();
    const res = await get(submitted(html, 'no-such-co'));
    expect(res.status).toBe(404);
    const again = await res.text();
    expect(again).toContain('We could not find that organisation');
    expect(again).toContain('aria-invalid="true"');
    expect(again).toContain('value="no-such-co"');
    expect(res.headers.get('location')).toBeNull();
  });

  it('keeps the OAuth error for a client without the setting, and for a request invalid before the organisation', async () => {
    const plain = await get(request(tenant.bff).toString());
    expect(plain.status).toBe(302);
    expect(new URL(plain.headers.get('location')!).searchParams.get('error')).toBe('invalid_request');
    const bad = await get(request(prompting, { code_challenge_method: 'plain' }).toString());
    expect(bad.status).toBe(302);
    expect(new URL(bad.headers.get('location')!).searchParams.get('error')).toBe('invalid_request');
  });

  it('limits look-ups from the page like every authorization request', async () => {
    const html = await (await get(request(prompting).toString())).text();
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await get(submitted(html, `guess-${i}`))).status);
    expect(statuses).toContain(302);
    const limited = await get(submitted(html, 'guess-x'));
    expect(limited.status).toBe(302);
    expect(new URL(limited.headers.get('location')!).searchParams.get('error')).toBe('temporarily_unavailable');
  });

  it('speaks the language of the request (ui_locales, then Accept-Language)', async () => {
    const de = await fetch(request(prompting), { headers: { 'accept-language': 'de-DE,de;q=0.9' }, redirect: 'manual' });
    expect(de.headers.get('content-language')).toBe('de');
    expect(await de.text()).toContain('<label for="org">Name der Organisation</label>');
    const es = await fetch(request(prompting, { ui_locales: 'es' }), { headers: { 'accept-language': 'de' }, redirect: 'manual' });
    const html = await es.text();
    expect(html).toContain('<html lang="es">');
    expect(html).toContain('name="ui_locales" value="es"');
  });

  it('is switched on and off per client through the admin API', async () => {
    const current = await admin.call('GET', '/admin/v1/clients/prompting-bff');
    const off = await admin.call(
      'PATCH',
      '/admin/v1/clients/prompting-bff',
      { organizationPrompt: false },
      { 'if-match': current.headers.get('etag') ?? '' },
    );
    expect(off.status).toBe(200);
    expect(((await off.json()) as { organizationPrompt: boolean }).organizationPrompt).toBe(false);
    const res = await get(request(prompting).toString());
    expect(res.status).toBe(302);
    expect(new URL(res.headers.get('location')!).searchParams.get('error')).toBe('invalid_request');
  });
});
