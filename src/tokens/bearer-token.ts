import { BearerTokenError } from '../common/errors.js';

/** RFC 6750 §2.1: the auth-scheme, one or more spaces, a b64token. */
export const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;
const BEARER_SCHEME = /^Bearer(?: |$)/i;

/**
 * The access token of a request, from the Authorization header only (RFC 6750 §2.1). Tokens in the
 * query string or the body are never read: URLs reach proxy logs and Referer headers, and one way
 * in is one way to check. The auth-scheme is case-insensitive (RFC 9110 §11.1).
 *
 * No header, or another scheme, is "no Bearer credentials" (RFC 6750 §3.1: a challenge without an
 * error code); the Bearer scheme with something that is not a token is `invalid_token`.
 */
export function bearerTokenOf(authorization: string | undefined): string {
  if (!authorization || !BEARER_SCHEME.test(authorization))
    throw new BearerTokenError(undefined, 'A Bearer platform access token is required in the Authorization header.');
  const m = BEARER.exec(authorization);
  if (!m) throw new BearerTokenError('invalid_token', 'The Authorization header does not carry a well-formed Bearer token.');
  return m[1]!;
}

/** True when the request presents a Bearer credential (any casing of the scheme). */
export const presentsBearer = (authorization: string | undefined): boolean => BEARER_SCHEME.test(authorization ?? '');
