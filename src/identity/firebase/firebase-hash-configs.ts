import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { SecretBox } from '../../crypto/secret-box.js';
import { type Tx } from '../../database/database.js';
import { FirebaseHashConfigsRepository } from './firebase-hash-configs.repository.js';
import type { FirebaseScryptParams } from './firebase-scrypt.js';

// Bound to the row and its tenant: a sealed value copied into another row or tenant fails to open.
const sealContext = (tenantId: string, id: string) => `firebase_hash_config:${tenantId}:${id}`;

/** A Firebase project's password hash parameters, sealed at rest (`FirebaseHashConfigsRepository` holds the SQL). */
@Injectable()
export class FirebaseHashConfigStore {
  constructor(
    private readonly box: SecretBox,
    private readonly configs: FirebaseHashConfigsRepository,
  ) {}

  async insert(handle: Tx, tenantId: string, firebaseProjectId: string, params: FirebaseScryptParams): Promise<string> {
    const id = randomUUID();
    const sealedParams = this.box.sealJson(
      { signerKey: params.signerKey, saltSeparator: params.saltSeparator, rounds: params.rounds, memCost: params.memCost },
      sealContext(tenantId, id),
    );
    await this.configs.insert(handle, { id, tenantId, firebaseProjectId, sealedParams });
    return id;
  }

  async load(handle: Tx, tenantId: string, id: string): Promise<FirebaseScryptParams | undefined> {
    const sealed = await this.configs.findSealedParams(handle, tenantId, id);
    return sealed ? this.box.openJson<FirebaseScryptParams>(sealed, sealContext(tenantId, id)) : undefined;
  }
}
