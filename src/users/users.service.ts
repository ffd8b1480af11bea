import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { OAuthError } from '../common/errors.js';
import type { BindingContext, ExternalIdentity } from '../identity/port/identity-provider.port.js';
import { readClaim, type NormalisedIdentity } from './claim-normaliser.js';

export interface PlatformUser {
  id: string;
  tenantId: string;
  email: string | null;
  emailVerified: boolean;
  displayName: string | null;
  status: 'active' | 'disabled';
  roles: string[];
}

interface UserRow {
  id: string;
  tenant_id: string;
  email: string | null;
  email_verified: boolean;
  display_name: string | null;
  status: 'active' | 'disabled';
}

/**
 * Platform users and their upstream identities. All methods run inside the caller's tenant
 * transaction (`Database.tenantTx`), so row-level security scopes every statement.
 */
@Injectable()
export class UsersService {
  /**
   * Finds or creates the platform user for an upstream identity: by (binding, upstream subject)
   * first — so a changed upstream email never moves the account — then, only when the binding
   * allows it, by verified email; otherwise a new user (JIT). The platform `sub` is the user id.
   */
  async resolveLogin(m: EntityManager, binding: BindingContext, ext: ExternalIdentity, n: NormalisedIdentity): Promise<PlatformUser> {
    let userId = ext.knownUserId;
    const [identity] = await m.query<
      Array<{
        user_id: string;
      }>
    >(`SELECT user_id FROM user_identities WHERE binding_id = $1 AND subject = $2`, [binding.id, ext.subject]);
    if (identity) userId = identity.user_id;
    if (!userId) userId = await this.findScimUser(m, binding, ext);
    if (!userId && binding.claimMapping.linkByVerifiedEmail && n.emailVerified && n.email) {
      // A SCIM user's email was asserted by the tenant's directory: it counts as verified here.
      const matches = await m.query<
        Array<{
          id: string;
        }>
      >(`SELECT id FROM users WHERE tenant_id = $1 AND lower(email) = $2 AND (email_verified OR user_name IS NOT NULL) LIMIT 2`, [
        binding.tenantId,
        n.email,
      ]);
      if (matches.length === 1) userId = matches[0]!.id;
    }
    if (!userId) {
      const [created] = await m.query<Array<{ id: string }>>(
        `INSERT INTO users (tenant_id, email, email_verified, display_name, given_name, family_name) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
        [binding.tenantId, n.email, n.emailVerified, n.name, n.givenName, n.familyName],
      );
      userId = created!.id;
    } else if (!ext.knownUserId) {
      await m.query(
        `UPDATE users SET email = COALESCE($2, email), email_verified = CASE WHEN $2::text IS NULL THEN email_verified ELSE $3 END,
           display_name = COALESCE($4, display_name), given_name = COALESCE($5, given_name), family_name = COALESCE($6, family_name), updated_at = now()
         WHERE id = $1 AND user_name IS NULL`,
        [userId, n.email, n.emailVerified, n.name, n.givenName, n.familyName],
      );
    }
    await m.query(
      `INSERT INTO user_identities (tenant_id, user_id, binding_id, issuer, subject, email, last_login_at)
       VALUES ($1, $2, $3, $4, $5, $6, now())
       ON CONFLICT (binding_id, subject) DO UPDATE SET last_login_at = now(), email = EXCLUDED.email`,
      [binding.tenantId, userId, binding.id, ext.issuer, ext.subject, n.email],
    );
    await this.syncRoles(m, binding.tenantId, userId, 'idp', n.roles);
    const user = await this.get(m, userId);
    if (!user) throw new OAuthError('server_error', 'The user could not be resolved.');
    if (user.status !== 'active') throw new OAuthError('access_denied', 'This account is disabled.');
    return user;
  }

  /**
   * The SCIM-provisioned user a first login through the tenant's IdP belongs to (rules:
   * `ClaimMappingRules.scimLink`). Only a user not yet linked to this binding qualifies, and only
   * an unambiguous match links. (SCIM users keep their directory-managed profile: the UPDATE in
   * resolveLogin skips users with a userName.)
   */
  private async findScimUser(m: EntityManager, binding: BindingContext, ext: ExternalIdentity): Promise<string | undefined> {
    if (ext.knownUserId) return undefined;
    const rule = binding.claimMapping.scimLink ?? (binding.kind === 'oidc' || binding.kind === 'saml' ? {} : false);
    if (rule === false) return undefined;
    const claim = (path: string): string | null => {
      const v = readClaim(ext.claims, path);
      const s = Array.isArray(v) ? v[0] : v;
      return typeof s === 'string' && s.length > 0 && s.length <= 500 ? s : null;
    };
    const externalId = rule.externalIdClaim ? claim(rule.externalIdClaim) : ext.subject;
    const userName = rule.userNameClaim ? claim(rule.userNameClaim) : null;
    if (!externalId && !userName) return undefined;
    const rows = await m.query<Array<{ id: string }>>(
      `SELECT u.id FROM users u
        WHERE u.tenant_id = $1 AND u.user_name IS NOT NULL
          AND (u.external_id = $2 OR u.user_name_ci = lower($3))
          AND NOT EXISTS (SELECT 1 FROM user_identities i WHERE i.user_id = u.id AND i.binding_id = $4)
        LIMIT 2`,
      [binding.tenantId, externalId, userName, binding.id],
    );
    return rows.length === 1 ? rows[0]!.id : undefined;
  }

  async get(m: EntityManager, userId: string): Promise<PlatformUser | undefined> {
    const [row] = await m.query<UserRow[]>(`SELECT id, tenant_id, email, email_verified, display_name, status FROM users WHERE id = $1`, [
      userId,
    ]);
    if (!row) return undefined;
    const roles = await m.query<
      Array<{
        role: string;
      }>
    >(`SELECT DISTINCT role FROM user_roles WHERE user_id = $1 ORDER BY role`, [userId]);
    return {
      id: row.id,
      tenantId: row.tenant_id,
      email: row.email,
      emailVerified: row.email_verified,
      displayName: row.display_name,
      status: row.status,
      roles: roles.map((r) => r.role),
    };
  }

  async create(
    m: EntityManager,
    tenantId: string,
    input: { email?: string | null; emailVerified?: boolean; displayName?: string | null },
  ): Promise<string> {
    const [row] = await m.query<Array<{ id: string }>>(
      `INSERT INTO users (tenant_id, email, email_verified, display_name) VALUES ($1, $2, $3, $4) RETURNING id`,
      [tenantId, input.email?.toLowerCase() ?? null, input.emailVerified ?? false, input.displayName ?? null],
    );
    return row!.id;
  }

  /** Replaces the user's roles of one source (idp, manual, scim), creating role rows as needed. */
  async syncRoles(m: EntityManager, tenantId: string, userId: string, source: 'idp' | 'manual' | 'scim', roles: string[]): Promise<void> {
    await m.query(`DELETE FROM user_roles WHERE user_id = $1 AND source = $2 AND NOT (role = ANY($3::text[]))`, [userId, source, roles]);
    if (roles.length === 0) return;
    await m.query(`INSERT INTO roles (tenant_id, name) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING`, [tenantId, roles]);
    await m.query(
      `INSERT INTO user_roles (tenant_id, user_id, role, source) SELECT $1, $2, unnest($3::text[]), $4 ON CONFLICT DO NOTHING`,
      [tenantId, userId, roles, source],
    );
  }
}
