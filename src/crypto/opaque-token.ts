import { createHmac } from 'node:crypto';
import { randomToken, sha256 } from './random.js';

/**
 * Opaque tokens (authorization codes, refresh tokens, login transaction handles, SCIM tokens)
 * carry their tenant id in clear beside 256 random bits: `<prefix>_<tenant hex>_<secret>`.
 * The tenant part lets every look-up run inside that tenant's row-level-security context, so
 * no query ever needs to see across tenants; only the hash of the whole token is stored.
 */
export interface OpaqueToken {
  value: string;
  hash: string;
  tenantId: string;
}

const SHAPE = /^([a-z]{2})_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$/;

export function mintOpaqueToken(prefix: string, tenantId: string): OpaqueToken {
  const value = `${prefix}_${tenantId.replaceAll('-', '')}_${randomToken()}`;
  return { value, hash: sha256(value), tenantId };
}

/**
 * The token that follows `from` (a refresh token's successor): the same shape, its secret the
 * HMAC-SHA256 of the whole previous value under a server-held key. Recomputing it needs both the
 * previous token's value (never stored) and the key, so it is as unguessable as a minted one; being
 * deterministic, a rotation can be answered again with the same successor (ADR 0012).
 */
export function successorOpaqueToken(prefix: string, from: OpaqueToken, key: Buffer): OpaqueToken {
  const value = `${prefix}_${from.tenantId.replaceAll('-', '')}_${createHmac('sha256', key).update(from.value).digest('base64url')}`;
  return { value, hash: sha256(value), tenantId: from.tenantId };
}

/** Returns undefined for anything that is not a well-formed token of that prefix. */
export function parseOpaqueToken(prefix: string, value: unknown): OpaqueToken | undefined {
  if (typeof value !== 'string' || value.length > 200) return undefined;
  const m = SHAPE.exec(value);
  if (!m || m[1] !== prefix) return undefined;
  const hex = m[2]!;
  const tenantId = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  return { value, hash: sha256(value), tenantId };
}
