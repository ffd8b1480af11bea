/**
 * Drives a Keycloak browser login without a browser: plain `fetch`, a small cookie jar and a
 * regex-level reading of Keycloak's login pages (theme keycloak.v2 or base).
 *
 * Start it at any URL that ends up on Keycloak's login page (Keycloak's own authorization endpoint,
 * its SAML endpoint with a SAMLRequest, or the service's /authorize which redirects there). It
 * follows redirects, fills the pages it recognises, and stops without requesting it at the first
 * redirect whose target starts with `stopAt` (the client's redirect_uri), or at the first
 * auto-submitting POST form whose action starts with `stopAt` (SAML HTTP-POST binding: the
 * `SAMLResponse` + `RelayState` form Keycloak posts to the SP's ACS; OIDC `response_mode=form_post`).
 *
 * Pages it handles:
 * - the classic username + password form (`login.ftl`);
 * - identity-first login (`login-username.ftl` then `login-password.ftl`), which Keycloak shows
 *   when Organizations are enabled on the realm;
 * - the organisation picker (`select-organization.ftl`, buttons named `kc.org`), answered with
 *   `selectOrganization` when given;
 * - an auto-submitting POST form (`saml-post-form.ftl`, `form_post`: hidden inputs only): returned
 *   as `formPost` when its action starts with `stopAt`, otherwise submitted like a browser would.
 * Anything else (an error page, a required action, a login form re-shown with an error) ends the
 * drive with a `KeycloakLoginError` carrying the page's message and the trace of visited URLs.
 */
import { createHash, randomBytes } from 'node:crypto';

export class CookieJar {
  private readonly cookies = new Map<
    string,
    { name: string; value: string; host: string; domain?: string; path: string; expires?: number }
  >();

  /** Stores the cookies a response sets for `url`. */
  store(url: URL, response: Response): void {
    for (const header of response.headers.getSetCookie()) {
      const [pair = '', ...attrs] = header.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let domain: string | undefined;
      let path = defaultPath(url);
      let expires: number | undefined;
      for (const attr of attrs) {
        const [rawKey = '', ...rest] = attr.split('=');
        const key = rawKey.trim().toLowerCase();
        const val = rest.join('=').trim();
        if (key === 'domain' && val) domain = val.replace(/^\./, '').toLowerCase();
        else if (key === 'path' && val.startsWith('/')) path = val;
        else if (key === 'max-age') expires = Date.now() + Number(val) * 1000;
        else if (key === 'expires' && expires === undefined) expires = Date.parse(val);
      }
      const id = `${domain ?? url.hostname}|${path}|${name}`;
      if (expires !== undefined && expires <= Date.now()) this.cookies.delete(id);
      else this.cookies.set(id, { name, value, host: url.hostname, domain, path, expires });
    }
  }

