import { isUtf8 } from 'node:buffer';
import type { NextFunction, Request, Response } from 'express';
import { InvalidCharactersError } from './errors.js';

/**
 * The one input check every route gets, before routing: no U+0000, no invalid UTF-8, no unpaired
 * surrogate in the URL (path and query, percent-decoded), in Basic credentials, or in a parsed body
 * (keys and values, at any depth). PostgreSQL refuses U+0000 outright (a 500 at whichever query
 * first sees it), and the parsers hide broken bytes instead of refusing them: Express's query
 * parser turns `%FF` into U+FFFD, qs leaves `%C3%28` as the literal text, iconv replaces invalid
 * UTF-8 in a JSON body, and JSON.parse builds lone surrogates from `"\ud800"`. So the encoded
 * forms are checked as bytes here, and the parsed values as strings. The refusal is an
 * InvalidCharactersError that the global filter renders in the route family's format.
 *
 * Header values need no check of their own: Node refuses control characters in them and decodes
 * the rest as latin1, which PostgreSQL stores. The JWKS fast path answers one exact URL only and
 * reads no header, so a request carrying anything to refuse reaches this middleware.
 */

type Flaw = 'U+0000' | 'invalid UTF-8' | 'an unpaired UTF-16 surrogate';

const hexValue = (b: number): number =>
  b >= 0x30 && b <= 0x39 ? b - 0x30 : b >= 0x41 && b <= 0x46 ? b - 0x37 : b >= 0x61 && b <= 0x66 ? b - 0x57 : -1;

/** `%XX` escapes to their bytes; a `%` not followed by two hex digits stays as it is (as the parsers keep it). */
function percentDecode(bytes: Buffer): Buffer {
  if (!bytes.includes(0x25)) return bytes;
  const out = Buffer.allocUnsafe(bytes.length);
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    const hi = bytes[i] === 0x25 && i + 2 < bytes.length ? hexValue(bytes[i + 1]!) : -1;
    const lo = hi >= 0 ? hexValue(bytes[i + 2]!) : -1;
    if (lo >= 0) {
      out[n++] = hi * 16 + lo;
      i += 2;
    } else out[n++] = bytes[i]!;
  }
  return out.subarray(0, n);
}

/**
 * Flaw of percent-encoded text, raw and decoded. Strict UTF-8 also refuses encoded surrogates
 * (`%ED%A0%80`), so no separate surrogate test is needed for bytes.
 */
function flawOfEncoded(bytes: Buffer): Flaw | undefined {
  const decoded = percentDecode(bytes);
  if (!isUtf8(bytes) || !isUtf8(decoded)) return 'invalid UTF-8';
  if (decoded.includes(0)) return 'U+0000';
  return undefined;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function flawOfString(s: string): Flaw | undefined {
  if (s.includes('\u0000')) return 'U+0000';
  if (LONE_SURROGATE.test(s)) return 'an unpaired UTF-16 surrogate';
  return undefined;
}

interface Frame {
  value: unknown;
  parent?: Frame;
  key?: string;
}

/** RFC 6901 pointer to a frame: names the attribute for the client, never its value. */
function pointer(frame: Frame | undefined): string {
  const keys: string[] = [];
  for (let f = frame; f?.key !== undefined; f = f.parent) keys.push(f.key.replace(/~/g, '~0').replace(/\//g, '~1'));
  const p = keys
    .reverse()
    .map((k) => `/${k}`)
    .join('');
  return p.length > 200 ? `${p.slice(0, 200)}…` : p;
}

/**
 * Walks a parsed body without recursion: a 256 kB JSON body can nest about 100,000 levels deep,
 * which would overflow the stack (a 500) if walked recursively.
 */
function flawInBody(body: unknown): { flaw: Flaw; where: string } | undefined {
  const stack: Frame[] = [{ value: body }];
  for (let frame = stack.pop(); frame; frame = stack.pop()) {
    const { value } = frame;
    if (typeof value === 'string') {
      const flaw = flawOfString(value);
      if (flaw) return { flaw, where: frame.key === undefined ? 'request body' : `request body at ${pointer(frame)}` };
    } else if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) stack.push({ value: value[i], parent: frame, key: String(i) });
    } else if (typeof value === 'object' && value !== null) {
      for (const [key, v] of Object.entries(value)) {
        const flaw = flawOfString(key);
        if (flaw) return { flaw, where: `name of a member of the request body${frame.key === undefined ? '' : ` at ${pointer(frame)}`}` };
        stack.push({ value: v, parent: frame, key });
      }
    }
  }
  return undefined;
}

const charsetOf = (req: Request): string => /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(req.headers['content-type'] ?? '')?.[1] ?? 'utf-8';

/**
 * The raw body a parser read (Nest keeps it as `rawBody`, see bootstrap.ts) must be UTF-8 when it
 * says it is, as must a form's percent-decoded bytes: the JSON decoder replaces broken sequences
 * silently, and qs keeps `%FF` as literal text. A form's `%00` decodes fine and is found, with
 * its field, in the parsed body.
 */
function rawBodyIsUtf8(req: Request & { rawBody?: Buffer }): boolean {
  if (!req.rawBody || !/^utf-?8$/i.test(charsetOf(req))) return true;
  return req.is('application/x-www-form-urlencoded') ? flawOfEncoded(req.rawBody) !== 'invalid UTF-8' : isUtf8(req.rawBody);
}

function findInvalidInput(req: Request): InvalidCharactersError | undefined {
  const url = req.originalUrl;
  const q = url.indexOf('?');
  // Node refuses raw non-ASCII and control bytes in the request target: only escapes can carry them.
  const pathFlaw = flawOfEncoded(Buffer.from(q < 0 ? url : url.slice(0, q), 'latin1'));
  if (pathFlaw) return new InvalidCharactersError('URL path', pathFlaw);
  const queryFlaw = q < 0 ? undefined : flawOfEncoded(Buffer.from(url.slice(q + 1), 'latin1'));
  if (queryFlaw) return new InvalidCharactersError('query string', queryFlaw);
  // client_secret_basic is form-urlencoded inside base64 (RFC 6749 §2.3.1): both layers are checked.
  const authorization = req.headers.authorization;
  if (authorization && /^basic /i.test(authorization)) {
    const basicFlaw = flawOfEncoded(Buffer.from(authorization.slice(6).trim(), 'base64'));
    if (basicFlaw) return new InvalidCharactersError('Basic credentials', basicFlaw);
  }
  // A binary body (the logo upload's raw parser, bootstrap.ts) is bytes, not text: its route checks it.
  if (Buffer.isBuffer(req.body)) return undefined;
  if (!rawBodyIsUtf8(req)) return new InvalidCharactersError('request body', 'invalid UTF-8');
  const inBody = flawInBody(req.body);
  return inBody && new InvalidCharactersError(inBody.where, inBody.flaw);
}

/** Installed after the body parsers (created with `rawBody: true`) and before the routes (bootstrap.ts). */
export function inputGuardMiddleware(req: Request, _res: Response, next: NextFunction): void {
  const refused = findInvalidInput(req);
  if (refused) next(refused);
  else next();
}
