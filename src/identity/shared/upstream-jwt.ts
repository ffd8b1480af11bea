import { errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { JwksUnavailableError } from './remote-jwks.js';

/**
 * An upstream's token (an OIDC ID token, a Keycloak access token, a Firebase ID token) failed
 * verification: a verdict on the token, never the upstream's state. `reason` is a fixed text safe
 * to log (no token, no claim values); `cause` is jose's error where there was one.
 */
export class UpstreamTokenRejectedError extends Error {
  constructor(
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`upstream token rejected: ${reason}`, options);
    this.name = 'UpstreamTokenRejectedError';
  }
}

/** jose errors that are a verdict on the token; anything else a key resolver throws is the upstream's state. */
const VERDICTS = new Set([
  'ERR_JWT_CLAIM_VALIDATION_FAILED',
  'ERR_JWT_EXPIRED',
  'ERR_JWT_INVALID',
  'ERR_JWS_INVALID',
  'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
  'ERR_JWKS_NO_MATCHING_KEY',
  'ERR_JWKS_MULTIPLE_MATCHING_KEYS',
  'ERR_JOSE_ALG_NOT_ALLOWED',
  'ERR_JOSE_NOT_SUPPORTED',
]);

function verdictOf(err: errors.JOSEError): string {
  if (err instanceof errors.JWTExpired) return `claim "${err.claim}" expired`;
  if (err instanceof errors.JWTClaimValidationFailed) return `claim "${err.claim}" ${err.reason}`;
  if (err instanceof errors.JOSEAlgNotAllowed) return 'alg not allowed';
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'bad signature';
  if (err instanceof errors.JWKSNoMatchingKey) return 'no key of the issuer matches';
  return err.code;
}

export interface UpstreamJwtExpectations {
  issuer: string;
  audience?: string;
  /** The allow-list; `none` is dropped whatever the caller passes. */
  algorithms: readonly string[];
  clockSkewSeconds: number;
  /** Claims that must be present besides `exp` and `iat`. */
  requiredClaims: readonly string[];
  /** Oldest acceptable `iat`, in seconds. */
  maxTokenAgeSeconds?: number;
  /** Longest accepted `sub`. */
  maxSubjectLength?: number;
  currentDate?: Date;
}

export interface VerifiedUpstreamJwt {
  claims: JWTPayload & { sub: string };
  alg: string;
  kid?: string;
}

/**
 * The one verification of an upstream JWT: signature with a key the resolver picks, the algorithm
 * allow-list (checked by jose before it asks for a key), issuer, audience, time claims within the
 * clock skew, a non-empty `sub`. Failures come out as two kinds only: `UpstreamTokenRejectedError`
 * (the token is wrong) and `JwksUnavailableError` (the upstream's keys could not be had), so every
 * adapter tells a forged token from an outage the same way. Protocol-specific checks (nonce, azp,
 * Keycloak's `typ`, Firebase's tenant) stay with the adapter, on the claims returned here.
 */
export async function verifyUpstreamJwt(token: string, getKey: JWTVerifyGetKey, x: UpstreamJwtExpectations): Promise<VerifiedUpstreamJwt> {
  let payload: JWTPayload;
  let alg: string;
  let kid: string | undefined;
  try {
    const result = await jwtVerify(token, getKey, {
      issuer: x.issuer,
      audience: x.audience,
      algorithms: x.algorithms.filter((a) => a !== 'none'),
      clockTolerance: x.clockSkewSeconds,
      requiredClaims: ['exp', 'iat', ...x.requiredClaims],
      maxTokenAge: x.maxTokenAgeSeconds,
      currentDate: x.currentDate,
    });
    payload = result.payload;
    alg = result.protectedHeader.alg;
    kid = result.protectedHeader.kid;
  } catch (err) {
    if (err instanceof UpstreamTokenRejectedError || err instanceof JwksUnavailableError) throw err;
    if (err instanceof errors.JOSEError && VERDICTS.has(err.code)) throw new UpstreamTokenRejectedError(verdictOf(err), { cause: err });
    // A key resolver that failed some other way (a fetch timeout inside jose's remote set, a bad
    // document): the keys are unavailable, the token has not been judged.
    throw new JwksUnavailableError('signing keys unavailable', { cause: err });
  }
  const sub = payload.sub;
  if (typeof sub !== 'string' || sub.length === 0 || sub.length > (x.maxSubjectLength ?? 255))
    throw new UpstreamTokenRejectedError('claim "sub" invalid');
  return { claims: { ...payload, sub }, alg, kid };
}
