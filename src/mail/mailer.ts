import { Inject, Injectable } from '@nestjs/common';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createTransport } from 'nodemailer';
import { AppConfig } from '../config/app-config.js';
import type { ClaimedMail } from './mail-outbox.repository.js';

/** Bounds of one SMTP delivery: a hanging server fails the attempt well within the claim's lease. */
const CONNECTION_TIMEOUT_MS = 10_000;
const GREETING_TIMEOUT_MS = 10_000;
const SOCKET_TIMEOUT_MS = 30_000;
/** How long a claimed message is reserved for the worker that sends it; comfortably above the timeouts. */
export const DELIVERY_LEASE_SECONDS = 300;

/** Why an attempt failed, as much as may be stored and logged: an error class and reply code, never the server's text. */
export interface DeliveryFailure {
  /** E.g. `ECONNECTION`, `EENVELOPE 550`: no address, no message text (a server may quote the recipient). */
  summary: string;
  /** The server refused the message itself (a 5xx reply): retrying would get the same answer. */
  permanent: boolean;
}

export function deliveryFailure(err: unknown): DeliveryFailure {
  const e = err as { code?: unknown; responseCode?: unknown } | undefined;
  const code = typeof e?.code === 'string' && /^[A-Z0-9_]{1,40}$/.test(e.code) ? e.code : 'ERROR';
  const reply = typeof e?.responseCode === 'number' && Number.isInteger(e.responseCode) ? e.responseCode : undefined;
  // RFC 5321: 5yz is a permanent rejection, except 503 (wrong session state: a new connection may pass).
  // A refused login (EAUTH) is the operator's configuration, not the message: it is retried until fixed.
  const permanent = reply !== undefined && reply >= 500 && reply < 600 && reply !== 503 && code !== 'EAUTH';
  return { summary: reply === undefined ? code : `${code} ${reply}`, permanent };
}

/** A display name is one header phrase: no control characters, whatever a tenant named itself. */
const displayName = (name: string | null | undefined): string | undefined => {
  const clean = name?.replace(/[\p{Cc}]+/gu, ' ').trim();
  return clean ? clean.slice(0, 200) : undefined;
};

/**
 * Hands one message to the mail server named by SMTP_URL, or, without it (development), writes it
 * as an RFC 822 file into the dev mailbox `${DATA_DIR}/mailbox/`, one `.eml` file per message:
 * mail is never dropped silently. The From address is MAIL_FROM, its display name the tenant's;
 * the Message-ID is derived from the outbox row, so a message delivered twice (a crash between the
 * server's acceptance and the row's update) carries the same id both times.
 */
@Injectable()
export class Mailer {
  private readonly transport;
  /** Where the dev mailbox is, when there is no SMTP server. */
  readonly mailbox: string | undefined;

  constructor(@Inject(AppConfig) private readonly config: AppConfig) {
    if (config.SMTP_URL) {
      this.mailbox = undefined;
      this.transport = createTransport({
        url: config.SMTP_URL,
        connectionTimeout: CONNECTION_TIMEOUT_MS,
        greetingTimeout: GREETING_TIMEOUT_MS,
        socketTimeout: SOCKET_TIMEOUT_MS,
        // Never write the conversation (addresses, bodies) to a log.
        logger: false,
        debug: false,
      });
    } else {
      this.mailbox = resolve(config.DATA_DIR, 'mailbox');
      this.transport = createTransport({ streamTransport: true, buffer: true, newline: 'unix' });
    }
  }

  async send(mail: ClaimedMail): Promise<void> {
    const from = this.config.mailFrom;
    const name = displayName(mail.senderName);
    const info = await this.transport.sendMail({
      from: name ? { name, address: from } : from,
      to: mail.recipient,
      subject: mail.subject,
      text: mail.text,
      html: mail.html,
      messageId: `<${mail.id}@${from.slice(from.lastIndexOf('@') + 1)}>`,
      headers: { 'Auto-Submitted': 'auto-generated' },
    });
    if (this.mailbox) this.writeToMailbox(this.mailbox, mail.id, (info as { message?: unknown }).message);
  }

  /** One file per message, written whole (a reader never sees half of one), readable by its owner only (it holds one-time links). */
  private writeToMailbox(dir: string, id: string, message: unknown): void {
    if (!Buffer.isBuffer(message)) throw new Error('the dev mailbox transport returned no message');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const name = `${new Date().toISOString().replace(/[:.]/g, '-')}-${id}.eml`;
    const partial = join(dir, `.${name}.partial`);
    writeFileSync(partial, message, { mode: 0o600 });
    renameSync(partial, join(dir, name));
  }

  close(): void {
    this.transport.close();
  }
}
