import { Injectable } from '@nestjs/common';
import { Database, type Tx } from '../database/database.js';
import { constantEquals, randomToken, sha256 } from '../crypto/random.js';
import { OAuthError, ProblemError } from '../common/errors.js';
import { RowCache } from '../database/row-cache.js';
import { AuditService } from '../audit/audit.service.js';
import { ClientsRepository, type Client, type ClientKind, type ClientRecord } from './clients.repository.js';

export type { Client, ClientKind } from './clients.repository.js';

export interface NewClient {
  id: string;
  name: string;
  kind: ClientKind;
  tenantId?: string | null;
  redirectUris?: string[];
  postLogoutRedirectUris?: string[];
  grantTypes?: string[];
  scopes?: string[];
  organizationPrompt?: boolean;
}

/** A client as it leaves this module: without its secret hash. */
const toClient = (r: ClientRecord): Client => ({
  id: r.id,
  tenantId: r.tenantId,
  name: r.name,
  kind: r.kind,
  redirectUris: r.redirectUris,
  postLogoutRedirectUris: r.postLogoutRedirectUris,
  grantTypes: r.grantTypes,
  scopes: r.scopes,
  enabled: r.enabled,
  organizationPrompt: r.organizationPrompt,
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
  organizationPrompt?: boolean;
}

/** Redirect and post-logout URIs are matched exactly, so they must be absolute and without a fragment. */
function checkRedirectUris(uris: string[]): void {
  for (const uri of uris) {
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      throw new ProblemError({ type: 'invalid-redirect-uri', detail: `"${uri}" is not an absolute URL.` });
    }
    if (url.hash) throw new ProblemError({ type: 'invalid-redirect-uri', detail: 'Redirect URIs must not contain a fragment.' });
  }
}

/**
 * The ETag of a client: clients carry no version column, so it is a digest of what an update can
 * change (and of whether the client is enabled). Two operators editing one client therefore still
 * cannot overwrite each other: the second If-Match no longer matches.
 */
export const clientEtag = (c: Client): string =>
  `"c${sha256(JSON.stringify([c.name, c.redirectUris, c.postLogoutRedirectUris, c.scopes, c.grantTypes, c.enabled, c.organizationPrompt])).slice(0, 27)}"`;

/** Registered OAuth clients: the BFF (authorization_code) and machine callers (client_credentials). */
@Injectable()
export class ClientsService {
  /** Clients are read on every token request and change rarely: cached, dropped on any change (row-cache.ts). */
  private readonly cache: RowCache<ClientRecord>;

  constructor(
    private readonly db: Database,
    private readonly clients: ClientsRepository,
    private readonly audit: AuditService,
  ) {
    this.cache = new RowCache(db.rowChanges, 'clients');
  }

  private row(clientId: string): Promise<ClientRecord | undefined> {
    return this.cache.get(clientId, () => this.db.transaction('platform', (tx) => this.clients.findById(tx, clientId)));
  }

  /**
   * Registers a client; the secret is returned once and stored only as a hash. With an `actor`, the
   * creation is audited (`client.created`) in its transaction.
   */
  async create(input: NewClient, actor?: string): Promise<{ client: Client; secret: string }> {
    return this.db.transaction('platform', async (tx) => {
      const made = await this.createIn(tx, input);
      if (actor !== undefined)
        await this.audit.record(tx, {
          tenantId: null,
          actor,
          action: 'client.created',
          target: made.client.id,
          data: { after: made.client },
        });
      return made;
    });
  }

  /**
   * `create` inside the caller's transaction, not audited (the caller records its own event), with
   * the given secret or a generated one. A taken id is a 409 `client-exists`.
   */
  async createIn(tx: Tx, input: NewClient, secret = randomToken()): Promise<{ client: Client; secret: string }> {
    const grantTypes = input.grantTypes ?? (input.kind === 'bff' ? ['authorization_code', 'refresh_token'] : ['client_credentials']);
    checkRedirectUris([...(input.redirectUris ?? []), ...(input.postLogoutRedirectUris ?? [])]);
    try {
      const row = await this.clients.insert(tx, {
        id: input.id,
        tenantId: input.tenantId ?? null,
        name: input.name,
        kind: input.kind,
        secretHash: sha256(secret),
        redirectUris: input.redirectUris ?? [],
        postLogoutRedirectUris: input.postLogoutRedirectUris ?? [],
        grantTypes,
        scopes: input.scopes ?? [],
        organizationPrompt: input.organizationPrompt ?? false,
      });
      return { client: toClient(row), secret };
    } catch (err) {
      if ((err as { code?: string }).code === '23505')
        throw new ProblemError({ type: 'client-exists', detail: `Client "${input.id}" already exists.` });
      throw err;
    }
  }

  async list(): Promise<Client[]> {
    return (await this.db.transaction('platform', (tx) => this.clients.list(tx))).map(toClient);
  }

  /** Any client, enabled or not (the admin API and the bootstrap look at disabled ones too), read from the database. */
  async get(clientId: string): Promise<Client | undefined> {
    if (clientId.length > 100) return undefined;
    const row = await this.db.transaction('platform', (tx) => this.clients.findById(tx, clientId));
    return row ? toClient(row) : undefined;
  }

  /**
   * Changes an enabled client's name, redirect URIs, post-logout redirect URIs or scopes, audited
   * (`client.updated`) in the same transaction. `precondition` sees the locked current client
   * first (the admin API's If-Match check) and throws to refuse. Undefined: no enabled client of
   * that id. Token requests see the change at once (the client cache is dropped).
   */
  async update(
    clientId: string,
    change: ClientChange,
    actor: string,
    precondition?: (current: Client) => void,
  ): Promise<Client | undefined> {
    if (clientId.length > 100) return undefined;
    const after = await this.db.transaction('platform', async (tx) => {
      const found = await this.clients.findById(tx, clientId, true);
      if (!found?.enabled) return undefined;
      const before = toClient(found);
      precondition?.(before);
      checkRedirectUris([...(change.redirectUris ?? []), ...(change.postLogoutRedirectUris ?? [])]);
      const changed = await this.clients.update(tx, clientId, change);
      if (!changed) return undefined; // cannot happen: the row is locked
      const updated = toClient(changed);
      await this.audit.record(tx, { tenantId: null, actor, action: 'client.updated', target: clientId, data: { before, after: updated } });
      return updated;
    });
    if (after) this.db.rowsChanged('clients');
    return after;
  }

  /** False if there is no client of that id. With an `actor`, audited (`client.disabled`) in the same transaction. */
  async disable(clientId: string, actor?: string): Promise<boolean> {
    const disabled = await this.db.transaction('platform', async (tx) => {
      const done = await this.clients.disable(tx, clientId);
      if (done && actor !== undefined) await this.audit.record(tx, { tenantId: null, actor, action: 'client.disabled', target: clientId });
      return done;
    });
    this.db.rowsChanged('clients');
    return disabled;
  }

  /**
   * Replaces a client's secret inside the caller's transaction (so its audit event commits with
   * it); the caller drops the client caches once it has committed (`Database.rowsChanged('clients')`).
   */
  async replaceSecretIn(tx: Tx, clientId: string, secret: string): Promise<boolean> {
    return this.clients.setSecretHash(tx, clientId, sha256(secret));
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
    const ok = row !== undefined && row.enabled && row.secretHash !== null && constantEquals(sha256(presented), row.secretHash);
    if (!ok) throw new OAuthError('invalid_client', 'Client authentication failed.');
    return toClient(row);
  }
}
