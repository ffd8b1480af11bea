import { Inject, Injectable } from '@nestjs/common';
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type AuthenticatorTransportFuture,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { AppConfig } from '../../config/app-config.js';
import { Database, type Tx } from '../../database/database.js';
import { AuditService } from '../../audit/audit.service.js';
import { ProblemError } from '../../common/errors.js';
import { UserPasskeysRepository, type PasskeyRow } from '../../users/user-passkeys.repository.js';
import { translate, type LocalText, type MessageKey, type MessageParams } from '../../i18n/index.js';

/** Whether a tenant's native users may register and sign in with passkeys: `config.passkeys` of its native binding. */
export type PasskeyPolicy = 'off' | 'allowed';
export const PASSKEY_POLICIES: readonly PasskeyPolicy[] = ['off', 'allowed'];

/** Absent or anything but `allowed` (which the binding's validation refuses anyway): off. */
export const passkeyPolicyOf = (config: Record<string, unknown>): PasskeyPolicy => (config['passkeys'] === 'allowed' ? 'allowed' : 'off');

/** Thrown for every refused passkey ceremony; the page shows the message and a fresh challenge. */
export class InvalidPasskeyError extends Error {
  /** The message for the hosted page, in any language (ADR 0021); `message` is its English. */
  readonly text: readonly LocalText[];
  constructor(key: MessageKey = 'passkey.notVerified', params?: MessageParams) {
    super(translate('en', key, params));
    this.text = [{ key, ...(params ? { params } : {}) }];
    this.name = 'InvalidPasskeyError';
  }
}

/** A passkey as its owner and the tenant's admins see it: nothing an authentication needs. */
export interface PasskeyView {
  id: string;
  name: string;
  deviceType: 'singleDevice' | 'multiDevice';
  backedUp: boolean;
  transports: string[];
  aaguid: string;
  createdAt: string;
  lastUsedAt: string | null;
}

export const passkeyView = (p: PasskeyRow): PasskeyView => ({
  id: p.id,
  name: p.name,
  deviceType: p.deviceType,
  backedUp: p.backedUp,
  transports: p.transports,
  aaguid: p.aaguid,
  createdAt: p.createdAt.toISOString(),
  lastUsedAt: p.lastUsedAt?.toISOString() ?? null,
});

/** Who a verified assertion signed in, and how (RFC 8176). */
export interface PasskeyAuthentication {
  userId: string;
  username: string;
  /** `hwk` for a device-bound credential, `swk` for a synced one (its key leaves the device). */
  method: 'hwk' | 'swk';
}

const MAX_RESPONSE = 16 * 1024;
const MAX_PASSKEYS_PER_USER = 10;
const TRANSPORTS = new Set(['ble', 'cable', 'hybrid', 'internal', 'nfc', 'smart-card', 'usb']);

/**
 * WebAuthn for native users (issue #17), on @simplewebauthn/server: registration of discoverable
 * credentials with user verification, and assertions for a password-less sign-in (any passkey of
 * the tenant, found by its credential id) or as the second step after a password (only the user's
 * own). The relying party is PUBLIC_URL: its host is the RP ID, its origin the only origin
 * accepted. The challenge is the caller's (kept single-use on the login transaction). Attestation
 * is not asked for: a tenant cannot restrict authenticator models, and no metadata is fetched.
 */
@Injectable()
export class PasskeyService {
  constructor(
    private readonly db: Database,
    private readonly passkeys: UserPasskeysRepository,
    private readonly audit: AuditService,
    @Inject(AppConfig) private readonly config: AppConfig,
  ) {}

  /** The relying party: PUBLIC_URL's host and origin. */
  get rp(): { id: string; origin: string } {
    const url = new URL(this.config.issuer);
    return { id: url.hostname, origin: url.origin };
  }

  async hasAny(tenantId: string, userId: string): Promise<boolean> {
    return this.db.transaction({ tenant: tenantId }, async (tx) => (await this.passkeys.countForUser(tx, userId)) > 0);
  }

