import { Injectable } from '@nestjs/common';
import type { Tx } from '../database/database.js';
import type { BrandingSettings, LegalLink } from './branding-rules.js';
import type { LogoType } from './logo-image.js';

/** A tenant's stored branding with its version (the ETag of the admin API). */
export interface StoredBranding extends BrandingSettings {
  version: number;
  updatedAt: Date;
}

/** What is known of a stored logo without its bytes. */
export interface LogoMeta {
  contentType: LogoType;
  sha256: string;
  size: number;
  width: number;
  height: number;
  createdAt: Date;
}

interface BrandingRow {
  display_name: string | null;
  primary_color: string | null;
  background_color: string | null;
  text_color: string | null;
  support_contact: string | null;
  heading: string | null;
  footer: string | null;
  legal_links: LegalLink[];
  version: number;
  updated_at: Date;
}

interface LogoMetaRow {
  content_type: LogoType;
  sha256: string;
  size: number;
  width: number;
  height: number;
  created_at: Date;
}

const toBranding = (r: BrandingRow): StoredBranding => ({
  displayName: r.display_name,
  colors: { primary: r.primary_color, background: r.background_color, text: r.text_color },
  supportContact: r.support_contact,
  texts: { heading: r.heading, footer: r.footer, legalLinks: r.legal_links },
  version: r.version,
  updatedAt: r.updated_at,
});

const toLogo = (r: LogoMetaRow): LogoMeta => ({
  contentType: r.content_type,
  sha256: r.sha256,
  size: r.size,
  width: r.width,
  height: r.height,
  createdAt: r.created_at,
});

const values = (s: BrandingSettings) => [
  s.displayName,
  s.colors.primary,
  s.colors.background,
  s.colors.text,
  s.supportContact,
  s.texts.heading,
  s.texts.footer,
  JSON.stringify(s.texts.legalLinks),
];

/**
 * `tenant_branding` and `tenant_logos` (migration 1766200000000): tenant-scoped, so every call runs
 * in the tenant's transaction (`{ tenant }`). The rules are in branding-rules.ts and logo-image.ts.
 */
@Injectable()
export class BrandingRepository {
  async find(tx: Tx, tenantId: string): Promise<StoredBranding | undefined> {
    const { rows } = await tx.query<BrandingRow>(`SELECT * FROM tenant_branding WHERE tenant_id = $1`, [tenantId]);
    return rows[0] ? toBranding(rows[0]) : undefined;
  }

  /** The first branding of a tenant; false when another was stored meanwhile (a stale version 0). */
  async insert(tx: Tx, tenantId: string, s: BrandingSettings): Promise<boolean> {
    const { rowCount } = await tx.query(
      `INSERT INTO tenant_branding (tenant_id, display_name, primary_color, background_color, text_color, support_contact, heading, footer, legal_links)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb) ON CONFLICT (tenant_id) DO NOTHING`,
      [tenantId, ...values(s)],
    );
    return rowCount > 0;
  }

  /** Replaces the branding if it is still at `version` (optimistic concurrency). */
  async update(tx: Tx, tenantId: string, version: number, s: BrandingSettings): Promise<boolean> {
    const { rowCount } = await tx.query(
      `UPDATE tenant_branding SET display_name = $3, primary_color = $4, background_color = $5, text_color = $6,
              support_contact = $7, heading = $8, footer = $9, legal_links = $10::jsonb, version = version + 1, updated_at = now()
        WHERE tenant_id = $1 AND version = $2`,
      [tenantId, version, ...values(s)],
    );
    return rowCount > 0;
  }

  async findLogo(tx: Tx, tenantId: string): Promise<LogoMeta | undefined> {
    const { rows } = await tx.query<LogoMetaRow>(
      `SELECT content_type, sha256, size, width, height, created_at FROM tenant_logos WHERE tenant_id = $1`,
      [tenantId],
    );
    return rows[0] ? toLogo(rows[0]) : undefined;
  }

  /** The logo's bytes if its SHA-256 (hex) starts with `shaPrefix`. */
  async logoBytes(tx: Tx, tenantId: string, shaPrefix: string): Promise<{ bytes: Buffer; contentType: LogoType } | undefined> {
    const { rows } = await tx.query<{ bytes: Buffer; content_type: LogoType }>(
      `SELECT bytes, content_type FROM tenant_logos WHERE tenant_id = $1 AND starts_with(sha256, $2)`,
      [tenantId, shaPrefix],
    );
    return rows[0] ? { bytes: rows[0].bytes, contentType: rows[0].content_type } : undefined;
  }

  async putLogo(tx: Tx, tenantId: string, logo: Omit<LogoMeta, 'createdAt'> & { bytes: Buffer }): Promise<void> {
    await tx.query(
      `INSERT INTO tenant_logos (tenant_id, content_type, bytes, sha256, size, width, height) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (tenant_id) DO UPDATE SET content_type = EXCLUDED.content_type, bytes = EXCLUDED.bytes, sha256 = EXCLUDED.sha256,
         size = EXCLUDED.size, width = EXCLUDED.width, height = EXCLUDED.height, created_at = now()`,
      [tenantId, logo.contentType, logo.bytes, logo.sha256, logo.size, logo.width, logo.height],
    );
  }

  async removeLogo(tx: Tx, tenantId: string): Promise<LogoMeta | undefined> {
    const { rows } = await tx.query<LogoMetaRow>(
      `DELETE FROM tenant_logos WHERE tenant_id = $1 RETURNING content_type, sha256, size, width, height, created_at`,
      [tenantId],
    );
    return rows[0] ? toLogo(rows[0]) : undefined;
  }
}
