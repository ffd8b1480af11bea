import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Tables whose rows belong to one tenant: row-level security keyed on `app.tenant_id`. */
export const TENANT_SCOPED_TABLES = [
  'tenant_identity_providers',
  'users',
  'user_identities',
  'native_credentials',
  'roles',
  'user_roles',
  'login_transactions',
  'authorization_codes',
  'sessions',
  'refresh_tokens',
] as const;

export class InitialSchema1764000000000 implements MigrationInterface {
  name = 'InitialSchema1764000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION app_current_tenant() RETURNS uuid LANGUAGE sql STABLE AS
        $$ SELECT nullif(current_setting('app.tenant_id', true), '')::uuid $$;

      CREATE TABLE tenants (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        slug text NOT NULL CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
        display_name text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
        status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'deleted')),
        version integer NOT NULL DEFAULT 1,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT tenants_slug_key UNIQUE (slug)
      );

      CREATE FUNCTION tenants_slug_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.slug IS DISTINCT FROM OLD.slug THEN
          RAISE EXCEPTION 'tenant slug is immutable' USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER tenants_slug_immutable BEFORE UPDATE ON tenants
        FOR EACH ROW EXECUTE FUNCTION tenants_slug_immutable();

      CREATE TABLE tenant_identity_providers (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        kind text NOT NULL CHECK (kind IN ('keycloak', 'oidc', 'saml', 'firebase_legacy', 'native')),
        status text NOT NULL DEFAULT 'active' CHECK (status IN ('draft', 'active', 'retired')),
        config jsonb NOT NULL DEFAULT '{}',
        secrets bytea,
        claim_mapping jsonb NOT NULL DEFAULT '{}',
        enabled boolean NOT NULL DEFAULT true,
        priority integer NOT NULL DEFAULT 0,
        version integer NOT NULL DEFAULT 1,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX tenant_identity_providers_tenant_idx ON tenant_identity_providers (tenant_id, status, priority);

      CREATE TABLE users (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        email text,
        email_verified boolean NOT NULL DEFAULT false,
        display_name text,
        given_name text,
        family_name text,
        status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (tenant_id, id)
      );
      CREATE INDEX users_tenant_email_idx ON users (tenant_id, lower(email));

      CREATE TABLE user_identities (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id uuid NOT NULL,
        user_id uuid NOT NULL,
        binding_id uuid NOT NULL REFERENCES tenant_identity_providers(id) ON DELETE CASCADE,
        issuer text NOT NULL,
        subject text NOT NULL,
        email text,
        last_login_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, id) ON DELETE CASCADE,
        CONSTRAINT user_identities_binding_subject_key UNIQUE (binding_id, subject)
      );
      CREATE INDEX user_identities_user_idx ON user_identities (tenant_id, user_id);

      CREATE TABLE native_credentials (
        user_id uuid PRIMARY KEY,
        tenant_id uuid NOT NULL,
        username text NOT NULL,
        password_hash text NOT NULL,
        failed_attempts integer NOT NULL DEFAULT 0,
        locked_until timestamptz,
        password_changed_at timestamptz NOT NULL DEFAULT now(),
        FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, id) ON DELETE CASCADE
      );
      CREATE UNIQUE INDEX native_credentials_username_key ON native_credentials (tenant_id, lower(username));

      CREATE TABLE roles (
        tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        name text NOT NULL CHECK (name ~ '^[A-Za-z0-9_.:-]{1,100}$'),
        description text,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, name)
      );

      CREATE TABLE user_roles (
        tenant_id uuid NOT NULL,
        user_id uuid NOT NULL,
        role text NOT NULL,
        source text NOT NULL CHECK (source IN ('idp', 'manual', 'scim')),
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (tenant_id, user_id, role, source),
        FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, id) ON DELETE CASCADE,
        FOREIGN KEY (tenant_id, role) REFERENCES roles(tenant_id, name) ON DELETE CASCADE
      );

      CREATE TABLE clients (
        id text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_.-]{3,100}$'),
        tenant_id uuid REFERENCES tenants(id) ON DELETE CASCADE,
        name text NOT NULL,
        kind text NOT NULL CHECK (kind IN ('bff', 'machine')),
        secret_hash text,
        redirect_uris text[] NOT NULL DEFAULT '{}',
        post_logout_redirect_uris text[] NOT NULL DEFAULT '{}',
        grant_types text[] NOT NULL DEFAULT '{}',
        scopes text[] NOT NULL DEFAULT '{}',
        enabled boolean NOT NULL DEFAULT true,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      );

      CREATE TABLE login_transactions (
        id_hash text PRIMARY KEY,
        tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        binding_id uuid NOT NULL REFERENCES tenant_identity_providers(id) ON DELETE CASCADE,
        client_id text NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
        redirect_uri text NOT NULL,
        state text,
        nonce text,
        scope text NOT NULL,
        code_challenge text NOT NULL,
        provider_state bytea,
        csrf_hash text,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        completed_at timestamptz
      );
      CREATE INDEX login_transactions_expires_idx ON login_transactions (expires_at);

      CREATE TABLE sessions (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id uuid NOT NULL,
        user_id uuid NOT NULL,
        client_id text NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
        binding_id uuid REFERENCES tenant_identity_providers(id) ON DELETE SET NULL,
        idp text NOT NULL,
        idp_sub text NOT NULL,
        auth_time timestamptz NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        revoked_at timestamptz,
        revoked_reason text,
        FOREIGN KEY (tenant_id, user_id) REFERENCES users(tenant_id, id) ON DELETE CASCADE
      );
      CREATE INDEX sessions_user_idx ON sessions (tenant_id, user_id) WHERE revoked_at IS NULL;

      CREATE TABLE authorization_codes (
        code_hash text PRIMARY KEY,
        tenant_id uuid NOT NULL,
        session_id uuid NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        client_id text NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
        redirect_uri text NOT NULL,
        code_challenge text NOT NULL,
        scope text NOT NULL,
        nonce text,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        consumed_at timestamptz
      );
      CREATE INDEX authorization_codes_expires_idx ON authorization_codes (expires_at);

      CREATE TABLE refresh_tokens (
        token_hash text PRIMARY KEY,
        tenant_id uuid NOT NULL,
        session_id uuid NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        scope text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        rotated_at timestamptz
      );
      CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

      CREATE TABLE signing_keys (
        kid text PRIMARY KEY,
        alg text NOT NULL CHECK (alg IN ('RS256')),
        public_jwk jsonb NOT NULL,
        private_key bytea,
        status text NOT NULL CHECK (status IN ('pending', 'active', 'retired', 'expired')),
        created_at timestamptz NOT NULL DEFAULT now(),
        activates_at timestamptz NOT NULL,
        activated_at timestamptz,
        retired_at timestamptz,
        expires_at timestamptz
      );
      CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys ((status)) WHERE status = 'active';

      CREATE TABLE audit_events (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        tenant_id uuid REFERENCES tenants(id) ON DELETE SET NULL,
        actor text NOT NULL,
        action text NOT NULL,
        target text,
        data jsonb NOT NULL DEFAULT '{}',
        request_id text,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX audit_events_tenant_idx ON audit_events (tenant_id, created_at DESC);

      CREATE TABLE rate_limit_counters (
        bucket text NOT NULL,
        window_start timestamptz NOT NULL,
        hits integer NOT NULL,
        PRIMARY KEY (bucket, window_start)
      );
      CREATE INDEX rate_limit_counters_window_idx ON rate_limit_counters (window_start);
    `);

    for (const table of TENANT_SCOPED_TABLES) {
      // FORCE: the table owner (the service's own role) is subject to the policy too.
      await q.query(`ALTER TABLE ${table} ENABLE ROW LEVEL SECURITY`);
      await q.query(`ALTER TABLE ${table} FORCE ROW LEVEL SECURITY`);
      await q.query(
        `CREATE POLICY tenant_isolation ON ${table} USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant())`,
      );
    }
    // Audit: a tenant context sees its own events; outside any tenant context only platform-wide ones.
    await q.query(`ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY`);
    await q.query(`ALTER TABLE audit_events FORCE ROW LEVEL SECURITY`);
    await q.query(
      `CREATE POLICY tenant_isolation ON audit_events USING (tenant_id IS NOT DISTINCT FROM app_current_tenant()) WITH CHECK (tenant_id IS NOT DISTINCT FROM app_current_tenant())`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DROP TABLE IF EXISTS rate_limit_counters, audit_events, signing_keys, refresh_tokens, authorization_codes,
        sessions, login_transactions, clients, user_roles, roles, native_credentials, user_identities, users,
        tenant_identity_providers, tenants CASCADE;
      DROP FUNCTION IF EXISTS tenants_slug_immutable();
      DROP FUNCTION IF EXISTS app_current_tenant();
    `);
  }
}
