import { ArgumentsHost, Catch, HttpException, Logger, type ExceptionFilter } from '@nestjs/common';
import type { Request, Response } from 'express';
import {
  BearerTokenError,
  DependencyUnavailableError,
  DomainError,
  InvalidCharactersError,
  OAuthError,
  ProblemError,
  RateLimitedError,
  ScimError,
  unavailableReason,
} from './errors.js';
import { notedPageContext, renderErrorPage, setPageHeaders, tt, type PageContext } from './html.js';
import { pageMessageOf } from './page-text.js';
import { negotiateLocale } from '../i18n/index.js';

type Family = 'oauth' | 'scim' | 'html' | 'problem';

/**
 * OAuth routes a browser is sent to (by the application, or back from an upstream IdP): their
 * errors are a page, unless the caller asks for JSON, which then gets the OAuth error JSON (the
 * family's machine format, what RFC 6749 clients parse) rather than problem+json.
 */
const BROWSER_OAUTH_ROUTES = new Set(['/oauth2/authorize', '/oauth2/logout', '/oauth2/logout/return']);

function familyOf(req: Request): Family {
  const path = req.path;
  if (req.method === 'GET' && BROWSER_OAUTH_ROUTES.has(path)) return req.accepts(['html', 'json']) === 'json' ? 'oauth' : 'html';
  if (path.startsWith('/oauth2/')) return 'oauth';
  if (path.startsWith('/scim/')) return 'scim';
  if (path.startsWith('/login/') || path.startsWith('/saml/')) return 'html';
  // The account pages (links from mails, forgot password); /account/v1/ is the JSON API beside them.
  if (path.startsWith('/account/') && !path.startsWith('/account/v1/')) return 'html';
  return 'problem';
}

/**
 * The error page's link back: a target the error carries (an application origin the service
 * registered), else the page the browser came from (Referer), which is where its Back button goes
 * anyway — a link there sends nobody anywhere new. Only http(s); never the failing URL itself.
 */
