import { Inject, Injectable } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppConfig } from '../config/app-config.js';
import { Database, type Tx } from '../database/database.js';
import { AuditService } from '../audit/audit.service.js';
import { ProblemError, RateLimitedError } from '../common/errors.js';
import { mintOpaqueToken, parseOpaqueToken } from '../crypto/opaque-token.js';
import { NativeCredentialsService } from '../identity/native/native-credentials.service.js';
import { NativeCredentialsRepository } from '../users/native-credentials.repository.js';
import { UsersRepository, type UserAdminRow } from '../users/users.repository.js';
import { SessionsService } from '../sessions/sessions.service.js';
import { TenantsService, type Tenant } from '../tenants/tenants.service.js';
import { RateLimiter } from '../rate-limit/rate-limiter.js';
import { MailDeliveryService } from '../mail/mail-delivery.service.js';
import { translate } from '../i18n/index.js';
import { emailVerificationMail, invitationMail, passwordResetMail } from '../mail/templates.js';
import { AccountTokensRepository, type AccountAction, type AccountTokenRow } from './account-tokens.repository.js';

/** Who did it, for the audit trail: an admin's actor, or the user through a link. */
export interface AccountActor {
  actor: string;
}

/** What a link's page shows before it is used. */
export interface OpenedLink {
  purpose: AccountAction;
  tenant: Tenant;
  username: string | null;
  email: string | null;
}

const TEMPLATES = { invitation: invitationMail, 'password-reset': passwordResetMail, 'email-verification': emailVerificationMail };

/** Where each kind of link leads on the hosted pages. */
const PAGE: Record<AccountAction, string> = { invitation: 'password', 'password-reset': 'password', 'email-verification': 'verify-email' };

/** The "forgot password" answer takes at least this long, known account or not (the work differs by two inserts). */
const FORGOT_FLOOR_MS = 300;

const usernameTaken = () => new ProblemError({ type: 'username-taken', detail: 'That username exists in this tenant: give another one.' });

const passwordReused = () =>
  new ProblemError({
    type: 'invalid-password',
    title: 'Password reused',
    detail: translate('en', 'password.reused'),
    text: [{ key: 'password.reused' }],
  });

const invalidLink = () =>
  new ProblemError({
    type: 'link-invalid',
    detail: 'This link is invalid, has expired or was already used. Ask for a new one.',
  });

/**
 * The account email flows of local passwords (issue #17): invitations (set your password), forgot
 * password, forced resets and email verification, each a one-time link mailed from the outbox in
 * the transaction of the change that caused it; and a signed-in user's password change. A link is
 * `ak_<tenant>_<secret>`, stored as its hash, bound to one user, one purpose and the address it
 * was sent to, valid once and for a short time; a newer link of the same purpose retires older ones.
 */
@Injectable()
export class AccountService {
  constructor(
    private readonly db: Database,
    private readonly links: AccountTokensRepository,
    private readonly credentials: NativeCredentialsService,
    private readonly credentialRows: NativeCredentialsRepository,
    private readonly users: UsersRepository,
    private readonly sessions: SessionsService,
    private readonly tenants: TenantsService,
    private readonly audit: AuditService,
    private readonly mail: MailDeliveryService,
    private readonly limiter: RateLimiter,
    @Inject(AppConfig) private readonly config: AppConfig,
  ) {}

  private ttlSeconds(purpose: AccountAction): number {
    if (purpose === 'invitation') return this.config.INVITATION_TTL_HOURS * 3600;
    if (purpose === 'password-reset') return this.config.RESET_LINK_TTL_MINUTES * 60;
    return this.config.EMAIL_VERIFICATION_TTL_HOURS * 3600;
  }

