import { type Doc, isObject } from './scim-document.js';
import { ENTERPRISE_USER } from './scim-schemas.js';
import type { ScimUserColumns, ScimUserRow } from './scim-users.repository.js';

/** Core attributes kept in `scim_profile` (everything without a column of its own). */
const PROFILE_ATTRIBUTES = [
  'nickName',
  'profileUrl',
  'title',
  'userType',
  'preferredLanguage',
  'locale',
  'timezone',
  'phoneNumbers',
  'ims',
  'photos',
  'addresses',
  'entitlements',
  'roles',
  'x509Certificates',
] as const;
const PROFILE_NAME_PARTS = ['formatted', 'middleName', 'honorificPrefix', 'honorificSuffix'] as const;

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** The columns a SCIM User document is stored in; the platform `email` is the primary email, else the work one, else the first. */
export function columnsOf(doc: Doc): ScimUserColumns {
  const name = isObject(doc['name']) ? doc['name'] : {};
  const profile: Doc = {};
  const profileName: Doc = {};
  for (const k of PROFILE_NAME_PARTS) if (name[k] !== undefined) profileName[k] = name[k];
  if (Object.keys(profileName).length) profile['name'] = profileName;
  for (const k of PROFILE_ATTRIBUTES) if (doc[k] !== undefined) profile[k] = doc[k];
  const emails = Array.isArray(doc['emails']) ? doc['emails'] : [];
  const objects = emails.filter(isObject);
  const chosen = objects.find((e) => e['primary'] === true) ?? objects.find((e) => str(e['type'])?.toLowerCase() === 'work') ?? objects[0];
  const email = str(chosen?.['value']);
  return {
    userName: doc['userName'] as string,
    externalId: str(doc['externalId']),
    displayName: str(doc['displayName']),
    givenName: str(name['givenName']),
    familyName: str(name['familyName']),
    active: doc['active'] !== false,
    emails,
    enterprise: isObject(doc[ENTERPRISE_USER]) ? doc[ENTERPRISE_USER] : {},
    profile,
    email: email && /^[^\s@]+@[^\s@]+$/.test(email) && email.length <= 320 ? email.toLowerCase() : null,
  };
}

/** The stored row as a canonical SCIM document (without id, meta and groups). */
export function documentOf(r: ScimUserRow): Doc {
  const profile = r.profile;
  const doc: Doc = { userName: r.userName };
  if (r.externalId !== null) doc['externalId'] = r.externalId;
  const name: Doc = { ...(isObject(profile['name']) ? profile['name'] : {}) };
  if (r.givenName !== null) name['givenName'] = r.givenName;
  if (r.familyName !== null) name['familyName'] = r.familyName;
  if (Object.keys(name).length) doc['name'] = name;
  if (r.displayName !== null) doc['displayName'] = r.displayName;
  for (const k of PROFILE_ATTRIBUTES) if (profile[k] !== undefined) doc[k] = profile[k];
  doc['active'] = r.status === 'active';
  if (Array.isArray(r.emails) && r.emails.length) doc['emails'] = r.emails;
  if (Object.keys(r.enterprise).length) doc[ENTERPRISE_USER] = r.enterprise;
  return doc;
}

/** The lower-cased values a new user's verified email may match to adopt an unmanaged user: userName and emails. */
export function adoptionCandidates(c: ScimUserColumns): string[] {
  return [c.userName, ...c.emails.filter(isObject).map((e) => str(e['value']))].filter((x): x is string => !!x).map((x) => x.toLowerCase());
}

/** Key-order-independent JSON, to tell whether a write changes anything. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (isObject(v))
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`)
      .join(',')}}`;
  return JSON.stringify(v);
}
