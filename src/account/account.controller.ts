import { Body, Controller, Delete, Get, HttpCode, Param, Post, Req, Res, UseGuards, UsePipes, ValidationPipe } from '@nestjs/common';
import { ApiBearerAuth, ApiExcludeController, ApiOperation, ApiProperty, ApiTags } from '@nestjs/swagger';
import { IsString, Length } from 'class-validator';
import type { Request, Response } from 'express';
import { escapeHtml, page, setPageHeaders, strong, th, tt, type PageContext } from '../common/html.js';
import { pageMessageOf } from '../common/page-text.js';
import { PageContextService } from '../login/page-context.service.js';
import { ProblemError } from '../common/errors.js';
import { AccessTokenGuard, accessTokenOf } from '../oauth/access-token.guard.js';
import { LoginService } from '../login/login.service.js';
import { AccountService, type OpenedLink } from './account.service.js';
import { PasskeyService, type PasskeyView } from '../identity/native/passkeys.service.js';

const field = (body: unknown, name: string): string => {
  const v = (body as Record<string, unknown> | undefined)?.[name];
  return typeof v === 'string' ? v : '';
};

function send(res: Response, ctx: PageContext, status: number, title: string, body: string): void {
  setPageHeaders(res, ctx);
  res
    .status(status)
    .type('html')
    .send(page(title, body, ctx));
}

const errorLine = (message: string | undefined) =>
  message ? `<p class="error" role="alert" id="form-error">${escapeHtml(message)}</p>` : '';

/**
 * The hosted account pages a person reaches from a mail or from the sign-in form: set a password
 * (invitation, reset), verify an email address, forgot password. A link's GET only shows the page;
 * the POST spends it, so a mail scanner that follows links spends nothing. The POSTs need no CSRF
 * token of their own: each carries an unguessable secret in its path (the link, or the sign-in
 * handle), and a forged POST could only act on an account its sender already controls.
 */
@ApiExcludeController()
@Controller('account')
export class AccountPagesController {
  constructor(
    private readonly account: AccountService,
    private readonly login: LoginService,
    private readonly pages: PageContextService,
  ) {}

  @Get('password/:token')
  async passwordForm(@Param('token') token: string, @Req() req: Request, @Res() res: Response): Promise<void> {
    const link = await this.pages.opening(req, 'ak', token, () => this.account.open(token, ['invitation', 'password-reset']));
    this.renderPassword(res, await this.pages.resolve(req, { tenant: link.tenant }), token, link, 200);
  }

  @Post('password/:token')
  async setPassword(@Param('token') token: string, @Body() body: unknown, @Req() req: Request, @Res() res: Response): Promise<void> {
    const password = field(body, 'password');
    const confirm = field(body, 'confirm');
    if (password !== confirm) {
      const link = await this.pages.opening(req, 'ak', token, () => this.account.open(token, ['invitation', 'password-reset']));
      const ctx = await this.pages.resolve(req, { tenant: link.tenant });
      this.renderPassword(res, ctx, token, link, 400, tt(ctx.lang, 'account.mismatch'));
      return;
    }
    try {
      const done = await this.pages.opening(req, 'ak', token, () => this.account.setPassword(token, password));
      const ctx = await this.pages.resolve(req, { tenant: done.tenant });
      send(
        res,
        ctx,
        200,
        tt(ctx.lang, 'account.passwordSetTitle'),
        `<h1>${th(ctx.lang, 'account.passwordSetHeading')}</h1><p>${
          done.username
            ? th(ctx.lang, 'account.passwordSetTextAs', {
                tenant: strong(ctx.brand?.displayName ?? done.tenant.displayName),
                username: strong(done.username),
              })
            : th(ctx.lang, 'account.passwordSetText', { tenant: strong(ctx.brand?.displayName ?? done.tenant.displayName) })
        }</p>`,
      );
    } catch (err) {
      if (!(err instanceof ProblemError) || err.type !== 'urn:auth-service:problem:invalid-password') throw err;
      const link = await this.pages.opening(req, 'ak', token, () => this.account.open(token, ['invitation', 'password-reset']));
      const ctx = await this.pages.resolve(req, { tenant: link.tenant });
      this.renderPassword(res, ctx, token, link, 400, pageMessageOf(err, ctx.lang));
    }
  }

