import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * SCIM token verifications are cached per replica (src/scim/scim-tokens.service.ts). A revoked
 * token, a changed SCIM setting or a suspended tenant must stop them on every replica at once, so
 * these tables notify like the other cached ones. `last_used_at`, stamped at most once a minute per
 * token, is left out: it must not empty every replica's cache.
 */
export class ScimTokenChangeNotifications1765600000000 implements MigrationInterface {
  name = 'ScimTokenChangeNotifications1765600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TRIGGER scim_tokens_row_change
        AFTER INSERT OR UPDATE OF tenant_id, token_hash, revoked_at OR DELETE OR TRUNCATE
        ON scim_tokens FOR EACH STATEMENT EXECUTE FUNCTION notify_row_change();
      CREATE TRIGGER scim_settings_row_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON scim_settings
        FOR EACH STATEMENT EXECUTE FUNCTION notify_row_change();
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DROP TRIGGER scim_settings_row_change ON scim_settings;
      DROP TRIGGER scim_tokens_row_change ON scim_tokens;
    `);
  }
}
