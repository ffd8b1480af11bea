import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

const VERSION = 1;

/**
 * AES-256-GCM under the key-encryption key. The associated data names what the ciphertext
 * belongs to (e.g. `signing_key:<kid>`), so a ciphertext copied into another row fails to open.
 * Layout: version(1) | iv(12) | tag(16) | ciphertext.
 */
export class SecretBox {
  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new Error('The key-encryption key must be 32 bytes');
  }

  seal(plaintext: Buffer | string, context: string): Buffer {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(context));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([Buffer.from([VERSION]), iv, cipher.getAuthTag(), body]);
  }

  open(sealed: Buffer, context: string): Buffer {
    if (sealed.length < 29 || sealed[0] !== VERSION) throw new Error('Unsupported sealed secret');
    const decipher = createDecipheriv('aes-256-gcm', this.key, sealed.subarray(1, 13));
    decipher.setAAD(Buffer.from(context));
    decipher.setAuthTag(sealed.subarray(13, 29));
    try {
      return Buffer.concat([decipher.update(sealed.subarray(29)), decipher.final()]);
    } catch (err) {
      // GCM's "unable to authenticate data": almost always the wrong key-encryption key for this database.
      throw new Error(
        `A stored secret (${context.split(':')[0]}) does not open with this key-encryption key: KEY_ENCRYPTION_KEY (or KEY_ENCRYPTION_KEY_FILE) ` +
          'is not the key this database was sealed with, or the stored bytes were altered.',
        { cause: err },
      );
    }
  }

  /**
   * A 32-byte key for one purpose (HKDF-SHA256 over the key-encryption key, the purpose as info):
   * the key-encryption key itself only ever encrypts, and each purpose's key is independent of the
   * others. The same on every replica, since they share the key-encryption key.
   */
  deriveKey(purpose: string): Buffer {
    return Buffer.from(hkdfSync('sha256', this.key, Buffer.alloc(0), `auth-service:${purpose}`, 32));
  }

  sealJson(value: unknown, context: string): Buffer {
    return this.seal(JSON.stringify(value), context);
  }

  openJson<T>(sealed: Buffer, context: string): T {
    return JSON.parse(this.open(sealed, context).toString('utf8')) as T;
  }
}
