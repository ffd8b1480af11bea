import { ScimTokensService } from '../../src/scim/scim-tokens.service.js';
import type { TestApp } from './app-harness.js';

export interface ScimResponse<T = Record<string, unknown>> {
  status: number;
  body: T;
  headers: Headers;
  text: string;
}

/** A SCIM client over real HTTP, speaking like the IdPs do (application/scim+json, bearer token). */
export class ScimClient {
  constructor(
    readonly baseUrl: string,
    readonly token: string,
  ) {}

  static for(app: TestApp, token: string): ScimClient {
    return new ScimClient(`${app.url}/scim/v2`, token);
  }

  async request<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<ScimResponse<T>> {
    const res = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        accept: 'application/scim+json',
        ...(body !== undefined ? { 'content-type': 'application/scim+json; charset=utf-8' } : {}),
        ...headers,
      },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    let parsed: unknown = undefined;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
    }
    return { status: res.status, body: parsed as T, headers: res.headers, text };
  }

  get<T = Record<string, unknown>>(path: string, headers?: Record<string, string>) {
    return this.request<T>('GET', path, undefined, headers);
  }
  post<T = Record<string, unknown>>(path: string, body: unknown, headers?: Record<string, string>) {
    return this.request<T>('POST', path, body, headers);
  }
  put<T = Record<string, unknown>>(path: string, body: unknown, headers?: Record<string, string>) {
    return this.request<T>('PUT', path, body, headers);
  }
  patch<T = Record<string, unknown>>(path: string, body: unknown, headers?: Record<string, string>) {
    return this.request<T>('PATCH', path, body, headers);
  }
  delete<T = Record<string, unknown>>(path: string, headers?: Record<string, string>) {
    return this.request<T>('DELETE', path, undefined, headers);
  }
}

export async function scimClient(app: TestApp, tenantId: string, name = 'test IdP'): Promise<ScimClient> {
  const { token } = await app.app.get(ScimTokensService).create(tenantId, name);
  return ScimClient.for(app, token);
}

export const q = (filter: string, extra = ''): string => `?filter=${encodeURIComponent(filter)}${extra}`;

export const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
export const CORE_USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const CORE_GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
export const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';

export interface ListBody {
  totalResults: number;
  startIndex: number;
  itemsPerPage: number;
  Resources: Array<Record<string, unknown>>;
}

/** A user as Entra ID provisions it (shape of its documented "Create User" request). */
export function entraUser(userName: string, externalId: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    schemas: [CORE_USER, ENTERPRISE],
    externalId,
    userName,
    active: true,
    emails: [{ primary: true, type: 'work', value: userName }],
    meta: { resourceType: 'User' },
    name: { formatted: 'givenName familyName', familyName: 'familyName', givenName: 'givenName' },
    roles: [],
    ...extra,
  };
}

/** A user as Okta provisions it (its documented "Create the user" request). */
export function oktaUser(userName: string, externalId: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    schemas: [CORE_USER],
    userName,
    name: { givenName: 'Test', familyName: 'User' },
    emails: [{ primary: true, value: userName, type: 'work' }],
    displayName: 'Test User',
    locale: 'en-US',
    externalId,
    groups: [],
    password: '1mz050nq',
    active: true,
    ...extra,
  };
}