  /** Options for `navigator.credentials.create()`; the user's passkeys are excluded (one per authenticator). */
  async registrationOptions(
    tenant: { id: string; displayName: string },
    user: { id: string; username: string },
  ): Promise<PublicKeyCredentialCreationOptionsJSON> {
    const existing = await this.db.transaction({ tenant: tenant.id }, (tx) => this.passkeys.listForUser(tx, user.id));
    return generateRegistrationOptions({
      rpName: tenant.displayName,
      rpID: this.rp.id,
      // The user handle is the platform id: stable, not personal, and what a sign-in finds the user by.
      userID: uuidBytes(user.id),
      userName: user.username,
      attestationType: 'none',
      excludeCredentials: existing.map((p) => ({ id: p.credentialId, transports: transportsOf(p.transports) })),
      authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
    });
  }

  /** Verifies a registration against the challenge the page was given and stores the passkey. */
  async register(tenantId: string, userId: string, posted: string, expectedChallenge: string, name: string): Promise<PasskeyView> {
    const response = parseResponse(posted, 'attestationObject') as unknown as RegistrationResponseJSON;
    let info;
    try {
      const verified = await verifyRegistrationResponse({
        response,
        expectedChallenge,
        expectedOrigin: this.rp.origin,
        expectedRPID: this.rp.id,
        requireUserVerification: true,
      });
      if (!verified.verified) throw new InvalidPasskeyError();
      info = verified.registrationInfo;
    } catch (err) {
      throw err instanceof InvalidPasskeyError ? err : new InvalidPasskeyError('passkey.notRegistered');
    }
    return this.db.transaction({ tenant: tenantId }, async (tx) => {
      if ((await this.passkeys.countForUser(tx, userId)) >= MAX_PASSKEYS_PER_USER)
        throw new InvalidPasskeyError('passkey.limit', { max: MAX_PASSKEYS_PER_USER });
      const stored = await this.passkeys.insert(tx, {
        tenantId,
        userId,
        credentialId: info.credential.id,
        publicKey: Buffer.from(info.credential.publicKey),
        signCount: info.credential.counter,
        transports: (info.credential.transports ?? []).filter((t) => TRANSPORTS.has(t)),
        deviceType: info.credentialDeviceType,
        backedUp: info.credentialBackedUp,
        aaguid: info.aaguid,
        name: name.trim().slice(0, 100) || `Passkey added ${new Date().toISOString().slice(0, 10)}`,
      });
      if (!stored) throw new InvalidPasskeyError('passkey.duplicate');
      await this.audit.record(tx, {
        tenantId,
        actor: `user:${userId}`,
        action: 'user.passkey_registered',
        target: userId,
        data: { passkey: stored.id, deviceType: stored.deviceType, backedUp: stored.backedUp },
      });
      return passkeyView(stored);
    });
  }

