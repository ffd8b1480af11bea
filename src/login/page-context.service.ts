import { Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { notePageContext, type PageContext } from '../common/html.js';
import { negotiateLocale, normaliseUiLocales } from '../i18n/index.js';
import { TenantsService, type Tenant } from '../tenants/tenants.service.js';
import { BrandingService } from '../tenants/branding.service.js';
import { parseOpaqueToken } from '../crypto/opaque-token.js';

/**
 * The one place a hosted page's context is resolved (issue #18, ADR 0021), used by every controller
 * that renders a page (login, account, oauth's signed-out page):
 * - the language: the login transaction's `ui_locales`, then the request's `Accept-Language`,
 *   then the tenant's default language, then English;
 * - the brand: the tenant's (tenants/branding.service.ts, cached), when the page is for one.
 *
 * The context is also noted on the request, so that an error page the same request ends on
 * (common/error.filter.ts) speaks the language of the page it replaces.
 */
@Injectable()
export class PageContextService {
  constructor(
    private readonly tenants: TenantsService,
    private readonly branding: BrandingService,
  ) {}

  /** `tenant`: the tenant the page is for, when known; `uiLocales`: the login transaction's. */
  async resolve(req: Request, o: { tenant?: Tenant; uiLocales?: string | null } = {}): Promise<PageContext> {
    const ctx: PageContext = {
      lang: negotiateLocale({ uiLocales: o.uiLocales, acceptLanguage: req.get('accept-language'), tenantDefault: o.tenant?.defaultLocale }),
      brand: o.tenant ? await this.branding.brandOf(o.tenant) : undefined,
    };
    notePageContext(req, ctx);
    return ctx;
  }

  /** A page of a login under way: its tenant and the `ui_locales` of its authorization request. */
  forLogin(req: Request, txn: { tenant: Tenant; uiLocales?: string | null }): Promise<PageContext> {
    return this.resolve(req, { tenant: txn.tenant, uiLocales: txn.uiLocales });
  }

  /**
   * A page for a tenant known by id (the signed-out page of a session); an unknown id is no tenant.
   * `uiLocales`: the request's own (RP-initiated logout takes `ui_locales` too).
   */
  async forTenantId(req: Request, tenantId: string | undefined, uiLocales?: string): Promise<PageContext> {
    const tenant = tenantId ? await this.tenants.findById(tenantId) : undefined;
    return this.resolve(req, { tenant, uiLocales: normaliseUiLocales(uiLocales) });
  }

  /**
   * Runs `open` (the look-up of a login's handle or an account link); when it fails (expired,
   * finished, unknown), the error page still gets the language and brand of the tenant the token
   * names, when it names an active one.
   */
  async opening<T>(req: Request, prefix: 'lt' | 'ak', token: string, open: () => Promise<T>): Promise<T> {
    try {
      return await open();
    } catch (err) {
      const named = parseOpaqueToken(prefix, token);
      const tenant = named ? await this.tenants.findById(named.tenantId).catch(() => undefined) : undefined;
      if (tenant?.status === 'active') await this.resolve(req, { tenant }).catch(() => undefined);
      throw err;
    }
  }
}
