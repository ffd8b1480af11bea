const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export const escapeHtml = (value: string): string => value.replace(/[&<>"']/g, (c) => ESCAPES[c]!);

const STYLE =
  'body{font-family:system-ui,sans-serif;background:#f5f6f8;margin:0}main{max-width:380px;margin:10vh auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px #0002}' +
  'label{display:block;margin:.8rem 0 .2rem}input{width:100%;padding:.5rem;box-sizing:border-box}button{margin-top:1.2rem;width:100%;padding:.6rem}.error{color:#b00020}';

/** Minimal self-contained page: no scripts, no external assets, so a strict CSP applies. */
export function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head><body><main>${body}</main></body></html>`;
}

/**
 * The error page of the browser routes. `returnTo` is an http(s) URL the caller vouches for (see
 * safeReturnLink in error.filter.ts); without one the page says what to do instead of linking.
 */
export function renderErrorPage(status: number, message: string, opts: { title?: string; returnTo?: string } = {}): string {
  const title = opts.title ?? 'Sign-in problem';
  const next = opts.returnTo
    ? `<p><a href="${escapeHtml(opts.returnTo)}">Return to the application</a> and try again.</p>`
    : '<p>Go back to the application you came from and start again from there.</p>';
  return page(
    title,
    `<h1>${escapeHtml(title)}</h1><p class="error" role="alert">${escapeHtml(message)}</p>${next}<p><small>Error ${status}.</small></p>`,
  );
}

/** A page that only informs (signed out, and the like). */
export const renderMessagePage = (title: string, message: string): string =>
  page(title, `<h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p>`);

export const HTML_SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'X-Content-Type-Options': 'nosniff',
  'Cache-Control': 'no-store',
};