  @Get('verify-email/:token')
  async verifyForm(@Param('token') token: string, @Req() req: Request, @Res() res: Response): Promise<void> {
    const link = await this.pages.opening(req, 'ak', token, () => this.account.open(token, ['email-verification']));
    const ctx = await this.pages.resolve(req, { tenant: link.tenant });
    send(
      res,
      ctx,
      200,
      tt(ctx.lang, 'account.verifyTitle'),
      `<h1>${th(ctx.lang, 'account.verifyTitle')}</h1><p>${th(ctx.lang, 'account.verifyText', {
        email: strong(link.email ?? ''),
        tenant: strong(ctx.brand?.displayName ?? link.tenant.displayName),
      })}</p>` +
        `<form method="post" action="/account/verify-email/${escapeHtml(encodeURIComponent(token))}"><button type="submit">${th(ctx.lang, 'account.verifyButton')}</button></form>`,
    );
  }

  @Post('verify-email/:token')
  async verify(@Param('token') token: string, @Req() req: Request, @Res() res: Response): Promise<void> {
    const done = await this.pages.opening(req, 'ak', token, () => this.account.verifyEmail(token));
    const ctx = await this.pages.resolve(req, { tenant: done.tenant });
    send(
      res,
      ctx,
      200,
      tt(ctx.lang, 'account.verifiedTitle'),
      `<h1>${th(ctx.lang, 'account.verifiedHeading')}</h1><p>${th(ctx.lang, 'account.verifiedText', { email: strong(done.email ?? '') })}</p>`,
    );
  }

  /** "Forgot your password?" from the hosted sign-in form, whose handle says the tenant and the way back. */
  @Get('forgot/:handle')
  async forgotForm(@Param('handle') handle: string, @Req() req: Request, @Res() res: Response): Promise<void> {
    const txn = await this.pages.opening(req, 'lt', handle, () => this.login.load(handle));
    const ctx = await this.pages.forLogin(req, txn);
    this.renderForgot(res, ctx, handle, ctx.brand?.displayName ?? txn.tenant.displayName, 200);
  }

  @Post('forgot/:handle')
  async forgot(@Param('handle') handle: string, @Body() body: unknown, @Req() req: Request, @Res() res: Response): Promise<void> {
    const txn = await this.pages.opening(req, 'lt', handle, () => this.login.load(handle));
    const ctx = await this.pages.forLogin(req, txn);
    const name = field(body, 'username');
    if (!name.trim()) {
      this.renderForgot(res, ctx, handle, ctx.brand?.displayName ?? txn.tenant.displayName, 400, tt(ctx.lang, 'account.forgotEmpty'));
      return;
    }
    await this.account.forgot(txn.tenant, name, req.ip ?? 'unknown');
    send(
      res,
      ctx,
      200,
      tt(ctx.lang, 'account.checkEmailTitle'),
      `<h1>${th(ctx.lang, 'account.checkEmailTitle')}</h1><p role="status">${th(ctx.lang, 'account.checkEmailText', { tenant: strong(ctx.brand?.displayName ?? txn.tenant.displayName) })}</p>` +
        `<p><a href="/login/native/${escapeHtml(encodeURIComponent(handle))}">${th(ctx.lang, 'account.backToSignIn')}</a></p>`,
    );
  }

