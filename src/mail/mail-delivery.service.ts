import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { Database, type Tx } from '../database/database.js';
import { MailOutboxRepository, type ClaimedMail, type OutgoingMail } from './mail-outbox.repository.js';
import { DELIVERY_LEASE_SECONDS, Mailer, deliveryFailure } from './mailer.js';

/** Messages claimed per statement; a round claims again until fewer than this were due. */
const BATCH = 10;
/** Longest sleep between rounds: picks up what other replicas enqueued (their kick wakes only themselves). */
const POLL_MS = 30_000;
/** Shortest sleep, so rows another worker is claiming at this instant do not make the loop spin. */
const MIN_SLEEP_MS = 100;
const MAX_BACKOFF_SECONDS = 3600;

/** Seconds before the retry that follows failed attempt `attempt` (1-based): base × 4^(attempt-1), at most an hour. */
export const retryDelaySeconds = (attempt: number, baseSeconds: number): number =>
  Math.min(MAX_BACKOFF_SECONDS, baseSeconds * 4 ** Math.max(0, attempt - 1));

/**
 * The mail subsystem's surface: `enqueue` a message in the transaction of the change that causes it,
 * then `kick()` once that transaction has committed. A delivery loop in every process sends the due
 * messages of every tenant (the outbox's 'mail-delivery' scope) and retries failures with
 * exponential back-off; messages stay in the outbox until sent or given up, so a restart, a crash
 * or an SMTP outage loses none. Several processes (WORKERS > 1, replicas) share the work through
 * the outbox's claim (`FOR UPDATE SKIP LOCKED` and a lease).
 *
 * Logs name the message id, tenant, purpose and attempt only: never the recipient, the subject,
 * the bodies or their links.
 */
@Injectable()
export class MailDeliveryService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('MailDelivery');
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<void> | undefined;
  private running = false;
  /** A kick arrived during a round: run another one right after it. */
  private kicked = false;

  constructor(
    private readonly db: Database,
    private readonly outbox: MailOutboxRepository,
    private readonly mailer: Mailer,
    @Inject(AppConfig) private readonly config: AppConfig,
  ) {}

  /**
   * Adds a message in the caller's transaction (`tx`, of the message's tenant): it is sent if and
   * only if that transaction commits. Call `kick()` after the commit to send it at once.
   */
  enqueue(tx: Tx, mail: OutgoingMail): Promise<string> {
    return this.outbox.enqueue(tx, mail);
  }

  /** Wakes this process's delivery loop now (after an enqueue committed); otherwise it wakes when the next message is due. */
  kick(): void {
    if (!this.running) return;
    if (this.round) {
      this.kicked = true;
      return;
    }
    this.schedule(0);
  }

  onApplicationBootstrap(): void {
    const smtpUrl = this.config.SMTP_URL;
    if (!smtpUrl)
      this.logger.warn(
        { mailbox: this.mailer.mailbox },
        'SMTP_URL is unset: mail is written as .eml files to the dev mailbox (development only)',
      );
    else this.logger.log({ smtp: smtpEndpoint(smtpUrl) }, 'mail is sent through SMTP_URL');
    this.running = true;
    this.schedule(0);
  }

  async onApplicationShutdown(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.round;
    this.mailer.close();
  }

  /** A method, not a field read: `running` changes while a round awaits. */
  private stopped(): boolean {
    return !this.running;
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.runRound(), ms);
    this.timer.unref();
  }

  private async runRound(): Promise<void> {
    this.timer = undefined;
    if (this.stopped() || this.round) return;
    let sleep = POLL_MS;
    this.round = this.deliverDue().then(
      (ms) => void (sleep = ms),
      (err: unknown) => this.logger.warn({ reason: err instanceof Error ? err.message : 'unknown' }, 'mail delivery round failed'),
    );
    await this.round;
    this.round = undefined;
    if (this.stopped()) return; // shut down during the round
    if (this.kicked) {
      this.kicked = false;
      sleep = 0;
    }
    this.schedule(sleep);
  }

  /** Sends everything due now; resolves with how long to sleep until the next message is due. */
  private async deliverDue(): Promise<number> {
    for (;;) {
      const claimed = await this.db.transaction('mail-delivery', (tx) => this.outbox.claimDue(tx, BATCH, DELIVERY_LEASE_SECONDS));
      for (const mail of claimed) {
        if (!this.running) break; // the rest come back when their lease ends, attempt counted
        await this.deliver(mail);
      }
      if (claimed.length < BATCH || !this.running) break;
    }
    const due = await this.db.transaction('mail-delivery', (tx) => this.outbox.millisecondsUntilNextDue(tx));
    return due === null ? POLL_MS : Math.min(POLL_MS, Math.max(MIN_SLEEP_MS, due));
  }

  private async deliver(mail: ClaimedMail): Promise<void> {
    const about = { mailId: mail.id, tenant: mail.tenantId, purpose: mail.purpose, attempt: mail.attempt };
    try {
      await this.mailer.send(mail);
    } catch (err) {
      const failure = deliveryFailure(err);
      const giveUp = failure.permanent || mail.attempt >= this.config.MAIL_MAX_ATTEMPTS;
      const retryIn = giveUp ? null : retryDelaySeconds(mail.attempt, this.config.MAIL_RETRY_BASE_SECONDS);
      await this.db.transaction('mail-delivery', (tx) => this.outbox.markFailed(tx, mail.id, mail.attempt, failure.summary, retryIn));
      if (giveUp)
        this.logger.error(
          { ...about, error: failure.summary, permanent: failure.permanent },
          'mail delivery given up: the message will not be sent',
        );
      else this.logger.warn({ ...about, error: failure.summary, retryInSeconds: retryIn }, 'mail delivery failed; will retry');
      return;
    }
    const recorded = await this.db.transaction('mail-delivery', (tx) => this.outbox.markSent(tx, mail.id, mail.attempt));
    if (recorded) this.logger.log(about, 'mail sent');
    else this.logger.warn(about, 'mail sent after its claim had expired: another worker may send it again');
  }
}

/** host:port of the SMTP server, for the start-up line: never the URL's credentials. */
function smtpEndpoint(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.hostname}${u.port ? `:${u.port}` : ''}`;
}
