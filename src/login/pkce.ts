import { createHash } from 'node:crypto';
import { constantEquals } from '../crypto/random.js';

/** RFC 7636: 43–128 characters of the unreserved set. Challenges (S256) are 43 base64url characters. */
export const PKCE_VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;
export const PKCE_S256_CHALLENGE = /^[A-Za-z0-9_-]{43}$/;

export const s256 = (verifier: string): string => createHash('sha256').update(verifier).digest('base64url');

export function pkceMatches(verifier: unknown, challenge: string): boolean {
  return typeof verifier === 'string' && PKCE_VERIFIER.test(verifier) && constantEquals(s256(verifier), challenge);
}
