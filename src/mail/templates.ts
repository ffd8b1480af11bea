import { escapeHtml } from '../common/html.js';
import { DEFAULT_LOCALE, formatDuration, translate, type Locale, type MessageKey } from '../i18n/index.js';

/** What each kind of message is for; also the outbox row's `purpose`. */
export const MAIL_PURPOSES = ['invitation', 'password-reset', 'email-verification'] as const;
export type MailPurpose = (typeof MAIL_PURPOSES)[number];

export interface RenderedMail {
  subject: string;
  text: string;
  html: string;
}

/** What every template takes: the tenant's display name, the one-time link and how long it works. */
export interface LinkMailInput {
  tenantName: string;
  link: string;
  expiresInMinutes: number;
  /** The language of the message: the tenant's default (the reader's own is not known when it is sent); English without one. */
  lang?: Locale;
}

/** A subject is one header line: no line breaks, whatever a tenant named itself. */
const oneLine = (value: string): string => value.replace(/[\r\n\t]+/g, ' ').trim();

interface MailTexts {
  subject: MessageKey;
  lead: MessageKey;
  action: MessageKey;
  closing: MessageKey;
}

/**
 * One message: plain text, and the same as a minimal HTML document. Every interpolated value is
 * escaped in the HTML (a tenant's display name is chosen by its administrators; the link carries
 * query parameters), and the link is also written out in full so it can be copied.
 */
function linkMail(texts: MailTexts, input: LinkMailInput): RenderedMail {
  const lang = input.lang ?? DEFAULT_LOCALE;
  const t = (key: MessageKey) => translate(lang, key, { tenant: input.tenantName });
  const [subject, lead, action, closing] = [t(texts.subject), t(texts.lead), t(texts.action), t(texts.closing)];
  const expiry = translate(lang, 'mail.expiry', { duration: formatDuration(lang, input.expiresInMinutes) });
  const text = `${lead}\n\n${translate(lang, 'mail.actionLine', { action })}\n${input.link}\n\n${expiry} ${closing}\n`;
  const html =
    `<!doctype html><html lang="${lang}"><head><meta charset="utf-8"></head><body>` +
    `<p>${escapeHtml(lead)}</p>` +
    `<p><a href="${escapeHtml(input.link)}">${escapeHtml(action)}</a></p>` +
    `<p>${escapeHtml(translate(lang, 'mail.copyLink'))}<br>${escapeHtml(input.link)}</p>` +
    `<p>${escapeHtml(expiry)} ${escapeHtml(closing)}</p>` +
    '</body></html>';
  return { subject: oneLine(subject), text, html };
}

export const invitationMail = (input: LinkMailInput): RenderedMail =>
  linkMail(
    { subject: 'mail.invitationSubject', lead: 'mail.invitationLead', action: 'mail.invitationAction', closing: 'mail.invitationClosing' },
    input,
  );

export const passwordResetMail = (input: LinkMailInput): RenderedMail =>
  linkMail({ subject: 'mail.resetSubject', lead: 'mail.resetLead', action: 'mail.resetAction', closing: 'mail.resetClosing' }, input);

export const emailVerificationMail = (input: LinkMailInput): RenderedMail =>
  linkMail({ subject: 'mail.verifySubject', lead: 'mail.verifyLead', action: 'mail.verifyAction', closing: 'mail.verifyClosing' }, input);

/** The template of each purpose. */
export const MAIL_TEMPLATES: Record<MailPurpose, (input: LinkMailInput) => RenderedMail> = {
  invitation: invitationMail,
  'password-reset': passwordResetMail,
  'email-verification': emailVerificationMail,
};
