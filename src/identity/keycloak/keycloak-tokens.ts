import { errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';

/** Asymmetric algorithms only: Keycloak signs with its realm keys; HMAC and `none` are never accepted. */
export const KEYCLOAK_TOKEN_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

/** The token failed validation. `reason` is safe to log (it never contains the token or claims). */
export class KeycloakTokenRejectedError extends Error {
  constructor(
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`Keycloak token rejected: ${reason}`, options);
    this.name = 'KeycloakTokenRejectedError';
  }
}

/** The realm's keys could not be fetched: Keycloak is down or answered nonsense. */
export class KeycloakKeysUnavailableError extends Error {
  constructor(options?: { cause?: unknown }) {
    super('Keycloak signing keys unavailable', options);
    this.name = 'KeycloakKeysUnavailableError';
  }
}

/** jose errors that are a verdict on the token; anything else (fetch failures, timeouts) is Keycloak's state. */
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

const reasonOf = (err: errors.JOSEError): string => {
  if (err instanceof errors.JWTExpired) return `claim "${err.claim}" expired`;
  if (err instanceof errors.JWTClaimValidationFailed) return `claim "${err.claim}" ${err.reason}`;
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'bad signature';
  if (err instanceof errors.JWKSNoMatchingKey) return 'no key of the realm matches';
  if (err instanceof errors.JOSEAlgNotAllowed) return 'alg not allowed';
  return err.code;
};

export interface KeycloakJwtExpectations {
  issuer: string;
  audience?: string;
  clockSkewSeconds: number;
  requiredClaims: string[];
  /** Oldest acceptable `iat`, in seconds. */
  maxTokenAgeSeconds?: number;
  /** Keycloak's own `typ` claim: `ID` for ID tokens, `Bearer` for access tokens. */
  keycloakTyp?: 'ID' | 'Bearer';
}

/** Verifies a Keycloak-issued JWT: signature against the realm's keys, algorithm allow-list, issuer, audience, time claims. */
export async function verifyKeycloakJwt(
  token: string,
  keys: JWTVerifyGetKey,
  x: KeycloakJwtExpectations,
): Promise<JWTPayload & { sub: string }> {
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, keys, {
      issuer: x.issuer,
      audience: x.audience,
      algorithms: KEYCLOAK_TOKEN_ALGORITHMS,
      clockTolerance: x.clockSkewSeconds,
      requiredClaims: ['exp', 'iat', ...x.requiredClaims],
      maxTokenAge: x.maxTokenAgeSeconds,
    }));
  } catch (err) {
    if (err instanceof errors.JOSEError && VERDICTS.has(err.code)) throw new KeycloakTokenRejectedError(reasonOf(err), { cause: err });
    throw new KeycloakKeysUnavailableError({ cause: err });
  }
  if (typeof payload.sub !== 'string' || payload.sub.length === 0) throw new KeycloakTokenRejectedError('no sub');
  if (x.keycloakTyp && payload['typ'] !== x.keycloakTyp) throw new KeycloakTokenRejectedError(`typ is not ${x.keycloakTyp}`);
  return payload as JWTPayload & { sub: string };
}

/**
 * The aliases in Keycloak's `organization` claim. The organisation membership mapper writes a list
 * of aliases by default, an object keyed by alias when it adds ids or attributes, a string when
 * multivalued is off.
 */
export function organizationAliases(claim: unknown): string[] {
  if (typeof claim === 'string') return [claim];
  if (Array.isArray(claim)) return claim.filter((a): a is string => typeof a === 'string');
  if (claim !== null && typeof claim === 'object') return Object.keys(claim);
  return [];
}
