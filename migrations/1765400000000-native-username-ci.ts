import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Under row-level security PostgreSQL only pushes a condition into an index when its functions are
 * LEAKPROOF; `lower(username)` is not, so the password-login look-up scanned the tenant's
 * credentials. A stored lower-case copy makes it a plain equality on an indexed column.
 */
export class NativeUsernameCi1765400000000 implements MigrationInterface {
  name = 'NativeUsernameCi1765400000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE native_credentials ADD COLUMN username_ci text GENERATED ALWAYS AS (lower(username)) STORED;
      DROP INDEX native_credentials_username_key;
      CREATE UNIQUE INDEX native_credentials_username_key ON native_credentials (tenant_id, username_ci);
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DROP INDEX native_credentials_username_key;
      ALTER TABLE native_credentials DROP COLUMN username_ci;
      CREATE UNIQUE INDEX native_credentials_username_key ON native_credentials (tenant_id, lower(username));
    `);
  }
}
