import { describe, expect, it } from 'vitest';
import { brandCss, labelOnPrimary } from './brand-css.js';
import { AA_NORMAL_TEXT, contrastRatio, formatRatio, relativeLuminance } from './contrast.js';

describe('WCAG 2.x contrast', () => {
  it('gives the known ratios: black on white 21:1, #767676 on white 4.54:1 (passes AA), #777777 on white 4.48:1 (fails)', () => {
    expect(contrastRatio('#000000', '#ffffff')).toBeCloseTo(21, 6);
    expect(contrastRatio('#767676', '#ffffff')).toBeCloseTo(4.54, 2);
    expect(contrastRatio('#767676', '#ffffff')).toBeGreaterThanOrEqual(AA_NORMAL_TEXT);
    expect(contrastRatio('#777777', '#ffffff')).toBeCloseTo(4.48, 2);
    expect(contrastRatio('#777777', '#ffffff')).toBeLessThan(AA_NORMAL_TEXT);
    expect(contrastRatio('#ffffff', '#ffffff')).toBe(1);
  });

  it('is symmetric and case-insensitive, with the relative luminance of the spec', () => {
    expect(contrastRatio('#FFFFFF', '#0000ff')).toBe(contrastRatio('#0000FF', '#ffffff'));
    expect(contrastRatio('#0000ff', '#ffffff')).toBeCloseTo(8.59, 2);
    expect(relativeLuminance('#ffffff')).toBe(1);
    expect(relativeLuminance('#000000')).toBe(0);
    expect(relativeLuminance('#ff0000')).toBeCloseTo(0.2126, 4);
    expect(relativeLuminance('#808080')).toBeCloseTo(0.2159, 4);
    expect(() => relativeLuminance('red')).toThrow(/#rrggbb/);
    expect(() => relativeLuminance('#fff')).toThrow(/#rrggbb/);
  });

  it('shows a ratio truncated, so a failing one never reads as passing', () => {
    expect(formatRatio(contrastRatio('#777777', '#ffffff'))).toBe('4.47:1');
    expect(formatRatio(4.4999)).toBe('4.49:1');
    expect(formatRatio(contrastRatio('#000000', '#ffffff'))).toBe('21:1');
    expect(formatRatio(2.1)).toBe('2.1:1');
  });
});

describe('brandCss', () => {
  it('is empty for a brand without colours (the service look stays)', () => {
    expect(brandCss({ displayName: 'Acme' })).toBe('');
    expect(brandCss({ displayName: 'Acme', colors: {} })).toBe('');
  });

  it('sets custom properties for the colours and applies them to background, text, buttons and links', () => {
    const css = brandCss({ displayName: 'Acme', colors: { primary: '#1A73E8', background: '#ffffff', text: '#202124' } });
    expect(css).toContain('--brand-primary:#1a73e8');
    expect(css).toContain('--brand-on-primary:#ffffff');
    expect(css).toContain('--brand-background:#ffffff');
    expect(css).toContain('--brand-text:#202124');
    expect(css).toContain('--brand-link:#1a73e8');
    expect(css).toContain('body,main{background:var(--brand-background);color:var(--brand-text)}');
    expect(css).toContain('button{background:var(--brand-primary);color:var(--brand-on-primary)');
    expect(css).toContain('a{color:var(--brand-link)');
  });

  it('labels a light primary with the text colour, and links in the text colour when the primary does not read on the background', () => {
    expect(labelOnPrimary('#ffd400', '#000000')).toBe('#000000');
    const css = brandCss({ displayName: 'Acme', colors: { primary: '#ffd400' } });
    expect(css).toContain('--brand-on-primary:#000000');
    expect(css).toContain('--brand-link:#000000');
    expect(css).toContain('--brand-background:#ffffff');
    // Only the primary is set: the page keeps its own background and text.
    expect(css).not.toContain('body,main');
    expect(css).not.toContain('.error');
  });

  it('keeps error texts readable on a dark background', () => {
    const css = brandCss({ displayName: 'Night', colors: { background: '#101820', text: '#f0f0f0' } });
    expect(css).toContain('body,main{background:var(--brand-background);color:var(--brand-text)}');
    expect(css).toContain('.error{color:var(--brand-text);font-weight:bold}');
  });

  it('re-checks every colour: anything but #rrggbb is left out, so nothing else reaches the CSS', () => {
    const css = brandCss({
      displayName: 'x',
      colors: { primary: 'red;}</style><script>alert(1)</script>', background: '#000000', text: 'url(https://evil.example/)' },
    });
    expect(css).not.toMatch(/script|evil|red|<|url\(/);
    expect(css).toContain('--brand-background:#000000');
    expect(css).toContain('--brand-text:#000000'); // the default: the bad value is dropped
    expect(css).not.toContain('--brand-primary');
    expect(css.replace(/#[0-9a-f]{6}/g, '')).not.toMatch(/[0-9]{3}/);
  });
});
