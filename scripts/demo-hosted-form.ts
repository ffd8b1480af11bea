/**
 * Signs in on auth-service's hosted (native) form over plain HTTP, as a browser would: the demo's
 * test login of its native binding, and the demo test's sign-ins. Skips the passkey offer that
 * follows a password sign-in when the binding allows passkeys.
 */
import { CookieJar, formAction, get, hiddenInput, postForm } from '../test/support/bff.js';

const need = (value: string | null | undefined, what: string): string => {
  if (!value) throw new Error(`hosted form: no ${what}`);
  return value;
};

/** Returns where the service finally redirects the browser (the client's redirect URI, or the test-login result page). */
export async function hostedFormLogin(
  base: string,
  formUrl: string,
  username: string,
  password: string,
  jar = new CookieJar(),
): Promise<string> {
  let url = new URL(formUrl, base).toString();
  let page = await get(url, jar);
  for (let hops = 0; page.status >= 300 && page.status < 400 && hops < 5; hops++) {
    url = new URL(need(page.headers.get('location'), 'Location'), url).toString();
    page = await get(url, jar);
  }
  if (page.status !== 200) throw new Error(`hosted form: ${page.status} at ${url}`);
  let html = await page.text();
  let res = await postForm(
    new URL(need(formAction(html), 'form'), base).toString(),
    { csrf: need(hiddenInput(html, 'csrf'), 'csrf field'), username, password },
    { jar },
  );
  if (res.status === 200) {
    // The passkey offer ("Sign in faster with a passkey"): "Not now".
    html = await res.text();
    const skip = [...html.matchAll(/<form[^>]*action="([^"]*)"/g)]
      .map((m) => (m[1] ?? '').replace(/&amp;/g, '&'))
      .find((a) => a.endsWith('/second-step'));
    if (!skip)
      throw new Error(
        `hosted form: the sign-in did not complete: ${html
          .replace(/<[^>]+>/g, ' ')
          .replace(/\s+/g, ' ')
          .slice(0, 300)}`,
      );
    res = await postForm(
      new URL(skip, base).toString(),
      { csrf: need(hiddenInput(html, 'csrf'), 'csrf field'), action: 'passkey-skip' },
      { jar },
    );
  }
  const location = res.headers.get('location');
  if (res.status < 300 || res.status >= 400 || !location) throw new Error(`hosted form: ${res.status} after the sign-in`);
  return new URL(location, base).toString();
}
