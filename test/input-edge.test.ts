import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { seedBff, seedNativeTenant } from './support/seed.js';
import { authorizeUrl, basic, CookieJar, formAction, get, hiddenInput, pkcePair, postForm, type BffClient } from './support/bff.js';
import { ERROR_SCHEMA, entraUser, scimClient } from './support/scim.js';
import { problemType } from '../src/common/errors.js';

/**
 * U+0000, invalid UTF-8 and unpaired surrogates sent to every route the app has, wherever a
 * client can put them: the answer is a 400 in the route family's own format, never a 500 (which
 * is what PostgreSQL's refusal of U+0000 used to become).
 */

let app: TestApp;
let bff: BffClient;
const PASSWORD = 'correct horse battery staple';

beforeAll(async () => {
  app = await startTestApp({ RATE_LIMIT_AUTHORIZE_PER_MINUTE: '1000' });
  bff = await seedBff(app);
  await seedNativeTenant(app, 'edge', [{ username: 'erin@edge.test', password: PASSWORD }]);
});
afterAll(async () => app?.close());

interface Route {
  method: string;
  path: string;
}

interface ExpressLayer {
  route?: { path: string | string[]; methods: Record<string, boolean> };
}

/** Every route registered on Express (Nest controllers, the OpenAPI document): new routes are covered without listing them. */
function routesOf(running: TestApp): Route[] {
  const express = running.app.getHttpAdapter().getInstance() as { router: { stack: ExpressLayer[] } };
  const routes: Route[] = [];
  for (const layer of express.router.stack) {
    if (!layer.route) continue;
    const methods = Object.keys(layer.route.methods).filter((m) => layer.route!.methods[m] && m !== 'head');
    // @All and Nest's catch-all middleware register every method Node knows: GET and POST stand for them.
    const probed = methods.includes('_all') || methods.includes('connect') ? ['get', 'post'] : methods;
    for (const path of [layer.route.path].flat()) for (const method of probed) routes.push({ method: method.toUpperCase(), path });
  }
  return routes;
}

/** A request path for a route template: parameters get `value`; a route without any gets it appended to its last segment. */
function concrete(template: string, value = 'p'): string {
  const hasParam = /(?<!\\)[:*]\w+/.test(template);
  let first = true;
  const path = template
    .replace(/(?<!\\)[:*](\w+)/g, () => {
      const v = first ? value : 'p';
      first = false;
      return v;
    })
    .replace(/[{}]/g, '')
    .replace(/\\:/g, ':');
  return hasParam || value === 'p' ? path : `${path}${value}`;
}

type Family = 'oauth' | 'scim' | 'html' | 'problem';
/** A browser is sent to these OAuth routes: without Accept: application/json they answer a page. */
const BROWSER_OAUTH = new Set(['/oauth2/authorize', '/oauth2/logout', '/oauth2/logout/return']);
const familyOf = (path: string, method = 'GET'): Family =>
  method === 'GET' && BROWSER_OAUTH.has(path)
    ? 'html'
    : path.startsWith('/oauth2/')
      ? 'oauth'
      : path.startsWith('/scim/')
        ? 'scim'
        : path.startsWith('/login/') || path.startsWith('/saml/') || (path.startsWith('/account/') && !path.startsWith('/account/v1/'))
          ? 'html'
          : 'problem';

interface Probe {
  name: string;
  path?: string;
  query?: string;
  headers?: Record<string, string>;
  body?: { type: 'form' | 'json'; bytes: string | Buffer };
}

const invalidUtf8Json = Buffer.concat([Buffer.from('{"displayName":"a'), Buffer.from([0xff]), Buffer.from('b"}')]);

function probesFor(route: Route): Probe[] {
  const probes: Probe[] = [
    { name: 'U+0000 in the query', query: 'client_id=a%00b&cursor=x' },
    { name: 'U+0000 in a query parameter name', query: 'a%00b=1' },
    { name: 'U+0000 in a path segment', path: concrete(route.path, 'a%00b') },
    { name: 'an encoded lone surrogate in the query', query: 'filter=%ED%A0%80' },
    { name: '%FF in the query', query: 'name=%FF' },
    { name: '%C3%28 in the query', query: 'name=%C3%28' },
    { name: '%FF in a path segment', path: concrete(route.path, '%FF') },
    { name: 'U+0000 in percent-encoded Basic credentials', headers: { authorization: basic('a\u0000b', 'secret') } },
    { name: 'U+0000 in raw Basic credentials', headers: { authorization: `Basic ${Buffer.from('a\u0000b:secret').toString('base64')}` } },
    { name: 'invalid UTF-8 in Basic credentials', headers: { authorization: `Basic ${Buffer.from('a%C3%28:secret').toString('base64')}` } },
  ];
  if (route.method !== 'GET')
    probes.push(
      { name: 'U+0000 in a form field', body: { type: 'form', bytes: 'grant_type=client_credentials&client_id=a%00b&username=a%00b' } },
      { name: 'U+0000 in a form field name', body: { type: 'form', bytes: 'a%00b=1' } },
      { name: '%FF in a form field', body: { type: 'form', bytes: 'username=%FF' } },
      { name: '%C3%28 in a form field', body: { type: 'form', bytes: 'username=%C3%28' } },
      { name: 'U+0000 in a JSON string', body: { type: 'json', bytes: '{"name":"a\\u0000b","displayName":"a\\u0000b"}' } },
      { name: 'U+0000 in a JSON member name', body: { type: 'json', bytes: '{"a\\u0000b":1}' } },
      { name: 'a lone high surrogate in a JSON string', body: { type: 'json', bytes: '{"members":[{"value":"\\ud800"}]}' } },
      { name: 'a lone low surrogate in a nested JSON string', body: { type: 'json', bytes: '{"a":{"b":"x\\udc00"}}' } },
      { name: 'invalid UTF-8 bytes in a JSON body', body: { type: 'json', bytes: invalidUtf8Json } },
    );
  return probes;
}

