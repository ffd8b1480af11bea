import { Body, Controller, Get, Logger, Param, Post, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { OAuthError, ProblemError } from '../common/errors.js';
import { parseOpaqueToken } from '../crypto/opaque-token.js';
import { LoginService } from './login.service.js';
import { TenantsService, type Tenant } from '../tenants/tenants.service.js';
import type { BindingContext } from '../identity/port/identity-provider.port.js';
import { SamlResponseRejectedError } from '../identity/saml/saml-errors.js';
import { TenantSamlProvider } from '../identity/saml/tenant-saml.adapter.js';
import { SamlAcsService } from './saml-acs.service.js';
import { PageContextService } from './page-context.service.js';

const stringsOf = (o: unknown): Record<string, string | undefined> =>
  Object.fromEntries(Object.entries((o ?? {}) as Record<string, unknown>).filter(([, v]) => typeof v === 'string')) as Record<
    string,
    string | undefined
  >;

const notFound = () => new ProblemError({ type: 'saml-not-configured', detail: 'No SAML sign-in is set up for this organisation.' });

/**
 * Per-tenant SAML service provider endpoints. The entityID (`/saml/<slug>`) and the ACS
 * (`/saml/<slug>/acs`) depend on the slug only: the customer's IdP configuration never has to
 * change when the service's keys rotate.
 */
@ApiExcludeController()
@Controller('saml')
export class SamlController {
  private readonly logger = new Logger('SamlController');

  constructor(
    private readonly saml: TenantSamlProvider,
    private readonly login: LoginService,
    private readonly tenants: TenantsService,
    private readonly samlAcs: SamlAcsService,
    private readonly pages: PageContextService,
  ) {}

  /** SP metadata for the customer's IT admin (also served for a draft binding, so onboarding can start before activation). */
  @Get(':slug/metadata')
  async metadata(@Param('slug') slug: string, @Res() res: Response): Promise<void> {
    const tenant = await this.tenants.findActiveBySlug(slug);
    if (!tenant) throw notFound();
    const binding = await this.samlAcs.samlBinding(tenant, true);
    if (!binding) throw notFound();
    res
      .status(200)
      .type('application/samlmetadata+xml')
      .setHeader('Cache-Control', 'public, max-age=300')
      .send(this.saml.spMetadata(binding));
  }

  /**
   * AssertionConsumerService (HTTP-POST). RelayState holding a login transaction handle:
   * SP-initiated, completed through LoginService (code for the BFF). No handle: IdP-initiated,
   * accepted only when the binding allows it, then the browser goes to the BFF to start a normal flow.
   */
  @Post(':slug/acs')
  async acs(@Param('slug') slug: string, @Body() body: unknown, @Req() req: Request, @Res() res: Response): Promise<void> {
    const form = stringsOf(body);
    const samlResponse = form['SAMLResponse'];
    const relayState = form['RelayState'];
    if (!samlResponse)
      throw new ProblemError({ type: 'saml-response-missing', detail: 'The identity provider did not post a SAMLResponse.' });
    const tenant = await this.tenants.findActiveBySlug(slug);
    if (!tenant) throw notFound();
    // An error page from here on speaks the tenant's language (or the login's, below).
    await this.pages.resolve(req, { tenant });

    if (relayState && parseOpaqueToken('lt', relayState)) {
      const txn = await this.login.load(relayState);
      if (txn.tenant.id === tenant.id) await this.pages.forLogin(req, txn);
      if (txn.tenant.id !== tenant.id)
        throw new ProblemError({
          type: 'saml-response-rejected',
          detail: 'This response belongs to another organisation. Start again from the application.',
        });
      const binding = await this.login.binding(txn);
      if (binding.kind !== 'saml') throw new ProblemError({ type: 'saml-response-rejected', detail: 'This sign-in does not use SAML.' });
      try {
        const redirect = await this.login.complete(txn, {
          method: 'POST',
          query: {},
          body: { SAMLResponse: samlResponse, RelayState: relayState },
          clientIp: req.ip ?? 'unknown',
        });
        res.redirect(303, redirect);
      } catch (err) {
        // A login refused after the response was accepted (max_age: an AuthnInstant too old) ends
        // at the client with its OAuth error, as the OIDC callbacks do.
        if (err instanceof OAuthError) {
          res.redirect(303, await this.login.abort(txn, err.error, err.description));
          return;
        }
        if (!(err instanceof SamlResponseRejectedError)) throw err;
        await this.recordRejection(tenant, binding, err, req);
        const description =
          err.reason === 'idp_status'
            ? 'The identity provider refused the sign-in.'
            : "The organisation's identity provider sent a response that could not be accepted.";
        res.redirect(303, await this.login.abort(txn, 'access_denied', description));
      }
      return;
    }

    const binding = await this.samlAcs.samlBinding(tenant, false);
    if (!binding) throw notFound();
    try {
      const { redirectUrl } = await this.saml.acceptIdpInitiated(binding, samlResponse);
      await this.samlAcs.recordIdpInitiatedAccepted(tenant, binding, requestIdOf(req));
      // RelayState of an unsolicited response is never used as a redirect target (open redirect).
      res.redirect(303, redirectUrl);
    } catch (err) {
      if (err instanceof SamlResponseRejectedError) await this.recordRejection(tenant, binding, err, req);
      throw err;
    }
  }

  private async recordRejection(tenant: Tenant, binding: BindingContext, err: SamlResponseRejectedError, req: Request): Promise<void> {
    this.logger.warn({ tenant: tenant.id, binding: binding.id, reason: err.reason, detail: err.internal }, 'SAML response refused');
    await this.samlAcs.recordRejection(tenant, binding, err.reason, requestIdOf(req));
  }
}

const requestIdOf = (req: Request): string | undefined => {
  const id = (req as Request & { id?: unknown }).id;
  return typeof id === 'string' ? id : undefined;
};
