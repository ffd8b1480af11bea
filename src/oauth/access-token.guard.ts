import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import passport from 'passport';
import type { Request, Response } from 'express';
import { BearerTokenError } from '../common/errors.js';
import { bearerTokenOf } from '../tokens/bearer-token.js';
import { AccessTokenVerifier, type AuthenticatedToken } from './access-token.verifier.js';

type Verify = (token: string, done: (err: unknown, user?: AuthenticatedToken | false) => void) => void;

/**
 * A Passport strategy that reads the Bearer token from the Authorization header and nowhere else
 * (passport-http-bearer also reads `access_token` from the query string and the body; see
 * bearer-token.ts for why those are never read).
 */
class AuthorizationHeaderBearer extends passport.Strategy {
  constructor(private readonly verifyToken: Verify) {
    super();
  }

  override authenticate(req: Request): void {
    let token: string;
    try {
      token = bearerTokenOf(req.headers.authorization);
    } catch (err) {
      this.error(err);
      return;
    }
    this.verifyToken(token, (err, user) => {
      if (err) this.error(err);
      else if (user) this.success(user);
      else this.error(new BearerTokenError('invalid_token', 'The access token is invalid or expired.'));
    });
  }
}

/** Passport's face of AccessTokenVerifier: `validate` is the one check. */
@Injectable()
export class AccessTokenStrategy extends PassportStrategy(AuthorizationHeaderBearer, 'platform-access-token') {
  constructor(private readonly verifier: AccessTokenVerifier) {
    super();
  }

  validate(token: string): Promise<AuthenticatedToken> {
    return this.verifier.verify(token);
  }
}

/**
 * Runs the strategy through Passport. It is handed to passport.authenticate directly (as a
 * per-request object whose prototype is this application's instance) rather than looked up by name in Passport's process-wide registry, so two service
 * instances in one process (the multi-replica tests) never authenticate with each other's strategy.
 */
export function authenticate(strategy: AccessTokenStrategy, req: Request, res: Response): Promise<AuthenticatedToken> {
  return new Promise<AuthenticatedToken>((resolve, reject) => {
    // Passport augments the strategy it is given with this request's success/fail/error callbacks.
    // Given an instance it does so on the instance itself (only registry look-ups get a fresh
    // Object.create), so concurrent requests would answer each other: one per-request object each.
    passport.authenticate(
      Object.create(strategy) as passport.Strategy,
      { session: false },
      (err: unknown, principal: AuthenticatedToken | false) => {
        if (err) reject(err);
        else if (!principal)
          reject(new BearerTokenError(undefined, 'A Bearer platform access token is required in the Authorization header.'));
        else resolve(principal);
      },
    )(req, res, (err?: unknown) => reject(err ?? new Error('passport called next')));
  });
}

/** Guards a route that accepts a platform access token; the handler reads it with `accessTokenOf`. */
@Injectable()
export class AccessTokenGuard implements CanActivate {
  constructor(private readonly strategy: AccessTokenStrategy) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const req = http.getRequest<Request>();
    req.user = await authenticate(this.strategy, req, http.getResponse<Response>());
    return true;
  }
}

export const accessTokenOf = (req: Request): AuthenticatedToken => req.user as AuthenticatedToken;
