/**
 * Headless browser stand-in for SimpleSAMLphp's exampleauth:UserPass login: plain fetch, manual
 * redirects and a small cookie jar. Walks the IdP's pages until the auto-POST form that carries the
 * SAMLResponse to the SP, and returns its fields without posting them.
 */

export interface SamlPostForm {
  /** Base64 SAML Response, exactly as the IdP put it in the form. */
  SAMLResponse: string;
  RelayState?: string;
  /** The form's action: the SP's AssertionConsumerService URL. */
  acsUrl: string;
}

/** A tiny cookie jar: enough for one loopback host (name=value, path ignored, no expiry). */
export class CookieJar {
  private readonly cookies = new Map<string, Map<string, string>>();

  store(url: string, res: Response): void {
    const host = new URL(url).host;
    const jar = this.cookies.get(host) ?? new Map<string, string>();
    for (const line of res.headers.getSetCookie()) {
      const [pair = '', ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq < 1) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired =
        value === 'deleted' ||
        attrs.some((a) => {
          const [k, v] = a.split('=').map((s) => s.trim().toLowerCase());
          return (k === 'max-age' && Number(v) <= 0) || (k === 'expires' && v !== undefined && Date.parse(v) < Date.now());
        });
      if (expired) jar.delete(name);
      else jar.set(name, value);
    }
    this.cookies.set(host, jar);
  }

  header(url: string): string | undefined {
    const jar = this.cookies.get(new URL(url).host);
    if (!jar || jar.size === 0) return undefined;
    return [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

export interface LoginOptions {
  /** Reuse a jar to keep the IdP session between logins (SSO without a second password prompt). */
  jar?: CookieJar;
  /** Safety net against redirect loops (default 20 requests). */
  maxSteps?: number;
}

const decodeEntities = (s: string): string =>
  s
    .replace(/&#x([0-9a-f]+);/gi, (_, h: string) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&#(\d+);/g, (_, d: string) => String.fromCodePoint(parseInt(d, 10)))
    .replace(/&quot;/g, '"')
    .replace(/&apos;|&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');

const attr = (tag: string, name: string): string | undefined => {
  const m = new RegExp(`\\s${name}\\s*=\\s*(?:"([^"]*)"|'([^']*)'|([^\\s>]+))`, 'i').exec(tag);
  return m ? decodeEntities(m[1] ?? m[2] ?? m[3] ?? '') : undefined;
};

interface HtmlForm {
  action: string;
  method: string;
  fields: Record<string, string>;
  names: string[];
}

/** Every <form> of a page with its hidden/text inputs (enough for SimpleSAMLphp's simple pages). */
export function parseForms(html: string, pageUrl: string): HtmlForm[] {
  const forms: HtmlForm[] = [];
  const re = /<form\b([^>]*)>([\s\S]*?)<\/form>/gi;
  for (let m = re.exec(html); m; m = re.exec(html)) {
    const tag = `<form ${m[1]}>`;
    const fields: Record<string, string> = {};
    const names: string[] = [];
    for (const input of (m[2] ?? '').match(/<input\b[^>]*>/gi) ?? []) {
      const name = attr(input, 'name');
      if (!name) continue;
      names.push(name);
      const type = (attr(input, 'type') ?? 'text').toLowerCase();
      if (type === 'checkbox' || type === 'radio' || type === 'submit') continue;
      fields[name] = attr(input, 'value') ?? '';
    }
    forms.push({
      action: new URL(attr(tag, 'action') ?? '', pageUrl).toString(),
      method: (attr(tag, 'method') ?? 'get').toLowerCase(),
      fields,
      names,
    });
  }
  return forms;
}

async function request(
  jar: CookieJar,
  url: string,
  init: { method?: string; body?: URLSearchParams } = {},
): Promise<{ res: Response; body: string }> {
  const headers: Record<string, string> = { accept: 'text/html,*/*' };
  const cookie = jar.header(url);
  if (cookie) headers.cookie = cookie;
  if (init.body) headers['content-type'] = 'application/x-www-form-urlencoded';
  const res = await fetch(url, {
    method: init.method ?? 'GET',
    body: init.body?.toString(),
    headers,
    redirect: 'manual',
    signal: AbortSignal.timeout(15_000),
  });
  jar.store(url, res);
  return { res, body: await res.text() };
}

const stripTags = (html: string): string =>
  html
    .replace(/<(script|style)\b[\s\S]*?<\/\1>/gi, ' ')
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();

/**
 * Starts at `startUrl` (an IdP redirect URL, e.g. node-saml's getAuthorizeUrlAsync output, or an
 * IdP-initiated SSO URL), logs in with username/password when SimpleSAMLphp asks, and returns the
 * auto-POST form that carries the SAMLResponse to the SP.
 */
export async function simpleSamlLogin(
  startUrl: string,
  username: string,
  password: string,
  opts: LoginOptions = {},
): Promise<SamlPostForm> {
  const jar = opts.jar ?? new CookieJar();
  const maxSteps = opts.maxSteps ?? 20;
  let url = startUrl;
  let method = 'GET';
  let body: URLSearchParams | undefined;
  let submittedPassword = false;

  for (let step = 0; step < maxSteps; step++) {
    const { res, body: html } = await request(jar, url, { method, body });
    if (res.status >= 300 && res.status < 400) {
      const location = res.headers.get('location');
      if (!location) throw new Error(`SimpleSAMLphp: ${res.status} without Location at ${url}`);
      url = new URL(location, url).toString();
      method = 'GET';
      body = undefined;
      continue;
    }
    const forms = parseForms(html, url);
    const samlForm = forms.find((f) => 'SAMLResponse' in f.fields);
    if (samlForm) {
      return {
        SAMLResponse: samlForm.fields['SAMLResponse']!,
        ...(samlForm.fields.RelayState !== undefined ? { RelayState: samlForm.fields.RelayState } : {}),
        acsUrl: samlForm.action,
      };
    }
    const loginForm = forms.find((f) => f.names.includes('username') && f.names.includes('password'));
    if (res.status === 200 && loginForm) {
      if (submittedPassword) {
        throw new Error(`SimpleSAMLphp rejected the credentials of ${username}: ${stripTags(html).slice(0, 300)}`);
      }
      submittedPassword = true;
      const fields = new URLSearchParams({ ...loginForm.fields, username, password });
      url = loginForm.action;
      method = loginForm.method === 'post' ? 'POST' : 'GET';
      if (method === 'GET') {
        const u = new URL(url);
        for (const [k, v] of fields) u.searchParams.set(k, v);
        url = u.toString();
        body = undefined;
      } else {
        body = fields;
      }
      continue;
    }
    throw new Error(`SimpleSAMLphp: unexpected page (HTTP ${res.status}) at ${url}: ${stripTags(html).slice(0, 1200)}`);
  }
  throw new Error(`SimpleSAMLphp: more than ${maxSteps} requests without a SAMLResponse (last ${url})`);
}

/**
 * IdP-initiated SSO: SimpleSAMLphp's `saml2/idp/SSOService.php?spentityid=<SP entityID>`; the
 * SAMLResponse has no InResponseTo.
 */
export function simpleSamlIdpInitiatedLogin(
  idp: { ssoUrl: string },
  spEntityId: string,
  username: string,
  password: string,
  opts: LoginOptions & { relayState?: string } = {},
): Promise<SamlPostForm> {
  const u = new URL(idp.ssoUrl);
  u.searchParams.set('spentityid', spEntityId);
  if (opts.relayState !== undefined) u.searchParams.set('RelayState', opts.relayState);
  return simpleSamlLogin(u.toString(), username, password, opts);
}
