import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The admin API's user management (issue #17). A deleted user stays as a tombstone: its profile,
 * credentials, upstream links and roles are erased, but the row (and so the `sub`) remains, and
 * so do its sessions, revoked: the gateways' revocation feed still serves them, which a cascading
 * DELETE would have removed before the gateways had read them. The admin list pages by
 * (created_at, id) over the tenant's users that are not deleted.
 */
export class UserManagement1765700000000 implements MigrationInterface {
  name = 'UserManagement1765700000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE users ADD COLUMN deleted_at timestamptz;
      CREATE INDEX users_admin_page_idx ON users (tenant_id, created_at, id) WHERE deleted_at IS NULL;
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DROP INDEX IF EXISTS users_admin_page_idx;
      ALTER TABLE users DROP COLUMN IF EXISTS deleted_at;
    `);
  }
}
