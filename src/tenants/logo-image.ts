import { ProblemError } from '../common/errors.js';

/**
 * What a logo upload may be (issue #18, ADR 0022): PNG, JPEG or WebP, at most 256 KiB and
 * 2048×2048 pixels, its type told by its own first bytes (the declared Content-Type must agree).
 * SVG is refused: it is a document that can carry script and external references, not a picture.
 * Dimensions are read from the header only; nothing is decoded.
 */

export const LOGO_MAX_BYTES = 256 * 1024;
export const LOGO_MAX_PIXELS = 2048;
export const LOGO_TYPES = ['image/png', 'image/jpeg', 'image/webp'] as const;
export type LogoType = (typeof LOGO_TYPES)[number];
/** The file extension of the served URL, per type. */
export const LOGO_EXTENSIONS: Record<LogoType, string> = { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/webp': 'webp' };

export interface LogoImage {
  contentType: LogoType;
  width: number;
  height: number;
}

const refuse = (detail: string) => new ProblemError({ type: 'logo-invalid', detail: `logo: ${detail}`, extensions: { field: 'logo' } });

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function png(b: Buffer): { width: number; height: number } | undefined {
  // The IHDR chunk comes first: length 13, type, then width and height (big-endian).
  if (b.length < 24 || b.toString('latin1', 12, 16) !== 'IHDR') return undefined;
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
}

/** The frame header (SOF0–SOF15 but DHT, JPG and DAC) after the segments before it. */
function jpeg(b: Buffer): { width: number; height: number } | undefined {
  let i = 2;
  while (i + 3 < b.length) {
    if (b[i] !== 0xff) return undefined;
    const marker = b[i + 1] ?? 0;
    if (marker === 0xff) {
      i += 1; // fill byte
      continue;
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      i += 2; // no length
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) return undefined; // end of image or scan before any frame header
    const length = b.readUInt16BE(i + 2);
    if (length < 2) return undefined;
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (i + 9 > b.length) return undefined;
      return { height: b.readUInt16BE(i + 5), width: b.readUInt16BE(i + 7) };
    }
    i += 2 + length;
  }
  return undefined;
}

function webp(b: Buffer): { width: number; height: number } | undefined {
  if (b.length < 30) return undefined;
  const chunk = b.toString('latin1', 12, 16);
  if (chunk === 'VP8X') return { width: b.readUIntLE(24, 3) + 1, height: b.readUIntLE(27, 3) + 1 };
  if (chunk === 'VP8 ') {
    if (b[23] !== 0x9d || b[24] !== 0x01 || b[25] !== 0x2a) return undefined;
    return { width: b.readUInt16LE(26) & 0x3fff, height: b.readUInt16LE(28) & 0x3fff };
  }
  if (chunk === 'VP8L') {
    if (b[20] !== 0x2f) return undefined;
    const bits = b.readUInt32LE(21);
    return { width: (bits & 0x3fff) + 1, height: ((bits >> 14) & 0x3fff) + 1 };
  }
  return undefined;
}

/** The type told by the bytes, or undefined for anything but the three accepted. */
function sniff(b: Buffer): LogoType | undefined {
  if (b.subarray(0, 8).equals(PNG_SIGNATURE)) return 'image/png';
  if (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'image/jpeg';
  if (b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP') return 'image/webp';
  return undefined;
}

const looksLikeSvg = (b: Buffer): boolean => /<svg[\s>]|<\?xml|<!doctype\s+svg/i.test(b.toString('utf8', 0, Math.min(b.length, 4096)));

/** The declared media type without parameters, lower-cased (`image/PNG; x=y` → `image/png`). */
const mediaType = (header: string | undefined): string => (header ?? '').split(';', 1)[0]?.trim().toLowerCase() ?? '';

/**
 * The logo's type and dimensions (with its bytes), or a 422 naming `logo` that says what is wrong
 * with it. `bytes` is undefined when the body was not read as an image (another Content-Type).
 */
export function inspectLogo(bytes: Buffer | undefined, declaredContentType: string | undefined): LogoImage & { bytes: Buffer } {
  const declared = mediaType(declaredContentType);
  if (!bytes)
    throw refuse(
      `send the image file as the request body, with Content-Type ${LOGO_TYPES.join(', ')} (${declared ? `not ${declared}` : 'none was sent'}).`,
    );
  if (bytes.length === 0) throw refuse('the body is empty: send the image file as the request body.');
  if (bytes.length > LOGO_MAX_BYTES) throw refuse(`${bytes.length} bytes; at most ${LOGO_MAX_BYTES} (256 KiB).`);
  if (declared === 'image/svg+xml' || looksLikeSvg(bytes))
    throw refuse('SVG is not accepted (it can carry script and external references); send PNG, JPEG or WebP.');
  const actual = sniff(bytes);
  if (!actual) throw refuse('not a PNG, JPEG or WebP image.');
  if (declared !== actual) throw refuse(`the Content-Type says ${declared || 'nothing'}, the bytes are ${actual}.`);
  const size = actual === 'image/png' ? png(bytes) : actual === 'image/jpeg' ? jpeg(bytes) : webp(bytes);
  if (!size || size.width < 1 || size.height < 1) throw refuse(`the ${actual} header is damaged: its dimensions cannot be read.`);
  if (size.width > LOGO_MAX_PIXELS || size.height > LOGO_MAX_PIXELS)
    throw refuse(`${size.width}×${size.height} pixels; at most ${LOGO_MAX_PIXELS}×${LOGO_MAX_PIXELS}.`);
  return { contentType: actual, ...size, bytes };
}
