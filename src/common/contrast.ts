/**
 * WCAG 2.x contrast (https://www.w3.org/TR/WCAG21/#dfn-contrast-ratio): relative luminance of an
 * sRGB colour and the ratio between two. AA asks 4.5:1 for normal text. Pure; used when a tenant's
 * branding is saved (admin) and when its CSS is emitted (brand-css.ts).
 */

/** `#rrggbb`, either case: the only colour form branding accepts. */
export const HEX_COLOR = /^#[0-9a-fA-F]{6}$/;

/** WCAG 2.x AA for normal text (success criterion 1.4.3). */
export const AA_NORMAL_TEXT = 4.5;

const channel = (byte: number): number => {
  const c = byte / 255;
  // WCAG 2.x writes 0.03928 (from an old sRGB draft); 0.04045 is the sRGB standard's. No 8-bit value lies between them.
  return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
};

/** Relative luminance (0 black … 1 white) of `#rrggbb`. */
export function relativeLuminance(hex: string): number {
  if (!HEX_COLOR.test(hex)) throw new Error(`not a #rrggbb colour: ${JSON.stringify(hex)}`);
  const n = Number.parseInt(hex.slice(1), 16);
  return 0.2126 * channel((n >> 16) & 0xff) + 0.7152 * channel((n >> 8) & 0xff) + 0.0722 * channel(n & 0xff);
}

/** Contrast ratio of two `#rrggbb` colours, 1 … 21, the same whichever is the foreground. */
export function contrastRatio(a: string, b: string): number {
  const [l1, l2] = [relativeLuminance(a), relativeLuminance(b)].sort((x, y) => y - x) as [number, number];
  return (l1 + 0.05) / (l2 + 0.05);
}

/**
 * A ratio as people read it (`4.47:1`): truncated, not rounded, to two decimals, so a ratio that
 * fails is never shown as one that passes (4.499 is "4.49:1", not "4.50:1").
 */
export const formatRatio = (ratio: number): string => `${(Math.floor(ratio * 100 + 1e-9) / 100).toFixed(2).replace(/\.?0+$/, '')}:1`;
