import { createHash, randomBytes } from 'node:crypto';

/** A minimal BFF: what a real backend-for-frontend does against the service, over real HTTP. */
export interface BffClient {
  clientId: string;
  clientSecret: string;
  redirectUri: string;
}

export const pkcePair = () => {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
};

export const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

/** Tiny cookie jar: enough for the hosted login form and upstream IdP pages. */
export class CookieJar {
  private readonly cookies = new Map<string, string>();
  store(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const i = pair!.indexOf('=');
      const name = pair!.slice(0, i).trim();
      const value = pair!.slice(i + 1).trim();
      if (/expires=Thu, 01 Jan 1970/i.test(line) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

export function authorizeUrl(base: string, client: BffClient, params: Record<string, string | undefined>): string {
  const url = new URL('/oauth2/authorize', base);
  const all: Record<string, string | undefined> = {
    response_type: 'code',
    client_id: client.clientId,
    redirect_uri: client.redirectUri,
    scope: 'openid email profile',
    ...params,
  };
  for (const [k, v] of Object.entries(all)) if (v !== undefined) url.searchParams.set(k, v);
  return url.toString();
}

/** A GET that asks for JSON: the browser-facing OAuth routes answer it with the OAuth error JSON instead of a page. */
export const getJson = (url: string): Promise<Response> => fetch(url, { redirect: 'manual', headers: { accept: 'application/json' } });

export async function get(url: string, jar?: CookieJar): Promise<Response> {
  const res = await fetch(url, { redirect: 'manual', headers: jar ? { cookie: jar.header() } : {} });
  jar?.store(res);
  return res;
}

export async function postForm(
  url: string,
  form: Record<string, string>,
  opts: { jar?: CookieJar; headers?: Record<string, string> } = {},
): Promise<Response> {
  const res = await fetch(url, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(opts.jar ? { cookie: opts.jar.header() } : {}), ...opts.headers },
    body: new URLSearchParams(form).toString(),
  });
  opts.jar?.store(res);
  return res;
}

export const hiddenInput = (html: string, name: string): string | undefined => new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1];
export const formAction = (html: string): string | undefined => /<form[^>]*action="([^"]*)"/.exec(html)?.[1]?.replace(/&amp;/g, '&');

/** Submits the hosted (native) login form; returns the final response (302 to the BFF on success). */
export async function submitNativeLogin(
  base: string,
  formUrl: string,
  username: string,
  password: string,
  jar = new CookieJar(),
): Promise<Response> {
  const page = await get(formUrl, jar);
  if (page.status !== 200) throw new Error(`login form answered ${page.status}: ${await page.text()}`);
  const html = await page.text();
  return postForm(new URL(formAction(html)!, base).toString(), { csrf: hiddenInput(html, 'csrf')!, username, password }, { jar });
}

export async function tokenRequest(base: string, client: BffClient, form: Record<string, string>): Promise<Response> {
  return postForm(`${base}/oauth2/token`, form, { headers: { authorization: basic(client.clientId, client.clientSecret) } });
}

/** Runs the whole BFF login with the native form and returns the token response JSON. */
export async function nativeLogin(
  base: string,
  client: BffClient,
  org: string,
  username: string,
  password: string,
  extra: Record<string, string> = {},
) {
  const { verifier, challenge } = pkcePair();
  const state = randomBytes(8).toString('hex');
  const start = await get(
    authorizeUrl(base, client, { org, state, code_challenge: challenge, code_challenge_method: 'S256', nonce: 'n-' + state, ...extra }),
  );
  if (start.status !== 302) throw new Error(`authorize answered ${start.status}: ${await start.text()}`);
  const done = await submitNativeLogin(base, start.headers.get('location')!, username, password);
  if (done.status !== 302) throw new Error(`login answered ${done.status}`);
  const back = new URL(done.headers.get('location')!);
  if (back.searchParams.get('state') !== state) throw new Error('state mismatch');
  const code = back.searchParams.get('code');
  if (!code) throw new Error(`no code: ${back.toString()}`);
  const res = await tokenRequest(base, client, {
    grant_type: 'authorization_code',
    code,
    redirect_uri: client.redirectUri,
    code_verifier: verifier,
  });
  const body = (await res.json()) as Record<string, string>;
  if (res.status !== 200) throw new Error(`token answered ${res.status}: ${JSON.stringify(body)}`);
  return {
    tokens: body as unknown as { access_token: string; refresh_token: string; id_token: string; expires_in: number; scope: string },
    code,
    verifier,
  };
}
