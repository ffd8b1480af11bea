import { Inject, Injectable, SetMetadata, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { PassportStrategy } from '@nestjs/passport';
import passport from 'passport';
import { Strategy } from 'passport-http-bearer';
import type { Request } from 'express';
import { AppConfig } from '../config/app-config.js';
import { ProblemError, problemType } from '../common/errors.js';
import { TokenIssuerService } from '../tokens/token-issuer.service.js';
import { TenantsService } from '../tenants/tenants.service.js';

/** Who is calling the admin API: recorded as the actor of every audit event. */
export interface AdminPrincipal {
  actor: string;
  tenantId: string;
  roles: string[];
  scopes: string[];
}

export const ADMIN_ROLE = 'SUPER_ADMIN';
export const ADMIN_SCOPE = 'admin';

/**
 * Admin bearer tokens are platform access tokens, issued by this service, from the operator
 * tenant only: a customer's IdP may map its own users to SUPER_ADMIN inside its tenant, and that
 * must never make them operators of the platform. A user needs the SUPER_ADMIN role; a machine
 * client (client_credentials) needs the `admin` scope.
 */
@Injectable()
export class AdminBearerStrategy extends PassportStrategy(Strategy, 'admin-bearer') {
  constructor(
    private readonly issuer: TokenIssuerService,
    private readonly tenants: TenantsService,
    @Inject(AppConfig) private readonly config: AppConfig,
  ) {
    super();
  }

  async validate(token: string): Promise<AdminPrincipal> {
    let claims;
    try {
      claims = await this.issuer.verifyAccessToken(token);
    } catch {
      throw new ProblemError(401, 'Unauthorized', 'A valid platform access token is required.', problemType('unauthenticated'));
    }
    const operator = await this.tenants.findActiveBySlug(this.config.OPERATOR_TENANT);
    const scopes = (claims.scope ?? '').split(' ').filter(Boolean);
    const roles = Array.isArray(claims.roles) ? claims.roles : [];
    const isMachine = claims.sub.startsWith('client:');
    const allowed = operator !== undefined && claims.tid === operator.id && (isMachine ? scopes.includes(ADMIN_SCOPE) : roles.includes(ADMIN_ROLE));
    if (!allowed)
      throw new ProblemError(403, 'Forbidden', `Admin access needs a ${ADMIN_ROLE} user or a machine client with the "${ADMIN_SCOPE}" scope of the operator tenant.`, problemType('forbidden'));
    return { actor: isMachine ? claims.sub : `user:${claims.sub}`, tenantId: claims.tid, roles, scopes };
  }
}

export const PUBLIC_ROUTE = 'auth-service:public-route';
/** Marks a route under an admin controller that deliberately needs no admin token (none today). */
export const PublicRoute = () => SetMetadata(PUBLIC_ROUTE, true);

/**
 * Runs this application's AdminBearerStrategy instance through Passport. The instance is handed to
 * passport.authenticate directly rather than looked up by name in Passport's process-wide registry,
 * so two service instances in one process (the multi-replica tests) never authenticate with each
 * other's strategy.
 */
@Injectable()
export class AdminGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly strategy: AdminBearerStrategy,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (this.reflector.get<boolean>(PUBLIC_ROUTE, context.getHandler())) return true;
    const http = context.switchToHttp();
    const req = http.getRequest<Request>();
    const user = await new Promise<AdminPrincipal>((resolve, reject) => {
      passport.authenticate(this.strategy as unknown as passport.Strategy, { session: false }, (err: unknown, principal: AdminPrincipal | false) => {
        if (err) reject(err);
        else if (!principal) reject(new ProblemError(401, 'Unauthorized', 'A Bearer platform access token is required.', problemType('unauthenticated')));
        else resolve(principal);
      })(req, http.getResponse(), (err?: unknown) => reject(err ?? new Error('passport called next')));
    });
    req.user = user;
    return true;
  }
}

export const principalOf = (req: Request): AdminPrincipal => req.user as AdminPrincipal;
