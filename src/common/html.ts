import type { Response } from 'express';
import type { Brand } from './brand.js';
import { brandCss } from './brand-css.js';
import { CATALOGUES, DEFAULT_LOCALE, interpolate, translate, type Locale, type MessageKey } from '../i18n/index.js';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export const escapeHtml = (value: string): string => value.replace(/[&<>"']/g, (c) => ESCAPES[c]!);

const STYLE =
  'body{font-family:system-ui,sans-serif;background:#f5f6f8;margin:0}main{max-width:380px;margin:10vh auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px #0002}' +
  'label{display:block;margin:.8rem 0 .2rem}input{width:100%;padding:.5rem;box-sizing:border-box}button{margin-top:1.2rem;width:100%;padding:.6rem}.error{color:#b00020}' +
  '.brand{margin:0 0 1rem}.brand img{display:block;max-height:48px;max-width:100%;height:auto}.brand p{margin:.5rem 0 0}' +
  'footer{margin-top:1.5rem;font-size:.875rem}footer nav a{margin-right:.8rem}';

/**
 * What a hosted page is rendered for: its language (issue #18, ADR 0021) and the tenant's brand.
 * Resolved once per request (login/page-context.service.ts); absent fields take the defaults
 * (English, the service's own look).
 */
export interface PageContext {
  lang?: Locale;
  brand?: Brand;
}

/** A piece of HTML already escaped, to put into a translated text as it is. */
export interface SafeHtml {
  readonly html: string;
}

export const safeHtml = (html: string): SafeHtml => ({ html });
/** `<strong>value</strong>`, the value escaped. */
export const strong = (value: string): SafeHtml => safeHtml(`<strong>${escapeHtml(value)}</strong>`);

const isSafeHtml = (v: unknown): v is SafeHtml => typeof v === 'object' && v !== null && typeof (v as SafeHtml).html === 'string';

/**
 * A catalogue text as HTML: the text and every plain value escaped, `SafeHtml` values put in as
 * they are (markup the caller built, with its own values escaped).
 */
export function th(lang: Locale | undefined, key: MessageKey, params: Readonly<Record<string, string | number | SafeHtml>> = {}): string {
  const l = lang ?? DEFAULT_LOCALE;
  return interpolate(l, CATALOGUES[l][key], params, escapeHtml, (v) => (isSafeHtml(v) ? v.html : escapeHtml(String(v))));
}

/** A catalogue text as plain text (for `page()`'s title, which escapes it, and attribute values escaped by the caller). */
export const tt = (lang: Locale | undefined, key: MessageKey, params?: Readonly<Record<string, string | number>>): string =>
  translate(lang ?? DEFAULT_LOCALE, key, params);

/** A same-origin logo path as the branding service makes it; anything else is not shown. */
const LOGO_PATH = /^\/branding\/[0-9a-f-]{36}\/logo-[0-9a-f]{16}\.(?:png|jpg|webp)$/;
const HTTPS = /^https:\/\/[^\s"<>]+$/;
const EMAIL = /^[^\s@"<>]+@[^\s@"<>]+$/;

/** The tenant's logo and heading above the page's own content. */
function brandHeader(brand: Brand): string {
  const logo =
    brand.logoUrl && LOGO_PATH.test(brand.logoUrl) ? `<img src="${escapeHtml(brand.logoUrl)}" alt="${escapeHtml(brand.displayName)}">` : '';
  const heading = brand.texts?.heading ? `<p>${escapeHtml(brand.texts.heading)}</p>` : '';
  return logo || heading ? `<div class="brand">${logo}${heading}</div>` : '';
}

/** The tenant's footer text, legal links and support contact below it. */
function brandFooter(brand: Brand, lang: Locale | undefined): string {
  const parts: string[] = [];
  if (brand.texts?.footer) parts.push(`<p>${escapeHtml(brand.texts.footer)}</p>`);
  const contact = brand.supportContact;
  if (contact && (EMAIL.test(contact) || HTTPS.test(contact))) {
    const href = EMAIL.test(contact) ? `mailto:${contact}` : contact;
    parts.push(`<p>${th(lang, 'brand.support', { contact: safeHtml(`<a href="${escapeHtml(href)}">${escapeHtml(contact)}</a>`) })}</p>`);
  }
  const links = (brand.texts?.legalLinks ?? []).filter((l) => HTTPS.test(l.url));
  if (links.length > 0)
    parts.push(
      `<nav aria-label="${escapeHtml(tt(lang, 'brand.legal'))}">${links.map((l) => `<a href="${escapeHtml(l.url)}">${escapeHtml(l.label)}</a>`).join('')}</nav>`,
    );
  return parts.length ? `<footer>${parts.join('')}</footer>` : '';
}

/**
 * Minimal self-contained page: no external assets, no inline script, so a strict CSP applies. With
 * a brand: its colours (brand-css.ts) after the service's own style, its logo and heading above
 * the content, its footer, legal links and support contact below.
 */
export function page(title: string, body: string, ctx: PageContext = {}): string {
  const lang = ctx.lang ?? DEFAULT_LOCALE;
  const brand = ctx.brand;
  const css = brand ? brandCss(brand) : '';
  const header = brand ? brandHeader(brand) : '';
  const footer = brand ? brandFooter(brand, lang) : '';
  return `<!doctype html><html lang="${lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(title)}</title><style>${STYLE}${css}</style></head><body><main>${header}${body}${footer}</main></body></html>`;
}

/** The CSP of a page showing the tenant's logo: images from this origin too. */
function withLogo(csp: string): string {
  if (/(^|;\s*)img-src /.test(csp)) return csp.replace(/((?:^|;\s*)img-src [^;]*)/, "$1 'self'");
  return `${csp}; img-src 'self'`;
}

/**
 * The headers of a hosted page: the security headers given, and the language it is in
 * (`Content-Language`; `Vary: Accept-Language`, since the header chose it).
 */
export function setPageHeaders(res: Response, ctx: PageContext, headers: Record<string, string> = HTML_SECURITY_HEADERS): void {
  const csp = headers['Content-Security-Policy'];
  res.set(ctx.brand?.logoUrl && csp ? { ...headers, 'Content-Security-Policy': withLogo(csp) } : headers);
  res.setHeader('Content-Language', ctx.lang ?? DEFAULT_LOCALE);
  res.vary('Accept-Language');
}

/**
 * The error page of the browser routes. `returnTo` is an http(s) URL the caller vouches for (see
 * safeReturnLink in error.filter.ts); without one the page says what to do instead of linking.
 */
export function renderErrorPage(
  status: number,
  message: string,
  opts: { title?: string; returnTo?: string } = {},
  ctx: PageContext = {},
): string {
  const title = opts.title ?? tt(ctx.lang, 'error.title.signIn');
  const next = opts.returnTo
    ? `<p>${th(ctx.lang, 'error.returnSentence', { link: safeHtml(`<a href="${escapeHtml(opts.returnTo)}">${th(ctx.lang, 'error.returnLink')}</a>`) })}</p>`
    : `<p>${th(ctx.lang, 'error.startAgain')}</p>`;
  return page(
    title,
    `<h1>${escapeHtml(title)}</h1><p class="error" role="alert">${escapeHtml(message)}</p>${next}<p><small>${th(ctx.lang, 'error.status', { status: String(status) })}</small></p>`,
    ctx,
  );
}

/** A page that only informs (signed out, and the like). */
export const renderMessagePage = (title: string, message: string, ctx: PageContext = {}): string =>
  page(title, `<h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p>`, ctx);

/** The request's page context, as the controller that resolved it noted it (for the error filter). */
const noted = new WeakMap<object, PageContext>();
export const notePageContext = (req: object, ctx: PageContext): void => void noted.set(req, ctx);
export const notedPageContext = (req: object): PageContext | undefined => noted.get(req);

export const HTML_SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'X-Content-Type-Options': 'nosniff',
  'Cache-Control': 'no-store',
};
