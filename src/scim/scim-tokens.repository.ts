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
export interface ScimTokenAuthentication {
  id: string;
  tokenHash: string;
  tenantStatus: string;
  rateLimitPerMinute: number | null;
  guardEnabled: boolean | null;
  /** numeric, as text */
  guardPercent: string | null;
  guardWindowSeconds: number | null;
  guardMinCount: number | null;
}

@Injectable()
export class ScimTokensRepository {
  /**
   * The authentication read of a presented token, in one statement: the live token by hash, its
   * tenant's status and the tenant's SCIM settings (the columns are null where unset). It also
   * touches `last_used_at`, at most once a minute per token, so a busy token costs no extra writes.
   */
  async authenticate(tx: Tx, hash: string): Promise<ScimTokenAuthentication | undefined> {
    const { rows } = await tx.query<{
      id: string;
      token_hash: string;
      tenant_status: string;
      rate_limit_per_minute: number | null;
      guard_enabled: boolean | null;
      guard_percent: string | null;
      guard_window_seconds: number | null;
      guard_min_count: number | null;
    }>(
      `WITH t AS (SELECT id, tenant_id, token_hash, last_used_at FROM scim_tokens WHERE token_hash = $1 AND revoked_at IS NULL),
            touched AS (UPDATE scim_tokens s SET last_used_at = now() FROM t
                         WHERE s.id = t.id AND (t.last_used_at IS NULL OR t.last_used_at < now() - interval '60 seconds') RETURNING s.id)
       SELECT t.id, t.token_hash, tn.status AS tenant_status, st.rate_limit_per_minute, st.guard_enabled, st.guard_percent::text AS guard_percent,
              st.guard_window_seconds, st.guard_min_count, (SELECT count(*) FROM touched) AS touched
         FROM t JOIN tenants tn ON tn.id = t.tenant_id LEFT JOIN scim_settings st ON st.tenant_id = t.tenant_id`,
      [hash],
    );
    const r = rows[0];
    return (
      r && {
        id: r.id,
        tokenHash: r.token_hash,
        tenantStatus: r.tenant_status,
        rateLimitPerMinute: r.rate_limit_per_minute,
        guardEnabled: r.guard_enabled,
        guardPercent: r.guard_percent,
        guardWindowSeconds: r.guard_window_seconds,
        guardMinCount: r.guard_min_count,
      }
    );
  }

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
