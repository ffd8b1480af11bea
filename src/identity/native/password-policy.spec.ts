import { describe, expect, it } from 'vitest';
import { DEFAULT_PASSWORD_POLICY, assertPasswordAllowed, passwordPolicyOf } from './password-policy.js';

describe('password policy', () => {
  it('fills in the defaults and ignores stored values out of range', () => {
    expect(passwordPolicyOf(undefined)).toEqual(DEFAULT_PASSWORD_POLICY);
    expect(passwordPolicyOf({ minLength: 12, minStrength: 3 })).toEqual({ minLength: 12, minStrength: 3 });
    expect(passwordPolicyOf({ minLength: 4, minStrength: 9 })).toEqual(DEFAULT_PASSWORD_POLICY);
    expect(passwordPolicyOf({ minLength: '12' })).toEqual(DEFAULT_PASSWORD_POLICY);
  });

  it('refuses short, own-word and guessable passwords with a sentence, and accepts a passphrase', async () => {
    const policy = DEFAULT_PASSWORD_POLICY;
    await expect(assertPasswordAllowed(policy, 'short', {})).rejects.toThrow(/8–256 characters/);
    await expect(assertPasswordAllowed(policy, 'x'.repeat(257), {})).rejects.toThrow(/8–256 characters/);
    await expect(assertPasswordAllowed(policy, 'Ann@Example.org', { email: 'ann@example.org' })).rejects.toThrow(/username or the email/);
    await expect(assertPasswordAllowed(policy, 'password123', {})).rejects.toThrow(/most common passwords/);
    await expect(assertPasswordAllowed(policy, 'olgaolga1', { username: 'olga' })).rejects.toThrow(/easy to guess/);
    await expect(assertPasswordAllowed(policy, 'correct horse battery staple', { username: 'olga' })).resolves.toBeUndefined();
    // minStrength 0: length and own words only.
    await expect(assertPasswordAllowed({ minLength: 8, minStrength: 0 }, 'password123', {})).resolves.toBeUndefined();
  });
});
