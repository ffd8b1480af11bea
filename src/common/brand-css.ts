import type { Brand } from './brand.js';
import { AA_NORMAL_TEXT, HEX_COLOR, contrastRatio } from './contrast.js';

/**
 * The colours a page has where a brand sets none: the card of the service's own look (html.ts) is
 * white with the browser's black text. The contrast check on save (admin branding) checks the
 * colours a page will really show, so a brand that sets only a text colour is checked on white.
 */
export const DEFAULT_BRAND_COLORS = { background: '#ffffff', text: '#000000' } as const;

const WHITE = '#ffffff';

/** A colour that is `#rrggbb`, lower-cased; anything else is dropped (nothing unchecked reaches CSS). */
const color = (value: string | undefined): string | undefined =>
  value !== undefined && HEX_COLOR.test(value) ? value.toLowerCase() : undefined;

/**
 * The button label on a primary colour: white, or the text colour when white reads worse. The
 * save check (≥ 4.5:1 for one of the two) makes the better one readable.
 */
export function labelOnPrimary(primary: string, text: string): string {
  return contrastRatio(WHITE, primary) >= contrastRatio(text, primary) ? WHITE : text;
}

/** The error red of the service's own look (html.ts `.error`). */
const ERROR_RED = '#b00020';

/**
 * The CSS the page renderer inlines for a brand (after its own style): custom properties for the
 * colours, applied to the page and card background, the text, the buttons and the links. Only the
 * colours the brand sets change the look; the others stay the service's own (and stand in for the
 * choices: a button label, the link colour). Links take the primary colour where it reads on the
 * background (≥ 4.5:1), else the text colour, and stay underlined; error texts keep their red only
 * where it reads on the background. Empty for a brand without colours. Every colour is checked again
 * here: a value that is not `#rrggbb` is left out, so the output is only the fixed rules below and
 * hex digits.
 */
export function brandCss(brand: Brand): string {
  const primary = color(brand.colors?.primary);
  const given = { background: color(brand.colors?.background), text: color(brand.colors?.text) };
  if (!primary && !given.background && !given.text) return '';
  const background = given.background ?? DEFAULT_BRAND_COLORS.background;
  const text = given.text ?? DEFAULT_BRAND_COLORS.text;
  const link = primary && contrastRatio(primary, background) >= AA_NORMAL_TEXT ? primary : text;
  const vars = [`--brand-background:${background}`, `--brand-text:${text}`, `--brand-link:${link}`];
  const page = [given.background ? 'background:var(--brand-background)' : '', given.text ? 'color:var(--brand-text)' : ''].filter(Boolean);
  const rules = [...(page.length ? [`body,main{${page.join(';')}}`] : []), 'a{color:var(--brand-link);text-decoration:underline}'];
  if (contrastRatio(ERROR_RED, background) < AA_NORMAL_TEXT) rules.push('.error{color:var(--brand-text);font-weight:bold}');
  if (primary) {
    vars.push(`--brand-primary:${primary}`, `--brand-on-primary:${labelOnPrimary(primary, text)}`);
    rules.push(
      'button{background:var(--brand-primary);color:var(--brand-on-primary);border:1px solid var(--brand-primary);border-radius:4px}',
      'button:focus-visible,a:focus-visible{outline:2px solid var(--brand-text);outline-offset:2px}',
    );
  }
  return `:root{${vars.join(';')}}${rules.join('')}`;
}
