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

/** Returns undefined for anything that is not a well-formed token of that prefix. */
export function parseOpaqueToken(prefix: string, value: unknown): OpaqueToken | undefined {
  if (typeof value !== 'string' || value.length > 200) return undefined;
  const m = SHAPE.exec(value);
  if (!m || m[1] !== prefix) return undefined;
  const hex = m[2]!;
  const tenantId = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  return { value, hash: sha256(value), tenantId };
}
