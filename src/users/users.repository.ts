import { Injectable } from '@nestjs/common';
import type { Tx } from '../database/database.js';

export type UserStatus = 'active' | 'disabled';
export type RoleSource = 'idp' | 'manual' | 'scim';

/** A row of `users` as the platform sees it (SCIM's own columns are the SCIM repository's). */
export interface UserRecord {
  id: string;
  tenantId: string;
  email: string | null;
  emailVerified: boolean;
  displayName: string | null;
  status: UserStatus;
}

export interface NativeLoginProfile {
  email: string | null;
  emailVerified: boolean;
  displayName: string | null;
  /** Roles given by hand or by SCIM, sorted. */
  keptRoles: string[];
}

export interface NewUserRow {
  tenantId: string;
  email: string | null;
  emailVerified: boolean;
  displayName: string | null;
  givenName?: string | null;
  familyName?: string | null;
  /** Default `active`. */
  status?: UserStatus;
}

/** The profile an upstream login asserts; a null keeps the stored value. */
export interface LoginProfile {
  email: string | null;
  emailVerified: boolean;
  displayName: string | null;
  givenName: string | null;
  familyName: string | null;
}

/** The profile a Firebase export asserts; a null keeps the stored value, `disabled` only ever disables. */
export interface ImportedProfile {
  email: string | null;
  emailVerified: boolean;
  displayName: string | null;
  disabled: boolean;
}

export interface NewIdentityRow {
  tenantId: string;
  userId: string;
  bindingId: string;
  issuer: string;
  subject: string;
  email: string | null;
}

/** A user as the admin API lists and reads it: the profile, how it signs in, and its version. */
export interface UserAdminRow {
  id: string;
  tenantId: string;
  /** The hosted form's username, when the user has a local password. */
  username: string | null;
  /** The tenant directory's userName, when SCIM provisions the user (its profile is the directory's). */
  scimUserName: string | null;
  email: string | null;
  emailVerified: boolean;
  displayName: string | null;
  status: UserStatus;
  lockedUntil: Date | null;
  /** Every role of the user, each once, sorted. */
  roles: string[];
  /** The roles given by hand (the admin API's `roles`), sorted. */
  manualRoles: string[];
  createdAt: Date;
  updatedAt: Date;
  version: number;
  /** Where the next page starts after this row. */
  cursor: string;
}

export interface UserAdminQuery {
  /** A cursor of a row: the page starts after it. */
  after: { createdMicros: string; id: string } | null;
  limit: number;
  /** Lower-case prefix of the username, SCIM userName, email or display name. */
  prefix: string | null;
  status: UserStatus | null;
}

/** What an admin changes; undefined keeps the stored value. */
export interface UserAdminChange {
  email?: string | null;
  emailVerified?: boolean;
  displayName?: string | null;
  status?: UserStatus;
}

const ADMIN_COLUMNS = `u.id, u.tenant_id, c.username, u.user_name, u.email, u.email_verified, u.display_name, u.status,
       c.locked_until, u.created_at, u.updated_at, u.version,
       (extract(epoch FROM u.created_at) * 1000000)::bigint::text AS created_us,
       ARRAY(SELECT DISTINCT r.role FROM user_roles r WHERE r.user_id = u.id ORDER BY 1) AS roles,
       ARRAY(SELECT r.role FROM user_roles r WHERE r.user_id = u.id AND r.source = 'manual' ORDER BY 1) AS manual_roles`;

interface UserAdminDbRow {
  id: string;
  tenant_id: string;
  username: string | null;
  user_name: string | null;
  email: string | null;
  email_verified: boolean;
  display_name: string | null;
  status: UserStatus;
  locked_until: Date | null;
  created_at: Date;
  updated_at: Date;
  version: number;
  created_us: string;
  roles: string[];
  manual_roles: string[];
}

const adminRow = (r: UserAdminDbRow): UserAdminRow => ({
  id: r.id,
  tenantId: r.tenant_id,
  username: r.username,
  scimUserName: r.user_name,
  email: r.email,
  emailVerified: r.email_verified,
  displayName: r.display_name,
  status: r.status,
  lockedUntil: r.locked_until,
  roles: r.roles,
  manualRoles: r.manual_roles,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  version: r.version,
  cursor: `${r.created_us}.${r.id}`,
});

/**
 * `users`, `user_identities`, `roles` and `user_roles`: the platform's side of a user. Every
 * statement runs in the caller's tenant transaction, so row-level security scopes it.
 */
