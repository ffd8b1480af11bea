import { Injectable } from '@nestjs/common';
import type { Tx } from '../database/database.js';
import type { MailPurpose } from './templates.js';

/** A message to send, as the caller of `enqueue` gives it. */
export interface OutgoingMail {
  tenantId: string;
  recipient: string;
  purpose: MailPurpose;
  /** Shown as the From display name (the tenant's display name); the address is MAIL_FROM. */
  senderName?: string | null;
  subject: string;
  text: string;
  html: string;
}

/** A message the delivery loop has claimed; `attempt` is this attempt's number (1 for the first). */
export interface ClaimedMail extends OutgoingMail {
  id: string;
  attempt: number;
}

/**
 * `mail_outbox`: every e-mail the service sends, from the transaction that caused it until it is
 * sent or given up. Tenant-scoped (row-level security): `enqueue` runs in the caller's tenant
 * transaction; the delivery loop's methods run in the 'mail-delivery' scope, which sees every
 * tenant's rows of this table only.
 */
@Injectable()
export class MailOutboxRepository {
  /** Adds a message in the caller's transaction: it exists if and only if that transaction commits. */
  async enqueue(tx: Tx, mail: OutgoingMail): Promise<string> {
    const { rows } = await tx.query<{ id: string }>(
      `INSERT INTO mail_outbox (tenant_id, recipient, purpose, sender_name, subject, text_body, html_body)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
      [mail.tenantId, mail.recipient, mail.purpose, mail.senderName ?? null, mail.subject, mail.text, mail.html],
    );
    const [row] = rows;
    if (!row) throw new Error('mail_outbox: the INSERT returned no row');
    return row.id;
  }

  /**
   * Claims up to `limit` due messages of any tenant: counts the attempt and moves the message's due
   * time `leaseSeconds` ahead, so no other worker (another process, another replica) takes it while
   * this one sends it; `SKIP LOCKED` lets concurrent claims pass each other instead of waiting, and
   * each row goes to exactly one of them. A worker that dies mid-send leaves the message due again
   * once the lease is over: delivery is at least once, and only a crash after the SMTP server
   * accepted the message and before `markSent` sends it twice.
   */
  async claimDue(tx: Tx, limit: number, leaseSeconds: number): Promise<ClaimedMail[]> {
    const { rows } = await tx.query<ClaimedMail>(
      `UPDATE mail_outbox o
          SET attempts = o.attempts + 1, next_attempt_at = now() + make_interval(secs => $2)
         FROM (SELECT id FROM mail_outbox
                WHERE sent_at IS NULL AND given_up_at IS NULL AND next_attempt_at <= now()
                ORDER BY next_attempt_at
                LIMIT $1
                  FOR UPDATE SKIP LOCKED) due
        WHERE o.id = due.id
        RETURNING o.id, o.tenant_id AS "tenantId", o.recipient, o.purpose, o.sender_name AS "senderName", o.subject,
                  o.text_body AS text, o.html_body AS html, o.attempts AS attempt`,
      [limit, leaseSeconds],
    );
    return rows;
  }

  /**
   * Marks a claimed message sent, and empties its bodies (their one-time links must not outlive the
   * delivery). `attempt` fences a worker whose lease ran out and whose message another worker has
   * claimed since: its late answer changes nothing. False when the claim was no longer this one's.
   */
  async markSent(tx: Tx, id: string, attempt: number): Promise<boolean> {
    const { rowCount } = await tx.query(
      `UPDATE mail_outbox SET sent_at = now(), last_error = NULL, text_body = '', html_body = ''
        WHERE id = $1 AND attempts = $2 AND sent_at IS NULL`,
      [id, attempt],
    );
    return rowCount > 0;
  }

  /**
   * Records a failed attempt: the error class only (`error`: no addresses, no server text), and
   * in how many seconds to try again (counted on the database's clock, as the claim's due times
   * are), or, with `retryInSeconds` null, gives the message up (bodies emptied). `attempt` fences
   * as in `markSent`.
   */
  async markFailed(tx: Tx, id: string, attempt: number, error: string, retryInSeconds: number | null): Promise<boolean> {
    const { rowCount } =
      retryInSeconds === null
        ? await tx.query(
            `UPDATE mail_outbox SET last_error = $3, given_up_at = now(), text_body = '', html_body = ''
              WHERE id = $1 AND attempts = $2 AND sent_at IS NULL`,
            [id, attempt, error.slice(0, 200)],
          )
        : await tx.query(
            `UPDATE mail_outbox SET last_error = $3, next_attempt_at = now() + make_interval(secs => $4)
              WHERE id = $1 AND attempts = $2 AND sent_at IS NULL`,
            [id, attempt, error.slice(0, 200), retryInSeconds],
          );
    return rowCount > 0;
  }

  /**
   * Milliseconds until the earliest pending message of any tenant is due (0 when one is due now;
   * null when none is pending), on the database's clock, so the loop sleeps exactly that long.
   */
  async millisecondsUntilNextDue(tx: Tx): Promise<number | null> {
    const { rows } = await tx.query<{ ms: number | null }>(
      `SELECT ceil(greatest(0, extract(epoch FROM min(next_attempt_at) - now()) * 1000))::float8 AS ms
         FROM mail_outbox WHERE sent_at IS NULL AND given_up_at IS NULL`,
    );
    return rows[0]?.ms ?? null;
  }
}
