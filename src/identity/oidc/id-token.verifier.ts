import type { JWTVerifyGetKey } from 'jose';
import { constantEquals } from '../../crypto/random.js';
import { HMAC_ALGORITHMS } from './tenant-oidc.config.js';
import { UpstreamTokenRejectedError, verifyUpstreamJwt, type VerifiedUpstreamJwt } from '../shared/upstream-jwt.js';

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

/**
 * Verifies an ID token from the code flow ourselves (OIDC Core §3.1.3.7): openid-client 6 checks
 * the claims but not the signature on the code flow, so this is where the signature, the `alg`
 * allow-list and the key selection are enforced (by the shared upstream-JWT check), and the
 * ID-token rules on top: `aud` required, `azp` for several audiences, the nonce.
 */
export async function verifyIdToken(idToken: string, keys: JWTVerifyGetKey, x: IdTokenExpectations): Promise<VerifiedUpstreamJwt> {
  // The key is picked by the token's alg family: HMAC → the client secret, otherwise the OP's
  // JWKS. Whether that alg is acceptable at all is decided once, by the allow-list, which jose
  // checks before it asks for a key.
  const getKey: JWTVerifyGetKey = async (header, token) => {
    if ((HMAC_ALGORITHMS as readonly string[]).includes(header.alg)) {
      if (!x.clientSecret) throw new UpstreamTokenRejectedError('HMAC-signed but the binding has no client secret');
      return new TextEncoder().encode(x.clientSecret);
    }
    return keys(header, token);
  };
  const verified = await verifyUpstreamJwt(idToken, getKey, {
    issuer: x.issuer,
    audience: x.clientId,
    algorithms: x.allowedAlgorithms,
    clockSkewSeconds: x.clockSkewSeconds,
    maxTokenAgeSeconds: x.maxAgeSeconds,
    requiredClaims: ['iss', 'sub', 'aud'],
    currentDate: x.currentDate,
  });
  const payload = verified.claims;
  // §3.1.3.7 (4, 5): several audiences require azp; an azp must be this client.
  if (Array.isArray(payload.aud) && payload.aud.length > 1 && payload['azp'] === undefined)
    throw new UpstreamTokenRejectedError('claim "azp" missing for several audiences');
  if (payload['azp'] !== undefined && payload['azp'] !== x.clientId) throw new UpstreamTokenRejectedError('claim "azp" is another client');
  // §3.1.3.7 (11): the nonce binds the token to this login.
  const nonce = payload['nonce'];
  if (typeof nonce !== 'string' || !constantEquals(nonce, x.nonce)) throw new UpstreamTokenRejectedError('claim "nonce" does not match');
  return verified;
}