@Injectable()
export class UsersRepository {
  /**
   * A native user as a login would sign them in (the admin claims preview): the profile, and the
   * roles a login keeps (given by hand or by SCIM; mapped roles are replaced at each login).
   * Undefined when the user has no native credential in the tenant.
   */
  async findNativeLoginProfile(tx: Tx, tenantId: string, userId: string): Promise<NativeLoginProfile | undefined> {
    const { rows } = await tx.query<{ email: string | null; email_verified: boolean; display_name: string | null; roles: string[] }>(
      `SELECT u.email, u.email_verified, u.display_name,
              ARRAY(SELECT DISTINCT r.role FROM user_roles r WHERE r.user_id = u.id AND r.source <> 'idp' ORDER BY 1) AS roles
         FROM users u JOIN native_credentials c ON c.user_id = u.id WHERE u.id = $1 AND u.tenant_id = $2`,
      [userId, tenantId],
    );
    const r = rows[0];
    return r && { email: r.email, emailVerified: r.email_verified, displayName: r.display_name, keptRoles: r.roles };
  }

  async findById(tx: Tx, userId: string): Promise<UserRecord | undefined> {
    const { rows } = await tx.query<{
      id: string;
      tenant_id: string;
      email: string | null;
      email_verified: boolean;
      display_name: string | null;
      status: UserStatus;
    }>(`SELECT id, tenant_id, email, email_verified, display_name, status FROM users WHERE id = $1`, [userId], 'user-by-id');
    const row = rows[0];
    if (!row) return undefined;
    return {
      id: row.id,
      tenantId: row.tenant_id,
      email: row.email,
      emailVerified: row.email_verified,
      displayName: row.display_name,
      status: row.status,
    };
  }

  /** The user's role names, each once, sorted. */
  async listRoles(tx: Tx, userId: string): Promise<string[]> {
    const { rows } = await tx.query<{ role: string }>(
      `SELECT DISTINCT role FROM user_roles WHERE user_id = $1 ORDER BY role`,
      [userId],
      'user-roles',
    );
    return rows.map((r) => r.role);
  }

