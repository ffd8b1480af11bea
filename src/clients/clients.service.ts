import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { Database } from '../database/database.js';
import { constantEquals, randomToken, sha256 } from '../crypto/random.js';
import { OAuthError, ProblemError, problemType } from '../common/errors.js';
import { RowCache } from '../database/row-cache.js';

export type ClientKind = 'bff' | 'machine';

export interface Client {
  id: string;
  tenantId: string | null;
  name: string;
  kind: ClientKind;
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  grantTypes: string[];
  scopes: string[];
  enabled: boolean;
}

interface ClientRow {
  id: string;
  tenant_id: string | null;
  name: string;
  kind: ClientKind;
  secret_hash: string | null;
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  grant_types: string[];
  scopes: string[];
  enabled: boolean;
}

export interface NewClient {
  id: string;
  name: string;
  kind: ClientKind;
  tenantId?: string | null;
  redirectUris?: string[];
  postLogoutRedirectUris?: string[];
  grantTypes?: string[];
  scopes?: string[];
}

const toClient = (r: ClientRow): Client => ({
  id: r.id,
  tenantId: r.tenant_id,
  name: r.name,
  kind: r.kind,
  redirectUris: r.redirect_uris,
  postLogoutRedirectUris: r.post_logout_redirect_uris,
  grantTypes: r.grant_types,
  scopes: r.scopes,
  enabled: r.enabled,
});

export interface ClientCredentials {
  clientId?: string;
  clientSecret?: string;
  /** Which method the request used, for the WWW-Authenticate answer. */
  method: 'basic' | 'post' | 'none';
}

/** Parses client_secret_basic (RFC 6749 §2.3.1: form-urlencoded inside Basic) or client_secret_post. */
export function readClientCredentials(authorization: string | undefined, body: Record<string, unknown>): ClientCredentials {
  const inBody = typeof body['client_secret'] === 'string';
  if (authorization?.startsWith('Basic ')) {
    if (inBody) throw new OAuthError('invalid_request', 'Use one client authentication method, not two.');
    const decoded = Buffer.from(authorization.slice(6).trim(), 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i < 0) throw new OAuthError('invalid_client', 'Malformed Basic credentials.');
    try {
      return {
        clientId: decodeURIComponent(decoded.slice(0, i).replace(/\+/g, ' ')),
        clientSecret: decodeURIComponent(decoded.slice(i + 1).replace(/\+/g, ' ')),
        method: 'basic',
      };
    } catch {
      throw new OAuthError('invalid_client', 'Malformed Basic credentials.');
    }
  }
  const clientId = typeof body['client_id'] === 'string' ? body['client_id'] : undefined;
  return { clientId, clientSecret: inBody ? (body['client_secret'] as string) : undefined, method: inBody ? 'post' : 'none' };
}

/** What `PATCH /admin/v1/clients/{id}` may change; a list given replaces the stored one. */
export interface ClientChange {
  name?: string;
  redirectUris?: string[];
  postLogoutRedirectUris?: string[];
  scopes?: string[];
}

/** Redirect and post-logout URIs are matched exactly, so they must be absolute and without a fragment. */
function checkRedirectUris(uris: string[]): void {
  for (const uri of uris) {
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      throw new ProblemError(400, 'Invalid redirect URI', `"${uri}" is not an absolute URL.`, problemType('invalid-redirect-uri'));
    }
    if (url.hash)
      throw new ProblemError(
        400,
        'Invalid redirect URI',
        'Redirect URIs must not contain a fragment.',
        problemType('invalid-redirect-uri'),
      );
  }
}

/**
 * The ETag of a client: clients carry no version column, so it is a digest of what an update can
 * change (and of whether the client is enabled). Two operators editing one client therefore still
 * cannot overwrite each other: the second If-Match no longer matches.
 */
export const clientEtag = (c: Client): string =>
  `"c${sha256(JSON.stringify([c.name, c.redirectUris, c.postLogoutRedirectUris, c.scopes, c.grantTypes, c.enabled])).slice(0, 27)}"`;

/** Registered OAuth clients: the BFF (authorization_code) and machine callers (client_credentials). */
@Injectable()
export class ClientsService {
  /** Clients are read on every token request and change rarely: cached, dropped on any change (row-cache.ts). */
  private readonly cache: RowCache<ClientRow>;

  constructor(private readonly db: Database) {
    this.cache = new RowCache(db.rowChanges, 'clients');
  }

