import { Injectable } from '@nestjs/common';
import { Database } from '../database/database.js';
import { AuditService } from '../audit/audit.service.js';
import { ProblemError } from '../common/errors.js';
import { TotpService } from '../identity/native/totp.service.js';
import { PasskeyService, type PasskeyView } from '../identity/native/passkeys.service.js';
import { UserFactorsRepository } from '../users/user-factors.repository.js';
import { UsersRepository } from '../users/users.repository.js';
import type { AdminPrincipal } from './admin-auth.js';
import { assertWithinRoles } from './users-admin.service.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A user's second factors for the admin API: the reset of a lost authenticator. */
@Injectable()
export class UserFactorsAdminService {
  constructor(
    private readonly db: Database,
    private readonly users: UsersRepository,
    private readonly totp: TotpService,
    private readonly passkeys: PasskeyService,
    private readonly factors: UserFactorsRepository,
    private readonly audit: AuditService,
  ) {}

  /** The user's sign-in methods beyond the password: TOTP (set up or not) and the passkeys. */
  async list(tenantId: string, userId: string): Promise<{ totp: { confirmed: boolean }; passkeys: PasskeyView[] }> {
    if (!UUID.test(userId)) throw new ProblemError({ type: 'user-not-found' });
    return this.db.transaction({ tenant: tenantId }, async (tx) => {
      if (!(await this.users.findForAdmin(tx, tenantId, userId))) throw new ProblemError({ type: 'user-not-found' });
      const totp = await this.factors.find(tx, userId);
      return { totp: { confirmed: totp?.confirmed === true }, passkeys: await this.passkeys.listIn(tx, userId) };
    });
  }

  /** Removes one passkey of the user (a lost or shared device), with its audit event, in one transaction. */
  async removePasskey(p: AdminPrincipal, tenantId: string, userId: string, passkeyId: string): Promise<void> {
    if (!UUID.test(userId)) throw new ProblemError({ type: 'user-not-found' });
    await this.db.transaction({ tenant: tenantId }, async (tx) => {
      const user = await this.users.findForAdmin(tx, tenantId, userId, true);
      if (!user) throw new ProblemError({ type: 'user-not-found' });
      assertWithinRoles(p, user.roles, 'Changing this user');
      if (!(await this.passkeys.remove(tx, userId, passkeyId)))
        throw new ProblemError({ type: 'factor-not-found', detail: 'This user has no passkey with that id.' });
      await this.audit.record(tx, {
        tenantId,
        actor: p.actor,
        action: 'user.passkey_removed',
        target: userId,
        data: { passkey: passkeyId },
      });
    });
  }

  /** Removes the user's TOTP and recovery codes, with its audit event, in one transaction. */
  async removeTotp(p: AdminPrincipal, tenantId: string, userId: string): Promise<void> {
    if (!UUID.test(userId)) throw new ProblemError({ type: 'user-not-found' });
    await this.db.transaction({ tenant: tenantId }, async (tx) => {
      const user = await this.users.findForAdmin(tx, tenantId, userId, true);
      if (!user) throw new ProblemError({ type: 'user-not-found' });
      assertWithinRoles(p, user.roles, 'Changing this user');
      if (!(await this.totp.remove(tx, userId)))
        throw new ProblemError({ type: 'factor-not-found', detail: 'This user has no two-step verification set up.' });
      await this.audit.record(tx, { tenantId, actor: p.actor, action: 'user.totp_removed', target: userId, data: {} });
    });
  }
}