  /**
   * Issues a link and queues its mail in the caller's transaction: the mail exists if and only if
   * the change commits. Call `this.mail.kick()` after the commit (`afterCommit`).
   */
  async sendLink(tx: Tx, tenant: Tenant, userId: string, purpose: AccountAction, email: string): Promise<void> {
    const token = mintOpaqueToken('ak', tenant.id);
    const ttl = this.ttlSeconds(purpose);
    await this.links.issue(tx, {
      tenantId: tenant.id,
      userId,
      purpose,
      tokenHash: token.hash,
      email: email.toLowerCase(),
      ttlSeconds: ttl,
    });
    const link = `${this.config.issuer}/account/${PAGE[purpose]}/${token.value}`;
    const rendered = TEMPLATES[purpose]({
      tenantName: tenant.displayName,
      link,
      expiresInMinutes: Math.round(ttl / 60),
      lang: tenant.defaultLocale ?? undefined,
    });
    await this.mail.enqueue(tx, { tenantId: tenant.id, recipient: email, purpose, senderName: tenant.displayName, ...rendered });
  }

  /** Wakes the mail delivery once a transaction that queued mail has committed. */
  afterCommit(): void {
    this.mail.kick();
  }

  /**
   * An admin's mail-sending change of one user: in one transaction of the (active) tenant, the
   * user's row locked; the mail is woken once it has committed.
   */
  private async withUser(
    tenantId: string,
    userId: string,
    work: (tx: Tx, tenant: Tenant, user: UserAdminRow) => Promise<void>,
  ): Promise<void> {
    const tenant = await this.tenants.findById(tenantId);
    if (!tenant || tenant.status !== 'active') throw new ProblemError({ type: 'tenant-not-found' });
    await this.db.transaction({ tenant: tenant.id }, async (tx) => {
      const user = await this.users.findForAdmin(tx, tenant.id, userId, true);
      if (!user) throw new ProblemError({ type: 'user-not-found' });
      await work(tx, tenant, user);
    });
    this.afterCommit();
  }

  /**
   * Invites a user who has no local password (a SCIM-provisioned or IdP user, or one created by
   * invitation) to set one: a local credential without a password, then the invitation mail.
   */
  async invite(p: AccountActor, tenantId: string, userId: string, username?: string): Promise<void> {
    await this.withUser(tenantId, userId, async (tx, tenant, user) => {
      if (user.status !== 'active') throw new ProblemError({ type: 'user-disabled', detail: 'Enable the user before inviting them.' });
      if (!user.email) throw new ProblemError({ type: 'no-email', detail: 'The user has no email address to send the invitation to.' });
      const existing = await this.credentialRows.findByUser(tx, userId);
      if (existing?.passwordHash)
        throw new ProblemError({
          type: 'password-exists',
          detail: 'The user already has a local password; send a password reset instead.',
        });
      if (!existing) {
        const name = username ?? user.scimUserName ?? user.email;
        if (await this.credentialRows.findUserIdByUsername(tx, tenant.id, name)) throw usernameTaken();
        await this.credentialRows.insert(tx, { userId, tenantId: tenant.id, username: name, passwordHash: null });
      }
      await this.sendLink(tx, tenant, userId, 'invitation', user.email);
      await this.users.touch(tx, userId);
      await this.audit.record(tx, { tenantId: tenant.id, actor: p.actor, action: 'user.invited', target: userId });
    }).catch((err: unknown) => {
      // Another invitation took the username between the check and the insert.
      throw (err as { code?: string }).code === '23505' ? usernameTaken() : err;
    });
  }

  /**
   * An admin's forced reset: the current password stops working at once, every session ends, and
   * the user gets a link to choose a new one.
   */
  async forceReset(p: AccountActor, tenantId: string, userId: string): Promise<void> {
    await this.withUser(tenantId, userId, async (tx, tenant, user) => {
      if (!user.email) throw new ProblemError({ type: 'no-email', detail: 'The user has no email address to send the reset link to.' });
      if (!(await this.credentialRows.setPassword(tx, userId, null)))
        throw new ProblemError({
          type: 'no-local-password',
          detail: 'This user signs in through an identity provider, not a local password.',
        });
      const ended = await this.sessions.revokeAllOfUser(tx, userId, 'password_reset');
      await this.sendLink(tx, tenant, userId, 'password-reset', user.email);
      await this.users.touch(tx, userId);
      await this.audit.record(tx, {
        tenantId: tenant.id,
        actor: p.actor,
        action: 'user.password_reset_forced',
        target: userId,
        data: { sessionsEnded: ended },
      });
    });
  }

