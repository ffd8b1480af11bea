/**
 * How an imported Firebase password is stored in `native_credentials.password_hash` until the
 * user's first login replaces it with argon2id:
 *
 *   $firebase-scrypt$v=1$cfg=<hash config id>$<salt, base64>$<hash, base64>
 *
 * The per-user salt and hash travel in the row; the project's parameters (signer key, salt
 * separator, rounds, memory cost) are stored once per import, encrypted, in
 * `firebase_password_hash_configs`, and referenced by id.
 */
export const FIREBASE_SCRYPT_PREFIX = '$firebase-scrypt$';

export interface FirebasePasswordHash {
  configId: string;
  salt: string;
  passwordHash: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;
const MAX_PART = 1024;

export const isFirebasePasswordHash = (stored: string): boolean => stored.startsWith(FIREBASE_SCRYPT_PREFIX);

export function isBase64Value(value: unknown, allowEmpty: boolean): value is string {
  return typeof value === 'string' && value.length <= MAX_PART && (allowEmpty || value.length > 0) && BASE64.test(value);
}

export function formatFirebasePasswordHash(h: FirebasePasswordHash): string {
  if (!UUID.test(h.configId) || !isBase64Value(h.salt, true) || !isBase64Value(h.passwordHash, false))
    throw new Error('Invalid Firebase password hash parts');
  return `${FIREBASE_SCRYPT_PREFIX}v=1$cfg=${h.configId}$${h.salt}$${h.passwordHash}`;
}

export function parseFirebasePasswordHash(stored: string): FirebasePasswordHash | undefined {
  const parts = stored.split('$');
  // ['', 'firebase-scrypt', 'v=1', 'cfg=<id>', salt, hash]
  if (parts.length !== 6 || parts[0] !== '' || parts[1] !== 'firebase-scrypt' || parts[2] !== 'v=1') return undefined;
  const configId = parts[3]!.startsWith('cfg=') ? parts[3]!.slice(4) : '';
  const salt = parts[4]!;
  const passwordHash = parts[5]!;
  if (!UUID.test(configId) || !isBase64Value(salt, true) || !isBase64Value(passwordHash, false)) return undefined;
  return { configId, salt, passwordHash };
}
