import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * What an adapter keeps with a platform session for the upstream's sake (e.g. Keycloak's ID token,
 * the `id_token_hint` of RP-initiated logout), sealed with the key-encryption key. Nullable: most
 * sessions have none. `sessions` already has row-level security.
 */
export class SessionUpstreamState1765100000000 implements MigrationInterface {
  name = 'SessionUpstreamState1765100000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE sessions ADD COLUMN upstream_state bytea`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE sessions DROP COLUMN IF EXISTS upstream_state`);
  }
}
