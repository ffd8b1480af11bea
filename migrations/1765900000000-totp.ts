import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Two-step verification of native logins (issue #17): a TOTP secret per user (sealed with the
 * SecretBox, bound to the user), the last time step accepted (a code works once), its own failure
 * counter (a correct password must not reset a second-factor brute force), and single-use recovery
 * codes (only their SHA-256). The login transaction keeps which user passed the password and the
 * step the login waits on; the session keeps how the user authenticated (RFC 8176 `amr`).
 */
export class Totp1765900000000 implements MigrationInterface {
  name = 'Totp1765900000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE user_totp (
        user_id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        secret bytea NOT NULL,
        confirmed_at timestamptz,
        last_used_step bigint,
        failed_attempts integer NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL DEFAULT now(),
        FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, id) ON DELETE CASCADE
      );
      CREATE TABLE user_recovery_codes (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id uuid NOT NULL,
        user_id uuid NOT NULL,
        code_hash text NOT NULL,
        used_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, id) ON DELETE CASCADE,
        UNIQUE (user_id, code_hash)
      );
      ALTER TABLE login_transactions
        ADD COLUMN mfa_user_id uuid,
        ADD COLUMN mfa_stage text CHECK (mfa_stage IN ('verify', 'offer', 'enrol', 'enrolled')),
        ADD COLUMN mfa_identity bytea,
        ADD COLUMN mfa_requested boolean NOT NULL DEFAULT false;
      ALTER TABLE sessions ADD COLUMN amr text[];
    `);
    // Same policy as every tenant-scoped table of the initial schema.
    for (const table of ['user_totp', 'user_recovery_codes']) {
      await q.query(`ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY`);
      await q.query(`ALTER TABLE ${table} FORCE ROW LEVEL SECURITY`);
      await q.query(
        `CREATE POLICY tenant_isolation ON ${table} USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant())`,
      );
    }
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE sessions DROP COLUMN IF EXISTS amr;
      ALTER TABLE login_transactions DROP COLUMN IF EXISTS mfa_user_id, DROP COLUMN IF EXISTS mfa_stage,
        DROP COLUMN IF EXISTS mfa_identity, DROP COLUMN IF EXISTS mfa_requested;
      DROP TABLE IF EXISTS user_recovery_codes, user_totp;
    `);
  }
}
