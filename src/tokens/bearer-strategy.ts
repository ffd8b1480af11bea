import passport from 'passport';
import type { Request, Response } from 'express';
import { BearerTokenError } from '../common/errors.js';
import { bearerTokenOf } from './bearer-token.js';

export type VerifyBearer<U> = (token: string, done: (err: unknown, user?: U | false) => void) => void;

/**
 * A Passport strategy that reads the Bearer token from the Authorization header and nowhere else
 * (passport-http-bearer also reads `access_token` from the query string and the body; see
 * bearer-token.ts for why those are never read). Subclasses say how a missing or malformed header
 * (`tokenOf`) and a token the verify callback refused (`rejected`) are answered on their routes.
 */
export class AuthorizationHeaderBearer<U> extends passport.Strategy {
  constructor(private readonly verifyToken: VerifyBearer<U>) {
    super();
  }

  /** The token of the request; throws the route family's error when there is none. */
  protected tokenOf(req: Request): string {
    return bearerTokenOf(req.headers.authorization);
  }

  /** The error for a token the verify callback did not accept. */
  protected rejected(): Error {
    return new BearerTokenError('invalid_token', 'The access token is invalid or expired.');
  }

  override authenticate(req: Request): void {
    let token: string;
    try {
      token = this.tokenOf(req);
    } catch (err) {
      this.error(err);
      return;
    }
    this.verifyToken(token, (err, user) => {
      if (err) this.error(err);
      else if (user) this.success(user);
      else this.error(this.rejected());
    });
  }
}

/**
 * Runs a strategy through Passport. It is handed to passport.authenticate directly (as a
 * per-request object whose prototype is this application's instance) rather than looked up by
 * name in Passport's process-wide registry, so two service instances in one process (the
 * multi-replica tests) never authenticate with each other's strategy (ADR 0017).
 */
export function authenticate<U>(strategy: passport.Strategy, req: Request, res: Response, missing: () => Error): Promise<U> {
  const asError = (err: unknown): Error => (err instanceof Error ? err : new Error('passport failed without an error'));
  return new Promise<U>((resolve, reject) => {
    // Passport augments the strategy it is given with this request's success/fail/error callbacks.
    // Given an instance it does so on the instance itself (only registry look-ups get a fresh
    // Object.create), so concurrent requests would answer each other: one per-request object each.
    const middleware = passport.authenticate(
      Object.create(strategy) as passport.Strategy,
      { session: false },
      (err: unknown, principal: U | false) => {
        if (err) reject(asError(err));
        else if (!principal) reject(missing());
        else resolve(principal);
      },
    ) as (req: Request, res: Response, next: (err?: unknown) => void) => void;
    middleware(req, res, (err?: unknown) => {
      reject(err === undefined ? new Error('passport called next') : asError(err));
    });
  });
}
