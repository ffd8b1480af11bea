/**
 * `Database.transaction(scope, work)`, the one unit of work every repository call runs in: what
 * each scope lets a statement see, that a failure anywhere rolls the whole unit back (the change
 * and its audit event together), and that the tenant setting refuses anything but a UUID.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Database } from '../src/database/database.js';
import { AuditService } from '../src/audit/audit.service.js';
import { startTestApp, type TestApp } from './support/app-harness.js';

let app: TestApp;
let db: Database;
let audit: AuditService;
let a: string;
let b: string;

beforeAll(async () => {
  app = await startTestApp();
  db = app.database;
  audit = app.app.get(AuditService);
  const rows = await db.query<{ id: string }>(`INSERT INTO tenants (slug, display_name) VALUES ('tx-a', 'A'), ('tx-b', 'B') RETURNING id`);
  [a, b] = rows.map((r) => r.id) as [string, string];
  for (const t of [a, b])
    await db.transaction({ tenant: t }, (tx) => tx.query(`INSERT INTO users (tenant_id, email) VALUES ($1, $2)`, [t, `u@${t}.test`]));
});
afterAll(async () => {
  // beforeAll may have failed before the app started.
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition
  await app?.close();
});

const emails = (rows: Array<{ email: string }>) => rows.map((r) => r.email).sort();

describe('Database.transaction', () => {
  it("a tenant scope sees that tenant's rows only, even when the statement forgets to filter", async () => {
    const { rows } = await db.transaction({ tenant: a }, (tx) => tx.query<{ email: string }>(`SELECT email FROM users`));
    expect(emails(rows)).toEqual([`u@${a}.test`]);
  });

  it('the platform scope sees platform tables and no tenant-scoped row', async () => {
    const seen = await db.transaction('platform', async (tx) => ({
      users: (await tx.query(`SELECT 1 FROM users`)).rowCount,
      tenants: (await tx.query(`SELECT 1 FROM tenants WHERE id = ANY($1)`, [[a, b]])).rowCount,
    }));
    expect(seen).toEqual({ users: 0, tenants: 2 });
  });

  it('enterTenant narrows a platform transaction to one tenant from then on', async () => {
    const { rows } = await db.transaction('platform', async (tx) => {
      await tx.enterTenant(b);
      return tx.query<{ email: string }>(`SELECT email FROM users`);
    });
    expect(emails(rows)).toEqual([`u@${b}.test`]);
  });

  it("the audit reader sees every tenant's events and cannot write", async () => {
    for (const t of [a, b])
      await db.transaction({ tenant: t }, (tx) => audit.record(tx, { tenantId: t, actor: 'test', action: 'tx.scope-test' }));
    const page = await audit.page({ action: 'tx.scope-test', limit: 10 });
    expect(page.items.map((e) => e.tenantId).sort()).toEqual([a, b].sort());
    await expect(
      db.transaction('audit-reader', (tx) => audit.record(tx, { tenantId: null, actor: 'test', action: 'tx.write' })),
    ).rejects.toThrow(/read-only transaction/);
  });

  it('the revocation reader is read-only too', async () => {
    await expect(db.transaction('revocation-reader', (tx) => tx.query(`UPDATE sessions SET revoked_at = now()`))).rejects.toThrow(
      /read-only transaction/,
    );
  });

  it('rolls back every statement of the unit when one fails: the change and its audit event leave nothing', async () => {
    await expect(
      db.transaction({ tenant: a }, async (tx) => {
        await tx.query(`INSERT INTO users (tenant_id, email) VALUES ($1, 'half@done.test')`, [a]);
        await audit.record(tx, { tenantId: a, actor: 'test', action: 'tx.rolled-back' });
        throw new Error('fails mid-way');
      }),
    ).rejects.toThrow('fails mid-way');
    const { rows } = await db.transaction({ tenant: a }, (tx) => tx.query(`SELECT 1 FROM users WHERE email = 'half@done.test'`));
    expect(rows).toHaveLength(0);
    expect((await audit.page({ action: 'tx.rolled-back', limit: 10 })).items).toHaveLength(0);
  });

  it('refuses a tenant id that is not a UUID before any statement is sent', async () => {
    for (const bad of ["x'; SELECT 1; --", '', 'not-a-uuid'])
      await expect(db.transaction({ tenant: bad }, (tx) => tx.query('SELECT 1'))).rejects.toThrow('the tenant id is not a UUID');
    await expect(db.transaction('platform', (tx) => tx.enterTenant("'; DROP TABLE users; --"))).rejects.toThrow(
      'the tenant id is not a UUID',
    );
  });
});

describe('Database.statement (one statement, one round trip)', () => {
  const count = async (tenant: string, email: string) =>
    (await db.transaction({ tenant }, (tx) => tx.query(`SELECT 1 FROM users WHERE email = $1`, [email]))).rowCount;

  it("commits its statement in the tenant's scope, and sees that tenant's rows only", async () => {
    const { rows } = await db.statement({ tenant: a }, (tx) =>
      tx.query<{ email: string }>(`INSERT INTO users (tenant_id, email) VALUES ($1, 'one-shot@a.test') RETURNING email`, [a]),
    );
    expect(rows[0]!.email).toBe('one-shot@a.test');
    expect(await count(a, 'one-shot@a.test')).toBe(1);
    // Row-level security applies as in a transaction: tenant b sees none of a's users.
    const seen = await db.statement({ tenant: b }, (tx) => tx.query(`SELECT 1 FROM users WHERE tenant_id = $1`, [a]));
    expect(seen.rowCount).toBe(0);
  });

  it('leaves nothing behind when its statement fails, and the connection serves the next unit', async () => {
    await expect(
      db.statement({ tenant: a }, (tx) => tx.query(`INSERT INTO users (tenant_id, email) VALUES ($1, 'half@a.test'), ($1, 1/0)`, [a])),
    ).rejects.toThrow(/division by zero/);
    expect(await count(a, 'half@a.test')).toBe(0);
    expect((await db.statement({ tenant: a }, (tx) => tx.query(`SELECT 1`))).rowCount).toBe(1);
  });

  it('refuses a second statement: the first is committed alone, the second never runs', async () => {
    await expect(
      db.statement({ tenant: a }, async (tx) => {
        await tx.query(`INSERT INTO users (tenant_id, email) VALUES ($1, 'first@a.test')`, [a]);
        await tx.query(`INSERT INTO users (tenant_id, email) VALUES ($1, 'second@a.test')`, [a]);
      }),
    ).rejects.toThrow(/second statement/);
    expect([await count(a, 'first@a.test'), await count(a, 'second@a.test')]).toEqual([1, 0]);
  });
});
