import { describe, expect, it } from 'vitest';
import { parsePhc, PasswordHasher } from './password-hasher.js';

/**
 * PHC strings written by the binding this service used before (`argon2` 0.45, whose parameter
 * order is m,p,t): stored credentials must keep verifying after the switch to `@node-rs/argon2`.
 */
const EARLIER_BINDING = [
  {
    password: 'correct horse battery staple',
    hash: '$argon2id$v=19$m=7168,p=1,t=5$OZGk67wasL1Nx79JpdqsXg$qJSyl5x0N1j0PshNuQMyMW1Ucmlci+2t6BPOxgqMuJk',
  },
  { password: 'pässwörd-ü', hash: '$argon2id$v=19$m=65536,p=4,t=3$mDv8JYiwGANCA4WMDR814g$WCwtvEXNSjS88YDps9HySLSM0pDLIbm58fbSeEtQv/Y' },
  { password: 'short', hash: '$argon2id$v=19$m=19456,p=1,t=2$6BfSG84REqECJhU174cs0g$q3Kg8bbEUJAVkKuo8VsMBUUW2pmT0lVqpHWJc9EA640' },
  { password: 'argon2i-legacy', hash: '$argon2i$v=19$m=4096,p=1,t=3$1DasAjK3ffeOQftl3S4pkA$XaQ+bpYsuebRmHOutmrv79nO4oOIOHKubwwz8ws694o' },
] as const;

describe('PasswordHasher', () => {
  const hasher = new PasswordHasher({ timeCost: 5, memoryKib: 7168 });

  it('verifies the PHC strings the earlier argon2 binding wrote, and refuses other passwords', async () => {
    for (const { password, hash } of EARLIER_BINDING) {
      expect(await hasher.verify(hash, password)).toBe(true);
      expect(await hasher.verify(hash, `${password}x`)).toBe(false);
    }
  });

  it('writes argon2id v1.3 with the configured parameters, which verify and need no rehash', async () => {
    const hash = await hasher.hash('a new password');
    expect(parsePhc(hash)).toEqual({ algorithm: 'argon2id', version: 19, params: { m: 7168, t: 5, p: 1 } });
    expect(await hasher.verify(hash, 'a new password')).toBe(true);
    expect(hasher.needsRehash(hash)).toBe(false);
  });

  it('asks for a rehash when the algorithm or any parameter differs, whatever their order', () => {
    expect(hasher.needsRehash(EARLIER_BINDING[0].hash)).toBe(false); // same parameters, order m,p,t
    expect(hasher.needsRehash(EARLIER_BINDING[1].hash)).toBe(true);
    expect(hasher.needsRehash(EARLIER_BINDING[3].hash)).toBe(true); // argon2i
    expect(new PasswordHasher({ timeCost: 6, memoryKib: 7168 }).needsRehash(EARLIER_BINDING[0].hash)).toBe(true);
    expect(new PasswordHasher({ timeCost: 5, memoryKib: 8192 }).needsRehash(EARLIER_BINDING[0].hash)).toBe(true);
    expect(hasher.needsRehash('$argon2id$v=16$m=7168,t=5,p=1$OZGk67wasL1Nx79JpdqsXg$qJSyl5x0N1j0PshNuQMyMW1Ucmlci+2t6BPOxgqMuJk')).toBe(
      true,
    );
    expect(hasher.needsRehash('not a hash')).toBe(true);
  });

  it('treats a malformed stored hash as a failed verification, not an error', async () => {
    for (const bad of ['', 'plain', '$argon2id$v=19$m=7168,t=5,p=1$!!$!!', '$scrypt$n=16384$abc$def']) {
      expect(await hasher.verify(bad, 'anything')).toBe(false);
    }
  });
});
