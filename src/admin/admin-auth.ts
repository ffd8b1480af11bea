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
  /**
   * Set for a tenant's own user administrator: the one tenant whose users this principal may
   * manage, and nothing else. Unset for operators, who may do everything.
   */
  confinedTo?: string;
}

export const ADMIN_ROLE = 'SUPER_ADMIN';
export const ADMIN_SCOPE = 'admin';
/** The role a user of any tenant holds to manage the users of that tenant, and only of that tenant. */
export const TENANT_USER_ADMIN_ROLE = 'USER_ADMIN';

/**
 * Who may call the admin API. Admin bearer tokens are platform access tokens, issued by this
 * service, from the operator tenant only: a customer's IdP may map its own users to SUPER_ADMIN
 * inside its tenant, and that must never make them operators of the platform. A user needs the
 * SUPER_ADMIN role; a machine client (client_credentials) needs the `admin` scope. The token itself
 * (signature, time, liveness of its session, user, tenant and client) is checked by the one
 * access-token check, AccessTokenVerifier, before this runs.
 */
export function adminPrincipal(token: AuthenticatedToken, operatorTenantId: string | undefined, tenantAdminsOf?: string): AdminPrincipal {
  const { claims } = token;
  const scopes = (claims.scope ?? '').split(' ').filter(Boolean);
  const roles = Array.isArray(claims.roles) ? claims.roles : [];
  const isMachine = isMachineSubject(claims.sub);
  const actor = isMachine ? claims.sub : `user:${claims.sub}`;
  const operator =
    operatorTenantId !== undefined &&
    claims.tid === operatorTenantId &&
    (isMachine ? scopes.includes(ADMIN_SCOPE) : roles.includes(ADMIN_ROLE));
  if (operator) return { actor, tenantId: claims.tid, roles, scopes };
  // A tenant's user administrator: a user (never a machine) of the tenant named in the path, holding
  // the role now (the user's roles as stored, not as they were when the token was issued).
  const currentRoles = token.user?.roles ?? [];
  if (tenantAdminsOf !== undefined && !isMachine && claims.tid === tenantAdminsOf && currentRoles.includes(TENANT_USER_ADMIN_ROLE))
    return { actor, tenantId: claims.tid, roles: currentRoles, scopes, confinedTo: claims.tid };
  throw new ProblemError({
    type: 'forbidden',
    detail:
      tenantAdminsOf === undefined
        ? `Admin access needs a ${ADMIN_ROLE} user or a machine client with the "${ADMIN_SCOPE}" scope of the operator tenant.`
        : `Managing this tenant's users needs an operator, or a ${TENANT_USER_ADMIN_ROLE} user of this tenant.`,
  });
}

export const TENANT_ADMINS = 'auth-service:tenant-admins';
/**
 * Opens an admin controller's routes to the user administrators of the tenant in the path
 * (`:tenantId`) as well as to operators. Services still confine what such a principal may do
 * (`confinedTo`): only that tenant's users, never above its own roles.
 */
export const TenantAdminsToo = () => SetMetadata(TENANT_ADMINS, true);

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
    const tenantAdmins = this.reflector.getAllAndOverride<boolean>(TENANT_ADMINS, [context.getHandler(), context.getClass()]);
    const pathTenant = (req.params as Record<string, string | undefined>)['tenantId'];
    req.user = adminPrincipal(token, operator?.id, tenantAdmins && pathTenant !== undefined ? pathTenant : undefined);
    return true;
  }
}

export const principalOf = (req: Request): AdminPrincipal => req.user as AdminPrincipal;
