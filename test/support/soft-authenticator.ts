/**
 * A WebAuthn authenticator in software, for the HTTP-level passkey tests: it answers the options a
 * hosted page carries with the registration and assertion responses a browser would post (the
 * W3C WebAuthn Level 2 formats: CBOR attestation object with the `none` format, COSE ES256 key,
 * authenticator data, client data JSON, an ECDSA P-256 signature). It exists because a test must
 * also send what no honest browser sends (another origin or RP ID, a stale counter, no user
 * verification, a credential of another user); the browser tests use Chromium's virtual
 * authenticator for the honest path.
 */
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';

type Cbor = number | string | Uint8Array | CborMap | { [key: string]: Cbor };
type CborMap = Map<Cbor, Cbor>;

function head(major: number, n: number): Buffer {
  if (n < 24) return Buffer.from([(major << 5) | n]);
  if (n < 0x100) return Buffer.from([(major << 5) | 24, n]);
  if (n < 0x10000) return Buffer.from([(major << 5) | 25, n >> 8, n & 0xff]);
  const b = Buffer.alloc(5);
  b[0] = (major << 5) | 26;
  b.writeUInt32BE(n, 1);
  return b;
}

/** The subset of CBOR (RFC 8949) WebAuthn needs: integers, byte and text strings, maps. */
function cbor(v: Cbor): Buffer {
  if (typeof v === 'number') return v >= 0 ? head(0, v) : head(1, -1 - v);
  if (typeof v === 'string') return Buffer.concat([head(3, Buffer.byteLength(v)), Buffer.from(v)]);
  if (v instanceof Uint8Array) return Buffer.concat([head(2, v.length), Buffer.from(v)]);
  const entries = v instanceof Map ? [...v.entries()] : Object.entries(v);
  return Buffer.concat([head(5, entries.length), ...entries.flatMap(([k, x]) => [cbor(k), cbor(x)])]);
}

const b64u = (b: Uint8Array) => Buffer.from(b).toString('base64url');
const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest();

export interface SoftCredential {
  id: Buffer;
  key: KeyObject;
  userHandle: string;
  counter: number;
  /** A synced passkey (backup eligible and backed up) or a device-bound one. */
  synced: boolean;
}

export interface Ceremony {
  origin?: string;
  rpId?: string;
  userVerified?: boolean;
  /** The counter to sign with (default: one more than the last). */
  counter?: number;
  /** The user handle to report (default: the credential's own). */
  userHandle?: string | null;
}

interface CreationOptions {
  challenge: string;
  rp: { id?: string };
  user: { id: string };
}
interface RequestOptions {
  challenge: string;
  rpId?: string;
}

export class SoftAuthenticator {
  readonly credentials: SoftCredential[] = [];

  constructor(
    private readonly origin: string,
    private readonly rpId: string,
  ) {}

  private flags(c: { synced: boolean }, uv: boolean, attested: boolean): number {
    return 0x01 | (uv ? 0x04 : 0) | (c.synced ? 0x08 | 0x10 : 0) | (attested ? 0x40 : 0);
  }

  private clientData(type: string, challenge: string, origin: string): Buffer {
    return Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false }));
  }

  /** Answers `navigator.credentials.create()` with a new credential. */
  register(
    options: CreationOptions,
    o: Ceremony & { synced?: boolean } = {},
  ): { response: Record<string, unknown>; credential: SoftCredential } {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = publicKey.export({ format: 'jwk' });
    const coseKey = new Map<Cbor, Cbor>([
      [1, 2],
      [3, -7],
      [-1, 1],
      [-2, Buffer.from(jwk.x!, 'base64url')],
      [-3, Buffer.from(jwk.y!, 'base64url')],
    ]);
    const credential: SoftCredential = {
      id: randomBytes(32),
      key: privateKey,
      userHandle: options.user.id,
      counter: 0,
      synced: o.synced ?? false,
    };
    const counter = Buffer.alloc(4);
    const idLength = Buffer.alloc(2);
    idLength.writeUInt16BE(credential.id.length);
    const authData = Buffer.concat([
      sha256(o.rpId ?? options.rp.id ?? this.rpId),
      Buffer.from([this.flags(credential, o.userVerified ?? true, true)]),
      counter,
      Buffer.alloc(16),
      idLength,
      credential.id,
      cbor(coseKey),
    ]);
    const attestationObject = cbor({ fmt: 'none', attStmt: {}, authData });
    this.credentials.push(credential);
    return {
      credential,
      response: {
        id: b64u(credential.id),
        rawId: b64u(credential.id),
        type: 'public-key',
        authenticatorAttachment: 'platform',
        clientExtensionResults: {},
        response: {
          clientDataJSON: b64u(this.clientData('webauthn.create', options.challenge, o.origin ?? this.origin)),
          attestationObject: b64u(attestationObject),
          transports: ['internal'],
        },
      },
    };
  }

  /** Answers `navigator.credentials.get()` with `credential` (default: the last registered). */
  assert(options: RequestOptions, credential = this.credentials.at(-1)!, o: Ceremony = {}): Record<string, unknown> {
    credential.counter = o.counter ?? credential.counter + 1;
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(credential.counter);
    const authData = Buffer.concat([
      sha256(o.rpId ?? options.rpId ?? this.rpId),
      Buffer.from([this.flags(credential, o.userVerified ?? true, false)]),
      counter,
    ]);
    const clientDataJSON = this.clientData('webauthn.get', options.challenge, o.origin ?? this.origin);
    const signature = sign('sha256', Buffer.concat([authData, sha256(clientDataJSON)]), credential.key);
    const userHandle = o.userHandle === undefined ? credential.userHandle : o.userHandle;
    return {
      id: b64u(credential.id),
      rawId: b64u(credential.id),
      type: 'public-key',
      authenticatorAttachment: 'platform',
      clientExtensionResults: {},
      response: {
        clientDataJSON: b64u(clientDataJSON),
        authenticatorData: b64u(authData),
        signature: b64u(signature),
        ...(userHandle === null ? {} : { userHandle }),
      },
    };
  }
}

/** The WebAuthn options a hosted page's passkey form carries (its `data-options`), or undefined. */
export function passkeyOptionsOn(html: string): unknown {
  const raw = /data-options="([^"]*)"/.exec(html)?.[1];
  if (raw === undefined) return undefined;
  const text = raw
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
  return JSON.parse(text);
}
