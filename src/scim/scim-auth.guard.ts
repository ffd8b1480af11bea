import {
  type CallHandler,
  type CanActivate,
  type ExecutionContext,
  Injectable,
  type NestInterceptor,
  createParamDecorator,
} from '@nestjs/common';
import type { Request, Response } from 'express';
import type { Observable } from 'rxjs';
import { ScimError } from '../common/errors.js';
import { type ScimPrincipal, ScimTokensService } from './scim-tokens.service.js';
import { RateLimiter } from '../rate-limit/rate-limiter.js';
import { BEARER } from '../tokens/bearer-token.js';
import { AuthorizationHeaderBearer, authenticate } from '../tokens/bearer-strategy.js';
import { PassportStrategy } from '@nestjs/passport';

type ScimRequest = Request & { scim?: ScimPrincipal };

/** A SCIM 401 with the challenge it is sent with (RFC 6750 §3, realm "scim"). */
class ScimUnauthenticated extends ScimError {
  constructor(
    readonly challenge: string,
    detail: string,
  ) {
    super(401, detail);
  }
}

const missingToken = () =>
  new ScimUnauthenticated('Bearer realm="scim"', 'A SCIM bearer token is required (Authorization: Bearer <token>).');

/**
 * The SCIM bearer token as a Passport strategy: the header only, with the same Bearer syntax as
 * every other route (bearer-token.ts); a token in the query string or body (RFC 6750 §2.2/2.3) is
 * not accepted, because URLs end up in access logs.
 */
class ScimBearer extends AuthorizationHeaderBearer<ScimPrincipal> {
  protected override tokenOf(req: Request): string {
    const m = BEARER.exec(req.headers.authorization ?? '');
    if (!m?.[1]) throw missingToken();
    return m[1];
  }

  protected override rejected(): Error {
    return new ScimUnauthenticated('Bearer realm="scim", error="invalid_token"', 'The bearer token is invalid or has been revoked.');
  }
}

/** Passport's face of ScimTokensService.verify: the token alone decides the tenant. */
@Injectable()
export class ScimTokenStrategy extends PassportStrategy(ScimBearer, 'scim-token') {
  constructor(private readonly tokens: ScimTokensService) {
    super();
  }

  async validate(token: string): Promise<ScimPrincipal | false> {
    return (await this.tokens.verify(token)) ?? false;
  }
}

/**
 * Authenticates SCIM requests through ScimTokenStrategy (run per application instance, ADR 0017)
 * and applies the tenant's SCIM rate limit (429 + Retry-After).
 */
@Injectable()
export class ScimAuthGuard implements CanActivate {
  constructor(
    private readonly strategy: ScimTokenStrategy,
    private readonly limiter: RateLimiter,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const req = http.getRequest<ScimRequest>();
    const res = http.getResponse<Response>();
    let principal: ScimPrincipal;
    try {
      principal = await authenticate<ScimPrincipal>(this.strategy, req, res, missingToken);
    } catch (err) {
      if (err instanceof ScimUnauthenticated) res.setHeader('WWW-Authenticate', err.challenge);
      throw err;
    }
    const rate = await this.limiter.hit(`scim:${principal.tenantId}`, principal.settings.rateLimitPerMinute);
    if (!rate.allowed)
      throw new ScimError(429, `Too many SCIM requests for this tenant; retry after ${rate.retryAfter} s.`, undefined, {
        retryAfter: rate.retryAfter,
      });
    req.scim = principal;
    return true;
  }
}

/** The authenticated SCIM caller (set by ScimAuthGuard). */
export const Principal = createParamDecorator((_: unknown, ctx: ExecutionContext): ScimPrincipal => {
  const p = ctx.switchToHttp().getRequest<ScimRequest>().scim;
  if (!p) throw new ScimError(401, 'Not authenticated.');
  return p;
});

/** Every SCIM answer is `application/scim+json` (RFC 7644 §3.1) and never cached by intermediaries. */
@Injectable()
export class ScimResponseInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const res = context.switchToHttp().getResponse<Response>();
    res.setHeader('Content-Type', 'application/scim+json; charset=utf-8');
    res.setHeader('Cache-Control', 'no-store');
    return next.handle();
  }
}
