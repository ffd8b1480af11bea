import { Body, Controller, Get, Inject, Param, Post, Query, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { AppConfig } from '../config/app-config.js';
import { constantEquals, sha256 } from '../crypto/random.js';
import { HTML_SECURITY_HEADERS, escapeHtml, page, safeHtml, setPageHeaders, strong, th, tt, type PageContext } from '../common/html.js';
import { pageMessageOf } from '../common/page-text.js';
import { PageContextService } from './page-context.service.js';
import { OAuthError, ProblemError, RateLimitedError } from '../common/errors.js';
import QRCode from 'qrcode';
import { LoginService, SECOND_STEP_ACTIONS, type LoginTransaction, type NativeStep, type SecondStepAction } from './login.service.js';
import { InvalidPasskeyError } from '../identity/native/passkeys.service.js';
import { PASSKEYS_SCRIPT, PASSKEYS_SCRIPT_PATH } from './passkeys-script.js';
import { InvalidCredentialsError } from '../identity/native/native.adapter.js';
import { InvalidSecondFactorError } from '../identity/native/totp.service.js';
import { IDP_KINDS, type CallbackInput } from '../identity/port/identity-provider.port.js';
import { RateLimiter } from '../rate-limit/rate-limiter.js';

const CSRF_COOKIE = 'auth_login_csrf';

/** The pages that run a passkey ceremony load one script, from this origin. */
const PASSKEY_PAGE_HEADERS = {
  ...HTML_SECURITY_HEADERS,
  'Content-Security-Policy': `${HTML_SECURITY_HEADERS['Content-Security-Policy']}; script-src 'self'`,
};

/**
 * A passkey form, hidden until the script finds WebAuthn in the browser: it carries the ceremony's
 * options and posts the credential. `extra` are more fields (a name for a new passkey).
 */
function passkeyForm(o: {
  action: string;
  csrf: string;
  kind: 'create' | 'get';
  options: unknown;
  step?: string;
  label: string;
  extra?: string;
  ctx: PageContext;
}): string {
  return (
    `<section data-passkey hidden><form method="post" action="${escapeHtml(o.action)}" data-webauthn="${o.kind}" ` +
    `data-options="${escapeHtml(JSON.stringify(o.options))}" data-cancelled="${th(o.ctx.lang, 'passkey.cancelled')}" ` +
    `data-failed="${th(o.ctx.lang, 'passkey.failed')}">` +
    `<input type="hidden" name="csrf" value="${escapeHtml(o.csrf)}">` +
    (o.step ? `<input type="hidden" name="action" value="${o.step}">` : '') +
    `<input type="hidden" name="credential" value="">${o.extra ?? ''}<button type="submit">${o.label}</button></form>` +
    `<p class="error" role="alert" data-passkey-status></p></section>`
  );
}

const stringsOf = (o: unknown): Record<string, string | undefined> =>
  Object.fromEntries(Object.entries((o ?? {}) as Record<string, unknown>).filter(([, v]) => typeof v === 'string')) as Record<
    string,
    string | undefined
  >;

/** Browser-facing pages: the hosted (native) login form and upstream IdP callbacks. */
@ApiExcludeController()
@Controller('login')
export class LoginController {
  constructor(
    private readonly login: LoginService,
    private readonly limiter: RateLimiter,
    private readonly pages: PageContextService,
    @Inject(AppConfig) private readonly config: AppConfig,
  ) {}

  @Get('native/:handle')
  async form(@Param('handle') handle: string, @Req() req: Request, @Res() res: Response): Promise<void> {
    const { txn, csrf } = await this.pages.opening(req, 'lt', handle, () => this.login.loadWithCsrf(handle));
    const ctx = await this.pages.forLogin(req, txn);
    const step = await this.login.currentStep(txn);
    if (step) return this.renderStep(res, ctx, txn, csrf, step, 200);
    await this.renderForm(res, ctx, txn, csrf, 200);
  }

  /** The passkey script of the hosted pages (content-addressed, so cached for a year). */
  @Get('assets/:file')
  asset(@Param('file') file: string, @Res() res: Response): void {
    if (`/login/assets/${file}` !== PASSKEYS_SCRIPT_PATH) throw new ProblemError({ status: 404, title: 'Not found' });
    res.set({
      'Content-Type': 'text/javascript; charset=utf-8',
      'Cache-Control': 'public, max-age=31536000, immutable',
      'X-Content-Type-Options': 'nosniff',
      'Cross-Origin-Resource-Policy': 'same-origin',
    });
    res.status(200).send(PASSKEYS_SCRIPT);
  }

  /** A password-less sign-in: the hosted form's passkey credential. */
  @Post('native/:handle/passkey')
  async passkey(@Param('handle') handle: string, @Body() body: unknown, @Req() req: Request, @Res() res: Response): Promise<void> {
    const txn = await this.pages.opening(req, 'lt', handle, () => this.login.load(handle));
    const ctx = await this.pages.forLogin(req, txn);
    const form = stringsOf(body);
    await this.guardForm(txn, form, req);
    try {
      await this.sendStep(res, ctx, txn, await this.login.submitPasskey(txn, form['credential'] ?? ''));
    } catch (err) {
      if (await this.abortedBy(err, res, txn)) return;
      if (!(err instanceof InvalidPasskeyError)) throw err;
      await this.renderForm(res, ctx, txn, await this.login.issueCsrf(txn), 401, pageMessageOf(err, ctx.lang));
    }
  }

  @Post('native/:handle')
  async submit(@Param('handle') handle: string, @Body() body: unknown, @Req() req: Request, @Res() res: Response): Promise<void> {
    const txn = await this.pages.opening(req, 'lt', handle, () => this.login.load(handle));
    const ctx = await this.pages.forLogin(req, txn);
    const form = stringsOf(body);
    const ip = await this.guardForm(txn, form, req);
    try {
      const step = await this.login.submitPassword(txn, { method: 'POST', query: {}, body: form, clientIp: ip });
      await this.sendStep(res, ctx, txn, step);
    } catch (err) {
      if (await this.abortedBy(err, res, txn)) return;
      if (!(err instanceof InvalidCredentialsError)) throw err;
      const csrf = await this.login.issueCsrf(txn);
      await this.renderForm(res, ctx, txn, csrf, 401, pageMessageOf(err, ctx.lang), form['username']);
    }
  }

  /** The second step of a native login: a TOTP or recovery code, enrolment, the recovery codes. */
  @Post('native/:handle/second-step')
  async secondStep(@Param('handle') handle: string, @Body() body: unknown, @Req() req: Request, @Res() res: Response): Promise<void> {
    const txn = await this.pages.opening(req, 'lt', handle, () => this.login.load(handle));
    const ctx = await this.pages.forLogin(req, txn);
    const form = stringsOf(body);
    await this.guardForm(txn, form, req);
    const action = form['action'] as SecondStepAction;
    if (!SECOND_STEP_ACTIONS.includes(action)) throw new ProblemError({ type: 'login-step', detail: 'Unknown sign-in step.' });
    try {
      const step = await this.login.submitSecondStep(
        txn,
        action,
        (form['code'] ?? '').slice(0, 64),
        form['credential'] ?? '',
        (form['name'] ?? '').slice(0, 100),
      );
      await this.sendStep(res, ctx, txn, step);
    } catch (err) {
      if (await this.abortedBy(err, res, txn)) return;
      if (!(err instanceof InvalidSecondFactorError) && !(err instanceof InvalidPasskeyError)) throw err;
      const step = await this.login.currentStep(txn);
      if (!step) throw err;
      await this.renderStep(res, ctx, txn, await this.login.issueCsrf(txn), step, 401, pageMessageOf(err, ctx.lang));
    }
  }

  private async sendStep(res: Response, ctx: PageContext, txn: LoginTransaction, step: NativeStep): Promise<void> {
    if (step.kind === 'redirect') {
      res.clearCookie(CSRF_COOKIE, { path: '/login/' });
      res.redirect(302, step.url);
      return;
    }
    await this.renderStep(res, ctx, txn, await this.login.issueCsrf(txn), step, 200);
  }

  /** CSRF (double submit, bound to the transaction) and the login rate limits; returns the client IP. */
  private async guardForm(txn: LoginTransaction, form: Record<string, string | undefined>, req: Request): Promise<string> {
    const cookie = (req.cookies as Record<string, string> | undefined)?.[CSRF_COOKIE];
    const posted = form['csrf'] ?? '';
    // Double submit, bound to this transaction: the form field, the cookie and the stored hash must agree.
    if (!cookie || !txn.csrfHash || !constantEquals(posted, cookie) || !constantEquals(sha256(posted), txn.csrfHash))
      throw new ProblemError({ type: 'csrf', detail: 'The sign-in form has expired. Reload the page and try again.' });
    const ip = req.ip ?? 'unknown';
    const perIp = { bucket: `login:${ip}`, limit: this.config.RATE_LIMIT_LOGIN_PER_MINUTE };
    const limit = await this.limiter.check([
      perIp,
      { bucket: `login-tenant:${txn.tenant.id}`, limit: this.config.RATE_LIMIT_LOGIN_PER_TENANT_PER_MINUTE },
    ]);
    if (!limit.allowed)
      throw new RateLimitedError(
        limit.retryAfter,
        limit.refusedBy === perIp ? 'sign-in attempts from this network' : 'sign-in attempts for this organisation',
      );
    return ip;
  }

  /** A second-step page; the enrolment page alone allows `data:` images (its QR code). */
  private async renderStep(
    res: Response,
    ctx: PageContext,
    txn: LoginTransaction,
    csrf: string,
    step: Exclude<NativeStep, { kind: 'redirect' }>,
    status: number,
    error?: string,
  ): Promise<void> {
    this.setCsrfCookie(res, csrf);
    const action = `/login/native/${encodeURIComponent(txn.handle)}/second-step`;
    const form = (inner: string, act: string, label: string) =>
      `<form method="post" action="${escapeHtml(action)}"><input type="hidden" name="csrf" value="${escapeHtml(csrf)}">` +
      `<input type="hidden" name="action" value="${act}">${inner}<button type="submit">${label}</button></form>`;
    const t = (key: Parameters<typeof th>[1]) => th(ctx.lang, key);
    const codeInput = (label: string) =>
      `<label for="code">${label}</label><input id="code" name="code" autocomplete="one-time-code" required>`;
    const alert = error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : '';
    let body = '';
    let qr: string;
    let headers: Record<string, string> = { ...HTML_SECURITY_HEADERS };
    let title = tt(ctx.lang, 'mfa.title');
    switch (step.kind) {
      case 'verify':
        body = `<h1>${t('mfa.title')}</h1>${alert}`;
        if (step.passkey) {
          headers = { ...PASSKEY_PAGE_HEADERS };
          body += passkeyForm({ action, csrf, kind: 'get', options: step.passkey, step: 'passkey', label: t('mfa.usePasskey'), ctx });
        }
        if (step.totp) body += `<p>${t('mfa.enterCode')}</p>` + form(codeInput(t('mfa.code')), 'verify', t('mfa.verify'));
        else if (!step.passkey) body += `<p>${t('mfa.cannotContinue')}</p>`;
        else body += `<noscript><p>${t('mfa.passkeyNeedsScript')}</p></noscript>`;
        break;
      case 'passkey-offer':
        title = tt(ctx.lang, 'passkeyOffer.title');
        headers = { ...PASSKEY_PAGE_HEADERS };
        body =
          `<h1>${t('passkeyOffer.heading')}</h1>${alert}<p>${t('passkeyOffer.lead')}</p>` +
          passkeyForm({
            action,
            csrf,
            kind: 'create',
            options: step.options,
            step: 'passkey-register',
            label: t('passkeyOffer.add'),
            extra: `<label for="passkey-name">${t('passkeyOffer.name')}</label><input id="passkey-name" name="name" maxlength="100" autocomplete="off">`,
            ctx,
          }) +
          form('', 'passkey-skip', t('passkeyOffer.notNow'));
        break;
      case 'offer':
        body =
          `<h1>${t('mfa.offerHeading')}</h1>${alert}<p>${t('mfa.offerLead')}</p>` +
          form('', 'start', t('mfa.offerStart')) +
          form('', 'skip', t('mfa.skip'));
        break;
      case 'enrol':
        // No external QR service: the image is made here, and only this page's CSP admits data: images.
        qr = await QRCode.toDataURL(step.enrolment.uri, { margin: 1, width: 200 });
        headers['Content-Security-Policy'] = `${HTML_SECURITY_HEADERS['Content-Security-Policy']}; img-src data:`;
        body =
          `<h1>${t('mfa.enrolHeading')}</h1>${alert}<p>${t('mfa.enrolScan')}</p>` +
          `<img alt="${t('mfa.enrolQrAlt')}" width="200" height="200" src="${escapeHtml(qr)}">` +
          `<p>${th(ctx.lang, 'mfa.enrolManual', { key: safeHtml(`<code>${escapeHtml(step.enrolment.secret)}</code>`) })}</p>` +
          form(codeInput(t('mfa.enrolCode')), 'confirm', t('mfa.enrolConfirm')) +
          (step.optional ? form('', 'skip', t('mfa.skip')) : '');
        break;
      case 'recovery-codes':
        body =
          `<h1>${t('mfa.recoveryHeading')}</h1><p>${t('mfa.recoveryLead')}</p>` +
          `<ul>${step.codes.map((c) => `<li><code>${escapeHtml(c)}</code></li>`).join('')}</ul>` +
          form('', 'continue', t('mfa.recoveryContinue'));
        break;
    }
    if (headers !== HTML_SECURITY_HEADERS && headers['Content-Security-Policy']?.includes('script-src')) body += this.passkeyScript();
    setPageHeaders(res, ctx, headers);
    res
      .status(status)
      .type('html')
      .send(page(title, body, ctx));
  }

  private setCsrfCookie(res: Response, csrf: string): void {
    res.cookie(CSRF_COOKIE, csrf, {
      httpOnly: true,
      sameSite: 'lax',
      secure: this.config.issuer.startsWith('https://'),
      path: '/login/',
      maxAge: this.config.LOGIN_TRANSACTION_TTL_SECONDS * 1000,
    });
  }

  /** End of an IT admin's test login through a draft binding: nothing was issued. */
  @Get('test-complete')
  async testComplete(
    @Query('outcome') outcome: string | undefined,
    @Query('error') error: string | undefined,
    @Req() req: Request,
    @Res() res: Response,
  ): Promise<void> {
    // No transaction is left to name a tenant: the language is the browser's.
    const ctx = await this.pages.resolve(req);
    setPageHeaders(res, ctx);
    const ok = outcome === 'success';
    res
      .status(ok ? 200 : 400)
      .type('html')
      .send(
        ok
          ? page(
              tt(ctx.lang, 'testLogin.okTitle'),
              `<h1>${th(ctx.lang, 'testLogin.okTitle')}</h1><p>${th(ctx.lang, 'testLogin.okText')}</p>`,
              ctx,
            )
          : page(
              tt(ctx.lang, 'testLogin.failTitle'),
              `<h1>${th(ctx.lang, 'testLogin.failTitle')}</h1><p class="error">${th(ctx.lang, 'testLogin.failText', {
                error: typeof error === 'string' ? error : tt(ctx.lang, 'testLogin.unknownError'),
              })}</p><p>${th(ctx.lang, 'testLogin.failHint')}</p>`,
              ctx,
            ),
      );
  }

  /** Where upstream IdPs (OIDC, SAML, Keycloak) send the browser back. */
  @Get('callback/:kind')
  async callbackGet(@Param('kind') kind: string, @Query() query: unknown, @Req() req: Request, @Res() res: Response): Promise<void> {
    await this.callback(kind, { method: 'GET', query: stringsOf(query), body: {}, clientIp: req.ip ?? 'unknown' }, req, res);
  }

  @Post('callback/:kind')
  async callbackPost(
    @Param('kind') kind: string,
    @Body() body: unknown,
    @Query() query: unknown,
    @Req() req: Request,
    @Res() res: Response,
  ): Promise<void> {
    await this.callback(kind, { method: 'POST', query: stringsOf(query), body: stringsOf(body), clientIp: req.ip ?? 'unknown' }, req, res);
  }

  private async callback(kind: string, input: CallbackInput, req: Request, res: Response): Promise<void> {
    if (!(IDP_KINDS as readonly string[]).includes(kind) || kind === 'native') throw new ProblemError({ status: 404, title: 'Not found' });
    const handle = input.query['state'] ?? input.body['RelayState'] ?? input.query['RelayState'];
    if (!handle)
      throw new ProblemError({
        type: 'login-expired',
        detail: 'The identity provider returned without a sign-in reference. Start again from the application.',
      });
    const txn = await this.pages.opening(req, 'lt', handle, () => this.login.load(handle));
    // An error page from here on speaks the login's language.
    await this.pages.forLogin(req, txn);
    if (input.query['error']) {
      const cancelled = input.query['error'] === 'access_denied';
      res.redirect(
        302,
        await this.login.abort(
          txn,
          'access_denied',
          cancelled ? 'The sign-in was cancelled at the identity provider.' : 'The identity provider refused the sign-in.',
        ),
      );
      return;
    }
    try {
      res.redirect(302, await this.login.complete(txn, input));
    } catch (err) {
      // An upstream login that failed (refused, unverifiable, IdP unreachable) ends at the client
      // with an OAuth error, as RFC 6749 §4.1.2.1 has it; other errors render the error page.
      if (!(await this.abortedBy(err, res, txn))) throw err;
    }
  }

  /**
   * A login that cannot finish for another reason than what the person typed (a binding retired
   * meanwhile, an upstream refusal) ends at the client with an OAuth error (RFC 6749 §4.1.2.1).
   * True when `err` was such an error and the browser is on its way back.
   */
  private async abortedBy(err: unknown, res: Response, txn: LoginTransaction): Promise<boolean> {
    if (!(err instanceof OAuthError)) return false;
    res.redirect(302, await this.login.abort(txn, err.error, err.description));
    return true;
  }

  private passkeyScript(): string {
    return `<script src="${PASSKEYS_SCRIPT_PATH}" defer></script>`;
  }

  private async renderForm(
    res: Response,
    ctx: PageContext,
    txn: LoginTransaction,
    csrf: string,
    status: number,
    error?: string,
    username?: string,
  ): Promise<void> {
    const passkeyOptions = await this.login.passkeySignInOptions(txn);
    res.cookie(CSRF_COOKIE, csrf, {
      httpOnly: true,
      sameSite: 'lax',
      secure: this.config.issuer.startsWith('https://'),
      path: '/login/',
      maxAge: this.config.LOGIN_TRANSACTION_TTL_SECONDS * 1000,
    });
    setPageHeaders(res, ctx, passkeyOptions ? PASSKEY_PAGE_HEADERS : HTML_SECURITY_HEADERS);
    const action = `/login/native/${encodeURIComponent(txn.handle)}`;
    const t = (key: Parameters<typeof th>[1]) => th(ctx.lang, key);
    const html = page(
      tt(ctx.lang, 'signIn.title'),
      `<h1>${t('signIn.title')}</h1><p>${th(ctx.lang, 'signIn.to', { tenant: strong(ctx.brand?.displayName ?? txn.tenant.displayName) })}</p>` +
        (error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : '') +
        `<form method="post" action="${escapeHtml(action)}">` +
        `<input type="hidden" name="csrf" value="${escapeHtml(csrf)}">` +
        `<label for="username">${t('signIn.username')}</label><input id="username" name="username" autocomplete="username" required value="${escapeHtml(username ?? '')}">` +
        `<label for="password">${t('signIn.password')}</label><input id="password" name="password" type="password" autocomplete="current-password" required>` +
        `<button type="submit">${t('signIn.submit')}</button></form>` +
        `<p><a href="/account/forgot/${escapeHtml(encodeURIComponent(txn.handle))}">${t('signIn.forgot')}</a></p>` +
        (passkeyOptions
          ? passkeyForm({ action: `${action}/passkey`, csrf, kind: 'get', options: passkeyOptions, label: t('signIn.passkey'), ctx }) +
            this.passkeyScript()
          : ''),
      ctx,
    );
    res.status(status).type('html').send(html);
  }
}
