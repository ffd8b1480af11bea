import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The mail outbox (issue #17): every e-mail the service sends (invitations, password resets,
 * e-mail verification) is first a row here, written in the transaction of the change that caused
 * it, so a message exists if and only if that change committed. A delivery loop sends the due rows
 * and keeps them until they are sent (or given up), so a restart loses nothing.
 *
 * `mail_outbox` is tenant-scoped with row-level security like every tenant table. The delivery
 * loop works across tenants in an explicit mode (`app.mail_delivery`, set only by the database
 * layer's 'mail-delivery' scope), like `app.audit_reader` and `app.revocation_reader`: it may read
 * and update any tenant's rows (claim, mark sent or failed) but never insert or delete them.
 *
 * Once a message is sent or given up its bodies are emptied: they carry one-time links (reset and
 * invitation tokens), which must not outlive their delivery in the database and its backups.
 */
export class MailOutbox1765800000000 implements MigrationInterface {
  name = 'MailOutbox1765800000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE mail_outbox (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
        recipient text NOT NULL CHECK (length(recipient) BETWEEN 3 AND 320),
        subject text NOT NULL CHECK (length(subject) BETWEEN 1 AND 998),
        text_body text NOT NULL,
        html_body text NOT NULL,
        sender_name text CHECK (sender_name IS NULL OR length(sender_name) BETWEEN 1 AND 200),
        purpose text NOT NULL CHECK (purpose ~ '^[a-z][a-z0-9-]{0,62}$'),
        attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        next_attempt_at timestamptz NOT NULL DEFAULT now(),
        -- An SMTP error class and reply code ("EENVELOPE 550"), never the server's text (it may quote the address).
        last_error text CHECK (last_error IS NULL OR length(last_error) <= 200),
        sent_at timestamptz,
        given_up_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      -- What the delivery loop claims: pending rows by due time, across tenants.
      CREATE INDEX mail_outbox_due_idx ON mail_outbox (next_attempt_at) WHERE sent_at IS NULL AND given_up_at IS NULL;
      CREATE INDEX mail_outbox_tenant_idx ON mail_outbox (tenant_id, created_at);

      ALTER TABLE mail_outbox ENABLE ROW LEVEL SECURITY;
      ALTER TABLE mail_outbox FORCE ROW LEVEL SECURITY;
      CREATE POLICY tenant_isolation ON mail_outbox USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());
      CREATE POLICY mail_delivery_read ON mail_outbox FOR SELECT USING (current_setting('app.mail_delivery', true) = 'on');
      CREATE POLICY mail_delivery_update ON mail_outbox FOR UPDATE
        USING (current_setting('app.mail_delivery', true) = 'on') WITH CHECK (current_setting('app.mail_delivery', true) = 'on');
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS mail_outbox`);
  }
}
