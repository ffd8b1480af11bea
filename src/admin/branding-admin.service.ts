import { Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { AuditService } from '../audit/audit.service.js';
import { ProblemError } from '../common/errors.js';
import { Database } from '../database/database.js';
import { BrandingRepository, type LogoMeta } from '../tenants/branding.repository.js';
import { validateBranding, type BrandingInput, type BrandingSettings } from '../tenants/branding-rules.js';
import { logoPath } from '../tenants/branding.service.js';
import { inspectLogo } from '../tenants/logo-image.js';
import type { AdminPrincipal } from './admin-auth.js';
import { TenantsAdminService } from './tenants-admin.service.js';

/** A tenant's branding as the admin API shows it. `version` is the ETag ("v<version>"; 0 before the first save). */
export interface BrandingView extends BrandingSettings {
  tenantId: string;
  logo: { url: string; contentType: string; size: number; width: number; height: number; sha256: string } | null;
  version: number;
  updatedAt: Date | null;
}

const NONE: BrandingSettings = {
  displayName: null,
  colors: { primary: null, background: null, text: null },
  supportContact: null,
  texts: { heading: null, footer: null, legalLinks: [] },
};

const settingsOf = (s: BrandingSettings): BrandingSettings => ({
  displayName: s.displayName,
  colors: { ...s.colors },
  supportContact: s.supportContact,
  texts: { ...s.texts, legalLinks: s.texts.legalLinks.map((l) => ({ ...l })) },
});

const logoView = (tenantId: string, logo: LogoMeta | undefined): BrandingView['logo'] =>
  logo
    ? {
        url: logoPath(tenantId, logo),
        contentType: logo.contentType,
        size: logo.size,
        width: logo.width,
        height: logo.height,
        sha256: logo.sha256,
      }
    : null;

/**
 * Branding as operators manage it: read, replace (validated as a whole, If-Match), logo upload and
 * removal; every change audited in its transaction, then every replica's brand cache emptied.
 */
@Injectable()
export class BrandingAdminService {
  constructor(
    private readonly db: Database,
    private readonly tenants: TenantsAdminService,
    private readonly rows: BrandingRepository,
    private readonly audit: AuditService,
  ) {}

  async get(tenantId: string): Promise<BrandingView> {
    const tenant = await this.tenants.get(tenantId);
    return this.db.transaction({ tenant: tenant.id }, async (tx) => {
      const stored = await this.rows.find(tx, tenant.id);
      const logo = await this.rows.findLogo(tx, tenant.id);
      return {
        tenantId: tenant.id,
        ...settingsOf(stored ?? NONE),
        logo: logoView(tenant.id, logo),
        version: stored?.version ?? 0,
        updatedAt: stored?.updatedAt ?? null,
      };
    });
  }

  /** Replaces the whole branding if it is still at `version`; a refusal (422) changes nothing. */
  async replace(p: AdminPrincipal, tenantId: string, version: number, input: BrandingInput): Promise<BrandingView> {
    const settings = validateBranding(input);
    const tenant = await this.tenants.get(tenantId);
    await this.db.transaction({ tenant: tenant.id }, async (tx) => {
      const before = await this.rows.find(tx, tenant.id);
      const saved =
        version === 0 ? await this.rows.insert(tx, tenant.id, settings) : await this.rows.update(tx, tenant.id, version, settings);
      if (!saved) throw new ProblemError({ type: 'stale-etag', detail: "The tenant's branding changed since you read it." });
      await this.audit.record(tx, {
        tenantId: tenant.id,
        actor: p.actor,
        action: 'tenant.branding_updated',
        target: tenant.id,
        data: { before: before ? settingsOf(before) : null, after: settings },
      });
    });
    this.db.rowsChanged('tenant_branding');
    return this.get(tenant.id);
  }

  /** Stores (or replaces) the logo after checking type, size and dimensions; a refusal (422) changes nothing. */
  async putLogo(p: AdminPrincipal, tenantId: string, bytes: Buffer | undefined, contentType: string | undefined): Promise<BrandingView> {
    const tenant = await this.tenants.get(tenantId);
    const { bytes: logo, ...image } = inspectLogo(bytes, contentType);
    const sha256 = createHash('sha256').update(logo).digest('hex');
    await this.db.transaction({ tenant: tenant.id }, async (tx) => {
      const before = await this.rows.findLogo(tx, tenant.id);
      await this.rows.putLogo(tx, tenant.id, { ...image, sha256, size: logo.length, bytes: logo });
      await this.audit.record(tx, {
        tenantId: tenant.id,
        actor: p.actor,
        action: 'tenant.logo_set',
        target: tenant.id,
        data: {
          sha256,
          contentType: image.contentType,
          size: logo.length,
          width: image.width,
          height: image.height,
          before: before?.sha256 ?? null,
        },
      });
    });
    this.db.rowsChanged('tenant_logos');
    return this.get(tenant.id);
  }

  /** Removes the logo (the pages fall back to the display name alone); nothing to remove is no error. */
  async removeLogo(p: AdminPrincipal, tenantId: string): Promise<void> {
    const tenant = await this.tenants.get(tenantId);
    const removed = await this.db.transaction({ tenant: tenant.id }, async (tx) => {
      const logo = await this.rows.removeLogo(tx, tenant.id);
      if (logo)
        await this.audit.record(tx, {
          tenantId: tenant.id,
          actor: p.actor,
          action: 'tenant.logo_removed',
          target: tenant.id,
          data: { sha256: logo.sha256 },
        });
      return logo;
    });
    if (removed) this.db.rowsChanged('tenant_logos');
  }
}
