import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AppConfig } from '../config/app-config.js';
import { ConfigError } from '../config/app-config.js';

export interface LoadedKek {
  key: Buffer;
  source: 'env' | 'file' | 'generated';
}

function decode(text: string, origin: string): Buffer {
  const key = Buffer.from(text.trim(), 'base64');
  if (key.length !== 32) throw new ConfigError(`${origin} must be 32 random bytes, base64-encoded (got ${key.length} bytes)`);
  return key;
}

/**
 * The key-encryption key comes from KEY_ENCRYPTION_KEY, or KEY_ENCRYPTION_KEY_FILE; outside
 * production, a missing one is generated under DATA_DIR (with a warning from the caller), so the
 * zero-configuration start works and keeps its keys across restarts.
 */
export function loadKeyEncryptionKey(config: AppConfig): LoadedKek {
  if (config.KEY_ENCRYPTION_KEY) return { key: decode(config.KEY_ENCRYPTION_KEY, 'KEY_ENCRYPTION_KEY'), source: 'env' };
  if (config.KEY_ENCRYPTION_KEY_FILE) {
    if (!existsSync(config.KEY_ENCRYPTION_KEY_FILE))
      throw new ConfigError(`KEY_ENCRYPTION_KEY_FILE: no file at ${config.KEY_ENCRYPTION_KEY_FILE}`);
    return { key: decode(readFileSync(config.KEY_ENCRYPTION_KEY_FILE, 'utf8'), 'KEY_ENCRYPTION_KEY_FILE'), source: 'file' };
  }
  if (config.isProduction) throw new ConfigError('KEY_ENCRYPTION_KEY or KEY_ENCRYPTION_KEY_FILE is required in production');
  mkdirSync(config.DATA_DIR, { recursive: true });
  const path = join(config.DATA_DIR, 'key-encryption-key');
  if (!existsSync(path)) {
    writeFileSync(path, randomBytes(32).toString('base64'), { mode: 0o600 });
    chmodSync(path, 0o600);
  }
  return { key: decode(readFileSync(path, 'utf8'), path), source: 'generated' };
}