  /** The Cookie header value for a request to `url` (Secure is ignored: tests run on plain-HTTP loopback). */
  header(url: URL): string | undefined {
    const now = Date.now();
    const host = url.hostname.toLowerCase();
    const matching = [...this.cookies.values()].filter(
      (c) =>
        (c.expires === undefined || c.expires > now) &&
        (c.domain ? host === c.domain || host.endsWith(`.${c.domain}`) : host === c.host) &&
        (url.pathname === c.path || url.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`)),
    );
    return matching.length ? matching.map((c) => `${c.name}=${c.value}`).join('; ') : undefined;
  }

  /** Names of the cookies currently held, for diagnostics. */
  names(): string[] {
    return [...this.cookies.values()].map((c) => c.name);
  }
}

function defaultPath(url: URL): string {
  const p = url.pathname;
  const slash = p.lastIndexOf('/');
  return slash <= 0 ? '/' : p.slice(0, slash);
}

export interface HeadlessLoginOptions {
  /** Where the drive starts (GET). */
  startUrl: string | URL;
  username: string;
  password: string;
  /** The drive ends at the first redirect whose Location starts with this (usually the redirect_uri). */
  stopAt: string;
  /** Alias to pick when Keycloak asks which organisation to log in to. */
  selectOrganization?: string;
  /** Reuse a jar to model a browser that already has a session (SSO). */
  cookieJar?: CookieJar;
  /** Safety net against loops (default 20 requests). */
  maxSteps?: number;
}

export interface HeadlessLoginResult {
  /** The callback URL Keycloak redirected to, or the action of the form it would post (not requested). */
  callbackUrl: URL;
  code: string | null;
  state: string | null;
  /** RFC 9207 `iss`, which Keycloak adds to the callback. */
  iss: string | null;
  /** An OAuth error returned to the callback instead of a code. */
  error: string | null;
  errorDescription: string | null;
  /**
   * Set when the drive ended at an auto-submitting POST form instead of a redirect: the fields the
   * browser would post to `callbackUrl` (not posted). For SAML, `fields.SAMLResponse` (base64) and
   * `fields.RelayState`; for OIDC form_post, `code`/`state`/`iss`/`error`, also copied above.
   */
  formPost?: { action: URL; fields: Record<string, string> };
  cookieJar: CookieJar;
  /** Every request made, in order, e.g. `GET 302 http://...`. */
  trace: string[];
  /** Which Keycloak pages were answered, e.g. ['username', 'password']. */
  pages: string[];
}

export interface KeycloakPageInfo {
  url: string;
  status: number;
  /** The HTML <title>. */
  title: string;
  /** Keycloak's feedback/alert or field error text, or the page's main error text. */
  message: string;
  /** Names of the inputs of the page's first form. */
  formFields: string[];
}

export class KeycloakLoginError extends Error {
  constructor(
    message: string,
    readonly reason: 'invalid-credentials' | 'error-page' | 'unexpected-page' | 'too-many-steps' | 'no-organization-choice',
    readonly page: KeycloakPageInfo | undefined,
    readonly trace: string[],
  ) {
    super(`${message}${page ? ` [${page.status} ${page.url}] ${page.message}` : ''}\ntrace:\n${trace.join('\n')}`);
    this.name = 'KeycloakLoginError';
  }
}

interface ParsedForm {
  action: string;
  method: string;
  inputs: { name: string; type: string; value: string }[];
  buttons: { name: string; value: string }[];
}

/** Runs the login and returns what arrived at `stopAt`. */
export async function headlessLogin(opts: HeadlessLoginOptions): Promise<HeadlessLoginResult> {
  const jar = opts.cookieJar ?? new CookieJar();
  const trace: string[] = [];
  const pages: string[] = [];
  const maxSteps = opts.maxSteps ?? 20;
  let submittedPassword = false;

  let next: { url: URL; method: 'GET' | 'POST'; body?: URLSearchParams } = { url: new URL(opts.startUrl), method: 'GET' };

  for (let step = 0; step < maxSteps; step++) {
    const headers: Record<string, string> = { accept: 'text/html,application/xhtml+xml' };
    const cookie = jar.header(next.url);
    if (cookie) headers.cookie = cookie;
    if (next.body) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await fetch(next.url, { method: next.method, headers, body: next.body, redirect: 'manual' });
    jar.store(next.url, res);
    trace.push(`${next.method} ${res.status} ${next.url.href}`);

    if (res.status >= 300 && res.status < 400) {
      await res.arrayBuffer();
      const location = res.headers.get('location');
      if (!location) throw new KeycloakLoginError(`redirect without Location`, 'unexpected-page', undefined, trace);
      const target = new URL(location, next.url);
      if (target.href.startsWith(opts.stopAt)) {
        trace.push(`STOP ${target.href}`);
        const params = target.searchParams;
        return {
          callbackUrl: target,
          code: params.get('code'),
          state: params.get('state'),
          iss: params.get('iss'),
          error: params.get('error'),
          errorDescription: params.get('error_description'),
          cookieJar: jar,
          trace,
          pages,
        };
      }
      next = { url: target, method: 'GET' };
      continue;
    }

    const html = await res.text();
    const page = describePage(next.url, res.status, html);
    const forms = parseForms(html, next.url);
    const form = forms[0];
    const fieldNames = form ? form.inputs.map((i) => i.name) : [];
    const orgButtons = forms.flatMap((f) => f.buttons.filter((b) => b.name === 'kc.org').map((b) => ({ form: f, value: b.value })));

    if (orgButtons.length > 0) {
      const choice = orgButtons.find((b) => b.value === opts.selectOrganization);
      if (!choice) {
        throw new KeycloakLoginError(
          `Keycloak asks to choose an organisation (${orgButtons.map((b) => b.value).join(', ')}) and selectOrganization is ${opts.selectOrganization ?? 'not set'}`,
          'no-organization-choice',
          page,
          trace,
        );
      }
      pages.push('select-organization');
      next = { url: new URL(choice.form.action), method: 'POST', body: new URLSearchParams({ 'kc.org': choice.value }) };
      continue;
    }

    const autoPost = forms.find(
      (f) =>
        f.method === 'post' &&
        f.inputs.length > 0 &&
        f.inputs.every((i) => i.type === 'hidden') &&
        !f.buttons.some((b) => b.name === 'kc.org'),
    );
    if (autoPost && autoPost.inputs.some((i) => ['SAMLResponse', 'SAMLRequest', 'code', 'error'].includes(i.name))) {
      const fields = Object.fromEntries(autoPost.inputs.map((i) => [i.name, i.value]));
      const action = new URL(autoPost.action);
      if (action.href.startsWith(opts.stopAt)) {
        trace.push(`STOP POST ${action.href}`);
        return {
          callbackUrl: action,
          code: fields['code'] ?? null,
          state: fields['state'] ?? null,
          iss: fields['iss'] ?? null,
          error: fields['error'] ?? null,
          errorDescription: fields['error_description'] ?? null,
          formPost: { action, fields },
          cookieJar: jar,
          trace,
          pages,
        };
      }
      // Elsewhere (e.g. a broker hop): submit it as the page's script would.
      pages.push('auto-post');
      next = { url: action, method: 'POST', body: new URLSearchParams(fields) };
      continue;
    }

    const hasUsername = fieldNames.includes('username');
    const hasPassword = form?.inputs.some((i) => i.name === 'password' && i.type === 'password') ?? false;
    if (form && (hasUsername || hasPassword)) {
      if (hasPassword && submittedPassword) {
        throw new KeycloakLoginError('the login form came back after the password was sent', 'invalid-credentials', page, trace);
      }
      const body = new URLSearchParams();
      for (const input of form.inputs) {
        if (input.type === 'checkbox' || input.type === 'radio') continue;
        if (input.name === 'username') body.set('username', opts.username);
        else if (input.name === 'password') body.set('password', opts.password);
        else body.set(input.name, input.value);
      }
      const submit = form.buttons.find((b) => b.name === 'login') ?? form.buttons[0];
      if (submit?.name) body.set(submit.name, submit.value);
      pages.push(hasPassword ? (hasUsername ? 'username-password' : 'password') : 'username');
      if (hasPassword) submittedPassword = true;
      next = { url: new URL(form.action), method: form.method === 'get' ? 'GET' : 'POST', body };
      if (next.method === 'GET') {
        for (const [k, v] of body) next.url.searchParams.set(k, v);
        next.body = undefined;
      }
      continue;
    }

    throw new KeycloakLoginError(
      res.status >= 400 ? 'Keycloak answered with an error page' : 'Keycloak showed a page this driver does not handle',
      res.status >= 400 || /error/i.test(page.title) ? 'error-page' : 'unexpected-page',
      page,
      trace,
    );
  }
  throw new KeycloakLoginError(`no callback after ${maxSteps} requests`, 'too-many-steps', undefined, trace);
}

// ---------------------------------------------------------------------------------------------
// Minimal HTML reading (Keycloak's own templates only; not a general HTML parser)

function parseForms(html: string, base: URL): ParsedForm[] {
  const forms: ParsedForm[] = [];
  const formRe = /<form\b([^>]*)>([\s\S]*?)<\/form>/gi;
  for (const match of html.matchAll(formRe)) {
    const attrs = parseAttributes(match[1] ?? '');
    const inner = match[2] ?? '';
    const inputs: ParsedForm['inputs'] = [];
    for (const input of inner.matchAll(/<input\b([^>]*)>/gi)) {
      const a = parseAttributes(input[1] ?? '');
      if (!a.name || 'disabled' in a) continue;
      inputs.push({ name: a.name, type: (a.type ?? 'text').toLowerCase(), value: a.value ?? '' });
    }
    const buttons: ParsedForm['buttons'] = [];
    for (const button of inner.matchAll(/<button\b([^>]*)>/gi)) {
      const a = parseAttributes(button[1] ?? '');
      if ((a.type ?? 'submit').toLowerCase() !== 'submit') continue;
      buttons.push({ name: a.name ?? '', value: a.value ?? '' });
    }
    for (const input of inputs.filter((i) => i.type === 'submit')) buttons.push({ name: input.name, value: input.value });
    forms.push({
      action: new URL(attrs.action ?? base.href, base).href,
      method: (attrs.method ?? 'get').toLowerCase(),
      inputs: inputs.filter((i) => i.type !== 'submit'),
      buttons,
    });
  }
  return forms;
}

function parseAttributes(source: string): Record<string, string> {
  const attrs: Record<string, string> = {};
  for (const m of source.matchAll(/([^\s"'=<>/]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?/g)) {
    attrs[m[1]!.toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return attrs;
}

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos|#39);/gi, (_, e: string) => {
    const lower = e.toLowerCase();
    if (lower.startsWith('#x')) return String.fromCodePoint(parseInt(lower.slice(2), 16));
    if (lower.startsWith('#')) return String.fromCodePoint(Number(lower.slice(1)));
    return ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" } as Record<string, string>)[lower] ?? _;
  });
}

function textOf(fragment: string): string {
  return decodeEntities(fragment.replace(/<[^>]+>/g, ' '))
    .replace(/\s+/g, ' ')
    .trim();
}

function describePage(url: URL, status: number, html: string): KeycloakPageInfo {
  const title = textOf(/<title>([\s\S]*?)<\/title>/i.exec(html)?.[1] ?? '');
  const candidates = [
    /class="[^"]*kc-feedback-text[^"]*"[^>]*>([\s\S]*?)<\/span>/i,
    /id="input-error[^"]*"[^>]*>([\s\S]*?)<\/(?:span|div)>/i,
    /class="[^"]*instruction[^"]*"[^>]*>([\s\S]*?)<\/p>/i,
    /<h1\b[^>]*>([\s\S]*?)<\/h1>/i,
  ];
  let message = '';
  for (const re of candidates) {
    const m = re.exec(html);
    if (m?.[1] && textOf(m[1])) {
      message = textOf(m[1]);
      break;
    }
  }
  const forms = parseForms(html, url);
  return { url: url.href, status, title, message, formFields: forms[0]?.inputs.map((i) => i.name) ?? [] };
}

// ---------------------------------------------------------------------------------------------
// PKCE helpers for tests that talk to Keycloak's authorization endpoint directly

export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}
