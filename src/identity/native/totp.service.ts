import { randomInt } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { Secret, TOTP } from 'otpauth';
import { AppConfig } from '../../config/app-config.js';
import { Database, type Tx } from '../../database/database.js';
import { SecretBox } from '../../crypto/secret-box.js';
import { sha256 } from '../../crypto/random.js';
import { AuditService } from '../../audit/audit.service.js';
import { UserFactorsRepository } from '../../users/user-factors.repository.js';
import { NativeCredentialsRepository } from '../../users/native-credentials.repository.js';
import { translate, type LocalText } from '../../i18n/index.js';

/** The tenant's two-step policy for native logins: `config.mfa` of its native binding. */
export type MfaPolicy = 'off' | 'optional' | 'required';
export const MFA_POLICIES: readonly MfaPolicy[] = ['off', 'optional', 'required'];

/** Absent: off. A value that is not a policy (it cannot pass the binding's validation) fails closed. */
export const mfaPolicyOf = (config: Record<string, unknown>): MfaPolicy => {
  const v = config['mfa'];
  if (v === undefined) return 'off';
  return (MFA_POLICIES as readonly unknown[]).includes(v) ? (v as MfaPolicy) : 'required';
};

/** Thrown for every refused code; the page shows one message for all of them. */
export class InvalidSecondFactorError extends Error {
  /** The message for the hosted page, in any language (ADR 0021). */
  readonly text: readonly LocalText[] = [{ key: 'mfa.invalidCode' }];
  constructor() {
    super(translate('en', 'mfa.invalidCode'));
    this.name = 'InvalidSecondFactorError';
  }
}

// RFC 6238 as every authenticator app implements it.
const PARAMS = { algorithm: 'SHA1', digits: 6, period: 30 } as const;
const WINDOW = 1;
const RECOVERY_CODES = 10;
// No 0/o, 1/l/i: read off paper without doubt. 31^12 ≈ 2^59 per code.
const RECOVERY_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';
const RECOVERY_GROUPS = 3;
const RECOVERY_GROUP = 4;
const secretContext = (userId: string) => `user_totp:${userId}`;
const normaliseRecovery = (code: string) => code.toLowerCase().replace(/[\s-]/g, '');

export interface PendingEnrolment {
  /** Base32, for manual entry. */
  secret: string;
  /** `otpauth://totp/…`, for the QR code. */
  uri: string;
}

/**
 * TOTP (RFC 6238: SHA-1, 6 digits, 30 s, ±1 step) and recovery codes for native logins. A code
 * is accepted once: its time step must be later than the last accepted one, and the step is
 * stored by a conditional UPDATE, so two replicas cannot both accept it. Refusals count against
 * the account: NATIVE_LOCKOUT_THRESHOLD refused codes lock the local password for
 * NATIVE_LOCKOUT_SECONDS (the counter is the TOTP row's own; a correct password does not reset it).
 */
@Injectable()
export class TotpService {
  constructor(
    private readonly db: Database,
    private readonly box: SecretBox,
    private readonly factors: UserFactorsRepository,
    private readonly credentials: NativeCredentialsRepository,
    private readonly audit: AuditService,
    @Inject(AppConfig) private readonly config: AppConfig,
  ) {}

  async hasConfirmed(tenantId: string, userId: string): Promise<boolean> {
    return this.db.transaction({ tenant: tenantId }, async (tx) => (await this.factors.find(tx, userId))?.confirmed === true);
  }

  /** A fresh unconfirmed secret for the user (replacing an earlier unconfirmed one). */
  async beginEnrolment(tenantId: string, userId: string, label: string, issuer: string): Promise<PendingEnrolment> {
    const secret = new Secret({ size: 20 });
    const stored = await this.db.transaction({ tenant: tenantId }, (tx) =>
      this.factors.upsertPending(tx, tenantId, userId, this.box.seal(secret.base32, secretContext(userId))),
    );
    if (!stored) throw new InvalidSecondFactorError();
    return this.enrolmentOf(secret.base32, label, issuer);
  }

  /** The unconfirmed secret again (the enrolment page shown after a wrong code). */
  async pendingEnrolment(tenantId: string, userId: string, label: string, issuer: string): Promise<PendingEnrolment | undefined> {
    const row = await this.db.transaction({ tenant: tenantId }, (tx) => this.factors.find(tx, userId));
    if (!row || row.confirmed) return undefined;
    return this.enrolmentOf(this.box.open(row.secret, secretContext(userId)).toString('utf8'), label, issuer);
  }

