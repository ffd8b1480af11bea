import { describe, expect, it } from 'vitest';
import { MAX_AGE_CEILING, mustReauthenticate, parseFreshness, staleAuthentication } from './login-freshness.js';

const NOW = Date.parse('2026-01-01T12:00:00Z');
const started = new Date(NOW - 30_000);
const secondsAgo = (s: number) => new Date(NOW - s * 1000);

describe('parseFreshness', () => {
  it('takes a non-negative integer max_age and prompt=login among other prompt values', () => {
    expect(parseFreshness(undefined, undefined)).toEqual({ freshness: { promptLogin: false } });
    expect(parseFreshness('0', undefined)).toEqual({ freshness: { maxAge: 0, promptLogin: false } });
    expect(parseFreshness('3600', 'consent login')).toEqual({ freshness: { maxAge: 3600, promptLogin: true } });
    expect(parseFreshness('99999999999999', undefined)).toEqual({ freshness: { maxAge: MAX_AGE_CEILING, promptLogin: false } });
    expect(parseFreshness(undefined, 'consent')).toEqual({ freshness: { promptLogin: false } });
  });

  it('refuses anything else as max_age', () => {
    for (const v of ['', '-1', '1.5', 'abc', ' 1', '1e3', '+1', '0x10']) expect(parseFreshness(v, undefined).invalid, v).toMatch(/max_age/);
  });

  it('asks the upstream for a fresh login with prompt=login or max_age=0 only', () => {
    expect(mustReauthenticate({ maxAge: 0 })).toBe(true);
    expect(mustReauthenticate({ promptLogin: true })).toBe(true);
    expect(mustReauthenticate({ maxAge: 1 })).toBe(false);
    expect(mustReauthenticate({ maxAge: null, promptLogin: false })).toBe(false);
  });
});

describe('staleAuthentication', () => {
  const check = (f: Parameters<typeof staleAuthentication>[0], at: Date | undefined, skew = 10) =>
    staleAuthentication(f, at, started, skew, NOW);

  it('asks nothing when the client asked nothing', () => {
    expect(check({}, undefined)).toBeUndefined();
    expect(check({ maxAge: null, promptLogin: false }, secondsAgo(1_000_000))).toBeUndefined();
  });

  it('holds auth_time to max_age plus the clock skew', () => {
    expect(check({ maxAge: 60 }, secondsAgo(70))).toBeUndefined();
    expect(check({ maxAge: 60 }, secondsAgo(71))).toMatch(/older than max_age/);
    expect(check({ maxAge: 0 }, secondsAgo(10))).toBeUndefined();
    expect(check({ maxAge: 0 }, secondsAgo(11))).toMatch(/older than max_age/);
  });

  it('holds auth_time under prompt=login to the start of the transaction, less the skew', () => {
    expect(check({ promptLogin: true }, secondsAgo(40))).toBeUndefined();
    expect(check({ promptLogin: true }, secondsAgo(41))).toMatch(/afresh/);
  });

  it('fails closed without an auth_time, with an unreadable one, or with one in the future', () => {
    expect(check({ maxAge: 600 }, undefined)).toMatch(/did not say/);
    expect(check({ promptLogin: true }, new Date('garbage'))).toMatch(/did not say/);
    expect(check({ maxAge: 600 }, new Date(NOW + 11_000))).toMatch(/future/);
    expect(check({ maxAge: 600 }, new Date(NOW + 10_000))).toBeUndefined();
  });
});
