import { Injectable } from '@nestjs/common';
import { Database, type Tx } from '../database/database.js';
import { AuditService } from '../audit/audit.service.js';
import { ProblemError } from '../common/errors.js';
import { NativeCredentialsService, type NewNativeUser } from '../identity/native/native-credentials.service.js';
import { NativeCredentialsRepository } from '../users/native-credentials.repository.js';
import { UsersRepository, type UserAdminRow, type UserStatus } from '../users/users.repository.js';
import { UsersService } from '../users/users.service.js';
import { SessionsService } from '../sessions/sessions.service.js';
import type { AdminPrincipal } from './admin-auth.js';
import type { UpdateUserDto } from './dto.js';
import { AccountService } from '../account/account.service.js';
import type { Tenant } from '../tenants/tenants.service.js';

/** A user as the admin API shows it: never a password, its hash or a lockout counter. */
export interface UserView {
  id: string;
  tenantId: string;
  username: string | null;
  /** `scim` when the tenant's directory provisions the user: its profile is changed there, not here. */
  managedBy: 'scim' | null;
  email: string | null;
  emailVerified: boolean;
  displayName: string | null;
  status: UserStatus;
  /** Until when a local password is locked after failed attempts; null when not locked. */
  lockedUntil: string | null;
  roles: string[];
  /** The roles given by hand: what `roles` in a PATCH replaces. */
  manualRoles: string[];
  createdAt: string;
  updatedAt: string;
}

export const viewOf = (u: UserAdminRow): UserView => ({
  id: u.id,
  tenantId: u.tenantId,
  username: u.username,
  managedBy: u.scimUserName !== null ? 'scim' : null,
  email: u.email,
  emailVerified: u.emailVerified,
  displayName: u.displayName,
  status: u.status,
  lockedUntil: u.lockedUntil && u.lockedUntil.getTime() > Date.now() ? u.lockedUntil.toISOString() : null,
  roles: u.roles,
  manualRoles: u.manualRoles,
  createdAt: u.createdAt.toISOString(),
  updatedAt: u.updatedAt.toISOString(),
});

