/**
 * Headless browser stand-in for a login at the oidc-provider peer (test/peers/oidc-provider.ts),
 * and at oidc-provider's own devInteractions (same form fields): plain fetch, manual redirects,
 * a small cookie jar. Follows redirects from the authorization URL until one points at the
 * callback prefix, and returns that URL without requesting it.
 */
import { CookieJar, parseForms } from './simplesamlphp-login.js';

export { CookieJar };

export interface OidcLoginOptions {
  /** The login name: the account's sub (or its email claim). */
  login: string;
  password?: string;
  /** The redirect_uri (or a prefix of it) where the walk stops. */
  callbackPrefix: string;
  /** Reuse a jar to keep the OP session (a second login then needs no password). */
  jar?: CookieJar;
  /** Cancel at the login page instead of logging in (the callback then carries error=access_denied). */
  abort?: boolean;
  /** Safety net against redirect loops (default 20 requests). */
  maxSteps?: number;
}

/** Returns the callback URL (with code/state or error) the OP redirected to. */
export async function oidcProviderLogin(authorizationUrl: string | URL, opts: OidcLoginOptions): Promise<string> {
  const jar = opts.jar ?? new CookieJar();
  const maxSteps = opts.maxSteps ?? 20;
  let url = authorizationUrl.toString();
  let method = 'GET';
  let body: URLSearchParams | undefined;
  let loginPosted = false;
  let consentPosted = false;

  for (let step = 0; step < maxSteps; step++) {
    if (url.startsWith(opts.callbackPrefix)) return url;
    const headers: Record<string, string> = { accept: 'text/html,application/json;q=0.9,*/*;q=0.8' };
    const cookie = jar.header(url);
    if (cookie) headers.cookie = cookie;
    if (body) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await fetch(url, { method, headers, body: body?.toString(), redirect: 'manual', signal: AbortSignal.timeout(15_000) });
    jar.store(url, res);
    const text = await res.text();

    if (res.status >= 300 && res.status < 400) {
      const location = res.headers.get('location');
      if (!location) throw new Error(`OIDC login: ${res.status} without Location at ${url}`);
      url = new URL(location, url).toString();
      method = 'GET';
      body = undefined;
      continue;
    }
    if (res.status !== 200) {
      throw new Error(`OIDC login: HTTP ${res.status} at ${url}: ${text.slice(0, 800)}`);
    }

    const form = parseForms(text, url).find((f) => f.fields.prompt === 'login' || f.fields.prompt === 'consent');
    if (!form) throw new Error(`OIDC login: no login/consent form at ${url}: ${text.slice(0, 800)}`);

    if (form.fields.prompt === 'login') {
      if (opts.abort) {
        url = `${form.action.replace(/\/$/, '')}/abort`;
        method = 'GET';
        body = undefined;
        continue;
      }
      if (loginPosted)
        throw new Error(
          `OIDC login: login rejected for ${opts.login}: ${text
            .replace(/<[^>]+>/g, ' ')
            .replace(/\s+/g, ' ')
            .slice(0, 300)}`,
        );
      loginPosted = true;
      body = new URLSearchParams({ ...form.fields, prompt: 'login', login: opts.login, password: opts.password ?? '' });
    } else {
      if (consentPosted) throw new Error(`OIDC login: consent loop at ${url}`);
      consentPosted = true;
      body = new URLSearchParams({ ...form.fields, prompt: 'consent' });
    }
    url = form.action;
    method = 'POST';
  }
  throw new Error(`OIDC login: no redirect to ${opts.callbackPrefix} after ${maxSteps} requests (last ${url})`);
}
