import { Injectable } from '@nestjs/common';
import type { Tx } from '../database/database.js';

export interface ScimTokenRow {
  id: string;
  name: string;
  prefix: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

/** `scim_tokens`: per-tenant SCIM bearer tokens, stored as a SHA-256 hash. Every method runs in the token's tenant transaction. */
@Injectable()
export class ScimTokensRepository {
  async insert(tx: Tx, t: { tenantId: string; name: string; hash: string; prefix: string }): Promise<{ id: string; createdAt: Date }> {
    const { rows } = await tx.query<{ id: string; created_at: Date }>(
      `INSERT INTO scim_tokens (tenant_id, name, token_hash, prefix) VALUES ($1, $2, $3, $4) RETURNING id, created_at`,
      [t.tenantId, t.name, t.hash, t.prefix],
    );
    const r = rows[0];
    if (!r) throw new Error('scim token insert: no row');
    return { id: r.id, createdAt: r.created_at };
  }

  /** The tenant's tokens (row-level security), oldest first. */
  async list(tx: Tx): Promise<ScimTokenRow[]> {
    const { rows } = await tx.query<{
      id: string;
      name: string;
      prefix: string;
      created_at: Date;
      last_used_at: Date | null;
      revoked_at: Date | null;
    }>(`SELECT id, name, prefix, created_at, last_used_at, revoked_at FROM scim_tokens ORDER BY created_at, id`);
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      prefix: r.prefix,
      createdAt: r.created_at,
      lastUsedAt: r.last_used_at,
      revokedAt: r.revoked_at,
    }));
  }

  /** Revokes an unrevoked token; false when there is none with this id. */
  async revoke(tx: Tx, tokenId: string): Promise<boolean> {
    const res = await tx.query(`UPDATE scim_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL`, [tokenId]);
    return res.rowCount > 0;
  }
}