const notFound = () => new ProblemError({ type: 'user-not-found' });
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const CURSOR = /^(\d{1,20})\.([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

/**
 * A tenant's user administrator acts only within its own roles: it grants no role it does not hold
 * itself, and changes no user who holds one (so it cannot disable, delete or unlock a more powerful
 * administrator). Operators are not confined.
 */
export function assertWithinRoles(p: AdminPrincipal, roles: readonly string[], what: string): void {
  if (p.confinedTo === undefined) return;
  const beyond = roles.filter((r) => !p.roles.includes(r));
  if (beyond.length)
    throw new ProblemError({
      type: 'forbidden',
      detail: `${what} needs roles you do not hold (${beyond.join(', ')}); ask an operator or an administrator who holds them.`,
    });
}

/**
 * The admin API's users of a tenant: create, list, read, update, disable, unlock, delete. Every
 * change is one transaction with its audit event; audit data holds ids and roles, never a
 * username, an email or a name (PII). Disabling and deleting end the user's sessions in the same
 * transaction, so their refresh tokens and (through the revocation feed) access tokens stop.
 */
@Injectable()
export class UsersAdminService {
  constructor(
    private readonly db: Database,
    private readonly users: UsersService,
    private readonly rows: UsersRepository,
    private readonly credentials: NativeCredentialsService,
    private readonly credentialRows: NativeCredentialsRepository,
    private readonly sessions: SessionsService,
    private readonly audit: AuditService,
    private readonly account: AccountService,
  ) {}

  /** With a password, or without one: then the user is invited by email to set it, in the same transaction. */
  async create(p: AdminPrincipal, tenant: Tenant, input: NewNativeUser): Promise<UserAdminRow> {
    assertWithinRoles(p, input.roles ?? [], 'Giving these roles');
    const email = input.email;
    if (input.password === undefined && !email)
      throw new ProblemError({
        type: 'validation',
        detail: 'Give a password, or an email address to send the invitation to (then the user sets the password).',
      });
    const invite = input.password === undefined && email ? email : undefined;
    const userId = await this.credentials.createUser(
      tenant.id,
      input,
      { actor: p.actor },
      invite ? (tx, id) => this.account.sendLink(tx, tenant, id, 'invitation', invite) : undefined,
    );
    if (invite) this.account.afterCommit();
    return this.get(tenant.id, userId);
  }

  invite(p: AdminPrincipal, tenantId: string, userId: string, username?: string): Promise<void> {
    return this.guarded(p, tenantId, userId, () => this.account.invite(p, tenantId, userId, username));
  }

  forceReset(p: AdminPrincipal, tenantId: string, userId: string): Promise<void> {
    return this.guarded(p, tenantId, userId, () => this.account.forceReset(p, tenantId, userId));
  }

  sendVerification(p: AdminPrincipal, tenantId: string, userId: string): Promise<void> {
    return this.guarded(p, tenantId, userId, () => this.account.sendVerification(p, tenantId, userId));
  }

  /** The principal's role ceiling over the user, then `work` (which runs its own transaction). */
  private async guarded(p: AdminPrincipal, tenantId: string, userId: string, work: () => Promise<void>): Promise<void> {
    assertWithinRoles(p, (await this.get(tenantId, userId)).roles, 'Changing this user');
    await work();
  }

  async list(
    tenantId: string,
    q: { cursor?: string; limit?: number; q?: string; status?: UserStatus },
  ): Promise<{ items: UserAdminRow[]; nextCursor: string | null }> {
    const limit = q.limit ?? 100;
    let after: { createdMicros: string; id: string } | null = null;
    if (q.cursor !== undefined) {
      const [, createdMicros, id] = CURSOR.exec(q.cursor) ?? [];
      if (createdMicros === undefined || id === undefined)
        throw new ProblemError({ type: 'validation', detail: 'cursor must be the nextCursor of a previous page.' });
      after = { createdMicros, id };
    }
    const rows = await this.db.transaction({ tenant: tenantId }, (tx) =>
      this.rows.listForAdmin(tx, tenantId, { after, limit: limit + 1, prefix: q.q?.toLowerCase() ?? null, status: q.status ?? null }),
    );
    const items = rows.slice(0, limit);
    return { items, nextCursor: rows.length > limit ? (items.at(-1)?.cursor ?? null) : null };
  }

  async get(tenantId: string, userId: string): Promise<UserAdminRow> {
    if (!UUID.test(userId)) throw notFound();
    const user = await this.db.transaction({ tenant: tenantId }, (tx) => this.rows.findForAdmin(tx, tenantId, userId));
    if (!user) throw notFound();
    return user;
  }

  /**
   * Profile, hand-given roles and status, at the version the caller read (If-Match). A SCIM user's
   * profile belongs to the tenant's directory: only its status and hand-given roles change here.
   */
  async update(p: AdminPrincipal, tenantId: string, userId: string, version: number, dto: UpdateUserDto): Promise<UserAdminRow> {
    return this.change(p, tenantId, userId, 'user.updated', async (tx, before) => {
      if (before.version !== version) throw stale();
      const profile = dto.email !== undefined || dto.emailVerified !== undefined || dto.displayName !== undefined;
      if (profile && before.scimUserName !== null)
        throw new ProblemError({
          type: 'scim-managed',
          detail: "The tenant's directory provisions this user over SCIM: change its email and name there.",
        });
      if (dto.roles) {
        assertWithinRoles(p, dto.roles, 'Giving these roles');
        await this.users.syncRoles(tx, tenantId, userId, 'manual', [...new Set(dto.roles)]);
      }
      const changed = await this.rows.updateByAdmin(tx, userId, version, {
        email: dto.email === undefined ? undefined : (dto.email?.toLowerCase() ?? null),
        emailVerified: dto.emailVerified,
        displayName: dto.displayName,
        status: dto.status,
      });
      if (!changed) throw stale();
      if (dto.status === 'disabled' && before.status !== 'disabled') await this.sessions.revokeAllOfUser(tx, userId, 'user_disabled');
      return {
        roles: dto.roles && { before: before.manualRoles, after: [...new Set(dto.roles)].sort() },
        status: dto.status && dto.status !== before.status ? { before: before.status, after: dto.status } : undefined,
        profileChanged: profile || undefined,
      };
    });
  }

  /** Ends a lockout after failed password attempts. */
  async unlock(p: AdminPrincipal, tenantId: string, userId: string): Promise<UserAdminRow> {
    return this.change(p, tenantId, userId, 'user.unlocked', async (tx, before) => {
      if (before.username === null)
        throw new ProblemError({
          type: 'no-local-password',
          detail: 'This user signs in through an identity provider, not a local password.',
        });
      await this.credentialRows.unlock(tx, userId);
      await this.rows.touch(tx, userId);
      return {};
    });
  }

  /**
   * Deletes a user: every session ends (and stays in the revocation feed), the profile, local
   * password, upstream links, roles and group memberships are erased, and a tombstone keeps the id
   * so it is never given to anyone else. A SCIM user is deprovisioned by the directory instead.
   */
  async remove(p: AdminPrincipal, tenantId: string, userId: string): Promise<void> {
    await this.change(p, tenantId, userId, 'user.deleted', async (tx, before) => {
      if (before.scimUserName !== null)
        throw new ProblemError({
          type: 'scim-managed',
          detail: "The tenant's directory provisions this user over SCIM: deprovision it there.",
        });
      const sessions = await this.sessions.revokeAllOfUser(tx, userId, 'user_deleted');
      await this.rows.eraseToTombstone(tx, userId);
      return { sessionsEnded: sessions };
    });
  }

  /** One audited change of one user, under a lock on its row, within the principal's roles. */
  private async change(
    p: AdminPrincipal,
    tenantId: string,
    userId: string,
    action: string,
    work: (tx: Tx, before: UserAdminRow) => Promise<Record<string, unknown>>,
  ): Promise<UserAdminRow> {
    if (!UUID.test(userId)) throw notFound();
    return this.db.transaction({ tenant: tenantId }, async (tx) => {
      const before = await this.rows.findForAdmin(tx, tenantId, userId, true);
      if (!before) throw notFound();
      assertWithinRoles(p, before.roles, 'Changing this user');
      const data = await work(tx, before);
      await this.audit.record(tx, {
        tenantId,
        actor: p.actor,
        action,
        target: userId,
        data: JSON.parse(JSON.stringify(data)) as Record<string, unknown>,
      });
      return (await this.rows.findForAdmin(tx, tenantId, userId)) ?? before;
    });
  }
}

const stale = () => new ProblemError({ type: 'stale-etag', detail: 'The user changed since you read it; read it again and retry.' });
