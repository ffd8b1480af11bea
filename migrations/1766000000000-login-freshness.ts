import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * OIDC Core §3.1.2.1 at the authorization endpoint: the login transaction keeps the `max_age` the
 * client asked for (seconds; null: none) and whether it sent `prompt=login`, so the completed login
 * can be held to them (the upstream's authentication time, checked when it comes back).
 */
export class LoginFreshness1766000000000 implements MigrationInterface {
  name = 'LoginFreshness1766000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE login_transactions
        ADD COLUMN max_age integer CHECK (max_age >= 0),
        ADD COLUMN prompt_login boolean NOT NULL DEFAULT false;
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE login_transactions DROP COLUMN IF EXISTS max_age, DROP COLUMN IF EXISTS prompt_login;`);
  }
}
