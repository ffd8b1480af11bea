import { Injectable } from '@nestjs/common';
import { OAuthError } from '../common/errors.js';
import { Database, type Tx } from '../database/database.js';
import type { BindingContext, ExternalIdentity } from '../identity/port/identity-provider.port.js';
import { readClaim, type NormalisedIdentity } from './claim-normaliser.js';
import { UsersRepository, type NativeLoginProfile, type RoleSource } from './users.repository.js';

export interface PlatformUser {
  id: string;
  tenantId: string;
  email: string | null;
  emailVerified: boolean;
  displayName: string | null;
  status: 'active' | 'disabled';
  roles: string[];
}

/**
 * Platform users and their upstream identities. The methods taking a transaction handle run inside
 * the caller's tenant transaction, so row-level security scopes every statement; the SQL is in
 * `UsersRepository`.
 */
@Injectable()
export class UsersService {
  constructor(
    private readonly db: Database,
    private readonly repo: UsersRepository,
  ) {}

  /**
   * Finds or creates the platform user for an upstream identity: by (binding, upstream subject)
   * first — so a changed upstream email never moves the account — then, only when the binding
   * allows it, by verified email; otherwise a new user (JIT). The platform `sub` is the user id.
   */
  async resolveLogin(handle: Tx, binding: BindingContext, ext: ExternalIdentity, n: NormalisedIdentity): Promise<PlatformUser> {
    const tx = handle;
    let userId = ext.knownUserId;
    const linked = await this.repo.findIdentityUserId(tx, binding.id, ext.subject);
    if (linked) userId = linked;
    if (!userId) userId = await this.findScimUser(tx, binding, ext);
    if (!userId && binding.claimMapping.linkByVerifiedEmail && n.emailVerified && n.email) {
      // A SCIM user's email was asserted by the tenant's directory: it counts as verified here.
      const matches = await this.repo.findIdsByVerifiedEmail(tx, binding.tenantId, n.email);
      if (matches.length === 1) userId = matches[0];
    }
    const profile = {
      email: n.email,
      emailVerified: n.emailVerified,
      displayName: n.name,
      givenName: n.givenName,
      familyName: n.familyName,
    };
    if (!userId) {
      userId = await this.repo.insert(tx, { tenantId: binding.tenantId, ...profile });
    } else if (!ext.knownUserId) {
      await this.repo.updateFromLogin(tx, userId, profile);
    }
    await this.repo.upsertIdentityAtLogin(tx, {
      tenantId: binding.tenantId,
      userId,
      bindingId: binding.id,
      issuer: ext.issuer,
      subject: ext.subject,
      email: n.email,
    });
    await this.syncRoles(tx, binding.tenantId, userId, 'idp', n.roles);
    const user = await this.get(tx, userId);
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
  private async findScimUser(tx: Tx, binding: BindingContext, ext: ExternalIdentity): Promise<string | undefined> {
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
    const ids = await this.repo.findScimLinkCandidates(tx, { tenantId: binding.tenantId, bindingId: binding.id, externalId, userName });
    return ids.length === 1 ? ids[0] : undefined;
  }

  async get(handle: Tx, userId: string): Promise<PlatformUser | undefined> {
    const tx = handle;
    const row = await this.repo.findById(tx, userId);
    if (!row) return undefined;
    return { ...row, roles: await this.repo.listRoles(tx, userId) };
  }

  /** See UsersRepository.findNativeLoginProfile; in a transaction of its own. */
  async nativeLoginProfile(tenantId: string, userId: string): Promise<NativeLoginProfile | undefined> {
    if (!/^[0-9a-f-]{36}$/.test(userId)) return undefined;
    return this.db.transaction({ tenant: tenantId }, (tx) => this.repo.findNativeLoginProfile(tx, tenantId, userId));
  }

  /** `get` in a transaction of its own, for callers outside one (the admin API). */
  async find(tenantId: string, userId: string): Promise<PlatformUser | undefined> {
    return this.db.transaction({ tenant: tenantId }, (tx) => this.get(tx, userId));
  }

  async create(
    handle: Tx,
    tenantId: string,
    input: { email?: string | null; emailVerified?: boolean; displayName?: string | null },
  ): Promise<string> {
    return this.repo.insert(handle, {
      tenantId,
      email: input.email?.toLowerCase() ?? null,
      emailVerified: input.emailVerified ?? false,
      displayName: input.displayName ?? null,
    });
  }

  /** Replaces the user's roles of one source (idp, manual, scim), creating role rows as needed. */
  async syncRoles(handle: Tx, tenantId: string, userId: string, source: RoleSource, roles: string[]): Promise<void> {
    const tx = handle;
    await this.repo.revokeRolesExcept(tx, userId, source, roles);
    if (roles.length === 0) return;
    await this.repo.grantRoles(tx, tenantId, userId, source, roles);
  }
}
