import { Body, Controller, Get, Headers, HttpCode, Inject, Ip, Post, Query, Req, Res, UseGuards } from '@nestjs/common';
import { ApiExcludeEndpoint, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { AppConfig } from '../config/app-config.js';
import { BearerTokenError, OAuthError } from '../common/errors.js';
import { escapeHtml, page, renderMessagePage, setPageHeaders, th, tt } from '../common/html.js';
import { normaliseUiLocales } from '../i18n/index.js';
import { PageContextService } from '../login/page-context.service.js';
import { presentsBearer } from '../tokens/bearer-token.js';
import { AccessTokenGuard, AccessTokenStrategy, accessTokenOf, authenticate } from './access-token.guard.js';
import { TokenIssuerService } from '../tokens/token-issuer.service.js';
import { ClientsService, readClientCredentials } from '../clients/clients.service.js';
import { LoginService, OrganizationPromptNeeded, RedirectableError, redirectWith, type AuthorizeParams } from '../login/login.service.js';

/** The organisation typed last on the hosted organisation page, offered again next time. */
const LAST_ORG_COOKIE = 'auth_last_org';
const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** What the organisation page carries over to the authorization request it submits. */
const CARRIED = [
  'response_type',
  'client_id',
  'redirect_uri',
  'state',
  'scope',
  'nonce',
  'code_challenge',
  'code_challenge_method',
  'login_hint',
  'acr_values',
  'max_age',
  'prompt',
  'ui_locales',
] as const;
import { TOKEN_EXCHANGE_GRANT, TokenService } from './token.service.js';
import { UpstreamLogoutService } from '../login/upstream-logout.service.js';
import { RateLimiter } from '../rate-limit/rate-limiter.js';

const GRANTS = ['authorization_code', 'refresh_token', 'client_credentials', TOKEN_EXCHANGE_GRANT] as const;

const FORM = /^application\/x-www-form-urlencoded\s*(;|$)/i;

function singleValued(body: unknown, contentType: string | undefined): Record<string, unknown> {
  if (!FORM.test(contentType ?? '')) throw new OAuthError('invalid_request', 'The request body must be application/x-www-form-urlencoded.');
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw new OAuthError('invalid_request', 'The request body must be application/x-www-form-urlencoded.');
  for (const [k, v] of Object.entries(body))
    if (typeof v !== 'string') throw new OAuthError('invalid_request', `Parameter "${k}" must appear once.`);
  return body as Record<string, unknown>;
}

/** OAuth 2.0 / OIDC endpoints the BFF and machine clients talk to. */
@ApiTags('oauth2')
@Controller('oauth2')
export class OAuthController {
  constructor(
    private readonly login: LoginService,
    private readonly tokens: TokenService,
    private readonly clients: ClientsService,
    private readonly issuer: TokenIssuerService,
    private readonly accessTokens: AccessTokenStrategy,
    private readonly upstreamLogout: UpstreamLogoutService,
    private readonly limiter: RateLimiter,
    private readonly pages: PageContextService,
    @Inject(AppConfig) private readonly config: AppConfig,
  ) {}

  /**
   * 429 with `slow_down` (RFC 8628 §3.5, registered for token endpoint responses: "slow down, then
   * retry") and Retry-After. `temporarily_unavailable` belongs to the authorization endpoint and
   * says the server is overloaded, not that this caller must back off; we keep it for 503s.
   */
  private async limitToken(bucket: string, limit: number, what: string): Promise<void> {
    const r = await this.limiter.hit(bucket, limit);
    if (!r.allowed)
      throw new OAuthError('slow_down', `Too many token requests ${what}; retry after ${r.retryAfter} s.`, { retryAfter: r.retryAfter });
  }

  @Get('authorize')
  async authorize(@Query() query: AuthorizeParams, @Req() req: Request, @Res() res: Response): Promise<void> {
    try {
      const next = await this.login.begin(query, req.ip ?? 'unknown');
      if (query.org_prompt === '1' && typeof query.org === 'string') this.rememberOrganization(res, query.org);
      res.redirect(302, next);
    } catch (err) {
      if (err instanceof OrganizationPromptNeeded) {
        await this.renderOrganizationPage(req, res, query, err.unknownOrganization);
        return;
      }
      if (!(err instanceof RedirectableError)) throw err;
      res.redirect(
        302,
        redirectWith(err.redirectUri, { error: err.error, error_description: err.description, state: err.state, iss: this.config.issuer }),
      );
    }
  }

  private rememberOrganization(res: Response, typed: string): void {
    const slug = typed.trim().toLowerCase();
    if (!SLUG.test(slug)) return;
    res.cookie(LAST_ORG_COOKIE, slug, {
      httpOnly: true,
      sameSite: 'lax',
      secure: this.config.issuer.startsWith('https://'),
      path: '/oauth2/authorize',
      maxAge: 365 * 24 * 3600 * 1000,
    });
  }

  /**
   * The hosted "enter your organisation" page, for a BFF that has no pre-login screen of its own:
   * a form that submits the same authorization request with `org`. It never lists organisations;
   * an unknown one is asked again (the look-up is rate-limited like every authorization request).
   */
  private async renderOrganizationPage(req: Request, res: Response, query: AuthorizeParams, unknown: boolean): Promise<void> {
    const remembered = (req.cookies as Record<string, string> | undefined)?.[LAST_ORG_COOKIE];
    const typed = unknown && typeof query.org === 'string' ? query.org.slice(0, 100) : undefined;
    const value = typed ?? (remembered && SLUG.test(remembered) ? remembered : '');
    const q = query as Record<string, unknown>;
    const hidden = CARRIED.flatMap((k) => {
      const v = q[k];
      return typeof v === 'string' ? [`<input type="hidden" name="${k}" value="${escapeHtml(v)}">`] : [];
    }).join('');
    const ui = q['ui_locales'];
    const ctx = await this.pages.resolve(req, { uiLocales: normaliseUiLocales(typeof ui === 'string' ? ui : undefined) });
    const error = unknown ? `<p class="error" role="alert" id="org-error">${th(ctx.lang, 'organization.unknown')}</p>` : '';
    setPageHeaders(res, ctx);
    res
      .status(unknown ? 404 : 200)
      .type('html')
      .send(
        page(
          tt(ctx.lang, 'organization.title'),
          `<h1>${th(ctx.lang, 'organization.heading')}</h1><p>${th(ctx.lang, 'organization.text')}</p>${error}` +
            `<form method="get" action="/oauth2/authorize">${hidden}<input type="hidden" name="org_prompt" value="1">` +
            `<label for="org">${th(ctx.lang, 'organization.label')}</label><input id="org" name="org" required maxlength="100" autocomplete="organization" autocapitalize="none" spellcheck="false" value="${escapeHtml(value)}"${unknown ? ' aria-invalid="true" aria-describedby="org-error"' : ''}>` +
            `<button type="submit">${th(ctx.lang, 'organization.submit')}</button></form>`,
          ctx,
        ),
      );
  }

  @Post('token')
  @HttpCode(200)
  async token(
    @Body() rawBody: unknown,
    @Headers('authorization') authorization: string | undefined,
    @Headers('content-type') contentType: string | undefined,
    @Ip() ip: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ): Promise<unknown> {
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Pragma', 'no-cache');
    // Per IP before authentication (floods, secret guessing); per client only once authenticated,
    // so nobody can spend another client's allowance by sending its client_id.
    await this.limitToken(`token-ip:${ip ?? 'unknown'}`, this.config.RATE_LIMIT_TOKEN_PER_IP_PER_MINUTE, 'from this address');
    const body = singleValued(rawBody, contentType);
    const grant = body['grant_type'];
    if (typeof grant !== 'string') throw new OAuthError('invalid_request', 'grant_type is required.');
    if (!(GRANTS as readonly string[]).includes(grant))
      throw new OAuthError('unsupported_grant_type', `Unsupported grant_type "${grant}".`);
    const client = await this.clients.authenticate(readClientCredentials(authorization, body));
    await this.limitToken(`token-client:${client.id}`, this.config.RATE_LIMIT_TOKEN_PER_MINUTE, 'for this client');
    switch (grant as (typeof GRANTS)[number]) {
      case 'authorization_code':
        return this.tokens.authorizationCode(client, body);
      case 'refresh_token':
        return this.tokens.refreshToken(client, body);
      case 'client_credentials':
        return this.tokens.clientCredentials(client, body);
      case TOKEN_EXCHANGE_GRANT:
        return this.tokens.tokenExchange(client, body);
    }
  }

  @Post('revoke')
  @HttpCode(200)
  async revoke(
    @Body() rawBody: unknown,
    @Headers('authorization') authorization: string | undefined,
    @Headers('content-type') contentType: string | undefined,
  ): Promise<Record<string, never>> {
    const body = singleValued(rawBody, contentType);
    const client = await this.clients.authenticate(readClientCredentials(authorization, body));
    await this.tokens.revoke(client, body['token']);
    return {};
  }

  @Get('userinfo')
  @UseGuards(AccessTokenGuard)
  userinfo(@Req() req: Request): Record<string, unknown> {
    const { claims, user } = accessTokenOf(req);
    // A machine token has no user to describe (OIDC Core §5.3 is about the end-user).
    if (!user)
      throw new BearerTokenError('invalid_token', 'This access token was issued to a machine client; userinfo describes users only.');
    return {
      sub: user.id,
      tid: claims.tid,
      org: claims.org,
      email: user.email,
      email_verified: user.emailVerified,
      name: user.displayName,
      roles: user.roles,
    };
  }

  /**
   * RP-initiated logout (GET with id_token_hint) or a BFF's back-channel POST with the access
   * token. Either way the session and every refresh token of its family end. Every parameter is
   * validated before anything changes: a refused logout ends nothing.
   */
  @Get('logout')
  async logoutGet(@Req() req: Request, @Res() res: Response): Promise<void> {
    await this.logout(req, res);
  }

  @Post('logout')
  async logoutPost(@Req() req: Request, @Res() res: Response): Promise<void> {
    await this.logout(req, res);
  }

  private async logout(req: Request, res: Response): Promise<void> {
    if (presentsBearer(req.headers.authorization)) {
      const { claims } = await authenticate(this.accessTokens, req, res);
      if (claims.sid) await this.tokens.endSession(claims.tid, claims.sid, 'logout');
      res.status(204).end();
      return;
    }
    const params = { ...(req.query as Record<string, unknown>), ...((req.body as Record<string, unknown> | undefined) ?? {}) };
    for (const k of ['id_token_hint', 'post_logout_redirect_uri', 'client_id', 'state'])
      if (params[k] !== undefined && typeof params[k] !== 'string')
        throw new OAuthError('invalid_request', `Parameter "${k}" must appear once.`);
    const hint = params['id_token_hint'] as string | undefined;
    const target = params['post_logout_redirect_uri'] as string | undefined;
    let clientId = params['client_id'] as string | undefined;
    let session: { tid: string; sid: string } | undefined;
    if (hint !== undefined) {
      const claims = await this.issuer.verifyIdTokenHint(hint);
      clientId ??= claims.aud;
      if (claims.aud !== clientId) throw new OAuthError('invalid_request', 'id_token_hint was issued to another client.');
      if (claims.sid) session = { tid: claims.tid, sid: claims.sid };
    }
    let returnTo: string | undefined;
    if (target !== undefined) {
      const client = await this.clients.find(clientId);
      if (!client || !client.postLogoutRedirectUris.includes(target))
        throw new OAuthError('invalid_request', 'post_logout_redirect_uri is not registered for this client.');
      returnTo = redirectWith(target, { state: params['state'] as string | undefined });
    }
    // Only now, with the request known to be valid, does anything change.
    if (session) await this.tokens.endSession(session.tid, session.sid, 'logout');
    // The upstream IdP's session (Keycloak) ends too: the browser goes there, then back to returnTo.
    const upstream = session ? await this.upstreamLogout.logoutUrl(session.tid, session.sid, returnTo) : undefined;
    if (upstream) {
      res.redirect(302, upstream);
      return;
    }
    if (returnTo) {
      res.redirect(302, returnTo);
      return;
    }
    const ui = params['ui_locales'];
    const ctx = await this.pages.forTenantId(req, session?.tid, typeof ui === 'string' ? ui : undefined);
    setPageHeaders(res, ctx);
    res
      .status(200)
      .type('html')
      .send(renderMessagePage(tt(ctx.lang, 'signedOut.title'), tt(ctx.lang, 'signedOut.text'), ctx));
  }

  /** Where an upstream IdP's logout sends the browser back: on to the client's post-logout redirect. */
  @Get('logout/return')
  logoutReturn(@Query('state') state: unknown, @Res() res: Response): void {
    res.redirect(302, this.upstreamLogout.returnTarget(state));
  }

  @ApiExcludeEndpoint()
  @Get('token')
  tokenGet(): never {
    throw new OAuthError('invalid_request', 'The token endpoint accepts POST only.', { status: 405 });
  }
}
