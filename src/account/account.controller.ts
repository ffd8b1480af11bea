import { Body, Controller, Delete, Get, HttpCode, Param, Post, Req, Res, UseGuards, UsePipes, ValidationPipe } from '@nestjs/common';
import { ApiBearerAuth, ApiExcludeController, ApiOperation, ApiProperty, ApiTags } from '@nestjs/swagger';
import { IsString, Length } from 'class-validator';
import type { Request, Response } from 'express';
import { HTML_SECURITY_HEADERS, escapeHtml, page } from '../common/html.js';
import { ProblemError } from '../common/errors.js';
import { AccessTokenGuard, accessTokenOf } from '../oauth/access-token.guard.js';
import { LoginService } from '../login/login.service.js';
import { AccountService, type OpenedLink } from './account.service.js';
import { PasskeyService, type PasskeyView } from '../identity/native/passkeys.service.js';

const field = (body: unknown, name: string): string => {
  const v = (body as Record<string, unknown> | undefined)?.[name];
  return typeof v === 'string' ? v : '';
};

function send(res: Response, status: number, title: string, body: string): void {
  res.set(HTML_SECURITY_HEADERS);
  res.status(status).type('html').send(page(title, body));
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
  ) {}

  @Get('password/:token')
  async passwordForm(@Param('token') token: string, @Res() res: Response): Promise<void> {
    this.renderPassword(res, token, await this.account.open(token, ['invitation', 'password-reset']), 200);
  }

  @Post('password/:token')
  async setPassword(@Param('token') token: string, @Body() body: unknown, @Res() res: Response): Promise<void> {
    const password = field(body, 'password');
    const confirm = field(body, 'confirm');
    if (password !== confirm) {
      this.renderPassword(
        res,
        token,
        await this.account.open(token, ['invitation', 'password-reset']),
        400,
        'The two passwords are not the same.',
      );
      return;
    }
    try {
      const done = await this.account.setPassword(token, password);
      send(
        res,
        200,
        'Password set',
        `<h1>Your password is set</h1><p>You can now sign in to <strong>${escapeHtml(done.tenant.displayName)}</strong>${
          done.username ? ` as <strong>${escapeHtml(done.username)}</strong>` : ''
        } from your application.</p>`,
      );
    } catch (err) {
      if (!(err instanceof ProblemError) || err.type !== 'urn:auth-service:problem:invalid-password') throw err;
      this.renderPassword(res, token, await this.account.open(token, ['invitation', 'password-reset']), 400, err.message);
    }
  }

  @Get('verify-email/:token')
  async verifyForm(@Param('token') token: string, @Res() res: Response): Promise<void> {
    const link = await this.account.open(token, ['email-verification']);
    send(
      res,
      200,
      'Verify your email address',
      `<h1>Verify your email address</h1><p>Confirm that <strong>${escapeHtml(link.email ?? '')}</strong> is yours, for <strong>${escapeHtml(link.tenant.displayName)}</strong>.</p>` +
        `<form method="post" action="/account/verify-email/${escapeHtml(encodeURIComponent(token))}"><button type="submit">Confirm my email address</button></form>`,
    );
  }

  @Post('verify-email/:token')
  async verify(@Param('token') token: string, @Res() res: Response): Promise<void> {
    const done = await this.account.verifyEmail(token);
    send(
      res,
      200,
      'Email verified',
      `<h1>Email address verified</h1><p><strong>${escapeHtml(done.email ?? '')}</strong> is verified. You can close this window.</p>`,
    );
  }

  /** "Forgot your password?" from the hosted sign-in form, whose handle says the tenant and the way back. */
  @Get('forgot/:handle')
  async forgotForm(@Param('handle') handle: string, @Res() res: Response): Promise<void> {
    const txn = await this.login.load(handle);
    this.renderForgot(res, handle, txn.tenant.displayName, 200);
  }

  @Post('forgot/:handle')
  async forgot(@Param('handle') handle: string, @Body() body: unknown, @Req() req: Request, @Res() res: Response): Promise<void> {
    const txn = await this.login.load(handle);
    const name = field(body, 'username');
    if (!name.trim()) {
      this.renderForgot(res, handle, txn.tenant.displayName, 400, 'Enter your email address or username.');
      return;
    }
    await this.account.forgot(txn.tenant, name, req.ip ?? 'unknown');
    send(
      res,
      200,
      'Check your email',
      `<h1>Check your email</h1><p role="status">If an account of <strong>${escapeHtml(txn.tenant.displayName)}</strong> matches what you typed and has an email address, we have sent it a link to choose a new password. The link works once, for a short time.</p>` +
        `<p><a href="/login/native/${escapeHtml(encodeURIComponent(handle))}">Back to sign in</a></p>`,
    );
  }

  private renderPassword(res: Response, token: string, link: OpenedLink, status: number, error?: string): void {
    const invitation = link.purpose === 'invitation';
    const title = invitation ? 'Set your password' : 'Choose a new password';
    send(
      res,
      status,
      title,
      `<h1>${title}</h1><p>for <strong>${escapeHtml(link.tenant.displayName)}</strong>${
        link.username ? `, account <strong>${escapeHtml(link.username)}</strong>` : ''
      }</p>` +
        errorLine(error) +
        `<form method="post" action="/account/password/${escapeHtml(encodeURIComponent(token))}">` +
        // The username lets a password manager store the new password under the right account.
        `<input type="hidden" name="username" autocomplete="username" value="${escapeHtml(link.username ?? '')}">` +
        `<label for="password">New password</label><input id="password" name="password" type="password" autocomplete="new-password" required minlength="8" maxlength="256"${error ? ' aria-describedby="form-error" aria-invalid="true"' : ''}>` +
        `<label for="confirm">New password, again</label><input id="confirm" name="confirm" type="password" autocomplete="new-password" required maxlength="256">` +
        `<button type="submit">${invitation ? 'Set password' : 'Change password'}</button></form>`,
    );
  }

  private renderForgot(res: Response, handle: string, tenantName: string, status: number, error?: string): void {
    const path = `/account/forgot/${encodeURIComponent(handle)}`;
    send(
      res,
      status,
      'Forgot your password?',
      `<h1>Forgot your password?</h1><p>for <strong>${escapeHtml(tenantName)}</strong>. We will email you a link to choose a new one.</p>` +
        errorLine(error) +
        `<form method="post" action="${escapeHtml(path)}">` +
        `<label for="username">Email or username</label><input id="username" name="username" autocomplete="username" required maxlength="320">` +
        `<button type="submit">Send the link</button></form>` +
        `<p><a href="/login/native/${escapeHtml(encodeURIComponent(handle))}">Back to sign in</a></p>`,
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
