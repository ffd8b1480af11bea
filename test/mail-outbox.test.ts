/**
 * The mail outbox end to end: the real service on its own database, delivering to a real SMTP
 * server (aiosmtpd, test/peers/smtp.ts) whose Maildir the tests read, or to the dev mailbox. A
 * message exists iff its transaction committed, survives an SMTP outage and a restart, and is
 * delivered exactly once by several workers. Nothing here waits for a fixed time: every wait polls
 * for the outcome with a generous deadline.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFailed, type TestContext } from 'vitest';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { freePort } from './support/free-port.js';
import { parseMail, SmtpServer, type ParsedMail } from './peers/smtp.js';
import { peersRequired, PeerUnavailableError } from './peers/peer-unavailable.js';
import { TenantsService } from '../src/tenants/tenants.service.js';
import type { Tenant } from '../src/tenants/tenants.repository.js';
import { MailDeliveryService } from '../src/mail/mail-delivery.service.js';
import { MailOutboxRepository } from '../src/mail/mail-outbox.repository.js';
import { invitationMail, passwordResetMail } from '../src/mail/templates.js';

const MAIL_FROM = 'accounts@auth.example.test';

let smtp: SmtpServer | undefined;
let smtpMissing: string | undefined;
const servers: SmtpServer[] = [];
const apps: TestApp[] = [];

beforeAll(async () => {
  try {
    smtp = await SmtpServer.start();
    servers.push(smtp);
  } catch (err) {
    if (!(err instanceof PeerUnavailableError) || peersRequired()) throw err;
    smtpMissing = err.message;
  }
});

afterAll(async () => {
  await Promise.allSettled(apps.map((a) => a.close()));
  await Promise.allSettled(servers.map((s) => s.dispose()));
});

const needSmtp = (ctx: TestContext): SmtpServer => {
  if (!smtp) ctx.skip(`${smtpMissing} — install python3-aiosmtpd (apt-get install python3-aiosmtpd); under CI=true this fails`);
  return smtp;
};

/**
 * What every service instance of this file logged (JSON lines), to check that no address or link is
 * in them. One sink for all: nestjs-pino keeps one root logger per process, the first instance's.
 */
const lines: string[] = [];
const logSink = { write: (line: string) => void lines.push(line) };

async function start(env: Record<string, string>, db?: TestApp['db']): Promise<TestApp> {
  const app = await startTestApp({ MAIL_FROM, ...env }, db, logSink);
  apps.push(app);
  return app;
}

async function close(app: TestApp): Promise<void> {
  apps.splice(apps.indexOf(app), 1);
  await app.close();
}

async function pollUntil<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const tenantOf = (app: TestApp, name: string): Promise<Tenant> =>
  app.app.get(TenantsService).create(`mail-${randomBytes(4).toString('hex')}`, name);

interface Enqueued {
  id: string;
  recipient: string;
  link: string;
}

/** Renders an invitation and enqueues it in a transaction of the tenant; `rollback` makes that transaction fail after the enqueue. */
async function enqueueInvitation(app: TestApp, tenant: Tenant, opts: { rollback?: boolean } = {}): Promise<Enqueued> {
  const mail = app.app.get(MailDeliveryService);
  const recipient = `invitee-${randomBytes(4).toString('hex')}@example.test`;
  const link = `https://app.example.test/invite?token=${randomBytes(12).toString('hex')}&tenant=${tenant.id}`;
  const rendered = invitationMail({ tenantName: tenant.displayName, link, expiresInMinutes: 7 * 24 * 60 });
  let id = '';
  const work = app.database.transaction({ tenant: tenant.id }, async (tx) => {
    id = await mail.enqueue(tx, { tenantId: tenant.id, recipient, purpose: 'invitation', senderName: tenant.displayName, ...rendered });
    if (opts.rollback) throw new Error('the change failed after the enqueue');
  });
  if (opts.rollback) await expect(work).rejects.toThrow('the change failed after the enqueue');
  else await work;
  mail.kick();
  return { id, recipient, link };
}

