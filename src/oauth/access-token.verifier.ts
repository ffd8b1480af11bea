import { Injectable } from '@nestjs/common';
import { BearerTokenError } from '../common/errors.js';
import { Database } from '../database/database.js';
import { TenantsService, type Tenant } from '../tenants/tenants.service.js';
import { TokenIssuerService, isMachineSubject, type PlatformAccessClaims } from '../tokens/token-issuer.service.js';
import type { PlatformUser } from '../users/users.service.js';
import { ClientsService, type Client } from '../clients/clients.service.js';
import { SessionsRepository } from '../sessions/sessions.repository.js';

/** A platform access token that passed every check, with what it was checked against. */
export interface AuthenticatedToken {
  claims: PlatformAccessClaims;
  tenant: Tenant;
  client: Client;
  /** The user behind a user token (absent for a machine subject, `client:<id>`). */
  user?: PlatformUser;
}

/**
 * The one check for a platform access token presented to this service, on every route that
 * accepts one (userinfo, logout, the admin API, anything added later): the token itself
 * (TokenIssuerService.verifyAccessToken: signature, typ, iss/aud, time, claim shapes), then
 * whether what it stands for is still live. A session ended, a user disabled, a tenant suspended
 * or deleted, or a client disabled stops the token everywhere at once, not only at its expiry.
 *
 * Tenants and clients come from their row caches (dropped on every replica when the table
 * changes); the session and user are one indexed read in the token's tenant.
 */
@Injectable()
export class AccessTokenVerifier {
  constructor(
    private readonly issuer: TokenIssuerService,
    private readonly tenants: TenantsService,
    private readonly clients: ClientsService,
    private readonly db: Database,
    private readonly sessions: SessionsRepository,
  ) {}

  async verify(token: string): Promise<AuthenticatedToken> {
    const claims = await this.issuer.verifyAccessToken(token);
    const ended = (why: string) =>
      new BearerTokenError('invalid_token', 'The access token is no longer valid: its session, user, organisation or client has ended.', {
        cause: new Error(why),
      });
    const [tenant, client] = await Promise.all([this.tenants.findById(claims.tid), this.clients.find(claims.client_id)]);
    if (!tenant || tenant.status !== 'active') throw ended('tenant is not active');
    if (!client) throw ended('client is unknown or disabled');
    if (client.tenantId !== null && client.tenantId !== claims.tid) throw ended('client is bound to another tenant');
    if (isMachineSubject(claims.sub)) return { claims, tenant, client };

    const row = await this.db.transaction({ tenant: tenant.id }, (tx) => this.sessions.findLive(tx, claims.sid));
    if (!row || row.revokedAt) throw ended('session has ended');
    if (row.userId !== claims.sub || row.clientId !== claims.client_id) throw ended('session belongs to another user or client');
    if (row.userStatus !== 'active') throw ended('user is disabled');
    const user: PlatformUser = {
      id: row.userId,
      tenantId: tenant.id,
      email: row.email,
      emailVerified: row.emailVerified,
      displayName: row.displayName,
      status: row.userStatus,
      roles: row.roles,
    };
    return { claims, tenant, client, user };
  }
}
