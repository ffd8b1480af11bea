import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import { adjacencyGraphs, dictionary } from '@zxcvbn-ts/language-common';
import { ProblemError } from '../../common/errors.js';

/** A tenant's rules for local passwords (`tenants.password_policy`; absent keys take the defaults). */
export interface PasswordPolicy {
  /** Fewest characters, 8–256. */
  minLength: number;
  /**
   * Least zxcvbn score, 0–4: 0 accepts anything long enough, 2 refuses what a guesser finds within
   * about 10^8 guesses (dictionary words, names, keyboard walks, dates, common passwords).
   */
  minStrength: number;
}

export const DEFAULT_PASSWORD_POLICY: PasswordPolicy = { minLength: 8, minStrength: 2 };
export const MAX_PASSWORD = 256;

/** The stored policy with the defaults filled in; a stored value out of range falls back to the default. */
export function passwordPolicyOf(stored: Record<string, unknown> | undefined): PasswordPolicy {
  const int = (v: unknown, lo: number, hi: number, dflt: number) =>
    typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi ? v : dflt;
  return {
    minLength: int(stored?.['minLength'], 8, MAX_PASSWORD, DEFAULT_PASSWORD_POLICY.minLength),
    minStrength: int(stored?.['minStrength'], 0, 4, DEFAULT_PASSWORD_POLICY.minStrength),
  };
}

const estimator = new ZxcvbnFactory({ dictionary, graphs: adjacencyGraphs });

/** zxcvbn's warning keys, said in a sentence (its own translations are a package of their own). */
const WARNINGS: Record<string, string> = {
  topTen: 'It is one of the most common passwords.',
  topHundred: 'It is one of the most common passwords.',
  common: 'It is one of the most common passwords.',
  similarToCommon: 'It is close to a common password.',
  userInputs: 'It contains your own name, username or address.',
  straightRow: 'It is a row of keys on the keyboard.',
  keyPattern: 'It is a keyboard pattern.',
  simpleRepeat: 'It repeats characters.',
  extendedRepeat: 'It repeats a pattern.',
  sequences: 'It is a sequence such as abc or 123.',
  recentYears: 'It contains a recent year.',
  dates: 'It contains a date.',
  wordByItself: 'A single word is easy to guess.',
  namesByThemselves: 'A name on its own is easy to guess.',
  commonNames: 'Common names are easy to guess.',
};

const SCORE_WORDS = ['very easy to guess', 'easy to guess', 'fairly easy to guess', 'hard to guess', 'very hard to guess'];

/**
 * Checks a new password against the tenant's policy: length, never the username or email, and a
 * strength estimate that also knows the user's own words (username, email, name). Throws the
 * `invalid-password` problem with a sentence a person can act on; never echoes the password.
 */
export async function assertPasswordAllowed(
  policy: PasswordPolicy,
  password: string,
  user: { username?: string | null; email?: string | null; displayName?: string | null },
): Promise<void> {
  if (password.length < policy.minLength || password.length > MAX_PASSWORD)
    throw new ProblemError({
      type: 'invalid-password',
      detail: `Passwords are ${policy.minLength}–${MAX_PASSWORD} characters.`,
    });
  // The first guess of anyone who knows the username (or the email, often the same thing).
  const lower = password.toLowerCase();
  if ((user.username && lower === user.username.toLowerCase()) || (user.email && lower === user.email.toLowerCase()))
    throw new ProblemError({
      type: 'invalid-password',
      title: 'Weak password',
      detail: 'The password must not be the username or the email address.',
    });
  if (policy.minStrength === 0) return;
  const own = [user.username, user.email, user.email?.split('@')[0], user.displayName].filter((w): w is string => !!w);
  const { score, feedback } = estimator.check(password, own);
  if (score < policy.minStrength)
    throw new ProblemError({
      type: 'invalid-password',
      title: 'Weak password',
      detail:
        `This password is ${SCORE_WORDS[score] ?? 'easy to guess'}. ` +
        (feedback.warning && WARNINGS[feedback.warning] ? `${WARNINGS[feedback.warning]} ` : '') +
        'Use a longer passphrase of several unrelated words.',
    });
}
