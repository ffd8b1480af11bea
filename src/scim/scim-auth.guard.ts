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

type ScimRequest = Request & { scim?: ScimPrincipal };

/**
 * Authenticates SCIM requests by their bearer token (the token alone decides the tenant) and
 * applies the tenant's SCIM rate limit (429 + Retry-After). Only the Authorization header is read, with
 * the same Bearer syntax as every other route (bearer-token.ts): a token in the query string or body
 * (RFC 6750 §2.2/2.3) is not accepted, because URLs end up in access logs.
 */
@Injectable()
export class ScimAuthGuard implements CanActivate {
  constructor(
    private readonly tokens: ScimTokensService,
    private readonly limiter: RateLimiter,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const req = http.getRequest<ScimRequest>();
    const res = http.getResponse<Response>();
    const m = BEARER.exec(req.headers.authorization ?? '');
    if (!m) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="scim"');
      throw new ScimError(401, 'A SCIM bearer token is required (Authorization: Bearer <token>).');
    }
    const principal = await this.tokens.verify(m[1]!);
    if (!principal) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="scim", error="invalid_token"');
      throw new ScimError(401, 'The bearer token is invalid or has been revoked.');
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
