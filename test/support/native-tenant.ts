/**
 * A tenant signing in with the hosted form, for tests of native accounts: created through the
 * admin API with an active native binding (tested, then activated, as ops do it) and a BFF client.
 */
import { expect } from 'vitest';
import type { TestApp } from './app-harness.js';
import type { AdminClient } from './admin.js';
import { nativeLogin, submitNativeLogin, type BffClient } from './bff.js';

export interface NativeTenant {
  id: string;
  slug: string;
  bff: BffClient;
}

export interface AdminCaller {
  call: AdminClient['call'];
}

const PROBE_PASSWORD = 'probe horse battery staple';

export async function createNativeUser(caller: AdminCaller, tenantId: string, body: Record<string, unknown>): Promise<{ id: string }> {
  const res = await caller.call('POST', `/admin/v1/tenants/${tenantId}/users`, body);
  expect(res.status, await res.clone().text()).toBe(201);
  return (await res.json()) as { id: string };
}

export async function nativeTenant(
  app: TestApp,
  admin: AdminClient,
  slug: string,
  redirectUri = 'http://127.0.0.1:9/cb',
  /** The native binding's config, e.g. `{ mfa: 'required' }`. */
  config: Record<string, unknown> = {},
): Promise<NativeTenant> {
  const json = async <T>(res: Response) => (await res.json()) as T;
  const t = await json<{ id: string; slug: string }>(await admin.call('POST', '/admin/v1/tenants', { slug, displayName: `${slug} Ltd` }));
  const b = await json<{ id: string }>(await admin.call('POST', `/admin/v1/tenants/${t.id}/bindings`, { kind: 'native', config }));
  // A native binding's test login needs a user; activation needs the test login. The probe goes afterwards.
  const probe = await createNativeUser(admin, t.id, { username: `probe-${slug}`, password: PROBE_PASSWORD });
  const test = await json<{ url: string }>(await admin.call('POST', `/admin/v1/tenants/${t.id}/bindings/${b.id}/test-login`));
  await submitNativeLogin(app.url, test.url, `probe-${slug}`, PROBE_PASSWORD);
  const current = await admin.call('GET', `/admin/v1/tenants/${t.id}/bindings/${b.id}`);
  const activated = await admin.call('POST', `/admin/v1/tenants/${t.id}/bindings/${b.id}/activate`, undefined, {
    'if-match': current.headers.get('etag') ?? '',
  });
  expect(activated.status).toBe(200);
  expect((await admin.call('DELETE', `/admin/v1/tenants/${t.id}/users/${probe.id}`)).status).toBe(204);
  const client = await admin.call('POST', '/admin/v1/clients', { id: `${slug}-bff`, name: slug, kind: 'bff', redirectUris: [redirectUri] });
  expect(client.status).toBe(201);
  const bff = { clientId: `${slug}-bff`, clientSecret: (await json<{ clientSecret: string }>(client)).clientSecret, redirectUri };
  return { ...t, bff };
}

/** An API caller with a user's own platform access token (a hosted-form login through the BFF). */
export async function signedInCaller(app: TestApp, t: NativeTenant, username: string, password: string) {
  const { tokens } = await nativeLogin(app.url, t.bff, t.slug, username, password);
  const call: AdminClient['call'] = (method, path, body, headers = {}) =>
    fetch(`${app.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${tokens.access_token}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
  return { call, tokens };
}
