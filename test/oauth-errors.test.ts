import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import pg from 'pg';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { seedBff, seedNativeTenant } from './support/seed.js';
import {
  authorizeUrl,
  basic,
  CookieJar,
  formAction,
  get,
  getJson,
  hiddenInput,
  nativeLogin,
  pkcePair,
  postForm,
  submitNativeLogin,
  tokenRequest,
  type BffClient,
} from './support/bff.js';
import { sha256 } from '../src/crypto/random.js';
import { NativeCredentialsService } from '../src/identity/native/native-credentials.service.js';

let app: TestApp;
let bff: BffClient;
const PASSWORD = 'correct horse battery staple';

beforeAll(async () => {
  app = await startTestApp({ NATIVE_LOCKOUT_THRESHOLD: '3', RATE_LIMIT_AUTHORIZE_PER_MINUTE: '1000' });
  bff = await seedBff(app);
  await seedNativeTenant(app, 'acme', [
    { username: 'alice@acme.test', password: PASSWORD },
    { username: 'locky@acme.test', password: PASSWORD },
  ]);
});
afterAll(async () => app?.close());

const pkce = pkcePair();
const valid = { org: 'acme', state: 'st-1', code_challenge: pkce.challenge, code_challenge_method: 'S256' };
const redirectError = (res: Response) => {
  expect(res.status).toBe(302);
  const loc = new URL(res.headers.get('location')!);
  expect(`${loc.origin}${loc.pathname}`).toBe(bff.redirectUri);
  return {
    error: loc.searchParams.get('error'),
    description: loc.searchParams.get('error_description'),
    state: loc.searchParams.get('state'),
  };
};

describe('authorization request errors', () => {
  it('refuses a request without PKCE, back to the client with invalid_request', async () => {
    const res = await get(authorizeUrl(app.url, bff, { ...valid, code_challenge: undefined, code_challenge_method: undefined }));
    expect(redirectError(res)).toMatchObject({ error: 'invalid_request', state: 'st-1' });
  });

  it('refuses plain PKCE', async () => {
    const res = await get(authorizeUrl(app.url, bff, { ...valid, code_challenge: pkce.verifier, code_challenge_method: 'plain' }));
    expect(redirectError(res)).toMatchObject({ error: 'invalid_request', description: 'Only code_challenge_method=S256 is supported.' });
  });

  it('never redirects to an unregistered redirect_uri', async () => {
    const res = await getJson(authorizeUrl(app.url, { ...bff, redirectUri: 'https://evil.test/cb' }, valid));
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
    expect(await res.json()).toMatchObject({ error: 'invalid_request' });
  });

  it('refuses an unknown client without redirecting', async () => {
    const res = await getJson(authorizeUrl(app.url, { ...bff, clientId: 'nobody' }, valid));
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_client' });
  });

  it('tells the user an organisation was not found, and reveals nothing else', async () => {
    const res = await get(authorizeUrl(app.url, bff, { ...valid, org: 'acmee' }));
    expect(redirectError(res)).toEqual({
      error: 'unknown_organization',
      description: 'Organisation not found. Check the organisation name and try again.',
      state: 'st-1',
    });
  });

  it('rejects repeated parameters', async () => {
    const res = await getJson(authorizeUrl(app.url, bff, valid) + '&org=globex');
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_request' });
  });

  it('rate-limits organisation look-ups per client IP', async () => {
    const limited = await startTestApp({ RATE_LIMIT_AUTHORIZE_PER_MINUTE: '3' }, app.db);
    try {
      const statuses: string[] = [];
      for (let i = 0; i < 5; i++)
        statuses.push(redirectError(await get(authorizeUrl(limited.url, bff, { ...valid, org: `probe-${i}` }))).error!);
      // The limit is shared through the database, so earlier look-ups by this IP on the other replica count too.
      expect(statuses.slice(-2)).toEqual(['temporarily_unavailable', 'temporarily_unavailable']);
      expect(statuses).toContain('temporarily_unavailable');
    } finally {
      await limited.close();
    }
  });
});