async function send(route: Route, probe: Probe): Promise<{ status: number; type: string; text: string }> {
  const path = probe.path ?? concrete(route.path);
  const family = familyOf(path, route.method);
  const headers: Record<string, string> = { ...probe.headers };
  if (probe.body)
    headers['content-type'] =
      probe.body.type === 'form' ? 'application/x-www-form-urlencoded' : family === 'scim' ? 'application/scim+json' : 'application/json';
  const res = await fetch(`${app.url}${path}${probe.query ? `?${probe.query}` : ''}`, {
    method: route.method,
    redirect: 'manual',
    headers,
    ...(probe.body ? { body: typeof probe.body.bytes === 'string' ? probe.body.bytes : new Uint8Array(probe.body.bytes) } : {}),
  });
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
}

/** The refusal in the family's format: OAuth invalid_request, SCIM invalidValue, the HTML error page, problem+json. */
function expectRefusal(family: Family, res: { status: number; type: string; text: string }): void {
  expect(res.status).toBe(400);
  switch (family) {
    case 'oauth':
      expect(res.type).toMatch(/^application\/json/);
      expect(JSON.parse(res.text)).toEqual({
        error: 'invalid_request',
        error_description: expect.stringMatching(/contains (U\+0000|invalid UTF-8|an unpaired UTF-16 surrogate)\.$/),
      });
      break;
    case 'scim':
      expect(res.type).toMatch(/^application\/scim\+json/);
      expect(JSON.parse(res.text)).toMatchObject({ schemas: [ERROR_SCHEMA], status: '400', scimType: 'invalidValue' });
      break;
    case 'html':
      expect(res.type).toMatch(/^text\/html/);
      expect(res.text).toMatch(/^<!doctype html>/);
      expect(res.text).toContain('Error 400.');
      break;
    case 'problem':
      expect(res.type).toMatch(/^application\/problem\+json/);
      expect(JSON.parse(res.text)).toMatchObject({ type: problemType('invalid-characters'), title: 'Invalid characters', status: 400 });
      break;
  }
}

