import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import { adjacencyGraphs, dictionary } from '@zxcvbn-ts/language-common';
import { ProblemError } from '../../common/errors.js';
import { translateAll, type LocalText, type MessageKey } from '../../i18n/index.js';

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

/** zxcvbn's warning keys, said in a sentence of the catalogues (its own translations are a package of their own). */
const WARNINGS: Record<string, MessageKey> = {
  topTen: 'password.warning.common',
  topHundred: 'password.warning.common',
  common: 'password.warning.common',
  similarToCommon: 'password.warning.similarToCommon',
  userInputs: 'password.warning.userInputs',
  straightRow: 'password.warning.straightRow',
  keyPattern: 'password.warning.keyPattern',
  simpleRepeat: 'password.warning.simpleRepeat',
  extendedRepeat: 'password.warning.extendedRepeat',
  sequences: 'password.warning.sequences',
  recentYears: 'password.warning.recentYears',
  dates: 'password.warning.dates',
  wordByItself: 'password.warning.wordByItself',
  namesByThemselves: 'password.warning.namesByThemselves',
  commonNames: 'password.warning.commonNames',
};

/** The sentence of each zxcvbn score. */
const STRENGTH: readonly MessageKey[] = ['password.weak0', 'password.weak1', 'password.weak2', 'password.weak3', 'password.weak4'];

/** The `invalid-password` problem of these texts: the detail in English, the texts for the hosted pages. */
const refusal = (text: LocalText[], title?: string): ProblemError =>
  new ProblemError({ type: 'invalid-password', ...(title ? { title } : {}), detail: translateAll('en', text), text });

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
    throw refusal([{ key: 'password.length', params: { min: policy.minLength, max: MAX_PASSWORD } }]);
  // The first guess of anyone who knows the username (or the email, often the same thing).
  const lower = password.toLowerCase();
  if ((user.username && lower === user.username.toLowerCase()) || (user.email && lower === user.email.toLowerCase()))
    throw refusal([{ key: 'password.notUsername' }], 'Weak password');
  if (policy.minStrength === 0) return;
  const own = [user.username, user.email, user.email?.split('@')[0], user.displayName].filter((w): w is string => !!w);
  const { score, feedback } = estimator.check(password, own);
  if (score < policy.minStrength) {
    const warning = feedback.warning ? WARNINGS[feedback.warning] : undefined;
    throw refusal(
      [{ key: STRENGTH[score] ?? 'password.weak1' }, ...(warning ? [{ key: warning }] : []), { key: 'password.advice' }],
      'Weak password',
    );
  }
}
