import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The languages of the hosted pages (issue #18, ADR 0021): the login transaction keeps the
 * `ui_locales` of the authorization request (OIDC Core §3.1.2.1; the well-formed tags, space
 * separated), and a tenant may have a default language for its pages and mails (null: none, the
 * pages fall back to English). Which languages are shipped is the application's to check (the
 * admin API refuses others); the column only holds a language tag's shape.
 */
export class HostedPageLanguages1766100000000 implements MigrationInterface {
  name = 'HostedPageLanguages1766100000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE login_transactions ADD COLUMN ui_locales text CHECK (length(ui_locales) <= 400);
      ALTER TABLE tenants ADD COLUMN default_locale text CHECK (default_locale ~ '^[a-z]{2,3}(-[A-Za-z0-9]{1,8})*$');
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE login_transactions DROP COLUMN IF EXISTS ui_locales;
      ALTER TABLE tenants DROP COLUMN IF EXISTS default_locale;
    `);
  }
}