describe('U+0000, invalid UTF-8 and lone surrogates at the edge', () => {
  it('finds the routes of every family on the Express router', () => {
    const routes = routesOf(app).map((r) => `${r.method} ${r.path}`);
    expect(routes.length).toBeGreaterThan(70);
    for (const known of [
      'POST /oauth2/token',
      'GET /oauth2/authorize',
      'POST /oauth2/revoke',
      'GET /oauth2/revocations',
      'GET /oauth2/logout',
      'POST /login/native/:handle',
      'POST /saml/:slug/acs',
      'POST /scim/v2/Users',
      'PATCH /scim/v2/Groups/:id',
      'GET /admin/v1/tenants',
      'GET /admin/v1/audit-events',
      'GET /.well-known/jwks.json',
      'GET /docs/openapi.json',
    ])
      expect(routes).toContain(known);
  });

  it('refuses them on every route with a 400 in the route family’s format, before authentication', async () => {
    const failures: string[] = [];
    for (const route of routesOf(app)) {
      await Promise.all(
        probesFor(route).map(async (probe) => {
          const path = probe.path ?? concrete(route.path);
          const res = await send(route, probe);
          try {
            // The JWKS at its bare URL is answered before Express and reads no header: nothing to refuse.
            if (route.path === '/.well-known/jwks.json' && !probe.path && !probe.query && !probe.body) expect(res.status).toBe(200);
            else expectRefusal(familyOf(path, route.method), res);
          } catch {
            failures.push(`${route.method} ${route.path} with ${probe.name}: ${res.status} ${res.type} ${res.text.slice(0, 160)}`);
          }
        }),
      );
    }
    expect(failures).toEqual([]);
  });

  it('refuses them on a path no route has, in the prefix’s format', async () => {
    expectRefusal('oauth', await send({ method: 'GET', path: '/oauth2/nowhere' }, { name: 'NUL', query: 'a=%00' }));
    expectRefusal('scim', await send({ method: 'GET', path: '/scim/v2/Nowhere' }, { name: 'NUL', query: 'a=%00' }));
    expectRefusal('problem', await send({ method: 'GET', path: '/nowhere%00' }, { name: 'NUL' }));
  });

  it('refuses them on the JWKS, which is answered before Express for its bare URL', async () => {
    expectRefusal('problem', await send({ method: 'GET', path: '/.well-known/jwks.json' }, { name: 'NUL', query: 'x=%00' }));
    expect((await fetch(`${app.url}/.well-known/jwks.json`)).status).toBe(200);
  });

  it('names where the refused text was, never the text', async () => {
    const res = await send(
      { method: 'POST', path: '/admin/v1/tenants' },
      { name: 'NUL', body: { type: 'json', bytes: '{"settings":{"a/b":["ok","secret\\u0000value"]}}' } },
    );
    expect(JSON.parse(res.text)).toMatchObject({ detail: 'The request body at /settings/a~1b/1 contains U+0000.' });
    expect(res.text).not.toContain('secret');
    const key = await send(
      { method: 'POST', path: '/admin/v1/tenants' },
      { name: 'NUL', body: { type: 'json', bytes: '{"settings":{"x\\u0000":1}}' } },
    );
    expect(JSON.parse(key.text)).toMatchObject({ detail: 'The name of a member of the request body at /settings contains U+0000.' });
    const query = await send({ method: 'GET', path: '/admin/v1/tenants' }, { name: 'NUL', query: 'cursor=%00' });
    expect(JSON.parse(query.text)).toMatchObject({ detail: 'The query string contains U+0000.' });
  });

  it('lets well-formed text through: non-ASCII, surrogate pairs, and a literal "%00" in JSON or double-encoded in a URL', async () => {
    const live = await fetch(`${app.url}/health/live?x=%C3%A9%F0%9F%98%80&y=%2500`);
    expect(live.status).toBe(200);
    // A JSON body is not percent-decoded: "%00" and "%FF" in it are text.
    const json = await fetch(`${app.url}/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"grant_type":"client_credentials","client_id":"caf\\u00e9 \\ud83d\\ude00 %00 %FF"}',
    });
    expect(json.status).not.toBe(500);
    expect(await json.json()).not.toMatchObject({ error_description: expect.stringContaining('contains') });
    const form = await postForm(`${app.url}/oauth2/token`, { grant_type: 'client_credentials', client_id: 'café 😀 %00' });
    expect(form.status).toBe(401);
    expect(await form.json()).toMatchObject({ error: 'invalid_client' });
    const basicAuth = await postForm(
      `${app.url}/oauth2/token`,
      { grant_type: 'client_credentials' },
      { headers: { authorization: basic('café 😀', 'wrong') } },
    );
    expect(basicAuth.status).toBe(401);
  });

  it('answers a username with U+0000 on the hosted login form with the HTML error page, and the form still works after', async () => {
    const { challenge } = pkcePair();
    const start = await get(
      authorizeUrl(app.url, bff, { org: 'edge', state: 's-1', code_challenge: challenge, code_challenge_method: 'S256' }),
    );
    expect(start.status).toBe(302);
    const jar = new CookieJar();
    const page = await get(start.headers.get('location')!, jar);
    const html = await page.text();
    const action = new URL(formAction(html)!, app.url).toString();
    expect(new URL(action).pathname).toMatch(/^\/login\/native\//);
    const csrf = hiddenInput(html, 'csrf')!;
    const refused = await postForm(action, { csrf, username: 'erin\u0000@edge.test', password: PASSWORD }, { jar });
    expect(refused.status).toBe(400);
    expect(refused.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await refused.text()).toContain('The request body at /username contains U+0000.');
    const done = await postForm(action, { csrf, username: 'erin@edge.test', password: PASSWORD }, { jar });
    expect(done.status).toBe(302);
    expect(done.headers.get('location')).toMatch(/^http:\/\/127\.0\.0\.1:9\/bff\/callback\?code=/);
  });

  it('answers SCIM with invalidValue naming the attribute, for an authenticated IdP too', async () => {
    const tenant = await seedNativeTenant(app, 'edge-scim', []);
    const scim = await scimClient(app, tenant.tenant.id);
    const res = await scim.post('/Users', entraUser('nul@edge.test', 'nul-1', { displayName: 'nul\u0000inside' }));
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      schemas: [ERROR_SCHEMA],
      status: '400',
      scimType: 'invalidValue',
      detail: 'The request body at /displayName contains U+0000.',
    });
    const lone = await scim.request(
      'PATCH',
      '/Users/p',
      '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"displayName":"\\udfff"}}]}',
    );
    expect(lone.body).toMatchObject({
      scimType: 'invalidValue',
      detail: 'The request body at /Operations/0/value/displayName contains an unpaired UTF-16 surrogate.',
    });
  });
});
