/**
 * Firebase Authentication's "modified scrypt" password hashes, as exported by `firebase auth:export`
 * (per user: `passwordHash`, `salt`; per project: the console's hash_config).
 *
 * The published algorithm (Firebase's open-source scrypt utility):
 *   key  = scrypt(password, salt ‖ saltSeparator, N = 2^memCost, r = rounds, p = 1)   (first 32 bytes)
 *   hash = AES-256-CTR(key, IV = 16 zero bytes).encrypt(signerKey)
 * All binary inputs are base64; the stored hash is the base64 of `hash` (as long as the signer key).
 */
import { createCipheriv, scrypt, timingSafeEqual } from 'node:crypto';

/** The project's hash parameters (Firebase console → Authentication → Users → Password hash parameters). */
export interface FirebaseScryptParams {
  /** `base64_signer_key` */
  signerKey: string;
  /** `base64_salt_separator` */
  saltSeparator: string;
  /** `rounds` (scrypt r), 1–8 */
  rounds: number;
  /** `mem_cost` (scrypt N = 2^mem_cost), 1–14 */
  memCost: number;
}

/** The hash_config block as the console and `firebase auth:import` spell it. */
export interface FirebaseHashConfig {
  base64_signer_key: string;
  base64_salt_separator: string;
  rounds: number;
  mem_cost: number;
}

/** A user's stored credential from an `auth:export` file (both base64). */
export interface FirebasePasswordRecord {
  passwordHash: string;
  salt: string;
}

export class InvalidFirebaseScryptParamsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidFirebaseScryptParamsError';
  }
}

// Firebase accepts rounds 1..8 and mem_cost 1..14; the bounds also cap memory at 128·2^14·8 = 16 MiB per hash.
const MIN_ROUNDS = 1;
const MAX_ROUNDS = 8;
const MIN_MEM_COST = 1;
const MAX_MEM_COST = 14;
const KEY_LENGTH = 32; // AES-256
const MAX_PASSWORD_BYTES = 4096;

export function firebaseScryptParamsFromHashConfig(config: FirebaseHashConfig): FirebaseScryptParams {
  return {
    signerKey: config.base64_signer_key,
    saltSeparator: config.base64_salt_separator,
    rounds: config.rounds,
    memCost: config.mem_cost,
  };
}

/**
 * True when `password` matches the exported Firebase hash. Malformed stored values (bad base64, wrong
 * length) yield false; invalid project parameters throw, since they are configuration errors.
 */
export async function verifyFirebaseScrypt(
  password: string,
  record: FirebasePasswordRecord,
  params: FirebaseScryptParams,
): Promise<boolean> {
  const p = decodeParams(params);
  const salt = decodeBase64(record.salt);
  const expected = decodeBase64(record.passwordHash);
  if (salt === undefined || expected === undefined || expected.length !== p.signerKey.length) return false;
  if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES) return false;
  const actual = await compute(password, salt, p);
  return timingSafeEqual(actual, expected);
}

/** Base64 Firebase hash of `password` with the given base64 `salt`; used to build test fixtures. */
export async function hashFirebaseScrypt(password: string, salt: string, params: FirebaseScryptParams): Promise<string> {
  const p = decodeParams(params);
  const saltBytes = decodeBase64(salt);
  if (saltBytes === undefined) throw new InvalidFirebaseScryptParamsError('salt is not base64');
  return (await compute(password, saltBytes, p)).toString('base64');
}

interface DecodedParams {
  signerKey: Buffer;
  saltSeparator: Buffer;
  rounds: number;
  memCost: number;
}

async function compute(password: string, salt: Buffer, p: DecodedParams): Promise<Buffer> {
  const N = 2 ** p.memCost;
  const r = p.rounds;
  const derived = await new Promise<Buffer>((resolve, reject) => {
    scrypt(
      Buffer.from(password, 'utf8'),
      Buffer.concat([salt, p.saltSeparator]),
      KEY_LENGTH,
      // scrypt needs about 128·N·r bytes (plus 128·r·p); node's default maxmem (32 MiB) is too tight near the top.
      { N, r, p: 1, maxmem: 128 * N * r + 128 * r + 1024 * 1024 },
      (err, key) => (err ? reject(err) : resolve(key)),
    );
  });
  const cipher = createCipheriv('aes-256-ctr', derived, Buffer.alloc(16, 0));
  return Buffer.concat([cipher.update(p.signerKey), cipher.final()]);
}

function decodeParams(params: FirebaseScryptParams): DecodedParams {
  const { rounds, memCost } = params;
  if (!Number.isInteger(rounds) || rounds < MIN_ROUNDS || rounds > MAX_ROUNDS) {
    throw new InvalidFirebaseScryptParamsError(`rounds must be an integer in ${MIN_ROUNDS}..${MAX_ROUNDS}`);
  }
  if (!Number.isInteger(memCost) || memCost < MIN_MEM_COST || memCost > MAX_MEM_COST) {
    throw new InvalidFirebaseScryptParamsError(`memCost must be an integer in ${MIN_MEM_COST}..${MAX_MEM_COST}`);
  }
  const signerKey = decodeBase64(params.signerKey);
  if (signerKey === undefined || signerKey.length === 0) {
    throw new InvalidFirebaseScryptParamsError('signerKey is not non-empty base64');
  }
  const saltSeparator = decodeBase64(params.saltSeparator);
  if (saltSeparator === undefined) throw new InvalidFirebaseScryptParamsError('saltSeparator is not base64');
  return { signerKey, saltSeparator, rounds, memCost };
}

/**
 * Strict base64 (standard or URL-safe alphabet, padding optional): Buffer.from(…, 'base64') silently skips
 * invalid characters, which would let a mangled stored value decode to something.
 */
function decodeBase64(value: string): Buffer | undefined {
  if (typeof value !== 'string') return undefined;
  const normalized = value.replace(/-/g, '+').replace(/_/g, '/');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(normalized)) return undefined;
  const unpadded = normalized.replace(/=+$/, '');
  if (unpadded.length % 4 === 1) return undefined;
  if (normalized.length !== unpadded.length && normalized.length % 4 !== 0) return undefined;
  return Buffer.from(unpadded, 'base64');
}
