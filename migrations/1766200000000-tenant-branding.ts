import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Per-tenant branding of the hosted pages (issue #18). `tenant_branding`: one row per tenant that
 * set any (colours as `#rrggbb`, an optional display name over the tenant's own, a support contact,
 * custom texts and up to five legal links), versioned for If-Match. `tenant_logos`: the logo itself,
 * stored here and served by the service (ADR 0022), with its content type, SHA-256 (the served URL
 * carries a prefix of it) and size. The checks repeat the service's limits, so a row written by hand
 * cannot exceed them either. Both are tenant-scoped (row-level security like every tenant table) and
 * notify the row-change channel, so every replica drops its cached brands on a change.
 */
export class TenantBranding1766200000000 implements MigrationInterface {
  name = 'TenantBranding1766200000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE tenant_branding (
        tenant_id uuid PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
        display_name text CHECK (char_length(display_name) BETWEEN 1 AND 200),
        primary_color text CHECK (primary_color ~ '^#[0-9a-f]{6}$'),
        background_color text CHECK (background_color ~ '^#[0-9a-f]{6}$'),
        text_color text CHECK (text_color ~ '^#[0-9a-f]{6}$'),
        support_contact text CHECK (char_length(support_contact) <= 320),
        heading text CHECK (char_length(heading) <= 120),
        footer text CHECK (char_length(footer) <= 500),
        legal_links jsonb NOT NULL DEFAULT '[]'::jsonb
          CHECK (jsonb_typeof(legal_links) = 'array' AND jsonb_array_length(legal_links) <= 5),
        version integer NOT NULL DEFAULT 1,
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE tenant_logos (
        tenant_id uuid PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
        content_type text NOT NULL CHECK (content_type IN ('image/png', 'image/jpeg', 'image/webp')),
        bytes bytea NOT NULL,
        sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
        size integer NOT NULL CHECK (size BETWEEN 1 AND 262144 AND size = octet_length(bytes)),
        width integer NOT NULL CHECK (width BETWEEN 1 AND 2048),
        height integer NOT NULL CHECK (height BETWEEN 1 AND 2048),
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TRIGGER tenant_branding_row_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenant_branding
        FOR EACH STATEMENT EXECUTE FUNCTION notify_row_change();
      CREATE TRIGGER tenant_logos_row_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenant_logos
        FOR EACH STATEMENT EXECUTE FUNCTION notify_row_change();
    `);
    // Same policy as every tenant-scoped table of the initial schema.
    for (const table of ['tenant_branding', 'tenant_logos']) {
      await q.query(`ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY`);
      await q.query(`ALTER TABLE ${table} FORCE ROW LEVEL SECURITY`);
      await q.query(
        `CREATE POLICY tenant_isolation ON ${table} USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant())`,
      );
    }
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS tenant_logos, tenant_branding`);
  }
}
