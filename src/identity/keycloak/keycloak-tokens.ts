import type { JWTPayload, JWTVerifyGetKey } from 'jose';
import { UpstreamTokenRejectedError, verifyUpstreamJwt } from '../shared/upstream-jwt.js';

/** Asymmetric algorithms only: Keycloak signs with its realm keys; HMAC and `none` are never accepted. */
export const KEYCLOAK_TOKEN_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

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

/**
 * Verifies a Keycloak-issued JWT with the shared upstream-JWT check (signature against the realm's
 * keys, algorithm allow-list, issuer, audience, time claims), then Keycloak's own `typ` claim.
 * Throws `UpstreamTokenRejectedError` or `JwksUnavailableError`, like every adapter.
 */
export async function verifyKeycloakJwt(
  token: string,
  keys: JWTVerifyGetKey,
  x: KeycloakJwtExpectations,
): Promise<JWTPayload & { sub: string }> {
  const { claims } = await verifyUpstreamJwt(token, keys, {
    issuer: x.issuer,
    audience: x.audience,
    algorithms: KEYCLOAK_TOKEN_ALGORITHMS,
    clockSkewSeconds: x.clockSkewSeconds,
    requiredClaims: x.requiredClaims,
    maxTokenAgeSeconds: x.maxTokenAgeSeconds,
  });
  if (x.keycloakTyp && claims['typ'] !== x.keycloakTyp) throw new UpstreamTokenRejectedError(`typ is not ${x.keycloakTyp}`);
  return claims;
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
