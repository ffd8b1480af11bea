import { Injectable } from '@nestjs/common';
import type { Tx } from '../database/database.js';

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
  /** A BFF may send the browser to /oauth2/authorize without `org`: the service asks for it (hosted page). */
  organizationPrompt: boolean;
}

/** A stored client with the hash of its secret (never leaves the clients module). */
export interface ClientRecord extends Client {
  secretHash: string | null;
}

export interface NewClientRecord {
  id: string;
  tenantId: string | null;
  name: string;
  kind: ClientKind;
  secretHash: string;
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  grantTypes: string[];
  scopes: string[];
  organizationPrompt: boolean;
}

/** A change to a client; an absent field keeps the stored value. */
export interface ClientRecordChange {
  name?: string;
  redirectUris?: string[];
  postLogoutRedirectUris?: string[];
  scopes?: string[];
  organizationPrompt?: boolean;
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
  organization_prompt: boolean;
}

const COLUMNS =
  'id, tenant_id, name, kind, secret_hash, redirect_uris, post_logout_redirect_uris, grant_types, scopes, enabled, organization_prompt';

const toRecord = (r: ClientRow): ClientRecord => ({
  id: r.id,
  tenantId: r.tenant_id,
  name: r.name,
  kind: r.kind,
  secretHash: r.secret_hash,
  redirectUris: r.redirect_uris,
  postLogoutRedirectUris: r.post_logout_redirect_uris,
  grantTypes: r.grant_types,
  scopes: r.scopes,
  enabled: r.enabled,
  organizationPrompt: r.organization_prompt,
});

/** `clients`: registered OAuth clients (platform rows, whatever their tenant). */
@Injectable()
export class ClientsRepository {
  /** Any client, enabled or not; `lock` holds its row until the transaction ends. */
  async findById(tx: Tx, id: string, lock = false): Promise<ClientRecord | undefined> {
    // Unlocked, it is the client cache's load (token requests while the cache is cold or bypassed): prepared.
    const { rows } = await tx.query<ClientRow>(
      `SELECT ${COLUMNS} FROM clients WHERE id = $1${lock ? ' FOR UPDATE' : ''}`,
      [id],
      lock ? undefined : 'clients_find_by_id',
    );
    return rows[0] ? toRecord(rows[0]) : undefined;
  }

  async list(tx: Tx): Promise<ClientRecord[]> {
    const { rows } = await tx.query<ClientRow>(`SELECT ${COLUMNS} FROM clients ORDER BY id`);
    return rows.map(toRecord);
  }

  /** Throws the database's unique violation (23505) when the id is taken. */
  async insert(tx: Tx, c: NewClientRecord): Promise<ClientRecord> {
    const { rows } = await tx.query<ClientRow>(
      `INSERT INTO clients (id, tenant_id, name, kind, secret_hash, redirect_uris, post_logout_redirect_uris, grant_types, scopes, organization_prompt)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING ${COLUMNS}`,
      [
        c.id,
        c.tenantId,
        c.name,
        c.kind,
        c.secretHash,
        c.redirectUris,
        c.postLogoutRedirectUris,
        c.grantTypes,
        c.scopes,
        c.organizationPrompt,
      ],
    );
    const row = rows[0];
    if (!row) throw new Error('clients: INSERT … RETURNING answered no row');
    return toRecord(row);
  }

  /** The changed client, or undefined if there is no client of that id. */
  async update(tx: Tx, id: string, change: ClientRecordChange): Promise<ClientRecord | undefined> {
    const { rows } = await tx.query<ClientRow>(
      `UPDATE clients SET name = COALESCE($2, name), redirect_uris = COALESCE($3, redirect_uris), post_logout_redirect_uris = COALESCE($4, post_logout_redirect_uris),
              scopes = COALESCE($5, scopes), organization_prompt = COALESCE($6, organization_prompt), updated_at = now()
        WHERE id = $1 RETURNING ${COLUMNS}`,
      [
        id,
        change.name ?? null,
        change.redirectUris ?? null,
        change.postLogoutRedirectUris ?? null,
        change.scopes ?? null,
        change.organizationPrompt ?? null,
      ],
    );
    return rows[0] ? toRecord(rows[0]) : undefined;
  }

  /** False if there is no client of that id (a disabled one is disabled again). */
  async disable(tx: Tx, id: string): Promise<boolean> {
    const { rows } = await tx.query(`UPDATE clients SET enabled = false, updated_at = now() WHERE id = $1 RETURNING id`, [id]);
    return rows.length > 0;
  }

  /** Replaces the stored secret hash; false if there is no client of that id. */
  async setSecretHash(tx: Tx, id: string, secretHash: string): Promise<boolean> {
    const { rows } = await tx.query(`UPDATE clients SET secret_hash = $2, updated_at = now() WHERE id = $1 RETURNING id`, [id, secretHash]);
    return rows.length > 0;
  }
}
