import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A BFF may leave the organisation to the service (issue #18): /oauth2/authorize without `org`
 * then shows the hosted "enter your organisation" page. Off for every existing client.
 */
export class ClientOrganizationPrompt1766300000000 implements MigrationInterface {
  name = 'ClientOrganizationPrompt1766300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE clients ADD COLUMN organization_prompt boolean NOT NULL DEFAULT false`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE clients DROP COLUMN IF EXISTS organization_prompt`);
  }
}
