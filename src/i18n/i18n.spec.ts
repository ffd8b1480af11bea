import { describe, expect, it } from 'vitest';
import { emailVerificationMail, invitationMail, passwordResetMail } from '../mail/templates.js';
import { acceptedLocales, LOCALES, negotiateLocale, normaliseUiLocales } from './locales.js';
import { CATALOGUES, formatDuration, translate } from './messages.js';

const placeholders = (text: string) => [...text.matchAll(/\{([A-Za-z][A-Za-z0-9]*)\}/g)].map((m) => m[1]).sort();

describe('the message catalogues', () => {
  const english = CATALOGUES.en;
  for (const lang of LOCALES) {
    it(`${lang}: exactly the keys of English, no empty text, the same placeholders`, () => {
      const catalogue = CATALOGUES[lang];
      expect(Object.keys(catalogue).sort()).toEqual(Object.keys(english).sort());
      for (const [key, text] of Object.entries(catalogue)) {
        expect(text.trim(), `${lang} ${key}`).not.toBe('');
        expect(text, `${lang} ${key}`).toBe(text.trim());
        expect(placeholders(text), `${lang} ${key}`).toEqual(placeholders(english[key as keyof typeof english]));
        // Plain text: markup belongs to the renderer, which escapes every text.
        expect(text, `${lang} ${key}`).not.toMatch(/[<>]/);
      }
    });
  }

  it('translates every non-English text (a copied English text is a forgotten translation)', () => {
    // Texts that are the same word in a language, on purpose.
    const same = new Set(['mfa.code', 'error.status', 'error.returnSentence', 'mail.actionLine']);
    for (const lang of LOCALES.filter((l) => l !== 'en'))
      for (const [key, text] of Object.entries(CATALOGUES[lang]))
        if (!same.has(key) && !(lang === 'fr' && key === 'mfa.code'))
          expect(text, `${lang} ${key}`).not.toBe(english[key as keyof typeof english]);
  });

  it('formats numbers and durations for the language', () => {
    expect(translate('en', 'passkey.limit', { max: 1000 })).toBe('An account can have at most 1,000 passkeys. Remove one first.');
    expect(translate('de', 'passkey.limit', { max: 1000 })).toContain('höchstens 1.000 Passkeys');
    expect(formatDuration('en', 7 * 1440)).toBe('7 days');
    expect(formatDuration('en', 60)).toBe('1 hour');
    expect(formatDuration('en', 90)).toBe('90 minutes');
    expect(formatDuration('de', 60)).toBe('1 Stunde');
    expect(formatDuration('fr', 2 * 1440).replace(/\s/g, ' ')).toBe('2 jours');
    expect(formatDuration('es', 90)).toBe('90 minutos');
  });
});

describe('choosing the language', () => {
  it('ranks Accept-Language by quality, then by order, skipping what is malformed or unshipped', () => {
    expect(acceptedLocales('de-DE,de;q=0.9,en;q=0.8')).toEqual(['de', 'en']);
    expect(acceptedLocales('en;q=0.1, fr;q=0.8, de;q=0.5')).toEqual(['fr', 'de', 'en']);
    expect(acceptedLocales('fr;q=0, es')).toEqual(['es']);
    expect(acceptedLocales('de;q=abc, fr;q=1.0')).toEqual(['fr']);
    expect(acceptedLocales('ja, *;q=0.1')).toEqual([]);
    expect(acceptedLocales(undefined)).toEqual([]);
    expect(acceptedLocales('ES-mx')).toEqual(['es']);
  });

  it('takes ui_locales, then Accept-Language, then the tenant default, then English', () => {
    expect(negotiateLocale({ uiLocales: 'fr', acceptLanguage: 'de', tenantDefault: 'es' })).toBe('fr');
    expect(negotiateLocale({ uiLocales: 'ja', acceptLanguage: 'de', tenantDefault: 'es' })).toBe('de');
    expect(negotiateLocale({ acceptLanguage: 'ja', tenantDefault: 'es' })).toBe('es');
    expect(negotiateLocale({ acceptLanguage: 'ja', tenantDefault: 'xx' })).toBe('en');
    expect(negotiateLocale({})).toBe('en');
  });

  it('keeps of ui_locales only well-formed tags, at most ten', () => {
    expect(normaliseUiLocales(' fr-CA  en ')).toBe('fr-CA en');
    expect(normaliseUiLocales('<b> de')).toBe('de');
    expect(normaliseUiLocales('')).toBeNull();
    expect(normaliseUiLocales(undefined)).toBeNull();
    expect(normaliseUiLocales(Array.from({ length: 20 }, () => 'de').join(' '))?.split(' ')).toHaveLength(10);
  });
});

describe('the account mails', () => {
  const input = { tenantName: 'Acme', link: 'https://auth.example/account/password/ak_x', expiresInMinutes: 60 };

  it('are English by default, as before', () => {
    const m = invitationMail(input);
    expect(m.subject).toBe('You are invited to Acme');
    expect(m.text).toBe(
      'You have been invited to join Acme.\n\nAccept the invitation:\nhttps://auth.example/account/password/ak_x\n\nThe link works for 1 hour. If you did not expect this invitation, ignore this message.\n',
    );
  });

  it("speak the tenant's default language", () => {
    expect(invitationMail({ ...input, lang: 'de' }).subject).toBe('Einladung zu Acme');
    const fr = passwordResetMail({ ...input, lang: 'fr' }).text.replace(/\s/g, ' ');
    expect(fr).toContain('Choisir un nouveau mot de passe :');
    expect(fr).toContain('Le lien est valable 1 heure.');
    const es = emailVerificationMail({ ...input, lang: 'es', tenantName: 'A & B' });
    expect(es.html).toContain('<html lang="es">');
    expect(es.html).toContain('Confirme que esta es su dirección de correo electrónico para A &amp; B.');
  });
});