interface OutboxRow {
  id: string;
  attempts: number;
  last_error: string | null;
  sent_at: Date | null;
  given_up_at: Date | null;
  due_in_seconds: number;
  text_body: string;
  html_body: string;
}

const outboxRows = (app: TestApp, tenantId: string): Promise<OutboxRow[]> =>
  app.database.transaction({ tenant: tenantId }, async (tx) => {
    const { rows } = await tx.query<OutboxRow>(
      `SELECT id, attempts, last_error, sent_at, given_up_at, text_body, html_body,
              extract(epoch FROM next_attempt_at - now())::float8 AS due_in_seconds
         FROM mail_outbox ORDER BY created_at`,
    );
    return rows;
  });

const outboxRow = async (app: TestApp, tenantId: string, id: string): Promise<OutboxRow> => {
  const row = (await outboxRows(app, tenantId)).find((r) => r.id === id);
  if (!row) throw new Error(`no outbox row ${id}`);
  return row;
};

/** The messages a server received for outbox row `id` (its Message-ID is derived from the row). */
const receivedFor = (server: SmtpServer, id: string): ParsedMail[] =>
  server
    .messages()
    .filter((raw) => raw.includes(id))
    .map(parseMail)
    .filter((m) => m.messageId.includes(id));

const delivered = (app: TestApp, tenantId: string, id: string) =>
  pollUntil(`outbox row ${id} is sent`, async () => {
    const row = await outboxRow(app, tenantId, id);
    return row.sent_at ? row : undefined;
  });

