/**
 * The languages of the hosted pages (issue #18, ADR 0021) and how a request's language is chosen:
 * the OIDC `ui_locales` of the login (OIDC Core §3.1.2.1), then the browser's `Accept-Language`
 * (RFC 9110 §12.5.4, quality values honoured), then the tenant's default, then English.
 */
export const LOCALES = ['en', 'de', 'fr', 'es'] as const;
export type Locale = (typeof LOCALES)[number];
export const DEFAULT_LOCALE: Locale = 'en';

export const isLocale = (value: unknown): value is Locale => typeof value === 'string' && (LOCALES as readonly string[]).includes(value);

/** A BCP 47 language tag as far as matching needs it (RFC 4647 §2.1's basic language range). */
const TAG = /^[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*$/;
/** Enough for any real header; what lies beyond is not read (a header is no place for a list of hundreds). */
const MAX_ENTRIES = 32;
const MAX_TAGS = 10;

/** The shipped language a tag names by its primary subtag (`de-CH` → `de`), or undefined. */
function localeOf(tag: string): Locale | undefined {
  if (!TAG.test(tag)) return undefined;
  const primary = (tag.split('-')[0] ?? '').toLowerCase();
  return isLocale(primary) ? primary : undefined;
}

/**
 * `ui_locales` as the login transaction keeps it: the well-formed tags, in the client's order of
 * preference, space-separated (at most ten), or null when none is left.
 */
export function normaliseUiLocales(value: string | undefined | null): string | null {
  if (typeof value !== 'string') return null;
  const tags = value
    .split(/\s+/)
    .filter((t) => t.length <= 35 && TAG.test(t))
    .slice(0, MAX_TAGS);
  return tags.length > 0 ? tags.join(' ') : null;
}

/** The shipped languages an `Accept-Language` header asks for, best first; malformed entries are skipped. */
export function acceptedLocales(header: string | undefined | null): Locale[] {
  if (typeof header !== 'string' || header.length === 0) return [];
  const ranked: { locale: Locale; q: number; at: number }[] = [];
  const entries = header.slice(0, 2048).split(',').slice(0, MAX_ENTRIES);
  entries.forEach((entry, at) => {
    const [range = '', ...params] = entry.split(';').map((p) => p.trim());
    let q = 1;
    for (const param of params) {
      const m = /^q\s*=\s*(0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/i.exec(param);
      if (!m) {
        q = -1;
        break;
      }
      q = Number(m[1]);
    }
    const locale = localeOf(range);
    if (locale && q > 0) ranked.push({ locale, q, at });
  });
  ranked.sort((a, b) => b.q - a.q || a.at - b.at);
  return [...new Set(ranked.map((r) => r.locale))];
}

export interface LocaleSources {
  /** The `ui_locales` of the login transaction (space-separated tags), if any. */
  uiLocales?: string | null;
  /** The request's `Accept-Language` header. */
  acceptLanguage?: string | null;
  /** The tenant's default language (`tenants.default_locale`). */
  tenantDefault?: string | null;
}

/** The language of a hosted page. Never throws: whatever the inputs, the answer is a shipped language. */
export function negotiateLocale(s: LocaleSources): Locale {
  for (const tag of (typeof s.uiLocales === 'string' ? s.uiLocales : '').split(/\s+/).slice(0, MAX_TAGS)) {
    const locale = localeOf(tag);
    if (locale) return locale;
  }
  const accepted = acceptedLocales(s.acceptLanguage)[0];
  if (accepted) return accepted;
  return isLocale(s.tenantDefault) ? s.tenantDefault : DEFAULT_LOCALE;
}
