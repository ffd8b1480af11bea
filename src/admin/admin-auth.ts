import { Inject, Injectable, SetMetadata, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request, Response } from 'express';
import { AppConfig } from '../config/app-config.js';
import { ProblemError } from '../common/errors.js';
import { isMachineSubject } from '../tokens/token-issuer.service.js';
import { TenantsService } from '../tenants/tenants.service.js';
import { AccessTokenStrategy, authenticate } from '../oauth/access-token.guard.js';
import type { AuthenticatedToken } from '../oauth/access-token.verifier.js';

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
 * Who may call the admin API. Admin bearer tokens are platform access tokens, issued by this
 * service, from the operator tenant only: a customer's IdP may map its own users to SUPER_ADMIN
 * inside its tenant, and that must never make them operators of the platform. A user needs the
 * SUPER_ADMIN role; a machine client (client_credentials) needs the `admin` scope. The token itself
 * (signature, time, liveness of its session, user, tenant and client) is checked by the one
 * access-token check, AccessTokenVerifier, before this runs.
 */
export function adminPrincipal(token: AuthenticatedToken, operatorTenantId: string | undefined): AdminPrincipal {
  const { claims } = token;
  const scopes = (claims.scope ?? '').split(' ').filter(Boolean);
  const roles = Array.isArray(claims.roles) ? claims.roles : [];
  const isMachine = isMachineSubject(claims.sub);
  const allowed =
    operatorTenantId !== undefined &&
    claims.tid === operatorTenantId &&
    (isMachine ? scopes.includes(ADMIN_SCOPE) : roles.includes(ADMIN_ROLE));
  if (!allowed)
    throw new ProblemError({
      type: 'forbidden',
      detail: `Admin access needs a ${ADMIN_ROLE} user or a machine client with the "${ADMIN_SCOPE}" scope of the operator tenant.`,
    });
  return { actor: isMachine ? claims.sub : `user:${claims.sub}`, tenantId: claims.tid, roles, scopes };
}

export const PUBLIC_ROUTE = 'auth-service:public-route';
/** Marks a route under an admin controller that deliberately needs no admin token (none today). */
export const PublicRoute = () => SetMetadata(PUBLIC_ROUTE, true);

/** Every admin route: the one access-token check, then the operator check above. */
@Injectable()
export class AdminGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly strategy: AccessTokenStrategy,
    private readonly tenants: TenantsService,
    @Inject(AppConfig) private readonly config: AppConfig,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (this.reflector.get<boolean>(PUBLIC_ROUTE, context.getHandler())) return true;
    const http = context.switchToHttp();
    const req = http.getRequest<Request>();
    const token = await authenticate(this.strategy, req, http.getResponse<Response>());
    const operator = await this.tenants.findActiveBySlug(this.config.OPERATOR_TENANT);
    req.user = adminPrincipal(token, operator?.id);
    return true;
  }
}

export const principalOf = (req: Request): AdminPrincipal => req.user as AdminPrincipal;
