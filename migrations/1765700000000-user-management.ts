import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The admin API's user management (issue #17). A deleted user stays as a tombstone: its profile,
 * credentials, upstream links and roles are erased, but the row (and so the `sub`) remains, and
 * so do its sessions, revoked: the gateways' revocation feed still serves them, which a cascading
 * DELETE would have removed before the gateways had read them. The admin list pages by
 * (created_at, id) over the tenant's users that are not deleted.
 *
 * Account email flows: an invited user has a username but no password yet (`password_hash` NULL
 * signs nobody in). `account_action_tokens` holds the one-time links of invitations, password
 * resets and email verifications: only the SHA-256 of the link's token, the purpose, the user and
 * (for a verification) the address it verifies, with an expiry and the time it was used.
 * `tenants.password_policy` holds a tenant's rules for local passwords (`{}`: the defaults).
 */
export class UserManagement1765700000000 implements MigrationInterface {
  name = 'UserManagement1765700000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE users ADD COLUMN deleted_at timestamptz;
      CREATE INDEX users_admin_page_idx ON users (tenant_id, created_at, id) WHERE deleted_at IS NULL;
      ALTER TABLE native_credentials ALTER COLUMN password_hash DROP NOT NULL;
      ALTER TABLE tenants ADD COLUMN password_policy jsonb NOT NULL DEFAULT '{}'
        CONSTRAINT tenants_password_policy_object CHECK (jsonb_typeof(password_policy) = 'object');
      CREATE TABLE account_action_tokens (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        user_id uuid NOT NULL,
        purpose text NOT NULL CHECK (purpose IN ('invitation', 'password-reset', 'email-verification')),
        token_hash text NOT NULL UNIQUE,
        email text,
        expires_at timestamptz NOT NULL,
        used_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, id) ON DELETE CASCADE
      );
      CREATE INDEX account_action_tokens_user_idx ON account_action_tokens (tenant_id, user_id, purpose) WHERE used_at IS NULL;
      ALTER TABLE account_action_tokens ENABLE ROW LEVEL SECURITY;
      ALTER TABLE account_action_tokens FORCE ROW LEVEL SECURITY;
      CREATE POLICY tenant_isolation ON account_action_tokens
        USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DROP TABLE IF EXISTS account_action_tokens;
      ALTER TABLE tenants DROP COLUMN IF EXISTS password_policy;
      DELETE FROM native_credentials WHERE password_hash IS NULL;
      ALTER TABLE native_credentials ALTER COLUMN password_hash SET NOT NULL;
      DROP INDEX IF EXISTS users_admin_page_idx;
      ALTER TABLE users DROP COLUMN IF EXISTS deleted_at;
    `);
  }
}
