import type { MigrationInterface, QueryRunner } from 'typeorm';

/** New tenant-scoped tables of the SCIM server: row-level security exactly like the initial schema. */
export const SCIM_TENANT_SCOPED_TABLES = [
  'user_emails',
  'groups',
  'group_members',
  'scim_tokens',
  'scim_settings',
  'scim_deprovision_events',
  'scim_held_operations',
] as const;

/**
 * SCIM 2.0 inbound provisioning. SCIM users ARE platform users: `users` gains the SCIM
 * attributes instead of a parallel table, so a user pushed by the tenant's directory and the
 * identity that later logs in through the tenant's OIDC/SAML binding are one row.
 *
 * A user is visible to SCIM while `user_name` is set; a SCIM DELETE disables the user and
 * clears `user_name`/`external_id` (so the IdP may create the same userName again) and stamps
 * `scim_deleted_at`.
 */
export class Scim1764800000000 implements MigrationInterface {
  name = 'Scim1764800000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE users
        ADD COLUMN user_name text CONSTRAINT users_user_name_length CHECK (user_name IS NULL OR length(user_name) BETWEEN 1 AND 320),
        ADD COLUMN user_name_ci text GENERATED ALWAYS AS (lower(user_name)) STORED,
        ADD COLUMN external_id text CONSTRAINT users_external_id_length CHECK (external_id IS NULL OR length(external_id) BETWEEN 1 AND 500),
        ADD COLUMN emails jsonb NOT NULL DEFAULT '[]' CONSTRAINT users_emails_array CHECK (jsonb_typeof(emails) = 'array'),
        ADD COLUMN enterprise jsonb NOT NULL DEFAULT '{}' CONSTRAINT users_enterprise_object CHECK (jsonb_typeof(enterprise) = 'object'),
        ADD COLUMN scim_profile jsonb NOT NULL DEFAULT '{}' CONSTRAINT users_scim_profile_object CHECK (jsonb_typeof(scim_profile) = 'object'),
        ADD COLUMN version integer NOT NULL DEFAULT 1,
        ADD COLUMN scim_deleted_at timestamptz;

      -- Row-level security only lets the planner use an index for a condition whose functions are
      -- LEAKPROOF; lower() and jsonb @> are not. So the case-insensitive look-ups the IdPs make
      -- compare stored lower-case copies with plain "=": userName here, group displayName below,
      -- emails in user_emails. (The SCIM filter compiler is given the lower-cased value.)
      -- userName is unique per tenant, case-insensitively (RFC 7643 §4.1.1).
      CREATE UNIQUE INDEX users_user_name_key ON users (tenant_id, user_name_ci);
      CREATE INDEX users_external_id_idx ON users (tenant_id, external_id) WHERE external_id IS NOT NULL;
      CREATE INDEX users_scim_page_idx ON users (tenant_id, created_at, id) WHERE user_name IS NOT NULL;
      -- Adoption of users who logged in before SCIM pushed them (emails are stored lower-cased).
      CREATE INDEX users_unmanaged_email_idx ON users (tenant_id, email) WHERE user_name IS NULL AND scim_deleted_at IS NULL;

