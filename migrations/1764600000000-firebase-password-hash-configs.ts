import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The Firebase projects' password hash parameters (signer key, salt separator, rounds, memory
 * cost) that imported `$firebase-scrypt$` credentials refer to. One row per import, sealed with
 * the key-encryption key: the signer key is a project secret, so it is never stored per user.
 */
export class FirebasePasswordHashConfigs1764600000000 implements MigrationInterface {
  name = 'FirebasePasswordHashConfigs1764600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE firebase_password_hash_configs (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        firebase_project_id text NOT NULL,
        params bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )
    `);
    await q.query(`CREATE INDEX firebase_password_hash_configs_tenant_idx ON firebase_password_hash_configs (tenant_id)`);
    await q.query(`ALTER TABLE firebase_password_hash_configs ENABLE ROW LEVEL SECURITY`);
    await q.query(`ALTER TABLE firebase_password_hash_configs FORCE ROW LEVEL SECURITY`);
    await q.query(
      `CREATE POLICY tenant_isolation ON firebase_password_hash_configs USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant())`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS firebase_password_hash_configs`);
  }
}
