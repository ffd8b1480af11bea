import { decodeProtectedHeader, errors as joseErrors, jwtVerify, UnsecuredJWT, type CryptoKey, type JWTPayload } from 'jose';
import { OAuthError } from '../../common/errors.js';
import { firebaseIssuer } from './firebase-binding-config.js';

export interface FirebaseIdTokenClaims extends JWTPayload {
  sub: string;
  aud: string;
  iat: number;
  exp: number;
  auth_time: number;
  email?: string;
  email_verified?: boolean;
  firebase?: { sign_in_provider?: string; tenant?: string; identities?: Record<string, unknown> };
  [claim: string]: unknown;
}

export interface FirebaseIdTokenCheck {
  projectId: string;
  /** The Firebase tenant the token must belong to; unset: only project-level (non-tenant) tokens. */
  tenantId?: string;
  clockSkewSeconds: number;
  /**
   * Emulator mode only: the Auth emulator issues unsigned (`alg: none`) tokens. Every other mode
   * refuses them, whatever the rest of the token says.
   */
  acceptUnsigned: boolean;
  /** The published public key with this `kid`, or undefined. */
  keyFor(kid: string): Promise<CryptoKey | undefined>;
}

/** A Firebase ID token that must not be exchanged; rendered as OAuth `invalid_grant`. */
export class FirebaseTokenRejected extends OAuthError {
  constructor(description: string, cause?: unknown) {
    super('invalid_grant', description, { cause });
    this.name = 'FirebaseTokenRejected';
  }
}

const MAX_SUBJECT = 128;

/**
 * Verifies a Firebase ID token the way Firebase documents it: RS256 signed by one of the published
 * certificates (selected by `kid`), `aud` = the project id, `iss` = securetoken.google.com/<project>,
 * `sub` (the uid) 1–128 characters, `exp` in the future, `iat` and `auth_time` not in the future
 * (within the clock skew), and the Firebase tenant of the binding.
 */
export async function verifyFirebaseIdToken(token: string, check: FirebaseIdTokenCheck): Promise<FirebaseIdTokenClaims> {
  let alg: unknown;
  let kid: unknown;
  try {
    ({ alg, kid } = decodeProtectedHeader(token));
  } catch (err) {
    throw new FirebaseTokenRejected('The subject token is not a Firebase ID token.', err);
  }
  const options = { issuer: firebaseIssuer(check.projectId), audience: check.projectId, clockTolerance: check.clockSkewSeconds };
  let payload: JWTPayload;
  try {
    if (alg === 'none') {
      if (!check.acceptUnsigned) throw new FirebaseTokenRejected('The Firebase ID token is not signed.');
      payload = UnsecuredJWT.decode(token, options).payload;
    } else {
      if (alg !== 'RS256') throw new FirebaseTokenRejected('The Firebase ID token must be signed with RS256.');
      if (typeof kid !== 'string' || kid.length === 0 || kid.length > 256)
        throw new FirebaseTokenRejected('The Firebase ID token names no signing key (kid).');
      const key = await check.keyFor(kid);
      if (!key) throw new FirebaseTokenRejected('The Firebase ID token was signed by an unknown key.');
      ({ payload } = await jwtVerify(token, key, { ...options, algorithms: ['RS256'] }));
    }
  } catch (err) {
    throw describe(err);
  }
  return checkClaims(payload, check);
}

function describe(err: unknown): OAuthError {
  if (err instanceof OAuthError) return err;
  if (err instanceof joseErrors.JWTExpired) return new FirebaseTokenRejected('The Firebase ID token has expired.', err);
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'aud' || err.claim === 'iss')
      return new FirebaseTokenRejected('The Firebase ID token was issued for another Firebase project.', err);
    return new FirebaseTokenRejected(`The Firebase ID token's "${err.claim}" claim is invalid.`, err);
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed)
    return new FirebaseTokenRejected('The Firebase ID token signature is invalid.', err);
  if (err instanceof joseErrors.JOSEError) return new FirebaseTokenRejected('The Firebase ID token is malformed.', err);
  if (err instanceof Error && !('status' in err)) return new FirebaseTokenRejected('The Firebase ID token could not be verified.', err);
  throw err; // a dependency failure (certificates unavailable) stays what it is
}

function checkClaims(payload: JWTPayload, check: FirebaseIdTokenCheck): FirebaseIdTokenClaims {
  const now = Math.floor(Date.now() / 1000);
  const skew = check.clockSkewSeconds;
  const p = payload as Record<string, unknown>;
  // jose accepts an `aud` array that contains the project; Firebase tokens carry exactly one audience.
  if (p['aud'] !== check.projectId) throw new FirebaseTokenRejected('The Firebase ID token was issued for another Firebase project.');
  if (typeof p['exp'] !== 'number') throw new FirebaseTokenRejected('The Firebase ID token has no expiry.');
  if (typeof p['iat'] !== 'number' || p['iat'] > now + skew)
    throw new FirebaseTokenRejected('The Firebase ID token was issued in the future.');
  if (typeof p['auth_time'] !== 'number' || p['auth_time'] > now + skew)
    throw new FirebaseTokenRejected('The Firebase ID token has no valid authentication time (auth_time).');
  const sub = p['sub'];
  if (typeof sub !== 'string' || sub.length === 0 || sub.length > MAX_SUBJECT)
    throw new FirebaseTokenRejected('The Firebase ID token has no valid subject (uid).');
  const firebase = p['firebase'];
  const tenant = typeof firebase === 'object' && firebase !== null ? (firebase as Record<string, unknown>)['tenant'] : undefined;
  if (check.tenantId !== undefined ? tenant !== check.tenantId : tenant !== undefined)
    throw new FirebaseTokenRejected('The Firebase ID token belongs to another Firebase tenant.');
  return payload as FirebaseIdTokenClaims;
}