describe('the mail outbox, against a real SMTP server', () => {
  it('sends nothing for a transaction that rolled back, and the committed message with the tenant as sender', async (ctx) => {
    const server = needSmtp(ctx);
    onTestFailed(() => console.error(lines.join('')));
    const app = await start({ SMTP_URL: server.url });
    const tenant = await tenantOf(app, 'Acme & Söhne <GmbH>');

    const rolledBack = await enqueueInvitation(app, tenant, { rollback: true });
    const committed = await enqueueInvitation(app, tenant);
    const row = await delivered(app, tenant.id, committed.id);

    // The rolled-back message never existed: no row, and (the committed one having arrived after it) nothing received.
    expect((await outboxRows(app, tenant.id)).map((r) => r.id)).toEqual([committed.id]);
    expect(server.messages().filter((raw) => raw.includes(rolledBack.recipient))).toEqual([]);

    const [mail, ...more] = receivedFor(server, committed.id);
    expect(more).toEqual([]);
    expect(mail).toMatchObject({
      fromName: 'Acme & Söhne <GmbH>',
      fromAddress: MAIL_FROM,
      to: committed.recipient,
      subject: 'You are invited to Acme & Söhne <GmbH>',
      contentType: 'multipart/alternative',
    });
    expect(mail!.text).toContain(committed.link);
    expect(mail!.text).toContain('7 days');
    // Every interpolated value is escaped in the HTML part: the name's markup and the link's "&".
    expect(mail!.html).toContain('Acme &amp; Söhne &lt;GmbH&gt;');
    expect(mail!.html).toContain(`href="${committed.link.replace(/&/g, '&amp;')}"`);
    expect(mail!.html).not.toContain('<GmbH>');

    // Sent: the row keeps its metadata, not the one-time link.
    expect(row).toMatchObject({ attempts: 1, last_error: null, text_body: '', html_body: '' });
    // Logs name the message, never its recipient or link.
    const logged = lines.join('');
    expect(logged).toContain(committed.id);
    expect(logged).not.toContain(committed.recipient);
    expect(logged).not.toContain(committed.link.split('?')[1]!.slice(0, 30));
  });

  it('keeps a message through an SMTP outage and delivers it exactly once when the server is back and the retry is due', async (ctx) => {
    needSmtp(ctx);
    const port = await freePort(); // nothing listens there yet
    const app = await start({ SMTP_URL: `smtp://127.0.0.1:${port}`, MAIL_RETRY_BASE_SECONDS: '3600' });
    const tenant = await tenantOf(app, 'Outage Inc.');
    const { id } = await enqueueInvitation(app, tenant);

    const failed = await pollUntil('the first attempt failed', async () => {
      const row = await outboxRow(app, tenant.id, id);
      return row.last_error ? row : undefined;
    });
    expect(failed).toMatchObject({ attempts: 1, sent_at: null, given_up_at: null });
    expect(failed.last_error).toMatch(/^E[A-Z]+( \d{3})?$/); // an error class, no server text or address
    expect(failed.due_in_seconds).toBeGreaterThan(3000); // the first back-off step: MAIL_RETRY_BASE_SECONDS
    expect(failed.text_body).not.toBe(''); // still there to be sent

    const server = await SmtpServer.start(port);
    servers.push(server);
    // The time comes: the retry is made due now (the loop's scope may update any tenant's outbox row).
    await app.database.transaction('mail-delivery', (tx) => tx.query(`UPDATE mail_outbox SET next_attempt_at = now() WHERE id = $1`, [id]));
    app.app.get(MailDeliveryService).kick();
    const row = await delivered(app, tenant.id, id);
    expect(row.attempts).toBe(2);
    expect(receivedFor(server, id)).toHaveLength(1);
  });

  it('retries by itself when the back-off has passed, without a kick', async (ctx) => {
    needSmtp(ctx);
    const port = await freePort();
    const app = await start({ SMTP_URL: `smtp://127.0.0.1:${port}`, MAIL_RETRY_BASE_SECONDS: '1' });
    const tenant = await tenantOf(app, 'Patience Ltd');
    const { id } = await enqueueInvitation(app, tenant);
    await pollUntil('an attempt failed', async () => ((await outboxRow(app, tenant.id, id)).last_error ? true : undefined));

    const server = await SmtpServer.start(port);
    servers.push(server);
    const row = await delivered(app, tenant.id, id);
    expect(row.attempts).toBeGreaterThanOrEqual(2);
    expect(receivedFor(server, id)).toHaveLength(1);
  });

  it('loses nothing across a restart between the enqueue and the delivery', async (ctx) => {
    const server = needSmtp(ctx);
    const down = await freePort();
    const first = await start({ SMTP_URL: `smtp://127.0.0.1:${down}`, MAIL_RETRY_BASE_SECONDS: '1' });
    const tenant = await tenantOf(first, 'Restart GmbH');
    const { id } = await enqueueInvitation(first, tenant);
    await pollUntil('an attempt failed', async () => ((await outboxRow(first, tenant.id, id)).last_error ? true : undefined));
    await close(first);

    const second = await start({ SMTP_URL: server.url, KEY_ENCRYPTION_KEY: first.config.KEY_ENCRYPTION_KEY! }, first.db);
    await delivered(second, tenant.id, id);
    expect(receivedFor(server, id)).toHaveLength(1);
  });

  it('delivers each message exactly once with two service instances on one database', async (ctx) => {
    const server = needSmtp(ctx);
    const a = await start({ SMTP_URL: server.url });
    const b = await start({ SMTP_URL: server.url, KEY_ENCRYPTION_KEY: a.config.KEY_ENCRYPTION_KEY! }, a.db);
    const tenant = await tenantOf(a, 'Twice Corp');
    const ids: string[] = [];
    const mail = a.app.get(MailDeliveryService);
    await a.database.transaction({ tenant: tenant.id }, async (tx) => {
      for (let i = 0; i < 40; i++) {
        const rendered = passwordResetMail({
          tenantName: tenant.displayName,
          link: `https://app.example.test/reset?n=${i}`,
          expiresInMinutes: 30,
        });
        ids.push(
          await mail.enqueue(tx, { tenantId: tenant.id, recipient: `user-${i}@example.test`, purpose: 'password-reset', ...rendered }),
        );
      }
    });
    mail.kick();
    b.app.get(MailDeliveryService).kick();
    await pollUntil('every message is sent', async () =>
      (await outboxRows(a, tenant.id)).every((r) => r.sent_at !== null) ? true : undefined,
    );
    for (const id of ids) expect(receivedFor(server, id), id).toHaveLength(1);
    expect((await outboxRows(a, tenant.id)).map((r) => r.attempts)).toEqual(ids.map(() => 1));
  });
});

