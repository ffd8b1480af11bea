import type { Tx } from '../../database/database.js';

/**
 * A password hash format imported from another system (e.g. Firebase's modified scrypt) that
 * native credentials accept until the user's first successful login, when the hash is replaced
 * by argon2id. Implementations live with the system they bridge from.
 */
export interface LegacyPasswordVerifier {
  /** Short name for audit events (`firebase-scrypt`). */
  readonly format: string;
  canVerify(storedHash: string): boolean;
  /** Runs inside the caller's tenant transaction. */
  verify(m: Tx, tenantId: string, storedHash: string, password: string): Promise<boolean>;
}

export const LEGACY_PASSWORD_VERIFIERS = Symbol('LEGACY_PASSWORD_VERIFIERS');
