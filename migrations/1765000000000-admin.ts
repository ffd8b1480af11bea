import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Admin API support: staged binding activation (test logins, activation history), connection
 * health, Idempotency-Key records, and an explicit, read-only audit-reader mode.
 */
export class Admin1765000000000 implements MigrationInterface {
  name = 'Admin1765000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE tenant_identity_providers
        ADD COLUMN test_login_at timestamptz,
        ADD COLUMN test_identity bytea,
        ADD COLUMN activated_at timestamptz,
        ADD COLUMN retired_at timestamptz,
        ADD COLUMN last_login_succeeded_at timestamptz,
        ADD COLUMN last_login_failed_at timestamptz,
        ADD COLUMN last_failure text,
        ADD COLUMN health jsonb,
        ADD COLUMN health_checked_at timestamptz;

      ALTER TABLE login_transactions
        ADD COLUMN purpose text NOT NULL DEFAULT 'login' CHECK (purpose IN ('login', 'test')),
        ALTER COLUMN client_id DROP NOT NULL,
        ALTER COLUMN redirect_uri DROP NOT NULL,
        ALTER COLUMN code_challenge DROP NOT NULL,
        ADD CONSTRAINT login_transactions_login_has_client CHECK (purpose = 'test' OR (client_id IS NOT NULL AND redirect_uri IS NOT NULL AND code_challenge IS NOT NULL));

      CREATE TABLE idempotency_keys (
        actor text NOT NULL,
        key text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
        method text NOT NULL,
        path text NOT NULL,
        request_hash text NOT NULL,
        status integer,
        response jsonb,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (actor, key)
      );
      CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

      -- Admins read the audit trail across tenants; only SELECT, only when the transaction says so.
      CREATE POLICY audit_reader ON audit_events FOR SELECT USING (current_setting('app.audit_reader', true) = 'on');
      CREATE INDEX audit_events_created_idx ON audit_events (created_at DESC, id DESC);
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DROP INDEX IF EXISTS audit_events_created_idx;
      DROP POLICY IF EXISTS audit_reader ON audit_events;
      DROP TABLE IF EXISTS idempotency_keys;
      ALTER TABLE login_transactions DROP CONSTRAINT IF EXISTS login_transactions_login_has_client, DROP COLUMN IF EXISTS purpose;
      ALTER TABLE tenant_identity_providers DROP COLUMN IF EXISTS test_login_at, DROP COLUMN IF EXISTS test_identity,
        DROP COLUMN IF EXISTS activated_at, DROP COLUMN IF EXISTS retired_at, DROP COLUMN IF EXISTS last_login_succeeded_at,
        DROP COLUMN IF EXISTS last_login_failed_at, DROP COLUMN IF EXISTS last_failure, DROP COLUMN IF EXISTS health, DROP COLUMN IF EXISTS health_checked_at;
    `);
  }
}
