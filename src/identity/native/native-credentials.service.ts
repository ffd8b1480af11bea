import { Inject, Injectable, Optional } from '@nestjs/common';
import { AppConfig } from '../../config/app-config.js';
import { Database, type Tx } from '../../database/database.js';
import { AuditService } from '../../audit/audit.service.js';
import { UsersService } from '../../users/users.service.js';
import { NativeCredentialsRepository } from '../../users/native-credentials.repository.js';
import { ProblemError } from '../../common/errors.js';
import { PasswordHasher } from './password-hasher.js';
import { MAX_PASSWORD, assertPasswordAllowed, passwordPolicyOf, type PasswordPolicy } from './password-policy.js';
import { TenantsService } from '../../tenants/tenants.service.js';
import { LEGACY_PASSWORD_VERIFIERS, type LegacyPasswordVerifier } from './legacy-password.port.js';

export interface NewNativeUser {
  username: string;
  /** Absent for an invited user, who sets it through the invitation link. */
  password?: string;
  email?: string;
  emailVerified?: boolean;
  displayName?: string;
  roles?: string[];
}

export type PasswordCheck = { ok: true; userId: string; username: string } | { ok: false };

/** Local passwords (argon2id) with per-account lockout. */
@Injectable()
export class NativeCredentialsService {
  readonly hasher: PasswordHasher;

  constructor(
    private readonly db: Database,
    private readonly users: UsersService,
    private readonly credentials: NativeCredentialsRepository,
    private readonly audit: AuditService,
    private readonly tenants: TenantsService,
    @Inject(AppConfig) private readonly config: AppConfig,
    @Optional() @Inject(LEGACY_PASSWORD_VERIFIERS) private readonly legacyVerifiers: LegacyPasswordVerifier[] = [],
  ) {
    this.hasher = new PasswordHasher({ timeCost: config.ARGON2_TIME_COST, memoryKib: config.ARGON2_MEMORY_KIB });
  }

  /**
   * Creates a user with a local password. With `audit`, the `user.created` audit row is written in
   * the same transaction as the user (the admin API); the audit data holds neither the password nor the username or email.
   */
  async createUser(
    tenantId: string,
    input: NewNativeUser,
    audit?: { actor: string },
    /** More work of the same transaction once the user exists (an invitation's link and mail). */
    also?: (tx: Tx, userId: string) => Promise<void>,
  ): Promise<string> {
    if (input.password !== undefined) await this.assertAllowed(tenantId, input.password, input);
    const hash = input.password === undefined ? null : await this.hasher.hash(input.password);
    try {
      return await this.db.transaction({ tenant: tenantId }, async (tx) => {
        const userId = await this.users.create(tx, tenantId, {
          email: input.email ?? null,
          emailVerified: input.emailVerified,
          displayName: input.displayName,
        });
        await this.credentials.insert(tx, { userId, tenantId, username: input.username, passwordHash: hash });
        if (input.roles?.length) await this.users.syncRoles(tx, tenantId, userId, 'manual', input.roles);
        // Like SCIM's audit rows: the id and what it may do, no username or email (PII).
        if (audit)
          await this.audit.record(tx, {
            tenantId,
            actor: audit.actor,
            action: 'user.created',
            target: userId,
            data: {
              credential: 'native',
              roles: input.roles ?? [],
              emailVerified: input.emailVerified ?? false,
              ...(hash === null ? { password: 'to be set' } : {}),
            },
          });
        if (also) await also(tx, userId);
        return userId;
      });
    } catch (err) {
      if ((err as { code?: string }).code === '23505')
        throw new ProblemError({ type: 'username-taken', detail: 'That username exists in this tenant.' });
      throw err;
    }
  }

  /** The tenant's rules for local passwords, defaults filled in. */
  async policyOf(tenantId: string): Promise<PasswordPolicy> {
    return passwordPolicyOf((await this.tenants.findById(tenantId))?.passwordPolicy);
  }

  /** Throws the `invalid-password` problem when the tenant's policy refuses the password for this user. */
  async assertAllowed(
    tenantId: string,
    password: string,
    user: { username?: string | null; email?: string | null; displayName?: string | null },
  ): Promise<void> {
    await assertPasswordAllowed(await this.policyOf(tenantId), password, user);
  }

  /**
   * Checks a password. Unknown users, locked accounts and wrong passwords give the same answer
   * after the same argon2 work. The failure counter is committed even though the login fails.
   */
  async verify(tenantId: string, username: string, password: string): Promise<PasswordCheck> {
    if (username.length === 0 || username.length > 320 || password.length === 0 || password.length > MAX_PASSWORD) {
      await this.hasher.burn(password.slice(0, MAX_PASSWORD));
      return { ok: false };
    }
    return this.db.transaction({ tenant: tenantId }, async (tx) => {
      const row = await this.credentials.findForLogin(tx, tenantId, username);
      if (!row) {
        await this.hasher.burn(password);
        return { ok: false } as const;
      }
      // An invited user who has not set a password yet, or one an admin reset: nobody signs in with it.
      const stored = row.passwordHash;
      if (stored === null || (row.lockedUntil && row.lockedUntil.getTime() > Date.now())) {
        await this.hasher.burn(password);
        return { ok: false } as const;
      }
      // An imported hash (e.g. Firebase scrypt) is verified once and then replaced by argon2id.
      const legacy = this.legacyVerifiers.find((v) => v.canVerify(stored));
      const ok = legacy ? await legacy.verify(tx, tenantId, stored, password) : await this.hasher.verify(stored, password);
      if (!ok) {
        if (legacy) await this.hasher.burn(password); // never faster than an argon2 failure
        const failures = row.failedAttempts + 1;
        const lock = failures >= this.config.NATIVE_LOCKOUT_THRESHOLD;
        await this.credentials.recordFailure(
          tx,
          row.userId,
          lock ? 0 : failures,
          lock ? new Date(Date.now() + this.config.NATIVE_LOCKOUT_SECONDS * 1000) : row.lockedUntil,
        );
        if (lock)
          await this.audit.record(tx, {
            tenantId,
            actor: 'system',
            action: 'native.account_locked',
            target: row.userId,
            data: { failures },
          });
        return { ok: false } as const;
      }
      const rehash = legacy || this.hasher.needsRehash(stored) ? await this.hasher.hash(password) : stored;
      if (legacy)
        await this.audit.record(tx, {
          tenantId,
          actor: 'system',
          action: 'native.password_rehashed',
          target: row.userId,
          data: { from: legacy.format },
        });
      await this.credentials.recordSuccess(tx, row.userId, rehash);
      return { ok: true, userId: row.userId, username: row.username } as const;
    });
  }
}
