import { Body, Controller, Delete, Get, HttpCode, Param, Put, Req, Res } from '@nestjs/common';
import { ApiBody, ApiConsumes, ApiOperation } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { principalOf } from './admin-auth.js';
import { Admin } from './admin-controller.js';
import { etagOf, requireIfMatch } from './admin-http.js';
import { BrandingAdminService, type BrandingView } from './branding-admin.service.js';
import { BrandingDto } from './dto.js';
import { LOGO_TYPES } from '../tenants/logo-image.js';

/**
 * A tenant's branding of the hosted pages (issue #18): operators only. Values that break a rule
 * (colour format, WCAG AA contrast, plain text, https links, the logo's type, size and dimensions)
 * are a 422 naming the field, and change nothing.
 */
@Admin('branding')
@Controller('admin/v1/tenants/:tenantId/branding')
export class BrandingAdminController {
  constructor(private readonly branding: BrandingAdminService) {}

  private send(res: Response, view: BrandingView): BrandingView {
    res.setHeader('ETag', etagOf(view.version));
    return view;
  }

  @Get()
  @ApiOperation({ summary: "Read a tenant's branding (ETag for If-Match; version 0 before the first save)" })
  async get(@Param('tenantId') tenantId: string, @Res({ passthrough: true }) res: Response): Promise<BrandingView> {
    return this.send(res, await this.branding.get(tenantId));
  }

  @Put()
  @ApiOperation({
    summary: "Replace a tenant's branding: colours, display name, support contact, texts (If-Match required)",
    description:
      'The whole branding: a field left out is unset. Colours are #rrggbb; text on background and the button label (white or the text colour) on primary need WCAG 2 AA contrast (4.5:1). Texts are plain text; links https. A refusal is a 422 whose `field` names the value.',
  })
  async replace(
    @Param('tenantId') tenantId: string,
    @Body() dto: BrandingDto,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ): Promise<BrandingView> {
    const current = await this.branding.get(tenantId);
    requireIfMatch(req, current.version);
    return this.send(res, await this.branding.replace(principalOf(req), current.tenantId, current.version, dto));
  }

  @Put('logo')
  @ApiOperation({
    summary: "Upload a tenant's logo (PNG, JPEG or WebP; at most 256 KiB and 2048×2048)",
    description:
      'The request body is the image file, with its Content-Type; the type must match the bytes. SVG is refused. Replaces the logo; the branding shows its new URL.',
  })
  @ApiConsumes(...LOGO_TYPES)
  @ApiBody({ schema: { type: 'string', format: 'binary' } })
  async putLogo(
    @Param('tenantId') tenantId: string,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
  ): Promise<BrandingView> {
    // Only an image/* body is read as bytes (bootstrap.ts); anything else is refused as not an image.
    const body: unknown = req.body;
    const bytes = Buffer.isBuffer(body) ? body : undefined;
    return this.send(res, await this.branding.putLogo(principalOf(req), tenantId, bytes, req.headers['content-type']));
  }

  @Delete('logo')
  @HttpCode(204)
  @ApiOperation({ summary: "Remove a tenant's logo" })
  async removeLogo(@Param('tenantId') tenantId: string, @Req() req: Request): Promise<void> {
    await this.branding.removeLogo(principalOf(req), tenantId);
  }
}