  async cancelEnrolment(tenantId: string, userId: string): Promise<void> {
    await this.db.transaction({ tenant: tenantId }, (tx) => this.factors.deletePending(tx, userId));
  }

  /** Confirms the pending secret with a code from the app; returns the new recovery codes (shown once). */
  async confirmEnrolment(tenantId: string, userId: string, code: string): Promise<string[]> {
    const codes = Array.from({ length: RECOVERY_CODES }, () => recoveryCode());
    const ok = await this.db.transaction({ tenant: tenantId }, async (tx) => {
      const row = await this.factors.find(tx, userId, true);
      if (!row || row.confirmed) return false;
      if (!(await this.useTotp(tx, userId, row, code, true))) return this.refuse(tx, tenantId, userId, row);
      await this.factors.replaceRecoveryCodes(
        tx,
        tenantId,
        userId,
        codes.map((c) => sha256(normaliseRecovery(c))),
      );
      await this.audit.record(tx, { tenantId, actor: `user:${userId}`, action: 'user.totp_enrolled', target: userId, data: {} });
      return true;
    });
    if (!ok) throw new InvalidSecondFactorError();
    return codes;
  }

  /** Checks a TOTP code or a recovery code of a user with a confirmed TOTP; throws when refused. */
  async verify(tenantId: string, userId: string, code: string): Promise<'totp' | 'recovery'> {
    const used = await this.db.transaction({ tenant: tenantId }, async (tx) => {
      const row = await this.factors.find(tx, userId, true);
      if (!row?.confirmed) return false;
      if (row.passwordLockedUntil && row.passwordLockedUntil.getTime() > Date.now()) return false;
      if (/^\s*\d{3}\s?\d{3}\s*$/.test(code)) {
        if (await this.useTotp(tx, userId, row, code, false)) return 'totp' as const;
      } else if (await this.factors.useRecoveryCode(tx, userId, sha256(normaliseRecovery(code)))) {
        await this.audit.record(tx, { tenantId, actor: `user:${userId}`, action: 'user.recovery_code_used', target: userId, data: {} });
        return 'recovery' as const;
      }
      return this.refuse(tx, tenantId, userId, row);
    });
    if (!used) throw new InvalidSecondFactorError();
    return used;
  }

  /** The admin's reset: the TOTP and the recovery codes go; false when there were none. */
  async remove(tx: Tx, userId: string): Promise<boolean> {
    return this.factors.deleteAll(tx, userId);
  }

  private async useTotp(tx: Tx, userId: string, row: { secret: Buffer }, code: string, confirm: boolean): Promise<boolean> {
    const totp = new TOTP({ ...PARAMS, secret: Secret.fromBase32(this.box.open(row.secret, secretContext(userId)).toString('utf8')) });
    const now = Date.now();
    const delta = totp.validate({ token: code.replace(/\s/g, ''), timestamp: now, window: WINDOW });
    if (delta === null) return false;
    // Replay protection: the step must be later than the last accepted one (the UPDATE's condition).
    return this.factors.useStep(tx, userId, BigInt(totp.counter({ timestamp: now }) + delta), confirm);
  }

  /** A refused code: counted; at the threshold the local password locks. Returns false. */
  private async refuse(tx: Tx, tenantId: string, userId: string, row: { failedAttempts: number }): Promise<false> {
    const failures = row.failedAttempts + 1;
    const lock = failures >= this.config.NATIVE_LOCKOUT_THRESHOLD;
    await this.factors.recordFailure(tx, userId, lock ? 0 : failures);
    if (lock) {
      await this.credentials.recordFailure(tx, userId, 0, new Date(Date.now() + this.config.NATIVE_LOCKOUT_SECONDS * 1000));
      await this.audit.record(tx, {
        tenantId,
        actor: 'system',
        action: 'native.account_locked',
        target: userId,
        data: { failures, factor: 'totp' },
      });
    }
    return false;
  }

  private enrolmentOf(base32: string, label: string, issuer: string): PendingEnrolment {
    const totp = new TOTP({ ...PARAMS, issuer, label, secret: Secret.fromBase32(base32) });
    return { secret: base32, uri: totp.toString() };
  }
}

function recoveryCode(): string {
  const groups: string[] = [];
  for (let g = 0; g < RECOVERY_GROUPS; g++) {
    let s = '';
    for (let i = 0; i < RECOVERY_GROUP; i++) s += RECOVERY_ALPHABET.charAt(randomInt(RECOVERY_ALPHABET.length));
    groups.push(s);
  }
  return groups.join('-');
}