describe('the outbox claim', () => {
  it('hands each due message to one of two concurrent claims, across tenants, and the second claim does not wait for the first', async () => {
    const app = await start({ SMTP_URL: `smtp://127.0.0.1:${await freePort()}` });
    // This process's own loop stays out of the way: the two claims below are the only workers.
    await app.app.get(MailDeliveryService).onApplicationShutdown();
    const repo = app.app.get(MailOutboxRepository);
    const tenants = [await tenantOf(app, 'Claim One'), await tenantOf(app, 'Claim Two')];
    const ids = new Set<string>();
    for (const tenant of tenants) for (let n = 0; n < 5; n++) ids.add((await enqueueInvitation(app, tenant)).id);

    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let firstClaimed!: (ids: string[]) => void;
    const first = new Promise<string[]>((r) => (firstClaimed = r));
    const holding = app.database.transaction('mail-delivery', async (tx) => {
      firstClaimed((await repo.claimDue(tx, 4, 300)).map((m) => m.id));
      await held; // the first claim's transaction is still open (its rows locked) while the second claims
    });
    const a = await first;
    const b = (await app.database.transaction('mail-delivery', (tx) => repo.claimDue(tx, 100, 300))).map((m) => m.id);
    release();
    await holding;

    expect(a).toHaveLength(4);
    expect(b).toHaveLength(6);
    expect(new Set([...a, ...b])).toEqual(ids);
    // Both committed: nothing is due any more until the lease ends.
    expect(await app.database.transaction('mail-delivery', (tx) => repo.claimDue(tx, 100, 300))).toEqual([]);
  });

  it('keeps tenants apart, and the delivery scope may not add messages or read other tables', async () => {
    const app = await start({ SMTP_URL: `smtp://127.0.0.1:${await freePort()}` });
    await app.app.get(MailDeliveryService).onApplicationShutdown();
    const [one, two] = [await tenantOf(app, 'Apart One'), await tenantOf(app, 'Apart Two')];
    const { id } = await enqueueInvitation(app, one);
    expect((await outboxRows(app, one.id)).map((r) => r.id)).toEqual([id]);
    expect(await outboxRows(app, two.id)).toEqual([]);
    await expect(
      app.database.transaction('mail-delivery', (tx) =>
        tx.query(
          `INSERT INTO mail_outbox (tenant_id, recipient, purpose, subject, text_body, html_body) VALUES ($1, 'x@example.test', 'invitation', 's', 't', 'h')`,
          [one.id],
        ),
      ),
    ).rejects.toThrow(/row-level security/);
    const users = await app.database.transaction('mail-delivery', (tx) =>
      tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM tenants t JOIN users u ON u.tenant_id = t.id`),
    );
    expect(users.rows[0]!.n).toBe(0);
  });
});

describe('without SMTP_URL (development)', () => {
  it('writes each message as an .eml file to DATA_DIR/mailbox and logs the path, not the message', async () => {
    onTestFailed(() => console.error(lines.join('')));
    const app = await start({});
    const mailbox = join(app.config.DATA_DIR, 'mailbox');
    const tenant = await tenantOf(app, 'Dev Box');
    const { id, recipient, link } = await enqueueInvitation(app, tenant);

    const file = await pollUntil('an .eml file is in the dev mailbox', () =>
      existsSync(mailbox) ? readdirSync(mailbox).find((f) => f.endsWith('.eml') && f.includes(id)) : undefined,
    );
    const mail = parseMail(readFileSync(join(mailbox, file), 'utf8'));
    expect(mail).toMatchObject({ fromName: 'Dev Box', fromAddress: MAIL_FROM, to: recipient, subject: 'You are invited to Dev Box' });
    expect(mail.text).toContain(link);
    expect(readdirSync(mailbox).filter((f) => f.includes(id))).toEqual([file]);
    await delivered(app, tenant.id, id);

    const logged = lines.join('');
    expect(lines.filter((l) => l.includes(mailbox))).toHaveLength(1);
    expect(logged).not.toContain(recipient);
    expect(logged).not.toContain(link);
  });
});