describe('token endpoint errors', () => {
  async function codeFor(username = 'alice@acme.test') {
    const { verifier, challenge } = pkcePair();
    const start = await get(authorizeUrl(app.url, bff, { ...valid, code_challenge: challenge }));
    const done = await submitNativeLogin(app.url, start.headers.get('location')!, username, PASSWORD);
    return { code: new URL(done.headers.get('location')!).searchParams.get('code')!, verifier };
  }

  it('refuses a wrong PKCE verifier and burns the code', async () => {
    const { code, verifier } = await codeFor();
    const wrong = await tokenRequest(app.url, bff, {
      grant_type: 'authorization_code',
      code,
      redirect_uri: bff.redirectUri,
      code_verifier: pkcePair().verifier,
    });
    expect(wrong.status).toBe(400);
    expect(await wrong.json()).toEqual({
      error: 'invalid_grant',
      error_description: 'PKCE verification failed: code_verifier does not match code_challenge.',
    });
    const right = await tokenRequest(app.url, bff, {
      grant_type: 'authorization_code',
      code,
      redirect_uri: bff.redirectUri,
      code_verifier: verifier,
    });
    expect(await right.json()).toMatchObject({ error: 'invalid_grant' });
  });

  it('refuses a missing code_verifier', async () => {
    const { code } = await codeFor();
    const res = await tokenRequest(app.url, bff, { grant_type: 'authorization_code', code, redirect_uri: bff.redirectUri });
    expect(await res.json()).toMatchObject({ error: 'invalid_request', error_description: 'code_verifier is required (PKCE).' });
  });

  it('refuses a replayed code and revokes what the first exchange issued', async () => {
    const { code, verifier } = await codeFor();
    const form = { grant_type: 'authorization_code', code, redirect_uri: bff.redirectUri, code_verifier: verifier };
    const first = await tokenRequest(app.url, bff, form);
    expect(first.status).toBe(200);
    const { refresh_token } = (await first.json()) as { refresh_token: string };
    const replay = await tokenRequest(app.url, bff, form);
    expect(replay.status).toBe(400);
    expect(await replay.json()).toMatchObject({ error: 'invalid_grant' });
    const refresh = await tokenRequest(app.url, bff, { grant_type: 'refresh_token', refresh_token });
    expect(await refresh.json()).toMatchObject({ error: 'invalid_grant' });
  });

  it('refuses an expired code', async () => {
    const { code, verifier } = await codeFor();
    // Age the code in the database rather than sleeping: the service compares expires_at with now.
    const client = new pg.Client({ connectionString: app.db.url });
    await client.connect();
    const tenant = code.split('_')[1]!;
    await client.query('BEGIN');
    await client.query(`SELECT set_config('app.tenant_id', $1, true)`, [
      `${tenant.slice(0, 8)}-${tenant.slice(8, 12)}-${tenant.slice(12, 16)}-${tenant.slice(16, 20)}-${tenant.slice(20)}`,
    ]);
    const aged = await client.query(`UPDATE authorization_codes SET expires_at = now() - interval '1 second' WHERE code_hash = $1`, [
      sha256(code),
    ]);
    await client.query('COMMIT');
    await client.end();
    expect(aged.rowCount).toBe(1);
    const res = await tokenRequest(app.url, bff, {
      grant_type: 'authorization_code',
      code,
      redirect_uri: bff.redirectUri,
      code_verifier: verifier,
    });
    expect(await res.json()).toMatchObject({ error: 'invalid_grant' });
  });

  it('refuses a redirect_uri different from the authorization request', async () => {
    const { code, verifier } = await codeFor();
    const res = await tokenRequest(app.url, bff, {
      grant_type: 'authorization_code',
      code,
      redirect_uri: 'http://127.0.0.1:9/other',
      code_verifier: verifier,
    });
    expect(await res.json()).toMatchObject({
      error: 'invalid_grant',
      error_description: 'redirect_uri does not match the authorization request.',
    });
  });

  it('answers a wrong client secret with 401 invalid_client and WWW-Authenticate', async () => {
    const res = await tokenRequest(app.url, { ...bff, clientSecret: 'wrong' }, { grant_type: 'refresh_token', refresh_token: 'x' });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Basic/);
    expect(await res.json()).toEqual({ error: 'invalid_client', error_description: 'Client authentication failed.' });
  });

  it('answers an unknown client with invalid_client', async () => {
    const res = await postForm(`${app.url}/oauth2/token`, { grant_type: 'client_credentials', client_id: 'ghost', client_secret: 'x' });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: 'invalid_client' });
  });

  it('refuses an unsupported grant type', async () => {
    const res = await tokenRequest(app.url, bff, { grant_type: 'password', username: 'a', password: 'b' });
    expect(await res.json()).toMatchObject({ error: 'unsupported_grant_type' });
  });

  it('answers a JSON body with invalid_request', async () => {
    const res = await fetch(`${app.url}/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: basic(bff.clientId, bff.clientSecret) },
      body: '{"grant_type":"refresh_token"}',
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_request' });
  });

  it('answers a malformed JSON body elsewhere with problem+json', async () => {
    const res = await fetch(`${app.url}/login/callback/oidc`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: '{"broken"',
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
    const body = await res.json();
    expect(body, JSON.stringify(body)).toMatchObject({ status: 400, title: 'Malformed request body' });
  });

  it('answers an oversized body with 413, as OAuth JSON on the token endpoint', async () => {
    const res = await postForm(
      `${app.url}/oauth2/token`,
      { grant_type: 'refresh_token', refresh_token: 'x'.repeat(100_000) },
      { headers: { authorization: basic(bff.clientId, bff.clientSecret) } },
    );
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: 'invalid_request' });
  });

  it('answers unknown routes with problem+json 404', async () => {
    const res = await fetch(`${app.url}/organisations`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
  });

  it('issues machine tokens with client_credentials, only within the client scopes', async () => {
    const { ClientsService } = await import('../src/clients/clients.service.js');
    const { TenantsService } = await import('../src/tenants/tenants.service.js');
    const tenant = (await app.app.get(TenantsService).findActiveBySlug('acme'))!;
    const { secret } = await app.app
      .get(ClientsService)
      .create({ id: 'acme-reporting', name: 'Reporting job', kind: 'machine', tenantId: tenant.id, scopes: ['reports:read'] });
    const ok = await postForm(
      `${app.url}/oauth2/token`,
      { grant_type: 'client_credentials', scope: 'reports:read' },
      { headers: { authorization: basic('acme-reporting', secret) } },
    );
    expect(ok.status).toBe(200);
    const body = (await ok.json()) as { access_token: string; scope: string };
    expect(body.scope).toBe('reports:read');
    const payload = JSON.parse(Buffer.from(body.access_token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    expect(payload).toMatchObject({ sub: 'client:acme-reporting', tid: tenant.id, org: 'acme', client_id: 'acme-reporting', roles: [] });
    const denied = await postForm(
      `${app.url}/oauth2/token`,
      { grant_type: 'client_credentials', scope: 'admin' },
      { headers: { authorization: basic('acme-reporting', secret) } },
    );
    expect(await denied.json()).toMatchObject({ error: 'invalid_scope' });
    const bffTries = await tokenRequest(app.url, bff, { grant_type: 'client_credentials' });
    expect(await bffTries.json()).toMatchObject({ error: 'unauthorized_client' });
  });
});

describe('hosted login form', () => {
  it('gives the same answer for an unknown user and a wrong password', async () => {
    const attempt = async (username: string) => {
      const start = await get(authorizeUrl(app.url, bff, valid));
      const res = await submitNativeLogin(app.url, start.headers.get('location')!, username, 'wrong password!');
      const html = await res.text();
      return { status: res.status, message: /<p class="error"[^>]*>([^<]*)</.exec(html)?.[1] };
    };
    const unknown = await attempt('nobody@acme.test');
    const wrong = await attempt('alice@acme.test');
    expect(unknown).toEqual({ status: 401, message: 'Invalid username or password.' });
    expect(wrong).toEqual(unknown);
  });

  it('locks the account after repeated failures, so even the right password fails until the lock ends', async () => {
    const start = await get(authorizeUrl(app.url, bff, valid));
    const formUrl = start.headers.get('location')!;
    for (let i = 0; i < 3; i++) expect((await submitNativeLogin(app.url, formUrl, 'locky@acme.test', 'nope-nope-nope')).status).toBe(401);
    const locked = await submitNativeLogin(app.url, formUrl, 'locky@acme.test', PASSWORD);
    expect(locked.status).toBe(401);
    expect(await locked.text()).toContain('Invalid username or password.');
    // Another user of the tenant is unaffected.
    await expect(nativeLogin(app.url, bff, 'acme', 'alice@acme.test', PASSWORD)).resolves.toBeTruthy();
  });

  it('spends one argon2 verification on an unknown user, a locked account and a wrong password alike', async () => {
    // Equal work rather than a stopwatch: each failure runs exactly one argon2id verification.
    const verify = vi.spyOn(app.app.get(NativeCredentialsService).hasher, 'verify');
    try {
      const verifications = async (username: string) => {
        const start = await get(authorizeUrl(app.url, bff, valid));
        verify.mockClear();
        const res = await submitNativeLogin(app.url, start.headers.get('location')!, username, 'wrong password!');
        expect(res.status).toBe(401);
        return verify.mock.calls.length;
      };
      expect(await verifications('nobody@acme.test')).toBe(1);
      expect(await verifications('alice@acme.test')).toBe(1);
      expect(await verifications('locky@acme.test')).toBe(1); // locked by the test above
    } finally {
      verify.mockRestore();
    }
  });

  it('does not finish a login through a binding retired after the login started', async () => {
    const { tenant } = await seedNativeTenant(app, 'retiring-co', [{ username: 'rita@retiring.test', password: PASSWORD }]);
    const start = await get(authorizeUrl(app.url, bff, { ...valid, org: 'retiring-co' }));
    const formUrl = start.headers.get('location')!;
    await app.database.transaction({ tenant: tenant.id }, (tx) =>
      tx.query(`UPDATE tenant_identity_providers SET status = 'retired', retired_at = now() WHERE tenant_id = $1`, [tenant.id]),
    );
    app.database.rowsChanged('tenant_identity_providers');
    const res = await submitNativeLogin(app.url, formUrl, 'rita@retiring.test', PASSWORD);
    const { error, state } = redirectError(res);
    expect({ error, state }).toEqual({ error: 'temporarily_unavailable', state: 'st-1' });
  });

  it('refuses a form post without the CSRF cookie', async () => {
    const start = await get(authorizeUrl(app.url, bff, valid));
    const page = await get(start.headers.get('location')!, new CookieJar());
    const html = await page.text();
    const res = await postForm(new URL(formAction(html)!, app.url).toString(), {
      csrf: hiddenInput(html, 'csrf')!,
      username: 'alice@acme.test',
      password: PASSWORD,
    });
    expect(res.status).toBe(403);
  });

  it('refuses a finished or forged login transaction', async () => {
    const res = await get(`${app.url}/login/native/lt_00000000000000000000000000000000_${'A'.repeat(43)}`);
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('invalid or has expired');
  });
});