  /** Returns the new user's id. */
  async insert(tx: Tx, u: NewUserRow): Promise<string> {
    const { rows } = await tx.query<{ id: string }>(
      `INSERT INTO users (tenant_id, email, email_verified, display_name, given_name, family_name, status) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
      [u.tenantId, u.email, u.emailVerified, u.displayName, u.givenName ?? null, u.familyName ?? null, u.status ?? 'active'],
    );
    const row = rows[0];
    if (!row) throw new Error('users: INSERT … RETURNING returned no row');
    return row.id;
  }

  /**
   * Users whose email (lower-cased by the caller) counts as verified: verified, or asserted by the
   * tenant's directory (a SCIM user). At most two: the caller links only an unambiguous match.
   */
  async findIdsByVerifiedEmail(tx: Tx, tenantId: string, email: string): Promise<string[]> {
    const { rows } = await tx.query<{ id: string }>(
      `SELECT id FROM users WHERE tenant_id = $1 AND lower(email) = $2 AND (email_verified OR user_name IS NOT NULL) LIMIT 2`,
      [tenantId, email],
    );
    return rows.map((r) => r.id);
  }

  /**
   * SCIM-provisioned users matching an external id or a userName (case-insensitive) that are not yet
   * linked to the binding. At most two: the caller links only an unambiguous match.
   */
  async findScimLinkCandidates(
    tx: Tx,
    q: { tenantId: string; bindingId: string; externalId: string | null; userName: string | null },
  ): Promise<string[]> {
    const { rows } = await tx.query<{ id: string }>(
      `SELECT u.id FROM users u
        WHERE u.tenant_id = $1 AND u.user_name IS NOT NULL
          AND (u.external_id = $2 OR u.user_name_ci = lower($3))
          AND NOT EXISTS (SELECT 1 FROM user_identities i WHERE i.user_id = u.id AND i.binding_id = $4)
        LIMIT 2`,
      [q.tenantId, q.externalId, q.userName, q.bindingId],
    );
    return rows.map((r) => r.id);
  }

  /** Refreshes the profile from a login's claims; SCIM users (with a userName) keep their directory-managed profile. */
  async updateFromLogin(tx: Tx, userId: string, p: LoginProfile): Promise<void> {
    await tx.query(
      `UPDATE users SET email = COALESCE($2, email), email_verified = CASE WHEN $2::text IS NULL THEN email_verified ELSE $3 END,
           display_name = COALESCE($4, display_name), given_name = COALESCE($5, given_name), family_name = COALESCE($6, family_name), updated_at = now()
         WHERE id = $1 AND user_name IS NULL`,
      [userId, p.email, p.emailVerified, p.displayName, p.givenName, p.familyName],
      'user-update-from-login',
    );
  }

  /** Refreshes the profile from an import; an imported `disabled` disables, never the reverse. */
  async updateFromImport(tx: Tx, userId: string, p: ImportedProfile): Promise<void> {
    await tx.query(
      `UPDATE users SET email = COALESCE($2, email), email_verified = CASE WHEN $2::text IS NULL THEN email_verified ELSE $3 END,
           display_name = COALESCE($4, display_name), status = CASE WHEN $5 THEN 'disabled' ELSE status END, updated_at = now()
         WHERE id = $1`,
      [userId, p.email, p.emailVerified, p.displayName, p.disabled],
    );
  }

  /** The platform user an upstream identity (binding, subject) is linked to. */
  async findIdentityUserId(tx: Tx, bindingId: string, subject: string): Promise<string | undefined> {
    const { rows } = await tx.query<{ user_id: string }>(
      `SELECT user_id FROM user_identities WHERE binding_id = $1 AND subject = $2`,
      [bindingId, subject],
      'user-identity-find',
    );
    return rows[0]?.user_id;
  }

  /** Links the identity at a login, or stamps the login (and the upstream email) on the existing link. */
  async upsertIdentityAtLogin(tx: Tx, i: NewIdentityRow): Promise<void> {
    await tx.query(
      `INSERT INTO user_identities (tenant_id, user_id, binding_id, issuer, subject, email, last_login_at)
       VALUES ($1, $2, $3, $4, $5, $6, now())
       ON CONFLICT (binding_id, subject) DO UPDATE SET last_login_at = now(), email = EXCLUDED.email`,
      [i.tenantId, i.userId, i.bindingId, i.issuer, i.subject, i.email],
      'user-identity-upsert',
    );
  }

  /** Links an identity without a login (an import); fails on an existing link. */
  async insertIdentity(tx: Tx, i: NewIdentityRow): Promise<void> {
    await tx.query(`INSERT INTO user_identities (tenant_id, user_id, binding_id, issuer, subject, email) VALUES ($1, $2, $3, $4, $5, $6)`, [
      i.tenantId,
      i.userId,
      i.bindingId,
      i.issuer,
      i.subject,
      i.email,
    ]);
  }

  /** Removes the user's roles of one source except `keep`. */
  async revokeRolesExcept(tx: Tx, userId: string, source: RoleSource, keep: string[]): Promise<void> {
    await tx.query(
      `DELETE FROM user_roles WHERE user_id = $1 AND source = $2 AND NOT (role = ANY($3::text[]))`,
      [userId, source, keep],
      'user-roles-prune',
    );
  }

  /** Grants roles of one source, creating the tenant's role rows as needed; already granted ones are left alone. */
  async grantRoles(tx: Tx, tenantId: string, userId: string, source: RoleSource, roles: string[]): Promise<void> {
    await tx.query(
      `INSERT INTO roles (tenant_id, name) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING`,
      [tenantId, roles],
      'roles-ensure',
    );
    await tx.query(
      `INSERT INTO user_roles (tenant_id, user_id, role, source) SELECT $1, $2, unnest($3::text[]), $4 ON CONFLICT DO NOTHING`,
      [tenantId, userId, roles, source],
      'user-roles-grant',
    );
  }
  /** The admin API's page of a tenant's users (not deleted), in creation order. */
  async listForAdmin(tx: Tx, tenantId: string, q: UserAdminQuery): Promise<UserAdminRow[]> {
    const { rows } = await tx.query<UserAdminDbRow>(
      `SELECT ${ADMIN_COLUMNS}
         FROM users u LEFT JOIN native_credentials c ON c.user_id = u.id
        WHERE u.tenant_id = $1 AND u.deleted_at IS NULL
          AND ($2::bigint IS NULL OR (u.created_at, u.id) > ('epoch'::timestamptz + $2::bigint * interval '1 microsecond', $3::uuid))
          AND ($4::text IS NULL OR starts_with(lower(c.username), $4) OR starts_with(u.user_name_ci, $4)
               OR starts_with(lower(u.email), $4) OR starts_with(lower(u.display_name), $4))
          AND ($5::text IS NULL OR u.status = $5)
        ORDER BY u.created_at, u.id
        LIMIT $6`,
      [tenantId, q.after?.createdMicros ?? null, q.after?.id ?? null, q.prefix, q.status, q.limit],
    );
    return rows.map(adminRow);
  }

  /** One user as the admin API shows it; undefined when absent or deleted. `forUpdate` locks the row. */
  async findForAdmin(tx: Tx, tenantId: string, userId: string, forUpdate = false): Promise<UserAdminRow | undefined> {
    const { rows } = await tx.query<UserAdminDbRow>(
      `SELECT ${ADMIN_COLUMNS}
         FROM users u LEFT JOIN native_credentials c ON c.user_id = u.id
        WHERE u.tenant_id = $1 AND u.id = $2 AND u.deleted_at IS NULL${forUpdate ? ' FOR UPDATE OF u' : ''}`,
      [tenantId, userId],
    );
    return rows[0] && adminRow(rows[0]);
  }

  /** Applies an admin's change and bumps the version; false when the version moved on (a concurrent change). */
  async updateByAdmin(tx: Tx, userId: string, version: number, c: UserAdminChange): Promise<boolean> {
    const res = await tx.query(
      `UPDATE users SET
           email = CASE WHEN $3 THEN $4 ELSE email END,
           email_verified = COALESCE($5, CASE WHEN $3 AND $4::text IS DISTINCT FROM email THEN false ELSE email_verified END),
           display_name = CASE WHEN $6 THEN $7 ELSE display_name END,
           status = COALESCE($8, status),
           version = version + 1, updated_at = now()
         WHERE id = $1 AND version = $2 AND deleted_at IS NULL`,
      [
        userId,
        version,
        c.email !== undefined,
        c.email ?? null,
        c.emailVerified ?? null,
        c.displayName !== undefined,
        c.displayName ?? null,
        c.status ?? null,
      ],
    );
    return res.rowCount === 1;
  }

  /** Bumps the version of a change made elsewhere (roles, credentials), so ETags follow it. */
  async touch(tx: Tx, userId: string): Promise<void> {
    await tx.query(`UPDATE users SET version = version + 1, updated_at = now() WHERE id = $1`, [userId]);
  }

  /**
   * Erases a user and leaves the tombstone: no profile, no credential, no upstream link, no role,
   * disabled. The row and its (revoked) sessions stay, so the `sub` is never reused and the
   * gateways' revocation feed still serves the sessions. SCIM's attributes, group memberships and second factors go too.
   */
  async eraseToTombstone(tx: Tx, userId: string): Promise<void> {
    await tx.query(`DELETE FROM native_credentials WHERE user_id = $1`, [userId]);
    await tx.query(`DELETE FROM user_identities WHERE user_id = $1`, [userId]);
    await tx.query(`DELETE FROM user_roles WHERE user_id = $1`, [userId]);
    // Second factors: the TOTP secret and the recovery codes.
    await tx.query(`DELETE FROM user_totp WHERE user_id = $1`, [userId]);
    await tx.query(`DELETE FROM user_recovery_codes WHERE user_id = $1`, [userId]);
    await tx.query(`DELETE FROM user_passkeys WHERE user_id = $1`, [userId]);
    // Group memberships go too, and each group's version moves on (SCIM clients hold its ETag).
    await tx.query(
      `WITH gone AS (DELETE FROM group_members WHERE user_id = $1 RETURNING group_id)
       UPDATE groups SET version = version + 1, updated_at = now() WHERE id IN (SELECT group_id FROM gone)`,
      [userId],
    );
    await tx.query(
      `UPDATE users SET email = NULL, email_verified = false, display_name = NULL, given_name = NULL, family_name = NULL,
           user_name = NULL, external_id = NULL, emails = '[]', enterprise = '{}', scim_profile = '{}',
           status = 'disabled', deleted_at = now(), version = version + 1, updated_at = now()
         WHERE id = $1`,
      [userId],
    );
  }

  /** Marks the email verified when it is still `email` (a link for an older address verifies nothing). */
  async markEmailVerified(tx: Tx, userId: string, email: string): Promise<boolean> {
    const res = await tx.query(
      `UPDATE users SET email_verified = true, version = version + 1, updated_at = now()
        WHERE id = $1 AND lower(email) = lower($2) AND deleted_at IS NULL`,
      [userId, email],
    );
    return res.rowCount === 1;
  }
}