  private renderPassword(res: Response, ctx: PageContext, token: string, link: OpenedLink, status: number, error?: string): void {
    const invitation = link.purpose === 'invitation';
    const title = tt(ctx.lang, invitation ? 'account.setTitle' : 'account.newTitle');
    const t = (key: Parameters<typeof th>[1]) => th(ctx.lang, key);
    send(
      res,
      ctx,
      status,
      title,
      `<h1>${escapeHtml(title)}</h1><p>${
        link.username
          ? th(ctx.lang, 'account.forAccount', {
              tenant: strong(ctx.brand?.displayName ?? link.tenant.displayName),
              username: strong(link.username),
            })
          : th(ctx.lang, 'account.for', { tenant: strong(ctx.brand?.displayName ?? link.tenant.displayName) })
      }</p>` +
        errorLine(error) +
        `<form method="post" action="/account/password/${escapeHtml(encodeURIComponent(token))}">` +
        // The username lets a password manager store the new password under the right account.
        `<input type="hidden" name="username" autocomplete="username" value="${escapeHtml(link.username ?? '')}">` +
        `<label for="password">${t('account.newPassword')}</label><input id="password" name="password" type="password" autocomplete="new-password" required minlength="8" maxlength="256"${error ? ' aria-describedby="form-error" aria-invalid="true"' : ''}>` +
        `<label for="confirm">${t('account.newPasswordAgain')}</label><input id="confirm" name="confirm" type="password" autocomplete="new-password" required maxlength="256">` +
        `<button type="submit">${t(invitation ? 'account.setButton' : 'account.changeButton')}</button></form>`,
    );
  }

  private renderForgot(res: Response, ctx: PageContext, handle: string, tenantName: string, status: number, error?: string): void {
    const path = `/account/forgot/${encodeURIComponent(handle)}`;
    const t = (key: Parameters<typeof th>[1]) => th(ctx.lang, key);
    send(
      res,
      ctx,
      status,
      tt(ctx.lang, 'account.forgotTitle'),
      `<h1>${t('account.forgotTitle')}</h1><p>${th(ctx.lang, 'account.forgotLead', { tenant: strong(tenantName) })}</p>` +
        errorLine(error) +
        `<form method="post" action="${escapeHtml(path)}">` +
        `<label for="username">${t('signIn.username')}</label><input id="username" name="username" autocomplete="username" required maxlength="320">` +
        `<button type="submit">${t('account.sendLink')}</button></form>` +
        `<p><a href="/login/native/${escapeHtml(encodeURIComponent(handle))}">${t('account.backToSignIn')}</a></p>`,
    );
  }
}

export class ChangePasswordDto {
  @ApiProperty({ description: 'The current password. Write-only: never returned or logged.' })
  @IsString()
  @Length(1, 256)
  currentPassword!: string;

  @ApiProperty({ description: "The new password: the tenant's password policy applies." })
  @IsString()
  @Length(1, 256)
  newPassword!: string;
}

/** A signed-in user's own account, through the BFF with the user's platform access token. */
@ApiTags('account')
@ApiBearerAuth()
@Controller('account/v1')
@UseGuards(AccessTokenGuard)
@UsePipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true }))
export class AccountApiController {
  constructor(
    private readonly account: AccountService,
    private readonly passkeys: PasskeyService,
  ) {}

  @Get('passkeys')
  @ApiOperation({ summary: 'Your own passkeys (registered on the hosted sign-in pages)' })
  async listPasskeys(@Req() req: Request): Promise<{ passkeys: PasskeyView[] }> {
    const { claims, user } = accessTokenOf(req);
    if (!user) throw new ProblemError({ type: 'forbidden', detail: 'A machine client has no passkeys.' });
    return { passkeys: await this.passkeys.list(claims.tid, user.id) };
  }

  @Delete('passkeys/:passkeyId')
  @HttpCode(204)
  @ApiOperation({ summary: 'Remove one of your passkeys; it signs in nowhere afterwards' })
  async removePasskey(@Param('passkeyId') passkeyId: string, @Req() req: Request): Promise<void> {
    const { claims, user } = accessTokenOf(req);
    if (!user) throw new ProblemError({ type: 'forbidden', detail: 'A machine client has no passkeys.' });
    await this.passkeys.removeByOwner(claims.tid, user.id, passkeyId);
  }

  @Post('password')
  @HttpCode(204)
  @ApiOperation({ summary: 'Change your own local password (current password required)' })
  async changePassword(@Body() dto: ChangePasswordDto, @Req() req: Request): Promise<void> {
    const { claims, user } = accessTokenOf(req);
    if (!user) throw new ProblemError({ type: 'forbidden', detail: 'A machine client has no password to change.' });
    await this.account.changePassword(claims.tid, user.id, dto.currentPassword, dto.newPassword);
  }
}
