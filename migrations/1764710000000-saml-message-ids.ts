import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * One-time use of SAML message IDs across every replica: each accepted assertion ID (and each
 * answered AuthnRequest ID) is inserted once; a second insert of the same ID is a replay.
 * Rows live until the assertion could no longer be accepted anyway, then the adapter sweeps them.
 */
export class SamlMessageIds1764710000000 implements MigrationInterface {
  name = 'SamlMessageIds1764710000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE saml_message_ids (
        tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        kind text NOT NULL CHECK (kind IN ('assertion', 'request')),
        message_id text NOT NULL CHECK (length(message_id) BETWEEN 1 AND 256),
        binding_id uuid REFERENCES tenant_identity_providers(id) ON DELETE CASCADE,
        expires_at timestamptz NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, kind, message_id)
      );
      CREATE INDEX saml_message_ids_expires_idx ON saml_message_ids (tenant_id, expires_at);
    `);
    // Same policy as every tenant-scoped table of the initial schema.
    await q.query(`ALTER TABLE saml_message_ids ENABLE ROW LEVEL SECURITY`);
    await q.query(`ALTER TABLE saml_message_ids FORCE ROW LEVEL SECURITY`);
    await q.query(
      `CREATE POLICY tenant_isolation ON saml_message_ids USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant())`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS saml_message_ids`);
  }
}
