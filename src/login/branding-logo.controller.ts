import { Controller, Get, Param, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';
import { ProblemError } from '../common/errors.js';
import { BrandingService } from '../tenants/branding.service.js';
import { TenantsService } from '../tenants/tenants.service.js';

/**
 * A tenant's logo for its hosted pages (issue #18), at the URL the Brand names
 * (`/branding/<tenantId>/logo-<sha256 prefix>.<ext>`). Content-addressed, so cached for a year;
 * served as the stored type, never sniffed, as a resource that is no document (CSP `default-src
 * 'none'`) and that other sites may not embed. A browser route: not in the OpenAPI document.
 */
@ApiExcludeController()
@Controller('branding')
export class BrandingLogoController {
  constructor(
    private readonly branding: BrandingService,
    private readonly tenants: TenantsService,
  ) {}

  @Get(':tenantId/:file')
  async logo(@Param('tenantId') tenantId: string, @Param('file') file: string, @Res() res: Response): Promise<void> {
    const found = await this.branding.logo(tenantId, file);
    const tenant = found && (await this.tenants.findById(tenantId));
    if (!found || !tenant || tenant.status === 'deleted') throw new ProblemError({ status: 404, title: 'Not found' });
    res.set({
      'Content-Type': found.contentType,
      'Content-Length': String(found.bytes.length),
      'Cache-Control': 'public, max-age=31536000, immutable',
      'X-Content-Type-Options': 'nosniff',
      'Content-Security-Policy': "default-src 'none'",
      'Cross-Origin-Resource-Policy': 'same-origin',
    });
    res.status(200).end(found.bytes);
  }
}
