import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { createLocalJWKSet, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { AppConfig } from '../config/app-config.js';
import { BearerTokenError, OAuthError } from '../common/errors.js';
import { SigningKeysService } from './signing-keys.service.js';

/** Everything a platform token says about its subject; built by the OAuth layer, never by an adapter. */
export interface PlatformSubject {
  tenantId: string;
  tenantSlug: string;
  userId: string;
  clientId: string;
  scope: string;
  roles: string[];
  idp: string;
  idpSub: string;
  authTime: Date;
  /** RFC 8176 methods of the session's login; absent or null for logins whose methods are not known (upstream IdPs, machines). */
  amr?: string[] | null;
  sessionId?: string;
  email?: string | null;
  emailVerified?: boolean;
  name?: string | null;
}

export interface IssuedAccessToken {
  token: string;
  jti: string;
  expiresIn: number;
}

export interface PlatformAccessClaims extends JWTPayload {
  sub: string;
  client_id: string;
  tid: string;
  org: string;
  roles: string[];
  scope: string;
  idp: string;
  idp_sub: string;
  auth_time: number;
  sid?: string;
  amr?: string[];
  acr?: string;
  /** The signing key's `kid`, repeated in the payload of access tokens only: Kong's jwt plugin matches its credential by it (ADR 0006). */
  at_kid?: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** The `acr` of a password-only native login, and of one with a second factor (README: two-step verification). */
export const ACR_PWD = 'urn:auth-service:acr:pwd';
export const ACR_MFA = 'urn:auth-service:acr:mfa';
/** `amr` and the `acr` it implies, for the tokens of a session whose methods are known. */
const authenticationClaims = (amr: string[] | null | undefined): { amr?: string[]; acr?: string } =>
  amr?.length ? { amr, acr: amr.includes('mfa') ? ACR_MFA : ACR_PWD } : {};

export const isUuid = (v: unknown): v is string => typeof v === 'string' && UUID.test(v);
/** `client:<id>`: a machine subject (client_credentials, or an upstream machine by token exchange). */
const MACHINE_SUBJECT = /^client:[\x21-\x7e]{1,200}$/;
export const isMachineSubject = (sub: string): boolean => sub.startsWith('client:');

/**
 * Why a signature-valid access token is still not one this service could have issued, or
 * undefined. Everything the platform reads from a token is checked here, once, so no reader ever
 * meets a `tid` that is not a tenant id or a `sid` that is not a session id (they reach SQL).
 */
export function accessClaimsProblem(
  p: PlatformAccessClaims,
  nowSeconds: number,
  skewSeconds: number,
  maxLifetimeSeconds: number,
): string | undefined {
  if (typeof p.iat !== 'number' || !Number.isFinite(p.iat)) return 'iat is not a number';
  if (p.iat > nowSeconds + skewSeconds) return 'iat is in the future';
  if (typeof p.exp !== 'number' || p.exp - p.iat > maxLifetimeSeconds) return 'lifetime exceeds the longest this service issues';
  if (!isUuid(p.tid)) return 'tid is not a tenant id';
  if (p.sid !== undefined && !isUuid(p.sid)) return 'sid is not a session id';
  if (typeof p.sub !== 'string' || !(isUuid(p.sub) || MACHINE_SUBJECT.test(p.sub))) return 'sub is neither a user id nor a machine subject';
  if (typeof p.client_id !== 'string' || p.client_id.length === 0 || p.client_id.length > 100) return 'client_id is malformed';
  if (p.scope !== undefined && typeof p.scope !== 'string') return 'scope is not a string';
  if (p.roles !== undefined && !(Array.isArray(p.roles) && p.roles.every((r) => typeof r === 'string')))
    return 'roles is not a list of strings';
  if (typeof p.org !== 'string') return 'org is not a string';
  return undefined;
}

/**
 * Payload claim naming the signing key in access tokens (never in ID tokens), so that a gateway that
 * matches credentials by a claim (Kong's open-source jwt plugin, `key_claim_name`) accepts access
 * tokens and nothing else this issuer signs. See docs/adr/0006-kong-jwt-credentials.md.
 */
export const GATEWAY_KEY_CLAIM = 'at_kid';

/**
 * Issues platform JWTs: RFC 9068 access tokens (`typ: at+jwt`) and OIDC ID tokens, RS256 with
 * the active key's `kid`. `idp`/`idp_sub` are audit claims; nothing in the platform may
 * authorise on them.
 */
@Injectable()
export class TokenIssuerService {
  private localJwks?: { etag: string; set: ReturnType<typeof createLocalJWKSet> };

  constructor(
    private readonly keys: SigningKeysService,
    @Inject(AppConfig) private readonly config: AppConfig,
  ) {}

  async issueAccessToken(s: PlatformSubject, now = Date.now()): Promise<IssuedAccessToken> {
    const { kid, key } = this.keys.currentSigner();
    const iat = Math.floor(now / 1000);
    const jti = randomUUID();
    const ttl = this.config.ACCESS_TOKEN_TTL_SECONDS;
    const claims: PlatformAccessClaims = {
      iss: this.config.issuer,
      sub: s.userId,
      aud: this.config.ACCESS_TOKEN_AUDIENCE,
      iat,
      exp: iat + ttl,
      jti,
      client_id: s.clientId,
      tid: s.tenantId,
      org: s.tenantSlug,
      roles: s.roles,
      scope: s.scope,
      idp: s.idp,
      idp_sub: s.idpSub,
      auth_time: Math.floor(s.authTime.getTime() / 1000),
      ...authenticationClaims(s.amr),
      ...(s.sessionId ? { sid: s.sessionId } : {}),
      [GATEWAY_KEY_CLAIM]: kid,
    };
    const token = await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid }).sign(key);
    return { token, jti, expiresIn: ttl };
  }

  async issueIdToken(s: PlatformSubject, nonce: string | null | undefined, now = Date.now()): Promise<string> {
    const { kid, key } = this.keys.currentSigner();
    const iat = Math.floor(now / 1000);
    const scopes = new Set(s.scope.split(' '));
    return new SignJWT({
      iss: this.config.issuer,
      sub: s.userId,
      aud: s.clientId,
      iat,
      exp: iat + this.config.ACCESS_TOKEN_TTL_SECONDS,
      auth_time: Math.floor(s.authTime.getTime() / 1000),
      ...authenticationClaims(s.amr),
      ...(nonce ? { nonce } : {}),
      ...(s.sessionId ? { sid: s.sessionId } : {}),
      tid: s.tenantId,
      org: s.tenantSlug,
      ...(scopes.has('email') && s.email ? { email: s.email, email_verified: s.emailVerified ?? false } : {}),
      ...(scopes.has('profile') && s.name ? { name: s.name } : {}),
    })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid })
      .sign(key);
  }

  /**
   * The cryptographic and structural half of checking one of our own access tokens: signature
   * (RS256, a key of our JWKS), `typ` at+jwt, iss, aud, exp and nbf with the clock skew, an `iat`
   * that is not in the future and a lifetime no longer than any this service issues, and every
   * claim the platform reads in its expected form. Whether the session, user, tenant and client
   * behind it are still live is the other half: AccessTokenVerifier, the one check every route
   * that accepts a platform token goes through.
   */
  async verifyAccessToken(token: string, now = Date.now()): Promise<PlatformAccessClaims> {
    const doc = this.keys.jwksDocument();
    if (this.localJwks?.etag !== doc.etag) this.localJwks = { etag: doc.etag, set: createLocalJWKSet({ keys: doc.keys }) };
    const jwks = this.localJwks.set;
    let payload: PlatformAccessClaims;
    try {
      ({ payload } = await jwtVerify<PlatformAccessClaims>(token, jwks, {
        issuer: this.config.issuer,
        audience: this.config.ACCESS_TOKEN_AUDIENCE,
        typ: 'at+jwt',
        algorithms: ['RS256'],
        clockTolerance: this.config.CLOCK_SKEW_SECONDS,
        currentDate: new Date(now),
        requiredClaims: ['sub', 'tid', 'jti', 'exp'],
      }));
    } catch (err) {
      throw new BearerTokenError('invalid_token', 'The access token is invalid or expired.', { cause: err });
    }
    const problem = accessClaimsProblem(
      payload,
      Math.floor(now / 1000),
      this.config.CLOCK_SKEW_SECONDS,
      this.config.ACCESS_TOKEN_TTL_SECONDS,
    );
    if (problem) throw new BearerTokenError('invalid_token', 'The access token is invalid or expired.', { cause: new Error(problem) });
    return payload;
  }

  /** An ID token we issued, used as a logout hint: signature and issuer checked, expiry not. */
  async verifyIdTokenHint(token: string): Promise<{ aud: string; sid?: string; tid: string }> {
    const doc = this.keys.jwksDocument();
    try {
      const { payload } = await jwtVerify(token, createLocalJWKSet({ keys: doc.keys }), {
        issuer: this.config.issuer,
        algorithms: ['RS256'],
        typ: 'JWT',
        currentDate: new Date(0),
      });
      if (typeof payload.aud !== 'string' || !isUuid(payload['tid'])) throw new Error('not an ID token of ours');
      if (payload['sid'] !== undefined && !isUuid(payload['sid'])) throw new Error('sid is not a session id of ours');
      return { aud: payload.aud, sid: typeof payload['sid'] === 'string' ? payload['sid'] : undefined, tid: payload['tid'] };
    } catch (err) {
      throw new OAuthError('invalid_request', 'id_token_hint is not a valid ID token of this issuer.', { cause: err });
    }
  }
}
