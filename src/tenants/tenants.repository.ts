import { Injectable } from '@nestjs/common';
import type { Tx } from '../database/database.js';
import { isLocale, type Locale } from '../i18n/index.js';

export interface Tenant {
  id: string;
  slug: string;
  displayName: string;
  status: 'active' | 'suspended' | 'deleted';
  /** Rules for local passwords as stored; see identity/native/password-policy.ts for the defaults. */
  passwordPolicy: { minLength?: number; minStrength?: number };
  /** The language of its hosted pages and mails when the request names none of the shipped ones (null: English). */
  defaultLocale: Locale | null;
  version: number;
  createdAt: Date;
  updatedAt: Date;
}

/** A `tenants` row as PostgreSQL returns it: declared and mapped here only. */
interface TenantRow {
  id: string;
  slug: string;
  display_name: string;
  status: Tenant['status'];
  password_policy: Tenant['passwordPolicy'];
  default_locale: string | null;
  version: number;
  created_at: Date;
  updated_at: Date;
}

const toTenant = (r: TenantRow): Tenant => ({
  id: r.id,
  slug: r.slug,
  displayName: r.display_name,
  status: r.status,
  passwordPolicy: r.password_policy,
  // A language no longer shipped reads as none (the pages fall back, nothing fails).
  defaultLocale: isLocale(r.default_locale) ? r.default_locale : null,
  version: r.version,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

/**
 * `tenants`: a platform table (no row-level security), read in any scope. Slug rules, caching and
 * the error mapping are the services' (a duplicate slug surfaces as PostgreSQL's 23505 here).
 */
@Injectable()
export class TenantsRepository {
  async insert(tx: Tx, slug: string, displayName: string): Promise<Tenant> {
    const { rows } = await tx.query<TenantRow>(`INSERT INTO tenants (slug, display_name) VALUES ($1, $2) RETURNING *`, [slug, displayName]);
    const [row] = rows;
    if (!row) throw new Error('tenants: INSERT … RETURNING returned no row');
    return toTenant(row);
  }

  async findActiveBySlug(tx: Tx, slug: string): Promise<Tenant | undefined> {
    const { rows } = await tx.query<TenantRow>(`SELECT * FROM tenants WHERE slug = $1 AND status = 'active'`, [slug]);
    return rows[0] ? toTenant(rows[0]) : undefined;
  }

  /** Any status but deleted (a suspended tenant can still be configured). */
  async findLiveBySlug(tx: Tx, slug: string): Promise<Tenant | undefined> {
    const { rows } = await tx.query<TenantRow>(`SELECT * FROM tenants WHERE slug = $1 AND status <> 'deleted'`, [slug]);
    return rows[0] ? toTenant(rows[0]) : undefined;
  }

  async findById(tx: Tx, id: string): Promise<Tenant | undefined> {
    const { rows } = await tx.query<TenantRow>(`SELECT * FROM tenants WHERE id = $1`, [id]);
    return rows[0] ? toTenant(rows[0]) : undefined;
  }

  /** Ids of the tenants not deleted, by slug, after the slug `after` (keyset pagination). */
  async listIdsBySlug(tx: Tx, after: string | null, limit: number): Promise<string[]> {
    const { rows } = await tx.query<{ id: string }>(
      `SELECT id FROM tenants WHERE status <> 'deleted' AND ($1::text IS NULL OR slug > $1) ORDER BY slug LIMIT $2`,
      [after, limit],
    );
    return rows.map((r) => r.id);
  }

  /** Active tenants by id, after the id `after` (keyset pagination). */
  async listActiveById(tx: Tx, after: string, limit: number): Promise<Tenant[]> {
    const { rows } = await tx.query<TenantRow>(`SELECT * FROM tenants WHERE status = 'active' AND id > $1 ORDER BY id LIMIT $2`, [
      after,
      limit,
    ]);
    return rows.map(toTenant);
  }

  /**
   * Renames, changes the status, password policy or default language of a tenant that is not deleted, if it is still at `version`
   * (optimistic concurrency); null fields are left as they are. Returns whether a row changed.
   */
  async update(
    tx: Tx,
    id: string,
    version: number,
    change: {
      displayName: string | null;
      status: 'active' | 'suspended' | null;
      passwordPolicy?: Tenant['passwordPolicy'];
      /** undefined: unchanged; null: cleared. */
      defaultLocale?: Locale | null;
    },
  ): Promise<boolean> {
    const { rowCount } = await tx.query(
      `UPDATE tenants SET display_name = COALESCE($3, display_name), status = COALESCE($4, status),
           password_policy = COALESCE($5::jsonb, password_policy),
           default_locale = CASE WHEN $6::boolean THEN $7::text ELSE default_locale END,
           version = version + 1, updated_at = now()
        WHERE id = $1 AND version = $2 AND status <> 'deleted' RETURNING id`,
      [
        id,
        version,
        change.displayName,
        change.status,
        change.passwordPolicy ? JSON.stringify(change.passwordPolicy) : null,
        change.defaultLocale !== undefined,
        change.defaultLocale ?? null,
      ],
    );
    return rowCount > 0;
  }

  /** Soft delete: the row stays, with status `deleted`. */
  async markDeleted(tx: Tx, id: string): Promise<void> {
    await tx.query(`UPDATE tenants SET status = 'deleted', version = version + 1, updated_at = now() WHERE id = $1`, [id]);
  }
}
