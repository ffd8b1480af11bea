import type { Provider } from '@nestjs/common';
import { MailDeliveryService } from './mail-delivery.service.js';
import { MailOutboxRepository } from './mail-outbox.repository.js';
import { Mailer } from './mailer.js';

/**
 * Outgoing mail (issue #17): the outbox, the transport (SMTP_URL, or the dev mailbox) and the
 * delivery loop. Spread into AppModule's providers, whose Database and AppConfig they use. Other
 * modules use `MailDeliveryService` only (`enqueue` in their transaction, then `kick`), with the
 * message rendered by `templates.ts`.
 */
export const MAIL_PROVIDERS: Provider[] = [MailOutboxRepository, Mailer, MailDeliveryService];
