/**
 * How fresh the authentication behind a login must be (OIDC Core §3.1.2.1): `max_age` and
 * `prompt=login` of the authorization request. The service is a broker: it passes both to the
 * upstream where the protocol can carry them (the adapters do, from LoginContext), and when the
 * upstream comes back it holds the authentication time the upstream reports to them, failing
 * closed: an upstream that says nothing about when it authenticated the user does not satisfy a
 * client that asked.
 */

/** What the client asked for, as the login transaction keeps it. */
export interface LoginFreshness {
  /** `max_age` in seconds; null or undefined: no limit. */
  maxAge?: number | null;
  /** `prompt=login`: the user must authenticate afresh during this login. */
  promptLogin?: boolean;
}

/** The largest `max_age` kept (the column is a 32-bit integer): about 68 years, no limit in practice. */
export const MAX_AGE_CEILING = 2_147_483_647;

/**
 * `max_age` and `prompt` of an authorization request. `max_age` must be a non-negative integer
 * (decimal digits only); `prompt` is a space-separated list of which only `login` changes anything
 * here (the other values are ignored, as before). Returns the freshness, or why the request is invalid.
 */
export function parseFreshness(
  maxAge: string | undefined,
  prompt: string | undefined,
): { freshness: LoginFreshness; invalid?: undefined } | { invalid: string } {
  let age: number | undefined;
  if (maxAge !== undefined) {
    if (!/^\d+$/.test(maxAge)) return { invalid: 'max_age must be a non-negative integer (seconds).' };
    age = Math.min(Number(maxAge), MAX_AGE_CEILING);
  }
  const promptLogin = (prompt ?? '').split(' ').includes('login');
  return { freshness: { ...(age !== undefined ? { maxAge: age } : {}), promptLogin } };
}

/** The upstream must show the user a login again: `prompt=login`, or `max_age=0` (OIDC Core §3.1.2.1). */
export const mustReauthenticate = (f: LoginFreshness): boolean => f.promptLogin === true || f.maxAge === 0;

/** True when the client asked for any bound on the authentication's age. */
export const asksFreshness = (f: LoginFreshness): boolean => mustReauthenticate(f) || (f.maxAge !== undefined && f.maxAge !== null);

/**
 * Why an upstream authentication does not satisfy what the client asked (a fixed text, safe to
 * log), or undefined when it does (or nothing was asked). `authTime`: when the upstream says it
 * authenticated the user (OIDC `auth_time`, SAML `AuthnInstant`); `startedAt`: when this login
 * transaction began (what `prompt=login` is measured against); `skewSeconds`: the clock skew
 * allowed between the upstream and us, in each comparison.
 */
export function staleAuthentication(
  f: LoginFreshness,
  authTime: Date | string | number | undefined,
  startedAt: Date,
  skewSeconds: number,
  now = Date.now(),
): string | undefined {
  if (!asksFreshness(f)) return undefined;
  const at = authTime === undefined ? NaN : new Date(authTime).getTime();
  if (Number.isNaN(at)) return 'the upstream did not say when it authenticated the user';
  const skewMs = skewSeconds * 1000;
  if (at > now + skewMs) return 'the upstream authentication time is in the future';
  if (f.maxAge !== undefined && f.maxAge !== null && now - at > f.maxAge * 1000 + skewMs)
    return 'the upstream authentication is older than max_age';
  if (f.promptLogin === true && at < startedAt.getTime() - skewMs)
    return 'the upstream did not authenticate the user afresh (prompt=login)';
  return undefined;
}
