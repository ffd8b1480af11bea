import type { Tx } from '../../database/database.js';
import { Injectable } from '@nestjs/common';
import { ProblemError } from '../../common/errors.js';
import type { LegacyPasswordVerifier } from '../native/legacy-password.port.js';
import { FirebaseHashConfigStore } from './firebase-hash-configs.js';
import { isFirebasePasswordHash, parseFirebasePasswordHash } from './firebase-password-hash.js';
import { verifyFirebaseScrypt } from './firebase-scrypt.js';

/** Lets native logins accept passwords imported from Firebase (`$firebase-scrypt$…`) until they are rehashed. */
@Injectable()
export class FirebasePasswordVerifier implements LegacyPasswordVerifier {
  readonly format = 'firebase-scrypt';

  constructor(private readonly configs: FirebaseHashConfigStore) {}

  canVerify(storedHash: string): boolean {
    return isFirebasePasswordHash(storedHash);
  }

  async verify(m: Tx, tenantId: string, storedHash: string, password: string): Promise<boolean> {
    const parsed = parseFirebasePasswordHash(storedHash);
    if (!parsed) return false;
    const params = await this.configs.load(m, tenantId, parsed.configId);
    // Without its parameters the hash can never verify: an operator error, not a wrong password.
    if (!params)
      throw new ProblemError({
        type: 'firebase-hash-config-missing',
        detail: 'The Firebase hash parameters of an imported password are missing.',
      });
    return verifyFirebaseScrypt(password, { passwordHash: parsed.passwordHash, salt: parsed.salt }, params);
  }
}
