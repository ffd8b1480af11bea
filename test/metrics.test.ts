/**
 * Prometheus `/metrics`: behind METRICS_TOKEN, and the counters move — logins per tenant and
 * adapter, token issuance per grant with its latency histogram, SCIM operations, upstream adapter
 * latency, rate-limit hits.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { adminClient } from './support/admin.js';
import { seedBff, seedNativeTenant } from './support/seed.js';
import { authorizeUrl, get, nativeLogin, pkcePair, submitNativeLogin, tokenRequest, type BffClient } from './support/bff.js';
import { entraUser, scimClient } from './support/scim.js';
import { MetricsService } from '../src/metrics/metrics.service.js';

const PASSWORD = 'correct horse battery staple';
const METRICS_TOKEN = 'metrics-test-token-0123456789abcdefghij';
const LOGIN_LIMIT = 6;

/** The value of one sample in Prometheus text format (0 when the series does not exist yet). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const m = /^[^{\s]+(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m) continue;
    const have = Object.fromEntries([...(m[1] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[2]);
  }
  return 0;
}

async function loginForm(base: string, bff: BffClient, org: string): Promise<string> {
  const start = await get(
    authorizeUrl(base, bff, { org, state: 's', code_challenge: pkcePair().challenge, code_challenge_method: 'S256' }),
  );
  expect(start.status).toBe(302);
  return start.headers.get('location')!;
}

describe('metrics', () => {
  let app: TestApp;
  let bff: BffClient;
  let tenantId: string;
  const scrape = async () => {
    const res = await fetch(`${app.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(res.status).toBe(200);
    return res.text();
  };

  beforeAll(async () => {
    app = await startTestApp({ METRICS_TOKEN, RATE_LIMIT_LOGIN_PER_MINUTE: String(LOGIN_LIMIT), RATE_LIMIT_AUTHORIZE_PER_MINUTE: '10000' });
    bff = await seedBff(app);
    tenantId = (
      await seedNativeTenant(app, 'metrics-co', [
        { username: 'ada@metrics-co.test', password: PASSWORD },
        { username: 'bea@metrics-co.test', password: PASSWORD },
        { username: 'cy@metrics-co.test', password: PASSWORD },
      ])
    ).tenant.id;
  });

  afterAll(async () => app?.close());

  it('is not public: 401 without the bearer token or with a wrong one', async () => {
    const none = await fetch(`${app.url}/metrics`);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect((await fetch(`${app.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}x` } })).status).toBe(401);
    const ok = await fetch(`${app.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(await ok.text()).toMatch(/^auth_signing_key_active 1$/m);
    // The auth-scheme is case-insensitive here as on every Bearer route (RFC 9110 §11.1).
    for (const scheme of ['bearer', 'BEARER'])
      expect((await fetch(`${app.url}/metrics`, { headers: { authorization: `${scheme} ${METRICS_TOKEN}` } })).status, scheme).toBe(200);
  });

  it('counts a login per tenant and adapter, and the token grants with their latency', async () => {
    const before = await scrape();
    const { tokens } = await nativeLogin(app.url, bff, 'metrics-co', 'ada@metrics-co.test', PASSWORD);
    const refreshed = await tokenRequest(app.url, bff, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token });
    expect(refreshed.status).toBe(200);
    expect((await tokenRequest(app.url, bff, { grant_type: 'refresh_token', refresh_token: 'rt_not-a-token' })).status).toBe(400);
    await adminClient(app); // a client_credentials grant
    const after = await scrape();

    const login = { tenant: tenantId, adapter: 'native', flow: 'browser', outcome: 'success' };
    expect(sample(after, 'auth_logins_total', login) - sample(before, 'auth_logins_total', login)).toBe(1);
    for (const grant of ['authorization_code', 'refresh_token', 'client_credentials']) {
      expect(
        sample(after, 'auth_tokens_issued_total', { grant_type: grant }) -
          sample(before, 'auth_tokens_issued_total', { grant_type: grant }),
        grant,
      ).toBe(1);
    }
    const ok = { grant_type: 'refresh_token', outcome: 'ok' };
    expect(
      sample(after, 'auth_token_request_duration_seconds_count', ok) - sample(before, 'auth_token_request_duration_seconds_count', ok),
    ).toBe(1);
    expect(sample(after, 'auth_token_request_duration_seconds_bucket', { ...ok, le: '+Inf' })).toBe(
      sample(after, 'auth_token_request_duration_seconds_count', ok),
    );
    const refused = { grant_type: 'refresh_token', outcome: 'client_error' };
    expect(
      sample(after, 'auth_token_request_duration_seconds_count', refused) -
        sample(before, 'auth_token_request_duration_seconds_count', refused),
    ).toBe(1);
    const adapterCall = { adapter: 'native', operation: 'complete_login', outcome: 'ok' };
    expect(sample(after, 'auth_idp_request_duration_seconds_count', adapterCall)).toBeGreaterThanOrEqual(1);
  });

  it('counts a wrong password as a rejected login, not an upstream error', async () => {
    const before = await scrape();
    const res = await submitNativeLogin(app.url, await loginForm(app.url, bff, 'metrics-co'), 'bea@metrics-co.test', 'wrong password');
    expect(res.status).toBe(401);
    const after = await scrape();
    const rejected = { tenant: tenantId, adapter: 'native', flow: 'browser', outcome: 'rejected' };
    expect(sample(after, 'auth_logins_total', rejected) - sample(before, 'auth_logins_total', rejected)).toBe(1);
    expect(sample(after, 'auth_idp_errors_total', { adapter: 'native', operation: 'complete_login' })).toBe(0);
  });

  it('counts SCIM operations by resource, operation and outcome', async () => {
    const scim = await scimClient(app, tenantId);
    const before = await scrape();
    expect((await scim.post('/Users', entraUser('new@metrics-co.test', randomUUID()))).status).toBe(201);
    expect((await scim.get('/Users')).status).toBe(200);
    expect((await scim.get(`/Users/${randomUUID()}`)).status).toBe(404);
    const after = await scrape();
    const delta = (labels: Record<string, string>) =>
      sample(after, 'auth_scim_operations_total', labels) - sample(before, 'auth_scim_operations_total', labels);
    expect(delta({ resource: 'Users', operation: 'create', outcome: 'ok' })).toBe(1);
    expect(delta({ resource: 'Users', operation: 'list', outcome: 'ok' })).toBe(1);
    expect(delta({ resource: 'Users', operation: 'get', outcome: 'client_error' })).toBe(1);
  });

  it('counts rate-limit hits (429) by endpoint', async () => {
    const form = await loginForm(app.url, bff, 'metrics-co');
    let limited = false;
    for (let i = 0; i < 2 * LOGIN_LIMIT + 2 && !limited; i++) {
      const res = await submitNativeLogin(app.url, form, 'cy@metrics-co.test', `wrong ${i}`);
      limited = res.status === 429;
    }
    expect(limited).toBe(true);
    expect(sample(await scrape(), 'auth_rate_limited_total', { endpoint: 'login' })).toBeGreaterThanOrEqual(1);
  });
});

describe('metrics without METRICS_TOKEN', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ METRICS_TENANT_LABEL: 'false', RATE_LIMIT_AUTHORIZE_PER_MINUTE: '2' });
  });
  afterAll(async () => app?.close());

  it('has no /metrics endpoint; METRICS_TENANT_LABEL=false folds tenants into one label; authorize rate limits are counted', async () => {
    expect((await fetch(`${app.url}/metrics`)).status).toBe(404);
    const bff = await seedBff(app);
    await seedNativeTenant(app, 'folded', [{ username: 'fay@folded.test', password: PASSWORD }]);
    await nativeLogin(app.url, bff, 'folded', 'fay@folded.test', PASSWORD);
    const text = await app.app.get(MetricsService).registry.metrics();
    expect(sample(text, 'auth_logins_total', { tenant: '_all', adapter: 'native', outcome: 'success' })).toBe(1);
    expect(text).not.toMatch(/auth_logins_total\{tenant="[0-9a-f-]{36}"/);

    // The authorization endpoint's limit answers with a redirect, not a 429: counted all the same.
    let limited = false;
    for (let i = 0; i < 6 && !limited; i++) {
      const res = await get(
        authorizeUrl(app.url, bff, { org: 'folded', state: 's', code_challenge: pkcePair().challenge, code_challenge_method: 'S256' }),
      );
      limited = new URL(res.headers.get('location')!).searchParams.get('error') === 'temporarily_unavailable';
    }
    expect(limited).toBe(true);
    expect(
      sample(await app.app.get(MetricsService).registry.metrics(), 'auth_rate_limited_total', { endpoint: 'authorize' }),
    ).toBeGreaterThanOrEqual(1);
  });
});
