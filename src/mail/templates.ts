import { escapeHtml } from '../common/html.js';

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
}

/** "90 minutes", "1 hour", "2 days": the largest unit that divides the duration. */
function duration(minutes: number): string {
  const unit = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  if (minutes >= 1440 && minutes % 1440 === 0) return unit(minutes / 1440, 'day');
  if (minutes >= 60 && minutes % 60 === 0) return unit(minutes / 60, 'hour');
  return unit(minutes, 'minute');
}

/** A subject is one header line: no line breaks, whatever a tenant named itself. */
const oneLine = (value: string): string => value.replace(/[\r\n\t]+/g, ' ').trim();

/**
 * One message: plain text, and the same as a minimal HTML document. Every interpolated value is
 * escaped in the HTML (a tenant's display name is chosen by its administrators; the link carries
 * query parameters), and the link is also written out in full so it can be copied.
 */
function linkMail(subject: string, lead: string, action: string, input: LinkMailInput, closing: string): RenderedMail {
  const expiry = `The link works for ${duration(input.expiresInMinutes)}.`;
  const text = `${lead}\n\n${action}:\n${input.link}\n\n${expiry} ${closing}\n`;
  const html =
    '<!doctype html><html><head><meta charset="utf-8"></head><body>' +
    `<p>${escapeHtml(lead)}</p>` +
    `<p><a href="${escapeHtml(input.link)}">${escapeHtml(action)}</a></p>` +
    `<p>If the button does not work, copy this address into your browser:<br>${escapeHtml(input.link)}</p>` +
    `<p>${escapeHtml(expiry)} ${escapeHtml(closing)}</p>` +
    '</body></html>';
  return { subject: oneLine(subject), text, html };
}

export function invitationMail(input: LinkMailInput): RenderedMail {
  return linkMail(
    `You are invited to ${input.tenantName}`,
    `You have been invited to join ${input.tenantName}.`,
    'Accept the invitation',
    input,
    'If you did not expect this invitation, ignore this message.',
  );
}

export function passwordResetMail(input: LinkMailInput): RenderedMail {
  return linkMail(
    `Reset your ${input.tenantName} password`,
    `Someone asked to reset the password of your ${input.tenantName} account.`,
    'Choose a new password',
    input,
    'If it was not you, ignore this message: your password stays as it is.',
  );
}

export function emailVerificationMail(input: LinkMailInput): RenderedMail {
  return linkMail(
    `Confirm your e-mail address for ${input.tenantName}`,
    `Please confirm that this is your e-mail address for ${input.tenantName}.`,
    'Confirm the address',
    input,
    'If you did not sign up, ignore this message.',
  );
}

/** The template of each purpose. */
export const MAIL_TEMPLATES: Record<MailPurpose, (input: LinkMailInput) => RenderedMail> = {
  invitation: invitationMail,
  'password-reset': passwordResetMail,
  'email-verification': emailVerificationMail,
};
