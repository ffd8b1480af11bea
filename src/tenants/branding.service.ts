import { Injectable } from '@nestjs/common';
import type { Brand } from '../common/brand.js';
import { Database } from '../database/database.js';
import { RowCache } from '../database/row-cache.js';
import { BrandingRepository, type LogoMeta, type StoredBranding } from './branding.repository.js';
import { LOGO_EXTENSIONS, type LogoType } from './logo-image.js';
import type { Tenant } from './tenants.repository.js';

/** Hex digits of the logo's SHA-256 in its URL: enough that a new logo never has an old one's URL. */
export const LOGO_HASH_PREFIX_LENGTH = 16;

/** The same-origin path a stored logo is served at (immutable: a new logo gets a new path). */
export const logoPath = (tenantId: string, logo: Pick<LogoMeta, 'sha256' | 'contentType'>): string =>
  `/branding/${tenantId}/logo-${logo.sha256.slice(0, LOGO_HASH_PREFIX_LENGTH)}.${LOGO_EXTENSIONS[logo.contentType]}`;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const LOGO_FILE = new RegExp(`^logo-([0-9a-f]{${LOGO_HASH_PREFIX_LENGTH}})\\.(png|jpg|webp)$`);

/** A tenant's branding as the pages need it: settings (if any) and the logo's metadata (if any). */
interface BrandRecord {
  branding: StoredBranding | undefined;
  logo: LogoMeta | undefined;
}

/**
 * A tenant's branding for the hosted pages (issue #18): `brandOf` resolves the Brand the page
 * renderer applies, read through a per-replica cache that every change to `tenant_branding` or
 * `tenant_logos` empties on every replica (row-change notifications, row-cache.ts); `logo` serves
 * the stored bytes. Changes go through the admin API (admin/branding-admin.service.ts).
 */
@Injectable()
export class BrandingService {
  private readonly records: RowCache<BrandRecord>;

  constructor(
    private readonly db: Database,
    private readonly rows: BrandingRepository,
  ) {
    this.records = new RowCache(db.rowChanges, ['tenant_branding', 'tenant_logos']);
  }

  /** The Brand of a tenant's pages: its own display name unless the branding overrides it; absent fields fall back to the service's look. */
  async brandOf(tenant: Pick<Tenant, 'id' | 'displayName'>): Promise<Brand> {
    // The load always finds a record (empty for a tenant without branding), so every tenant's is cached.
    const record = await this.records.get(tenant.id, () => this.load(tenant.id));
    return toBrand(tenant, record?.branding, record?.logo);
  }

  private load(tenantId: string): Promise<BrandRecord> {
    return this.db.transaction({ tenant: tenantId }, async (tx) => ({
      branding: await this.rows.find(tx, tenantId),
      logo: await this.rows.findLogo(tx, tenantId),
    }));
  }

  /**
   * The logo at `/branding/<tenantId>/<file>` (`logo-<sha256 prefix>.<ext>`), or undefined when the
   * tenant has none, or another (an old URL, a wrong hash or extension). Not cached: the URL is
   * immutable, so browsers and proxies keep it.
   */
  async logo(tenantId: string, file: string): Promise<{ bytes: Buffer; contentType: LogoType } | undefined> {
    const m = LOGO_FILE.exec(file);
    if (!UUID.test(tenantId) || !m) return undefined;
    const found = await this.db.transaction({ tenant: tenantId }, (tx) => this.rows.logoBytes(tx, tenantId, m[1] ?? ''));
    return found && LOGO_EXTENSIONS[found.contentType] === m[2] ? found : undefined;
  }
}

/** The Brand shape (common/brand.ts) of stored branding: only the fields set. */
export function toBrand(tenant: Pick<Tenant, 'id' | 'displayName'>, b: StoredBranding | undefined, logo: LogoMeta | undefined): Brand {
  const brand: Brand = { displayName: b?.displayName ?? tenant.displayName };
  if (logo) brand.logoUrl = logoPath(tenant.id, logo);
  const colors = Object.fromEntries(Object.entries(b?.colors ?? {}).filter(([, v]) => v !== null)) as NonNullable<Brand['colors']>;
  if (Object.keys(colors).length) brand.colors = colors;
  if (b?.supportContact) brand.supportContact = b.supportContact;
  const texts: NonNullable<Brand['texts']> = {};
  if (b?.texts.heading) texts.heading = b.texts.heading;
  if (b?.texts.footer) texts.footer = b.texts.footer;
  if (b?.texts.legalLinks.length) texts.legalLinks = b.texts.legalLinks.map((l) => ({ ...l }));
  if (Object.keys(texts).length) brand.texts = texts;
  return brand;
}
