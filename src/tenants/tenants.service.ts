import { Injectable } from '@nestjs/common';
import { Database, type Tx } from '../database/database.js';
import { ProblemError } from '../common/errors.js';
import { RowCache } from '../database/row-cache.js';
import { TenantsRepository, type Tenant } from './tenants.repository.js';

export type { Tenant } from './tenants.repository.js';

/** Lower-case letters, digits and inner hyphens, 1–63 characters (a DNS label). */
export const SLUG_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

@Injectable()
export class TenantsService {
  /** Read on every login start and token request; dropped on any change to the table (row-cache.ts). */
  private readonly bySlug: RowCache<Tenant>;
  private readonly byId: RowCache<Tenant>;

  constructor(
    private readonly db: Database,
    private readonly tenants: TenantsRepository,
  ) {
    this.bySlug = new RowCache(db.rowChanges, 'tenants');
    this.byId = new RowCache(db.rowChanges, 'tenants');
  }

  /**
   * `tx`: a platform transaction to create the tenant in (so the caller can record the creation in
   * it); without one, the tenant is created in a transaction of its own.
   */
  async create(slug: string, displayName: string, tx?: Tx): Promise<Tenant> {
    if (!SLUG_PATTERN.test(slug))
      throw new ProblemError({ type: 'invalid-slug', detail: 'A slug is 1–63 lower-case letters, digits and inner hyphens.' });
    try {
      return await (tx
        ? this.tenants.insert(tx, slug, displayName)
        : this.db.transaction('platform', (t) => this.tenants.insert(t, slug, displayName)));
    } catch (err) {
      if ((err as { code?: string }).code === '23505')
        throw new ProblemError({ type: 'slug-taken', detail: `A tenant with slug "${slug}" already exists.` });
      throw err;
    }
  }

  /** Active tenant by slug, or undefined. Suspended and deleted tenants cannot log in. */
  async findActiveBySlug(slug: string): Promise<Tenant | undefined> {
    if (!SLUG_PATTERN.test(slug)) return undefined;
    return this.bySlug.get(slug, () => this.db.transaction('platform', (tx) => this.tenants.findActiveBySlug(tx, slug)));
  }

  /** A tenant that can still be configured (any status but deleted), by slug; not cached. */
  async findLiveBySlug(slug: string): Promise<Tenant | undefined> {
    return this.db.transaction('platform', (tx) => this.tenants.findLiveBySlug(tx, slug));
  }

  async findById(id: string): Promise<Tenant | undefined> {
    return this.byId.get(id, () => this.db.transaction('platform', (tx) => this.tenants.findById(tx, id)));
  }
}