      -- One row per element of users.emails, kept in step by a trigger: the index for emails filters.
      CREATE TABLE user_emails (
        tenant_id uuid NOT NULL,
        user_id uuid NOT NULL,
        position integer NOT NULL,
        value_ci text,
        type_ci text,
        display_ci text,
        is_primary boolean,
        PRIMARY KEY (user_id, position),
        FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, id) ON DELETE CASCADE
      );
      CREATE INDEX user_emails_value_idx ON user_emails (tenant_id, value_ci);

      CREATE FUNCTION users_sync_emails() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP = 'UPDATE' AND NEW.emails IS NOT DISTINCT FROM OLD.emails THEN RETURN NULL; END IF;
        IF TG_OP = 'UPDATE' THEN DELETE FROM user_emails WHERE user_id = NEW.id; END IF;
        IF jsonb_array_length(NEW.emails) > 0 THEN
          INSERT INTO user_emails (tenant_id, user_id, position, value_ci, type_ci, display_ci, is_primary)
          SELECT NEW.tenant_id, NEW.id, e.ord, lower(e.v ->> 'value'), lower(e.v ->> 'type'), lower(e.v ->> 'display'),
                 CASE WHEN jsonb_typeof(e.v -> 'primary') = 'boolean' THEN (e.v -> 'primary')::boolean END
            FROM jsonb_array_elements(NEW.emails) WITH ORDINALITY AS e(v, ord)
           WHERE jsonb_typeof(e.v) = 'object';
        END IF;
        RETURN NULL;
      END $$;
      CREATE TRIGGER users_sync_emails AFTER INSERT OR UPDATE OF emails ON users
        FOR EACH ROW EXECUTE FUNCTION users_sync_emails();

      CREATE TABLE groups (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        display_name text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 500),
        display_name_ci text GENERATED ALWAYS AS (lower(display_name)) STORED,
        external_id text CHECK (external_id IS NULL OR length(external_id) BETWEEN 1 AND 500),
        version integer NOT NULL DEFAULT 1,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (tenant_id, id)
      );
      CREATE INDEX groups_display_name_idx ON groups (tenant_id, display_name_ci);
      CREATE INDEX groups_external_id_idx ON groups (tenant_id, external_id) WHERE external_id IS NOT NULL;
      CREATE INDEX groups_page_idx ON groups (tenant_id, created_at, id);

      CREATE TABLE group_members (
        tenant_id uuid NOT NULL,
        group_id uuid NOT NULL,
        user_id uuid NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (group_id, user_id),
        FOREIGN KEY (tenant_id, group_id) REFERENCES groups(tenant_id, id) ON DELETE CASCADE,
        FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, id) ON DELETE CASCADE
      );
      CREATE INDEX group_members_user_idx ON group_members (tenant_id, user_id);

      CREATE TABLE scim_tokens (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
        token_hash text NOT NULL,
        prefix text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        last_used_at timestamptz,
        revoked_at timestamptz,
        CONSTRAINT scim_tokens_hash_key UNIQUE (token_hash)
      );
      CREATE INDEX scim_tokens_tenant_idx ON scim_tokens (tenant_id, created_at);

      -- Per-tenant overrides; NULL columns fall back to the global defaults (SCIM_* environment).
      CREATE TABLE scim_settings (
        tenant_id uuid PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
        rate_limit_per_minute integer CHECK (rate_limit_per_minute IS NULL OR rate_limit_per_minute > 0),
        guard_enabled boolean,
        guard_percent numeric(5, 2) CHECK (guard_percent IS NULL OR (guard_percent > 0 AND guard_percent <= 100)),
        guard_window_seconds integer CHECK (guard_window_seconds IS NULL OR guard_window_seconds > 0),
        guard_min_count integer CHECK (guard_min_count IS NULL OR guard_min_count >= 0),
        updated_at timestamptz NOT NULL DEFAULT now()
      );

      -- Deactivations and deletions applied through SCIM: the mass-deprovisioning guard's window.
      CREATE TABLE scim_deprovision_events (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        user_id uuid NOT NULL,
        action text NOT NULL CHECK (action IN ('deactivate', 'delete')),
        occurred_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX scim_deprovision_events_window_idx ON scim_deprovision_events (tenant_id, occurred_at);

      -- Requests the guard held instead of applying; an administrator releases or discards them.
      CREATE TABLE scim_held_operations (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        user_id uuid NOT NULL,
        action text NOT NULL CHECK (action IN ('deactivate', 'delete')),
        method text NOT NULL CHECK (method IN ('PUT', 'PATCH', 'DELETE')),
        request jsonb,
        token_id uuid,
        status text NOT NULL DEFAULT 'held' CHECK (status IN ('held', 'released', 'discarded', 'superseded', 'failed')),
        attempts integer NOT NULL DEFAULT 1,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        decided_at timestamptz,
        decided_by text,
        outcome text,
        FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, id) ON DELETE CASCADE
      );
      -- One pending hold per user: a retried request refreshes it instead of queueing twice.
      CREATE UNIQUE INDEX scim_held_operations_pending_key ON scim_held_operations (tenant_id, user_id) WHERE status = 'held';
      CREATE INDEX scim_held_operations_tenant_idx ON scim_held_operations (tenant_id, status, created_at);
    `);

    for (const table of SCIM_TENANT_SCOPED_TABLES) {
      await q.query(`ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY`);
      await q.query(`ALTER TABLE ${table} FORCE ROW LEVEL SECURITY`);
      await q.query(
        `CREATE POLICY tenant_isolation ON ${table} USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant())`,
      );
    }
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DROP TABLE IF EXISTS scim_held_operations, scim_deprovision_events, scim_settings, scim_tokens, group_members, groups, user_emails CASCADE;
      DROP TRIGGER IF EXISTS users_sync_emails ON users;
      DROP FUNCTION IF EXISTS users_sync_emails();
      DROP INDEX IF EXISTS users_user_name_key, users_external_id_idx, users_scim_page_idx, users_unmanaged_email_idx;
      ALTER TABLE users
        DROP COLUMN IF EXISTS scim_deleted_at,
        DROP COLUMN IF EXISTS version,
        DROP COLUMN IF EXISTS scim_profile,
        DROP COLUMN IF EXISTS enterprise,
        DROP COLUMN IF EXISTS emails,
        DROP COLUMN IF EXISTS external_id,
        DROP COLUMN IF EXISTS user_name_ci,
        DROP COLUMN IF EXISTS user_name;
    `);
  }
}
