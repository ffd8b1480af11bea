import { de } from './de.js';
import { en, type MessageKey, type Messages } from './en.js';
import { es } from './es.js';
import { fr } from './fr.js';
import { DEFAULT_LOCALE, isLocale, type Locale } from './locales.js';

export type { MessageKey, Messages } from './en.js';

export const CATALOGUES: Readonly<Record<Locale, Messages>> = { en, de, fr, es };

/** What a text's `{name}` placeholders are filled with; numbers are formatted for the language. */
export type MessageParams = Readonly<Record<string, string | number>>;

/** A text to show, said once for every language: a key and its values. */
export interface LocalText {
  key: MessageKey;
  params?: MessageParams;
}

export const isMessageKey = (key: string): key is MessageKey => Object.hasOwn(en, key);

const numberFormats = new Map<Locale, Intl.NumberFormat>();
/** A number as the language writes it (`1,000` · `1.000` · `1 000`). */
export function formatNumber(lang: Locale, n: number): string {
  let f = numberFormats.get(lang);
  if (!f) numberFormats.set(lang, (f = new Intl.NumberFormat(lang)));
  return f.format(n);
}

/** "90 minutes", "1 hour", "2 days" in the language: the largest unit that divides the duration. */
export function formatDuration(lang: Locale, minutes: number): string {
  const unit = minutes >= 1440 && minutes % 1440 === 0 ? 'day' : minutes >= 60 && minutes % 60 === 0 ? 'hour' : 'minute';
  const n = unit === 'day' ? minutes / 1440 : unit === 'hour' ? minutes / 60 : minutes;
  return new Intl.NumberFormat(lang, { style: 'unit', unit, unitDisplay: 'long' }).format(n);
}

/**
 * Fills a template's `{name}` placeholders. `text` maps the template's own words and `value` each
 * value (both the identity for plain text; the HTML renderer escapes). An unknown placeholder stays
 * as it is written, so a mistake shows instead of vanishing.
 */
export function interpolate(
  lang: Locale,
  template: string,
  params: Readonly<Record<string, unknown>>,
  text: (s: string) => string = (s) => s,
  value: (v: unknown) => string = (v) => String(v),
): string {
  let out = '';
  let last = 0;
  for (const m of template.matchAll(/\{([A-Za-z][A-Za-z0-9]*)\}/g)) {
    out += text(template.slice(last, m.index));
    const v = params[m[1] ?? ''];
    out += v === undefined ? text(m[0]) : typeof v === 'number' ? text(formatNumber(lang, v)) : value(v);
    last = m.index + m[0].length;
  }
  return out + text(template.slice(last));
}

/** A plain-text message in `lang` (English when `lang` is not a shipped language). */
export function translate(lang: Locale, key: MessageKey, params: MessageParams = {}): string {
  const catalogue = isLocale(lang) ? CATALOGUES[lang] : CATALOGUES[DEFAULT_LOCALE];
  return interpolate(lang, catalogue[key], params);
}

/** One or more texts, joined by a space (a sentence and its advice). */
export const translateAll = (lang: Locale, texts: readonly LocalText[]): string =>
  texts.map((t) => translate(lang, t.key, t.params)).join(' ');
