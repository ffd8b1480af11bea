import { DEFAULT_LOCALE, isMessageKey, translate, translateAll, type LocalText, type Locale } from '../i18n/index.js';
import { ProblemError } from './errors.js';
import { PROBLEM_TYPE_PREFIX } from './problem-types.js';

/**
 * What a hosted page says about an error, in `lang` (ADR 0021): the occurrence's own catalogue
 * texts when it carries them; in English, its message as it is; in another language, the text the
 * catalogue has for its problem type (`problem.<slug>`), else the message as it is.
 */
export function pageMessageOf(error: { message: string; text?: readonly LocalText[] }, lang: Locale = DEFAULT_LOCALE): string {
  if (error.text && error.text.length > 0) return translateAll(lang, error.text);
  if (lang === DEFAULT_LOCALE || !(error instanceof ProblemError) || !error.type.startsWith(PROBLEM_TYPE_PREFIX)) return error.message;
  const key = `problem.${error.type.slice(PROBLEM_TYPE_PREFIX.length)}`;
  return isMessageKey(key) ? translate(lang, key, { seconds: error.retryAfter ?? 60 }) : error.message;
}
