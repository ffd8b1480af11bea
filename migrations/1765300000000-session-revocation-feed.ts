import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The session revocation feed (`GET /oauth2/revocations`): gateways poll it for the `sid`s whose
 * access tokens must stop working before they expire.
 *
 * A cursor on `revoked_at` alone would lose rows: `now()` is the start of the revoking
 * transaction, so a long transaction can commit a revocation stamped *before* a cursor that has
 * already been handed out. Instead every revocation records the id of the transaction that made
 * it (`revoked_xid`, 64-bit, never wraps), and the feed only serves rows whose transaction is older
 * than the oldest transaction still running (`pg_snapshot_xmin`): everything below that horizon has
 * committed or rolled back, so a cursor on (revoked_xid, id) never skips a row that commits later.
 *
 * `sessions` is tenant-scoped with row-level security; the feed reads across tenants only in an
 * explicit, SELECT-only mode (`app.revocation_reader`), like `app.audit_reader`.
 */
export class SessionRevocationFeed1765300000000 implements MigrationInterface {
  name = 'SessionRevocationFeed1765300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE sessions ADD COLUMN revoked_xid xid8;

      CREATE FUNCTION sessions_stamp_revocation() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.revoked_at IS NOT NULL AND (TG_OP = 'INSERT' OR OLD.revoked_at IS NULL) THEN
          NEW.revoked_xid := pg_current_xact_id();
        END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER sessions_stamp_revocation BEFORE INSERT OR UPDATE OF revoked_at ON sessions
        FOR EACH ROW EXECUTE FUNCTION sessions_stamp_revocation();

      -- Sessions revoked before this migration: older than any transaction that can still run.
      UPDATE sessions SET revoked_xid = '1'::xid8 WHERE revoked_at IS NOT NULL;

      -- Polling with a cursor walks this index; the first poll (no cursor) starts from revoked_at.
      CREATE INDEX sessions_revoked_feed_idx ON sessions (revoked_xid, id) WHERE revoked_xid IS NOT NULL;
      CREATE INDEX sessions_revoked_at_idx ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

      CREATE POLICY revocation_reader ON sessions FOR SELECT USING (current_setting('app.revocation_reader', true) = 'on');
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      DROP POLICY IF EXISTS revocation_reader ON sessions;
      DROP INDEX IF EXISTS sessions_revoked_at_idx;
      DROP INDEX IF EXISTS sessions_revoked_feed_idx;
      DROP TRIGGER IF EXISTS sessions_stamp_revocation ON sessions;
      DROP FUNCTION IF EXISTS sessions_stamp_revocation();
      ALTER TABLE sessions DROP COLUMN IF EXISTS revoked_xid;
    `);
  }
}
