import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  firebaseScryptParamsFromHashConfig,
  hashFirebaseScrypt,
  InvalidFirebaseScryptParamsError,
  verifyFirebaseScrypt,
  type FirebaseScryptParams,
} from './firebase-scrypt.js';

// The sample published in the README of Firebase's open-source scrypt utility: the console's hash_config,
// one exported account (user1@test.com) and its plain-text password.
const PUBLISHED = {
  hashConfig: {
    base64_signer_key: 'jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA==',
    base64_salt_separator: 'Bw==',
    rounds: 8,
    mem_cost: 14,
  },
  salt: '42xEC+ixf3L2lw==',
  password: 'user1password',
  passwordHash: 'lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ==',
};
const params = firebaseScryptParamsFromHashConfig(PUBLISHED.hashConfig);
const record = { passwordHash: PUBLISHED.passwordHash, salt: PUBLISHED.salt };

/** Flips one bit of the decoded value and re-encodes it. */
const flipBit = (b64: string, byte: number, bit = 0): string => {
  const bytes = Buffer.from(b64, 'base64');
  bytes[byte] = (bytes[byte] ?? 0) ^ (1 << bit);
  return bytes.toString('base64');
};

describe('Firebase modified scrypt', () => {
  it('reproduces the published test vector', async () => {
    await expect(hashFirebaseScrypt(PUBLISHED.password, PUBLISHED.salt, params)).resolves.toBe(PUBLISHED.passwordHash);
  });

  it('accepts the right password', async () => {
    await expect(verifyFirebaseScrypt(PUBLISHED.password, record, params)).resolves.toBe(true);
  });

  it('accepts the URL-safe base64 spelling of the same values', async () => {
    const urlSafe = (s: string) => s.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    await expect(
      verifyFirebaseScrypt(PUBLISHED.password, { passwordHash: urlSafe(record.passwordHash), salt: urlSafe(record.salt) }, params),
    ).resolves.toBe(true);
  });

  it('refuses a wrong password', async () => {
    for (const wrong of ['user1passworD', 'user1password ', '', 'user2password']) {
      await expect(verifyFirebaseScrypt(wrong, record, params)).resolves.toBe(false);
    }
  });

  it('refuses a tampered hash, salt or project parameter', async () => {
    const check = (r: typeof record, p: FirebaseScryptParams = params) => verifyFirebaseScrypt(PUBLISHED.password, r, p);
    await expect(check({ ...record, passwordHash: flipBit(record.passwordHash, 0) })).resolves.toBe(false);
    await expect(check({ ...record, passwordHash: flipBit(record.passwordHash, 63, 7) })).resolves.toBe(false);
    await expect(check({ ...record, salt: flipBit(record.salt, 3) })).resolves.toBe(false);
    await expect(check(record, { ...params, saltSeparator: 'CA==' })).resolves.toBe(false);
    await expect(check(record, { ...params, signerKey: flipBit(params.signerKey, 10) })).resolves.toBe(false);
    await expect(check(record, { ...params, rounds: 7 })).resolves.toBe(false);
  });

  it('refuses malformed stored values instead of decoding them leniently', async () => {
    const check = (r: typeof record) => verifyFirebaseScrypt(PUBLISHED.password, r, params);
    // truncated hash
    await expect(check({ ...record, passwordHash: record.passwordHash.slice(0, 44) })).resolves.toBe(false);
    // a stray character Buffer.from(…, 'base64') would silently skip
    await expect(check({ ...record, passwordHash: `${record.passwordHash.slice(0, 10)}!${record.passwordHash.slice(10)}` })).resolves.toBe(
      false,
    );
    await expect(check({ ...record, salt: '42xEC+ixf3L2lw==.' })).resolves.toBe(false);
    await expect(check({ ...record, passwordHash: '' })).resolves.toBe(false);
  });

  it('round-trips a fixture built with hashFirebaseScrypt (cheap parameters)', async () => {
    const cheap: FirebaseScryptParams = {
      signerKey: randomBytes(64).toString('base64'),
      saltSeparator: 'Bw==',
      rounds: 1,
      memCost: 4,
    };
    const salt = randomBytes(12).toString('base64');
    const passwordHash = await hashFirebaseScrypt('pässwörd ✓', salt, cheap);
    expect(Buffer.from(passwordHash, 'base64')).toHaveLength(64);
    await expect(verifyFirebaseScrypt('pässwörd ✓', { passwordHash, salt }, cheap)).resolves.toBe(true);
    await expect(verifyFirebaseScrypt('passwörd ✓', { passwordHash, salt }, cheap)).resolves.toBe(false);
  });

  it('rejects out-of-range project parameters', async () => {
    for (const bad of [
      { ...params, rounds: 0 },
      { ...params, rounds: 9 },
      { ...params, memCost: 15 },
      { ...params, memCost: 2.5 },
      { ...params, signerKey: '' },
      { ...params, saltSeparator: 'B w==' },
    ]) {
      await expect(verifyFirebaseScrypt(PUBLISHED.password, record, bad)).rejects.toBeInstanceOf(InvalidFirebaseScryptParamsError);
    }
  });
});