function safeReturnLink(error: DomainError, req: Request): string | undefined {
  for (const candidate of [error.returnTo, req.get('referer')]) {
    if (!candidate) continue;
    let url: URL;
    try {
      url = new URL(candidate);
    } catch {
      continue;
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') continue;
    if (url.username || url.password) continue;
    if (url.pathname === req.path && url.host === req.get('host')) continue;
    return url.href;
  }
  return undefined;
}

/**
 * The language (and brand) of an error page: what the page's controller resolved, when it got that
 * far (the login transaction's ui_locales, the tenant's default); else the request's own
 * `ui_locales` (the authorization request) and Accept-Language.
 */
function pageContextOf(req: Request): PageContext {
  const noted = notedPageContext(req);
  if (noted) return noted;
  const ui = (req.query as Record<string, unknown> | undefined)?.['ui_locales'];
  return { lang: negotiateLocale({ uiLocales: typeof ui === 'string' ? ui : undefined, acceptLanguage: req.get('accept-language') }) };
}

interface HttpishError {
  status?: number;
  statusCode?: number;
  type?: string;
  expose?: boolean;
}

/** body-parser and other express middleware throw plain errors carrying a status and a type. */
function fromMiddleware(err: unknown): ProblemError | undefined {
  if (!(err instanceof Error)) return undefined;
  const e = err as Error & HttpishError;
  const status = e.status ?? e.statusCode;
  if (typeof status !== 'number' || status < 400 || status >= 500) return undefined;
  if (e.type === 'entity.too.large')
    return new ProblemError({ type: 'body-too-large', detail: 'The request body exceeds the size limit.' });
  if (e.type === 'entity.parse.failed')
    return new ProblemError({ type: 'malformed-body', detail: 'The request body could not be parsed.' });
  if (e.type === 'encoding.unsupported' || e.type === 'charset.unsupported')
    return new ProblemError({ type: 'unsupported-encoding', detail: e.message });
  return new ProblemError({ status, title: e.expose === false ? 'Bad request' : e.message });
}

function fromHttpException(err: HttpException): ProblemError {
  const fromCause = fromMiddleware(err.cause);
  if (fromCause) return fromCause;
  const status = err.getStatus();
  if (status === 400 && err.cause instanceof SyntaxError)
    return new ProblemError({ type: 'malformed-body', detail: 'The request body could not be parsed.' });
  const body = err.getResponse();
  let detail: string | undefined;
  if (typeof body === 'object' && body !== null && 'message' in body) {
    const m = body.message;
    detail = Array.isArray(m) ? m.join('; ') : String(m);
  } else if (typeof body === 'string') detail = body;
  const title =
    status === 404
      ? 'Not found'
      : status === 401
        ? 'Unauthorized'
        : status === 403
          ? 'Forbidden'
          : status === 400
            ? 'Bad request'
            : err.name;
  return status === 400 ? new ProblemError({ type: 'validation', title, detail }) : new ProblemError({ status, title, detail });
}

const OAUTH_FOR_STATUS = (status: number): OAuthError['error'] =>
  status === 429
    ? 'slow_down'
    : status === 503 || status === 502
      ? 'temporarily_unavailable'
      : status >= 500
        ? 'server_error'
        : status === 401
          ? 'invalid_client'
          : 'invalid_request';

const SCIM_TYPE_FOR_STATUS = (status: number): ScimError['scimType'] => (status === 400 ? 'invalidSyntax' : undefined);

@Catch()
export class DomainErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  catch(exception: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    const req = ctx.getRequest<Request>();
    const res = ctx.getResponse<Response>();
    if (res.headersSent) return;

    let error: DomainError;
    if (exception instanceof DomainError) error = exception;
    else if (exception instanceof HttpException) error = fromHttpException(exception);
    else error = fromMiddleware(exception) ?? new ProblemError({ status: 500, title: 'Internal server error', cause: exception });

    // A dependency outage is expected operational weather: one warn line per request, no stack.
    if (error instanceof DependencyUnavailableError)
      this.logger.warn(
        { status: error.status, dependency: error.extensions['dependency'], reason: unavailableReason(error.cause), path: req.path },
        error.title,
      );
    else if (error.status >= 500) this.logger.error({ err: (error.cause ?? error) as Error, status: error.status }, error.message);
    const retryAfter = (error as { retryAfter?: number }).retryAfter;
    if (retryAfter) res.setHeader('Retry-After', String(retryAfter));
    res.setHeader('Cache-Control', 'no-store');
    if (error instanceof BearerTokenError) res.setHeader('WWW-Authenticate', error.challenge);

    const family = familyOf(req);
    if (family === 'oauth') {
      this.oauth(error, req, res);
      return;
    }
    if (family === 'scim') {
      this.scim(error, res);
      return;
    }
    if (family === 'html' && (BROWSER_OAUTH_ROUTES.has(req.path) || !(req.headers.accept ?? '').includes('application/json'))) {
      const ctx = pageContextOf(req);
      setPageHeaders(res, ctx);
      const title = tt(
        ctx.lang,
        req.path.startsWith('/oauth2/logout')
          ? 'error.title.signOut'
          : req.path.startsWith('/account/')
            ? 'error.title.account'
            : 'error.title.signIn',
      );
      res
        .status(error.status)
        .type('html')
        .send(
          renderErrorPage(
            error.status,
            error.expose ? pageMessageOf(error, ctx.lang) : tt(ctx.lang, 'error.generic'),
            { title, returnTo: safeReturnLink(error, req) },
            ctx,
          ),
        );
      return;
    }
    this.problem(error, req, res);
  }

  private oauth(error: DomainError, req: Request, res: Response): void {
    const oauth =
      error instanceof OAuthError
        ? error
        : error instanceof BearerTokenError
          ? new OAuthError(error.error ?? 'invalid_token', error.description, { status: error.status })
          : new OAuthError(OAUTH_FOR_STATUS(error.status), error.expose ? error.message : 'The server could not process the request.', {
              status: error.status,
            });
    if (oauth.status === 401 && oauth.error === 'invalid_client' && req.headers.authorization?.startsWith('Basic ')) {
      res.setHeader('WWW-Authenticate', 'Basic realm="auth-service"');
    }
    if (oauth.error === 'invalid_token' && !res.getHeader('WWW-Authenticate'))
      res.setHeader('WWW-Authenticate', `Bearer realm="auth-service", error="invalid_token"`);
    res
      .status(oauth.status)
      .json({ error: oauth.error, error_description: error.expose ? oauth.description : 'The server could not process the request.' });
  }

  private scim(error: DomainError, res: Response): void {
    const scim =
      error instanceof ScimError
        ? error
        : new ScimError(
            error.status,
            error.expose ? error.message : 'Internal server error',
            error instanceof InvalidCharactersError ? 'invalidValue' : SCIM_TYPE_FOR_STATUS(error.status),
          );
    res
      .status(scim.status)
      .type('application/scim+json')
      .send(
        JSON.stringify({
          schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'],
          status: String(scim.status),
          ...(scim.scimType ? { scimType: scim.scimType } : {}),
          detail: scim.expose ? scim.detail : 'Internal server error',
        }),
      );
  }

  private problem(error: DomainError, req: Request, res: Response): void {
    const p =
      error instanceof ProblemError
        ? error
        : error instanceof BearerTokenError
          ? new ProblemError({
              type: error.status === 401 ? 'unauthenticated' : 'forbidden',
              status: error.status,
              title: error.status === 401 ? 'Unauthorized' : 'Forbidden',
              detail: error.description,
            })
          : new ProblemError({ status: error.status, title: error.expose ? error.message : 'Internal server error' });
    const body: Record<string, unknown> = {
      type: p.type,
      title: p.title,
      status: p.status,
      ...(p.expose && p.detail ? { detail: p.detail } : {}),
      instance: req.originalUrl.split('?')[0],
      ...(p.expose ? p.extensions : {}),
    };
    if (error instanceof RateLimitedError) body['retry_after'] = error.retryAfter;
    res.status(p.status).type('application/problem+json').send(JSON.stringify(body));
  }
}
