import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import type { Request, Response } from 'express';
import { BearerTokenError } from '../common/errors.js';
import { AuthorizationHeaderBearer, authenticate as runStrategy } from '../tokens/bearer-strategy.js';
import { AccessTokenVerifier, type AuthenticatedToken } from './access-token.verifier.js';

/** Passport's face of AccessTokenVerifier: `validate` is the one check. */
@Injectable()
export class AccessTokenStrategy extends PassportStrategy(AuthorizationHeaderBearer<AuthenticatedToken>, 'platform-access-token') {
  constructor(private readonly verifier: AccessTokenVerifier) {
    super();
  }

  validate(token: string): Promise<AuthenticatedToken> {
    return this.verifier.verify(token);
  }
}

/** The platform access token of a request, through its Passport strategy. */
export function authenticate(strategy: AccessTokenStrategy, req: Request, res: Response): Promise<AuthenticatedToken> {
  return runStrategy<AuthenticatedToken>(
    strategy,
    req,
    res,
    () => new BearerTokenError(undefined, 'A Bearer platform access token is required in the Authorization header.'),
  );
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
