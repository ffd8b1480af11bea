import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Passkeys (WebAuthn) for native logins (issue #17): one row per registered credential, with what
 * an authentication must check against (the COSE public key, the signature counter) and what the
 * authenticator said about itself (device type and backup state, AAGUID, transports). The
 * credential id is unique per tenant: a passwordless sign-in finds its user by it. The login
 * transaction keeps the single-use WebAuthn challenge of the page it served, and the methods
 * already passed while it offers to register a passkey.
 */
export class Passkeys1765950000000 implements MigrationInterface {
  name = 'Passkeys1765950000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE user_passkeys (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id uuid NOT NULL,
        user_id uuid NOT NULL,
        credential_id text NOT NULL,
        public_key bytea NOT NULL,
        sign_count bigint NOT NULL DEFAULT 0,
        transports text[] NOT NULL DEFAULT '{}',
        device_type text NOT NULL CHECK (device_type IN ('singleDevice', 'multiDevice')),
        backed_up boolean NOT NULL,
        aaguid text NOT NULL,
        name text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        last_used_at timestamptz,
        FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, id) ON DELETE CASCADE,
        UNIQUE (tenant_id, credential_id)
      );
      CREATE INDEX user_passkeys_user_idx ON user_passkeys (user_id);
      ALTER TABLE login_transactions
        ADD COLUMN webauthn_challenge text,
        ADD COLUMN mfa_amr text[],
        DROP CONSTRAINT IF EXISTS login_transactions_mfa_stage_check,
        ADD CONSTRAINT login_transactions_mfa_stage_check CHECK (mfa_stage IN ('verify', 'offer', 'enrol', 'enrolled', 'passkey-offer'));
    `);
    await q.query(`ALTER TABLE user_passkeys ENABLE ROW LEVEL SECURITY`);
    await q.query(`ALTER TABLE user_passkeys FORCE ROW LEVEL SECURITY`);
    await q.query(
      `CREATE POLICY tenant_isolation ON user_passkeys USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant())`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      UPDATE login_transactions SET mfa_stage = NULL, mfa_user_id = NULL, mfa_identity = NULL WHERE mfa_stage = 'passkey-offer';
      ALTER TABLE login_transactions
        DROP CONSTRAINT IF EXISTS login_transactions_mfa_stage_check,
        ADD CONSTRAINT login_transactions_mfa_stage_check CHECK (mfa_stage IN ('verify', 'offer', 'enrol', 'enrolled')),
        DROP COLUMN IF EXISTS webauthn_challenge,
        DROP COLUMN IF EXISTS mfa_amr;
      DROP TABLE IF EXISTS user_passkeys;
    `);
  }
}
