import { isEmail } from 'class-validator';
import { DEFAULT_BRAND_COLORS, labelOnPrimary } from '../common/brand-css.js';
import { AA_NORMAL_TEXT, HEX_COLOR, contrastRatio, formatRatio } from '../common/contrast.js';
import { ProblemError } from '../common/errors.js';

/**
 * The rules of a tenant's branding (issue #18), pure: what an admin may store, checked as a whole
 * before anything is written. Every refusal is a 422 naming the field (`field` member and the
 * detail), so nothing is stored half-way.
 */

export const BRANDING_LIMITS = {
  displayName: 200,
  supportContact: 320,
  heading: 120,
  footer: 500,
  legalLinks: 5,
  linkLabel: 80,
  url: 2048,
} as const;

export interface LegalLink {
  label: string;
  url: string;
}

/** Branding as stored and as the admin API shows it: null where the tenant set nothing. */
export interface BrandingSettings {
  displayName: string | null;
  colors: { primary: string | null; background: string | null; text: string | null };
  supportContact: string | null;
  texts: { heading: string | null; footer: string | null; legalLinks: LegalLink[] };
}

/** What an admin sends (the whole branding: what it leaves out is unset). */
export interface BrandingInput {
  displayName?: string | null;
  colors?: { primary?: string | null; background?: string | null; text?: string | null } | null;
  supportContact?: string | null;
  texts?: { heading?: string | null; footer?: string | null; legalLinks?: LegalLink[] | null } | null;
}

const invalid = (field: string, detail: string) =>
  new ProblemError({ type: 'branding-invalid', detail: `${field}: ${detail}`, extensions: { field } });
/** A contrast refusal: the detail names the pair (which says the field), the `field` member the value to change. */
const lowContrast = (field: string, detail: string) => new ProblemError({ type: 'branding-contrast', detail, extensions: { field } });

/**
 * Characters a plain text may not hold: markup (`<`, `>`), C0 and C1 controls (line breaks too:
 * the pages show one line or paragraph), and the bidirectional overrides that can make a text read
 * otherwise than it is stored.
 */
// eslint-disable-next-line no-control-regex
const NOT_PLAIN = /[<>\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/u;

/** Characters as PostgreSQL's char_length counts them (code points, not UTF-16 units). */
const codePoints = (s: string): number => s.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, '_').length;

function plainText(field: string, value: string | null | undefined, max: number): string | null {
  if (value === null || value === undefined) return null;
  const text = value.trim();
  if (text === '') return null;
  if (NOT_PLAIN.test(text))
    throw invalid(
      field,
      'plain text only: no "<", ">", line breaks or other control characters (markup is not rendered, and not accepted).',
    );
  if (codePoints(text) > max) throw invalid(field, `at most ${max} characters.`);
  return text;
}

/** An absolute https URL without credentials, in its normalised form. */
function httpsUrl(field: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    throw invalid(field, 'must be an absolute https URL.');
  }
  if (url.protocol !== 'https:' || !url.hostname) throw invalid(field, 'must be an https URL.');
  if (url.username || url.password) throw invalid(field, 'must not carry a user name or password.');
  if (url.href.length > BRANDING_LIMITS.url) throw invalid(field, `at most ${BRANDING_LIMITS.url} characters.`);
  return url.href;
}

function colorOf(field: string, value: string | null | undefined): string | null {
  if (value === null || value === undefined || value === '') return null;
  if (!HEX_COLOR.test(value))
    throw invalid(field, `must be a colour as #rrggbb (e.g. #1a73e8), not ${JSON.stringify(value.slice(0, 20))}.`);
  return value.toLowerCase();
}

function supportContactOf(value: string | null | undefined): string | null {
  const text = plainText('supportContact', value, BRANDING_LIMITS.supportContact);
  if (text === null) return null;
  if (/^https?:/i.test(text)) return httpsUrl('supportContact', text);
  if (!isEmail(text)) throw invalid('supportContact', 'must be an email address or an https URL.');
  return text;
}

/**
 * WCAG 2.x AA on the colours a page will show (absent ones are the service's own, see
 * DEFAULT_BRAND_COLORS): the text on the background, and a button label on the primary colour
 * (white or the text colour, whichever reads better; brand-css.ts uses the same choice).
 */
export function checkContrast(colors: BrandingSettings['colors']): void {
  if (!colors.background && !colors.text && !colors.primary) return;
  const background = colors.background ?? DEFAULT_BRAND_COLORS.background;
  const text = colors.text ?? DEFAULT_BRAND_COLORS.text;
  const name = (field: 'background' | 'text', value: string) => (colors[field] ? `colors.${field}` : `the default ${field} ${value}`);
  const textRatio = contrastRatio(text, background);
  if (textRatio < AA_NORMAL_TEXT)
    throw lowContrast(
      colors.text ? 'colors.text' : 'colors.background',
      `${name('text', text)} on ${name('background', background)}: ${formatRatio(textRatio)}, needs ${AA_NORMAL_TEXT}:1 (WCAG 2 AA).`,
    );
  if (colors.primary) {
    const label = labelOnPrimary(colors.primary, text);
    const ratio = contrastRatio(label, colors.primary);
    if (ratio < AA_NORMAL_TEXT)
      throw lowContrast(
        'colors.primary',
        `button label (white or ${name('text', text)}) on colors.primary: at best ${formatRatio(ratio)}, needs ${AA_NORMAL_TEXT}:1 (WCAG 2 AA).`,
      );
  }
}

/** The branding to store for `input`, or a 422 naming the first field that breaks a rule. */
export function validateBranding(input: BrandingInput): BrandingSettings {
  const colors = {
    primary: colorOf('colors.primary', input.colors?.primary),
    background: colorOf('colors.background', input.colors?.background),
    text: colorOf('colors.text', input.colors?.text),
  };
  const links = input.texts?.legalLinks ?? [];
  if (links.length > BRANDING_LIMITS.legalLinks) throw invalid('texts.legalLinks', `at most ${BRANDING_LIMITS.legalLinks} links.`);
  const legalLinks = links.map((link, i) => {
    const label = plainText(`texts.legalLinks[${i}].label`, link.label, BRANDING_LIMITS.linkLabel);
    if (label === null) throw invalid(`texts.legalLinks[${i}].label`, 'a link needs a label.');
    return { label, url: httpsUrl(`texts.legalLinks[${i}].url`, link.url) };
  });
  const settings: BrandingSettings = {
    displayName: plainText('displayName', input.displayName, BRANDING_LIMITS.displayName),
    colors,
    supportContact: supportContactOf(input.supportContact),
    texts: {
      heading: plainText('texts.heading', input.texts?.heading, BRANDING_LIMITS.heading),
      footer: plainText('texts.footer', input.texts?.footer, BRANDING_LIMITS.footer),
      legalLinks,
    },
  };
  checkContrast(colors);
  return settings;
}