  private row(clientId: string): Promise<ClientRow | undefined> {
    return this.cache.get(clientId, async () => (await this.db.query<ClientRow>(`SELECT * FROM clients WHERE id = $1`, [clientId]))[0]);
  }

  /** Registers a client; the secret is returned once and stored only as a hash. */
  async create(input: NewClient): Promise<{ client: Client; secret: string }> {
    const secret = randomToken();
    const grantTypes = input.grantTypes ?? (input.kind === 'bff' ? ['authorization_code', 'refresh_token'] : ['client_credentials']);
    checkRedirectUris([...(input.redirectUris ?? []), ...(input.postLogoutRedirectUris ?? [])]);
    try {
      const [row] = await this.db.query<ClientRow>(
        `INSERT INTO clients (id, tenant_id, name, kind, secret_hash, redirect_uris, post_logout_redirect_uris, grant_types, scopes)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *`,
        [
          input.id,
          input.tenantId ?? null,
          input.name,
          input.kind,
          sha256(secret),
          input.redirectUris ?? [],
          input.postLogoutRedirectUris ?? [],
          grantTypes,
          input.scopes ?? [],
        ],
      );
      return { client: toClient(row!), secret };
    } catch (err) {
      if ((err as { code?: string }).code === '23505')
        throw new ProblemError(409, 'Client exists', `Client "${input.id}" already exists.`, problemType('client-exists'));
      throw err;
    }
  }

  async list(): Promise<Client[]> {
    return (await this.db.query<ClientRow>(`SELECT * FROM clients ORDER BY id`)).map(toClient);
  }

  /** Any client, enabled or not (the admin API shows and edits disabled ones too). */
  async get(m: EntityManager, clientId: string, lock = false): Promise<Client | undefined> {
    if (clientId.length > 100) return undefined;
    const [row] = await m.query<ClientRow[]>(`SELECT * FROM clients WHERE id = $1${lock ? ' FOR UPDATE' : ''}`, [clientId]);
    return row ? toClient(row) : undefined;
  }

  /**
   * Changes a client's name, redirect URIs, post-logout redirect URIs or scopes inside the caller's
   * transaction (so the audit row commits with it); the client cache is dropped by the caller once
   * it has committed (`Database.rowsChanged('clients')`).
   */
  async update(m: EntityManager, clientId: string, change: ClientChange): Promise<Client> {
    checkRedirectUris([...(change.redirectUris ?? []), ...(change.postLogoutRedirectUris ?? [])]);
    // An UPDATE … RETURNING answers [rows, count] through TypeORM's PostgreSQL driver.
    const [[row]] = await m.query<[ClientRow[], number]>(
      `UPDATE clients SET name = COALESCE($2, name), redirect_uris = COALESCE($3, redirect_uris), post_logout_redirect_uris = COALESCE($4, post_logout_redirect_uris),
              scopes = COALESCE($5, scopes), updated_at = now()
        WHERE id = $1 RETURNING *`,
      [clientId, change.name ?? null, change.redirectUris ?? null, change.postLogoutRedirectUris ?? null, change.scopes ?? null],
    );
    return toClient(row!);
  }

  async disable(clientId: string): Promise<boolean> {
    const disabled =
      (await this.db.query(`UPDATE clients SET enabled = false, updated_at = now() WHERE id = $1 RETURNING id`, [clientId])).length > 0;
    this.db.rowsChanged('clients');
    return disabled;
  }

  async find(clientId: string | undefined): Promise<Client | undefined> {
    if (!clientId || clientId.length > 100) return undefined;
    const row = await this.row(clientId);
    return row?.enabled ? toClient(row) : undefined;
  }

  /**
   * Authenticates a confidential client. Secrets are 256-bit random values, so a SHA-256 hash
   * compared in constant time is enough (a slow hash would only slow the token endpoint down).
   */
  async authenticate(creds: ClientCredentials): Promise<Client> {
    if (!creds.clientId) throw new OAuthError('invalid_client', 'Client authentication is required.');
    const row = creds.clientId.length > 100 ? undefined : await this.row(creds.clientId);
    const presented = creds.clientSecret ?? '';
    const ok = row !== undefined && row.enabled && row.secret_hash !== null && constantEquals(sha256(presented), row.secret_hash);
    if (!ok) throw new OAuthError('invalid_client', 'Client authentication failed.');
    return toClient(row);
  }
}
