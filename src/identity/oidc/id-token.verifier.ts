import { errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { constantEquals } from '../../crypto/random.js';
import { HMAC_ALGORITHMS } from './tenant-oidc.config.js';
import { JwksUnavailableError } from './remote-jwks.js';

export interface IdTokenExpectations {
  /** The OP's issuer identifier (from its discovery document). */
  issuer: string;
  clientId: string;
  /** The nonce sent in this login's authorization request. */
  nonce: string;
  /** Allowed `alg` values; never contains `none`; HS* only when the binding lists them. */
  allowedAlgorithms: readonly string[];
  /** The HMAC key for HS* ID tokens (OIDC Core §10.1: the client secret). */
  clientSecret?: string;
  clockSkewSeconds: number;
  /** Oldest acceptable `iat`: an ID token is used right after the code exchange that minted it. */
  maxAgeSeconds: number;
  currentDate?: Date;
}

/** The ID token failed validation. `reason` is safe to log (it never contains the token). */
export class IdTokenRejectedError extends Error {
  constructor(
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`ID token rejected: ${reason}`, options);
    this.name = 'IdTokenRejectedError';
  }
}

export interface VerifiedIdToken {
  claims: JWTPayload & { sub: string };
  alg: string;
  kid?: string;
}

const reasonOf = (err: unknown): string => {
  if (err instanceof errors.JWTExpired) return `claim "${err.claim}" expired`;
  if (err instanceof errors.JWTClaimValidationFailed) return `claim "${err.claim}" ${err.reason}`;
  if (err instanceof errors.JOSEAlgNotAllowed) return 'alg not allowed';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'bad signature';
  if (err instanceof errors.JWKSNoMatchingKey) return 'no key in the OP JWKS matches';
  if (err instanceof errors.JOSEError) return err.code;
  return err instanceof Error ? err.name : 'unknown';
};

/**
 * Verifies an ID token from the code flow ourselves (OIDC Core §3.1.3.7): openid-client 6 checks
 * the claims but not the signature on the code flow, so this is where the signature, the `alg`
 * allow-list and the key selection are enforced, and the claims are checked again.
 */
export async function verifyIdToken(idToken: string, keys: JWTVerifyGetKey, x: IdTokenExpectations): Promise<VerifiedIdToken> {
  // The key is picked by the token's alg family: HMAC → the client secret, otherwise the OP's
  // JWKS. Whether that alg is acceptable at all is decided once, by `algorithms` below, which jose
  // checks before it asks for a key.
  const getKey: JWTVerifyGetKey = async (header, token) => {
    if ((HMAC_ALGORITHMS as readonly string[]).includes(header.alg)) {
      if (!x.clientSecret) throw new IdTokenRejectedError('HMAC-signed but the binding has no client secret');
      return new TextEncoder().encode(x.clientSecret);
    }
    return keys(header, token);
  };
  let payload: JWTPayload;
  let alg: string;
  let kid: string | undefined;
  try {
    const result = await jwtVerify(idToken, getKey, {
      algorithms: x.allowedAlgorithms.filter((a) => a !== 'none'),
      issuer: x.issuer,
      audience: x.clientId,
      clockTolerance: x.clockSkewSeconds,
      maxTokenAge: x.maxAgeSeconds,
      requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat'],
      currentDate: x.currentDate,
    });
    payload = result.payload;
    alg = result.protectedHeader.alg;
    kid = result.protectedHeader.kid;
  } catch (err) {
    if (err instanceof IdTokenRejectedError) throw err;
    // A JWKS fetch failure is the OP being unavailable, not a bad token: let the caller tell them apart.
    if (err instanceof JwksUnavailableError) throw err;
    throw new IdTokenRejectedError(reasonOf(err), { cause: err });
  }

  if (typeof payload.sub !== 'string' || payload.sub.length === 0 || payload.sub.length > 255)
    throw new IdTokenRejectedError('claim "sub" invalid');
  // §3.1.3.7 (4, 5): several audiences require azp; an azp must be this client.
  if (Array.isArray(payload.aud) && payload.aud.length > 1 && payload['azp'] === undefined)
    throw new IdTokenRejectedError('claim "azp" missing for several audiences');
  if (payload['azp'] !== undefined && payload['azp'] !== x.clientId) throw new IdTokenRejectedError('claim "azp" is another client');
  // §3.1.3.7 (11): the nonce binds the token to this login.
  const nonce = payload['nonce'];
  if (typeof nonce !== 'string' || !constantEquals(nonce, x.nonce)) throw new IdTokenRejectedError('claim "nonce" does not match');
  return { claims: payload as JWTPayload & { sub: string }, alg, kid };
}
