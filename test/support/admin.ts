import { randomBytes } from 'node:crypto';
import { bootstrapAdmin } from '../../src/admin/admin-bootstrap.js';
import type { TestApp } from './app-harness.js';
import { basic, postForm } from './bff.js';

/** An admin API caller: the operator machine client's client_credentials token. */
export interface AdminClient {
  token: string;
  call(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Response>;
}

export async function adminClient(app: TestApp): Promise<AdminClient> {
  const { clientId, clientSecret } = await bootstrapAdmin(app.app, `ops-${randomBytes(3).toString('hex')}`);
  const res = await postForm(
    `${app.url}/oauth2/token`,
    { grant_type: 'client_credentials', scope: 'admin' },
    { headers: { authorization: basic(clientId, clientSecret) } },
  );
  const { access_token: token } = (await res.json()) as { access_token: string };
  return {
    token,
    call: (method, path, body, headers = {}) =>
      fetch(`${app.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
        body: body !== undefined ? JSON.stringify(body) : undefined,
      }),
  };
}
