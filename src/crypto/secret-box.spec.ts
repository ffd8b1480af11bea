import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SecretBox } from './secret-box.js';
import { mintOpaqueToken, parseOpaqueToken, successorOpaqueToken } from './opaque-token.js';

describe('SecretBox', () => {
  const box = new SecretBox(randomBytes(32));

  it('round-trips and never stores the plaintext', () => {
    const sealed = box.seal('private key material', 'signing_key:k1');
    expect(sealed.includes(Buffer.from('private key material'))).toBe(false);
    expect(box.open(sealed, 'signing_key:k1').toString()).toBe('private key material');
  });

  it('refuses a ciphertext moved to another row (associated data)', () => {
    const sealed = box.seal('secret', 'binding_secrets:a');
    expect(() => box.open(sealed, 'binding_secrets:b')).toThrow();
  });

  it('refuses a tampered ciphertext and another key', () => {
    const sealed = box.seal('secret', 'ctx');
    sealed[sealed.length - 1]! ^= 1;
    expect(() => box.open(sealed, 'ctx')).toThrow();
    expect(() => new SecretBox(randomBytes(32)).open(box.seal('secret', 'ctx'), 'ctx')).toThrow();
  });

  it('derives one key per purpose, the same from the same key-encryption key (every replica)', () => {
    const kek = randomBytes(32);
    const key = new SecretBox(kek).deriveKey('refresh-token-successor');
    expect(key).toHaveLength(32);
    expect(new SecretBox(Buffer.from(kek)).deriveKey('refresh-token-successor').equals(key)).toBe(true);
    expect(new SecretBox(kek).deriveKey('another-purpose').equals(key)).toBe(false);
    expect(new SecretBox(randomBytes(32)).deriveKey('refresh-token-successor').equals(key)).toBe(false);
    expect(key.equals(kek)).toBe(false);
  });
});

describe('opaque tokens', () => {
  it('carry the tenant and parse back, whatever characters the secret has', () => {
    const tenant = '0d6f7c1e-8a2b-4c3d-9e4f-5a6b7c8d9e0f';
    for (let i = 0; i < 200; i++) {
      const t = mintOpaqueToken('rt', tenant);
      expect(parseOpaqueToken('rt', t.value)).toEqual(t);
    }
  });

  it('reject another prefix or a malformed token', () => {
    const t = mintOpaqueToken('rt', '0d6f7c1e-8a2b-4c3d-9e4f-5a6b7c8d9e0f');
    expect(parseOpaqueToken('ac', t.value)).toBeUndefined();
    expect(parseOpaqueToken('rt', t.value + 'x')).toBeUndefined();
    expect(parseOpaqueToken('rt', 'rt_zz_abc')).toBeUndefined();
  });

  it('derive a successor of the same shape and tenant: the same for the same token and key, another for another of either', () => {
    const key = randomBytes(32);
    const t = mintOpaqueToken('rt', '0d6f7c1e-8a2b-4c3d-9e4f-5a6b7c8d9e0f');
    const next = successorOpaqueToken('rt', t, key);
    expect(parseOpaqueToken('rt', next.value)).toEqual(next);
    expect(next.tenantId).toBe(t.tenantId);
    expect(next.value).not.toBe(t.value);
    expect(successorOpaqueToken('rt', parseOpaqueToken('rt', t.value)!, Buffer.from(key))).toEqual(next);
    expect(successorOpaqueToken('rt', t, randomBytes(32)).value).not.toBe(next.value);
    expect(successorOpaqueToken('rt', mintOpaqueToken('rt', t.tenantId), key).value).not.toBe(next.value);
  });
});
