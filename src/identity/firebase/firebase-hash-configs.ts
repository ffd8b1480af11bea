import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { SecretBox } from '../../crypto/secret-box.js';
import type { FirebaseScryptParams } from './firebase-scrypt.js';

// Bound to the row and its tenant: a sealed value copied into another row or tenant fails to open.
const sealContext = (tenantId: string, id: string) => `firebase_hash_config:${tenantId}:${id}`;

/** `firebase_password_hash_configs`: a Firebase project's password hash parameters, sealed at rest. */
@Injectable()
export class FirebaseHashConfigStore {
  constructor(private readonly box: SecretBox) {}

  async insert(m: EntityManager, tenantId: string, firebaseProjectId: string, params: FirebaseScryptParams): Promise<string> {
    const id = randomUUID();
    const sealed = this.box.sealJson(
      { signerKey: params.signerKey, saltSeparator: params.saltSeparator, rounds: params.rounds, memCost: params.memCost },
      sealContext(tenantId, id),
    );
    await m.query(`INSERT INTO firebase_password_hash_configs (id, tenant_id, firebase_project_id, params) VALUES ($1, $2, $3, $4)`, [
      id,
      tenantId,
      firebaseProjectId,
      sealed,
    ]);
    return id;
  }

  async load(m: EntityManager, tenantId: string, id: string): Promise<FirebaseScryptParams | undefined> {
    const [row] = await m.query<
      Array<{
        params: Buffer;
      }>
    >(`SELECT params FROM firebase_password_hash_configs WHERE id = $1 AND tenant_id = $2`, [id, tenantId]);
    return row ? this.box.openJson<FirebaseScryptParams>(row.params, sealContext(tenantId, id)) : undefined;
  }
}