  /**
   * Options for `navigator.credentials.get()`: for a password-less sign-in none are listed (the
   * authenticator offers its discoverable credentials); for a second step, the user's own.
   */
  async authenticationOptions(tenantId: string, userId?: string): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const own = userId ? await this.db.transaction({ tenant: tenantId }, (tx) => this.passkeys.listForUser(tx, userId)) : [];
    return generateAuthenticationOptions({
      rpID: this.rp.id,
      allowCredentials: own.map((p) => ({ id: p.credentialId, transports: transportsOf(p.transports) })),
      userVerification: userId ? 'preferred' : 'required',
    });
  }

  /**
   * Verifies an assertion against the challenge the page was given: the credential must be
   * registered in this tenant to an active user (to `userId` when given: a second step), signed by
   * its key for this origin and RP ID, with user verification for a password-less sign-in, and a
   * counter that grows (when the authenticator counts). The counter and backup state are stored.
   */
  async authenticate(tenantId: string, posted: string, expectedChallenge: string, userId?: string): Promise<PasskeyAuthentication> {
    const response = parseResponse(posted, 'authenticatorData') as unknown as AuthenticationResponseJSON;
    const done = await this.db.transaction({ tenant: tenantId }, async (tx: Tx) => {
      const passkey = await this.passkeys.findForSignIn(tx, response.id);
      if (!passkey || (userId !== undefined && passkey.userId !== userId)) return undefined;
      // A discoverable credential names its user: it must be the one it was registered to.
      if (
        response.response.userHandle !== undefined &&
        response.response.userHandle !== Buffer.from(uuidBytes(passkey.userId)).toString('base64url')
      )
        return undefined;
      let info;
      try {
        const verified = await verifyAuthenticationResponse({
          response,
          expectedChallenge,
          expectedOrigin: this.rp.origin,
          expectedRPID: this.rp.id,
          credential: {
            id: passkey.credentialId,
            publicKey: new Uint8Array(passkey.publicKey),
            counter: passkey.signCount,
            transports: transportsOf(passkey.transports),
          },
          requireUserVerification: userId === undefined,
        });
        if (!verified.verified) return undefined;
        info = verified.authenticationInfo;
      } catch {
        return undefined;
      }
      if (!(await this.passkeys.recordUse(tx, passkey.id, passkey.signCount, info.newCounter, info.credentialBackedUp))) return undefined;
      return {
        userId: passkey.userId,
        username: passkey.username,
        method: passkey.deviceType === 'multiDevice' ? 'swk' : 'hwk',
      } satisfies PasskeyAuthentication;
    });
    if (!done) throw new InvalidPasskeyError();
    return done;
  }

  async list(tenantId: string, userId: string): Promise<PasskeyView[]> {
    return this.db.transaction({ tenant: tenantId }, (tx) => this.listIn(tx, userId));
  }

  async listIn(tx: Tx, userId: string): Promise<PasskeyView[]> {
    return (await this.passkeys.listForUser(tx, userId)).map(passkeyView);
  }

  /** The user's own removal (account API), with its audit event; 404 when the passkey is not theirs. */
  async removeByOwner(tenantId: string, userId: string, passkeyId: string): Promise<void> {
    await this.db.transaction({ tenant: tenantId }, async (tx) => {
      if (!(await this.remove(tx, userId, passkeyId)))
        throw new ProblemError({ type: 'factor-not-found', detail: 'You have no passkey with that id.' });
      await this.audit.record(tx, {
        tenantId,
        actor: `user:${userId}`,
        action: 'user.passkey_removed',
        target: userId,
        data: { passkey: passkeyId },
      });
    });
  }

  /** Removes one passkey of the user in the caller's transaction; false when it is not theirs. */
  async remove(tx: Tx, userId: string, passkeyId: string): Promise<boolean> {
    return UUID.test(passkeyId) && this.passkeys.delete(tx, userId, passkeyId);
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function uuidBytes(id: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(Buffer.from(id.replace(/-/g, ''), 'hex'));
}

function transportsOf(stored: string[]): AuthenticatorTransportFuture[] {
  return stored.filter((t) => TRANSPORTS.has(t)) as AuthenticatorTransportFuture[];
}

/** The credential the page posted (JSON, as the browser serialises a PublicKeyCredential), checked for shape only. */
function parseResponse(posted: string, field: string): Record<string, unknown> {
  if (posted.length === 0 || posted.length > MAX_RESPONSE) throw new InvalidPasskeyError();
  let value: unknown;
  try {
    value = JSON.parse(posted);
  } catch {
    throw new InvalidPasskeyError();
  }
  if (!value || typeof value !== 'object') throw new InvalidPasskeyError();
  const v = value as Record<string, unknown>;
  const r = v['response'] as Record<string, unknown> | null | undefined;
  if (
    typeof v['id'] !== 'string' ||
    v['id'].length > 1024 ||
    typeof v['rawId'] !== 'string' ||
    v['type'] !== 'public-key' ||
    !r ||
    typeof r !== 'object' ||
    typeof r['clientDataJSON'] !== 'string' ||
    typeof r[field] !== 'string'
  )
    throw new InvalidPasskeyError();
  if (!v['clientExtensionResults'] || typeof v['clientExtensionResults'] !== 'object') v['clientExtensionResults'] = {};
  return v;
}
