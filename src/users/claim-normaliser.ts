import type { ClaimMappingRules, ExternalIdentity } from '../identity/port/identity-provider.port.js';

/** What the platform keeps of an upstream identity; everything else the upstream said is dropped. */
export interface NormalisedIdentity {
  email: string | null;
  emailVerified: boolean;
  name: string | null;
  givenName: string | null;
  familyName: string | null;
  roles: string[];
}

const ROLE_NAME = /^[A-Za-z0-9_.:-]{1,100}$/;
const EMAIL = /^[^\s@<>()]{1,64}@[^\s@<>()]{1,255}$/;

/** Reads a claim by exact name first (URIs contain dots), then by dotted path. */
export function readClaim(claims: Record<string, unknown>, path: string): unknown {
  if (path in claims) return claims[path];
  let cur: unknown = claims;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || !(part in cur)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** SAML attributes arrive as arrays; a single-valued claim is the first string. */
function firstString(value: unknown): string | null {
  const v = Array.isArray(value) ? value[0] : value;
  if (typeof v !== 'string') return null;
  const trimmed = v.trim();
  return trimmed.length > 0 && trimmed.length <= 320 ? trimmed : null;
}

function asBoolean(value: unknown): boolean {
  const v = Array.isArray(value) ? value[0] : value;
  return v === true || (typeof v === 'string' && v.toLowerCase() === 'true');
}

function valuesOf(value: unknown): string[] {
  if (Array.isArray(value)) return value.filter((x): x is string => typeof x === 'string');
  if (typeof value === 'string') return value.split(/[\s,]+/).filter(Boolean);
  return [];
}

/**
 * Applies a binding's mapping rules. Only roles named by a rule (or the binding's default roles)
 * reach the platform: an upstream role nobody mapped never appears in a platform token.
 */
export function normaliseIdentity(rules: ClaimMappingRules, ext: ExternalIdentity): NormalisedIdentity {
  const c = ext.claims;
  const rawEmail = firstString(readClaim(c, rules.email ?? 'email'));
  const email = rawEmail && EMAIL.test(rawEmail) ? rawEmail.toLowerCase() : null;
  const emailVerified =
    email !== null && (rules.trustEmailVerified === true || asBoolean(readClaim(c, rules.emailVerified ?? 'email_verified')));
  const givenName = firstString(readClaim(c, rules.givenName ?? 'given_name'));
  const familyName = firstString(readClaim(c, rules.familyName ?? 'family_name'));
  const name = firstString(readClaim(c, rules.name ?? 'name')) ?? ([givenName, familyName].filter(Boolean).join(' ') || null);
  const roles = new Set<string>((rules.defaultRoles ?? []).filter((r) => ROLE_NAME.test(r)));
  for (const rule of rules.roles ?? []) {
    if (ROLE_NAME.test(rule.role) && valuesOf(readClaim(c, rule.claim)).includes(rule.value)) roles.add(rule.role);
  }
  return { email, emailVerified, name, givenName, familyName, roles: [...roles].sort() };
}
