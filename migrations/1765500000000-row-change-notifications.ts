import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Every committed change to a table the replicas cache (tenants, clients, bindings) notifies
 * `auth_service_row_changes` with the table's name, so each replica drops its cached rows at once
 * (src/database/row-cache.ts). A trigger, not application code: a change made by hand in psql
 * reaches the caches too. NOTIFY is delivered on commit only, never for a rolled-back change.
 */
export class RowChangeNotifications1765500000000 implements MigrationInterface {
  name = 'RowChangeNotifications1765500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION notify_row_change() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('auth_service_row_changes', TG_TABLE_NAME);
        RETURN NULL;
      END $$;
      CREATE TRIGGER tenants_row_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenants
        FOR EACH STATEMENT EXECUTE FUNCTION notify_row_change();
      CREATE TRIGGER clients_row_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON clients
        FOR EACH STATEMENT EXECUTE FUNCTION notify_row_change();
      -- Only the columns a login reads: every login stamps last_login_*_at, health checks stamp health,
      -- and neither may empty every replica's cache.
      CREATE TRIGGER tenant_identity_providers_row_change
        AFTER INSERT OR UPDATE OF tenant_id, kind, status, config, secrets, claim_mapping, enabled, priority, version OR DELETE OR TRUNCATE
        ON tenant_identity_providers FOR EACH STATEMENT EXECUTE FUNCTION notify_row_change();
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DROP TRIGGER tenant_identity_providers_row_change ON tenant_identity_providers;
      DROP TRIGGER clients_row_change ON clients;
      DROP TRIGGER tenants_row_change ON tenants;
      DROP FUNCTION notify_row_change();
    `);
  }
}