  /** Sends a link that verifies the user's current email address. */
  async sendVerification(p: AccountActor, tenantId: string, userId: string): Promise<void> {
    await this.withUser(tenantId, userId, async (tx, tenant, user) => {
      if (!user.email) throw new ProblemError({ type: 'no-email', detail: 'The user has no email address to verify.' });
      if (user.emailVerified) throw new ProblemError({ type: 'email-verified', detail: 'The email address is verified already.' });
      await this.sendLink(tx, tenant, userId, 'email-verification', user.email);
      await this.audit.record(tx, { tenantId: tenant.id, actor: p.actor, action: 'user.verification_sent', target: userId });
    });
  }

  /**
   * "Forgot password" on the hosted form: the same answer, after at least the same time, whether
   * or not the name belongs to an account (it never says which). Limited per address and per name typed.
   */
  async forgot(tenant: Tenant, identifier: string, ip: string): Promise<void> {
    const started = Date.now();
    const name = identifier.trim().slice(0, 320);
    const perIp = { bucket: `pwreset:${ip}`, limit: this.config.RATE_LIMIT_FORGOT_PER_MINUTE };
    const limit = await this.limiter.check([
      perIp,
      {
        bucket: `pwreset-account:${tenant.id}:${name.toLowerCase()}`,
        limit: this.config.RATE_LIMIT_FORGOT_PER_ACCOUNT_PER_HOUR,
        windowSeconds: 3600,
      },
    ]);
    if (!limit.allowed)
      throw new RateLimitedError(
        limit.retryAfter,
        limit.refusedBy === perIp ? 'password reset requests from this network' : 'password reset requests for this account',
      );
    if (name.length > 0) {
      const queued = await this.db.transaction({ tenant: tenant.id }, async (tx) => {
        const match = await this.credentialRows.findForReset(tx, tenant.id, name);
        if (!match || match.status !== 'active' || !match.email) return false;
        await this.sendLink(tx, tenant, match.userId, 'password-reset', match.email);
        await this.audit.record(tx, {
          tenantId: tenant.id,
          actor: 'system',
          action: 'user.password_reset_requested',
          target: match.userId,
        });
        return true;
      });
      if (queued) this.afterCommit();
    }
    const left = FORGOT_FLOOR_MS - (Date.now() - started);
    if (left > 0) await sleep(left);
  }

  /**
   * Opens a link in its tenant's transaction: well formed, unused, unexpired, of one of
   * `purposes`, its user live (locked until the work ends); anything else is the same refusal.
   */
  private async withLink<T>(
    value: string,
    purposes: readonly AccountAction[],
    work: (tx: Tx, tenant: Tenant, link: AccountTokenRow, user: UserAdminRow) => Promise<T>,
  ): Promise<T> {
    const token = parseOpaqueToken('ak', value);
    if (!token) throw invalidLink();
    const tenant = await this.tenants.findById(token.tenantId);
    if (!tenant || tenant.status !== 'active') throw invalidLink();
    return this.db.transaction({ tenant: tenant.id }, async (tx) => {
      const link = await this.links.findForUpdate(tx, token.hash);
      if (!link || link.usedAt || link.expiresAt.getTime() <= Date.now() || !purposes.includes(link.purpose)) throw invalidLink();
      const user = await this.users.findForAdmin(tx, tenant.id, link.userId);
      if (!user || user.status !== 'active') throw invalidLink();
      return work(tx, tenant, link, user);
    });
  }

  /** What a link's page shows; uses nothing (a mail scanner's GET must not spend the link). */
  async open(value: string, purposes: readonly AccountAction[]): Promise<OpenedLink> {
    return this.withLink(value, purposes, async (tx, tenant, link) => {
      const credential = await this.credentialRows.findByUser(tx, link.userId);
      return { purpose: link.purpose, tenant, username: credential?.username ?? null, email: link.email };
    });
  }

