import { Injectable } from '@nestjs/common';
import { Database } from '../database/database.js';
import { ProblemError, problemType } from '../common/errors.js';
import { RowCache } from '../database/row-cache.js';

export interface Tenant {
  id: string;
  slug: string;
  displayName: string;
  status: 'active' | 'suspended' | 'deleted';
  version: number;
  createdAt: Date;
  updatedAt: Date;
}

/** Lower-case letters, digits and inner hyphens, 1–63 characters (a DNS label). */
export const SLUG_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

interface TenantRow {
  id: string;
  slug: string;
  display_name: string;
  status: Tenant['status'];
  version: number;
  created_at: Date;
  updated_at: Date;
}

const toTenant = (r: TenantRow): Tenant => ({
  id: r.id,
  slug: r.slug,
  displayName: r.display_name,
  status: r.status,
  version: r.version,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

@Injectable()
export class TenantsService {
  /** Read on every login start and token request; dropped on any change to the table (row-cache.ts). */
  private readonly bySlug: RowCache<Tenant>;
  private readonly byId: RowCache<Tenant>;

  constructor(private readonly db: Database) {
    this.bySlug = new RowCache(db.rowChanges, 'tenants');
    this.byId = new RowCache(db.rowChanges, 'tenants');
  }

  async create(slug: string, displayName: string): Promise<Tenant> {
    if (!SLUG_PATTERN.test(slug))
      throw new ProblemError(
        400,
        'Invalid slug',
        'A slug is 1–63 lower-case letters, digits and inner hyphens.',
        problemType('invalid-slug'),
      );
    try {
      const [row] = await this.db.query<TenantRow>(`INSERT INTO tenants (slug, display_name) VALUES ($1, $2) RETURNING *`, [
        slug,
        displayName,
      ]);
      return toTenant(row!);
    } catch (err) {
      if ((err as { code?: string }).code === '23505')
        throw new ProblemError(409, 'Slug taken', `A tenant with slug "${slug}" already exists.`, problemType('slug-taken'));
      throw err;
    }
  }

  /** Active tenant by slug, or undefined. Suspended and deleted tenants cannot log in. */
  async findActiveBySlug(slug: string): Promise<Tenant | undefined> {
    if (!SLUG_PATTERN.test(slug)) return undefined;
    return this.bySlug.get(slug, async () => {
      const [row] = await this.db.query<TenantRow>(`SELECT * FROM tenants WHERE slug = $1 AND status = 'active'`, [slug]);
      return row ? toTenant(row) : undefined;
    });
  }

  async findById(id: string): Promise<Tenant | undefined> {
    return this.byId.get(id, async () => {
      const [row] = await this.db.query<TenantRow>(`SELECT * FROM tenants WHERE id = $1`, [id]);
      return row ? toTenant(row) : undefined;
    });
  }
}