  /**
   * Sets the password of an invitation or reset link and spends the link. The tenant's policy
   * applies, and a reset may not set the current password again. A reset ends every session; an
   * accepted invitation verifies the address it was sent to.
   */
  async setPassword(value: string, password: string): Promise<OpenedLink> {
    return this.withLink(value, ['invitation', 'password-reset'], async (tx, tenant, link, user) => {
      const credential = await this.credentialRows.findByUser(tx, link.userId);
      if (!credential) throw invalidLink();
      await this.credentials.assertAllowed(tenant.id, password, {
        username: credential.username,
        email: user.email,
        displayName: user.displayName,
      });
      if (credential.passwordHash && (await this.credentials.hasher.verify(credential.passwordHash, password))) throw passwordReused();
      await this.credentialRows.setPassword(tx, link.userId, await this.credentials.hasher.hash(password));
      await this.links.revokeAllOfUser(tx, link.userId);
      const verified =
        link.purpose === 'invitation' && link.email !== null && (await this.users.markEmailVerified(tx, link.userId, link.email));
      if (!verified) await this.users.touch(tx, link.userId);
      const ended = link.purpose === 'password-reset' ? await this.sessions.revokeAllOfUser(tx, link.userId, 'password_reset') : 0;
      await this.audit.record(tx, {
        tenantId: tenant.id,
        actor: `user:${link.userId}`,
        action: 'user.password_set',
        target: link.userId,
        data: { through: link.purpose, emailVerified: verified, sessionsEnded: ended },
      });
      return { purpose: link.purpose, tenant, username: credential.username, email: link.email };
    });
  }

  /** Verifies the address a verification link was sent to, if it is still the user's, and spends the link. */
  async verifyEmail(value: string): Promise<OpenedLink> {
    return this.withLink(value, ['email-verification'], async (tx, tenant, link) => {
      if (!link.email || !(await this.users.markEmailVerified(tx, link.userId, link.email))) throw invalidLink();
      await this.links.markUsed(tx, link.id);
      await this.audit.record(tx, {
        tenantId: tenant.id,
        actor: `user:${link.userId}`,
        action: 'user.email_verified',
        target: link.userId,
      });
      return { purpose: link.purpose, tenant, username: null, email: link.email };
    });
  }

  /**
   * A signed-in user changes their own password: the current one must be right (a wrong one counts
   * towards the lockout, like a failed sign-in), the new one must pass the policy and differ.
   */
  async changePassword(tenantId: string, userId: string, current: string, next: string): Promise<void> {
    const credential = await this.db.transaction({ tenant: tenantId }, (tx) => this.credentialRows.findByUser(tx, userId));
    if (!credential)
      throw new ProblemError({
        type: 'no-local-password',
        detail: 'You sign in through an identity provider: change your password there.',
      });
    const check = await this.credentials.verify(tenantId, credential.username, current);
    if (!check.ok || check.userId !== userId)
      throw new ProblemError({ type: 'invalid-password', title: 'Wrong password', detail: 'The current password is not right.' });
    if (current === next) throw passwordReused();
    const user = await this.db.transaction({ tenant: tenantId }, (tx) => this.users.findForAdmin(tx, tenantId, userId));
    await this.credentials.assertAllowed(tenantId, next, {
      username: credential.username,
      email: user?.email,
      displayName: user?.displayName,
    });
    const hash = await this.credentials.hasher.hash(next);
    await this.db.transaction({ tenant: tenantId }, async (tx) => {
      await this.credentialRows.setPassword(tx, userId, hash);
      await this.links.revokeAllOfUser(tx, userId);
      await this.users.touch(tx, userId);
      await this.audit.record(tx, { tenantId, actor: `user:${userId}`, action: 'user.password_changed', target: userId });
    });
  }
}
