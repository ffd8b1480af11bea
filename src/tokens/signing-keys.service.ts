import { createHash } from 'node:crypto';
import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { calculateJwkThumbprint, exportJWK, exportPKCS8, generateKeyPair, importPKCS8, type JWK, type CryptoKey } from 'jose';
import { AppConfig } from '../config/app-config.js';
import { Database } from '../database/database.js';
import { SecretBox } from '../crypto/secret-box.js';
import { MetricsService } from '../metrics/metrics.service.js';

export type KeyStatus = 'pending' | 'active' | 'retired' | 'expired';

interface KeyRow {
  kid: string;
  public_jwk: JWK;
  private_key: Buffer | null;
  status: KeyStatus;
  activates_at: Date;
  activated_at: Date | null;
  retired_at: Date | null;
  expires_at: Date | null;
  created_at: Date;
}

export interface SigningKeyView {
  kid: string;
  status: KeyStatus;
  createdAt: Date;
  activatesAt: Date;
  activatedAt: Date | null;
  retiredAt: Date | null;
  expiresAt: Date | null;
}

export interface ActiveSigner {
  kid: string;
  key: CryptoKey;
}

const ADVISORY_LOCK = 0x6b65_7973; // 'keys'
const keyContext = (kid: string) => `signing_key:${kid}`;

/**
 * RS256 signing keys: pending → active → retired → expired.
 * - A pending key is published in the JWKS for KEY_PUBLISH_DELAY_SECONDS before it signs anything,
 *   so gateways that cache the JWKS already know it when the first token signed with it arrives.
 * - A retired key stays published until the last token it signed has expired (TTL + clock skew).
 * Every replica reloads the key set from the database every few seconds; only the replica holding
 * the advisory lock performs transitions, so replicas never disagree on which key is active for long.
 */
@Injectable()
export class SigningKeysService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(SigningKeysService.name);
  private signer?: ActiveSigner;
  private jwks: { body: string; etag: string; keys: JWK[] } = { body: '{"keys":[]}', etag: '"0"', keys: [] };
  private timer?: NodeJS.Timeout;
  private readonly privateKeyCache = new Map<string, CryptoKey>();

  constructor(
    private readonly db: Database,
    private readonly box: SecretBox,
    @Inject(AppConfig) private readonly config: AppConfig,
    metrics: MetricsService,
  ) {
    metrics.observeSigningKeys({ publishedKeys: () => this.jwksDocument().keys.length, hasActiveKey: () => this.hasActiveKey() });
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.maintain();
    this.timer = setInterval(() => {
      this.maintain().catch((err: unknown) => this.logger.warn({ err }, 'signing key maintenance failed'));
    }, 5_000);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** The key that signs right now; throws if none (readiness reports it). */
  currentSigner(): ActiveSigner {
    if (!this.signer) throw new Error('No active signing key');
    return this.signer;
  }

  hasActiveKey(): boolean {
    return this.signer !== undefined;
  }

  jwksDocument(): { body: string; etag: string; keys: JWK[] } {
    return this.jwks;
  }

  /** Applies due transitions (under an advisory lock) and reloads this replica's view. */
  async maintain(now = new Date()): Promise<void> {
    await this.db.tx(async (m) => {
      const [{ locked }] = await m.query<[{ locked: boolean }]>('SELECT pg_try_advisory_xact_lock($1) AS locked', [ADVISORY_LOCK]);
      if (!locked) return;
      const active = await m.query<
        Array<{
          kid: string;
          activated_at: Date;
        }>
      >(`SELECT kid, activated_at FROM signing_keys WHERE status = 'active'`);
      const due = await m.query<Array<{ kid: string }>>(
        `SELECT kid FROM signing_keys WHERE status = 'pending' AND activates_at <= $1 ORDER BY activates_at DESC LIMIT 1`,
        [now],
      );
      if (due[0]) {
        await this.activate(m, due[0].kid, now);
      } else if (active.length === 0) {
        const pending = await m.query<
          Array<{
            kid: string;
          }>
        >(`SELECT kid FROM signing_keys WHERE status = 'pending' ORDER BY activates_at LIMIT 1`);
        // First start (or every key lost): nothing can sign, so there is nothing to wait for.
        const kid = pending[0]?.kid ?? (await this.insertKey(m, 'pending', now));
        await this.activate(m, kid, now);
        this.logger.log({ kid }, 'created the first signing key');
      } else if (this.config.KEY_ROTATION_INTERVAL_SECONDS > 0) {
        const age = (now.getTime() - new Date(active[0]!.activated_at).getTime()) / 1000;
        const [{ n }] = await m.query<[{ n: number }]>(`SELECT count(*)::int AS n FROM signing_keys WHERE status = 'pending'`);
        if (n === 0 && age >= this.config.KEY_ROTATION_INTERVAL_SECONDS) {
          const kid = await this.insertKey(m, 'pending', new Date(now.getTime() + this.config.KEY_PUBLISH_DELAY_SECONDS * 1000));
          this.logger.log({ kid }, 'scheduled rotation: new signing key published, pending activation');
        }
      }
      await m.query(`UPDATE signing_keys SET status = 'expired', private_key = NULL WHERE status = 'retired' AND expires_at <= $1`, [now]);
    });
    await this.reload();
  }

  /**
   * Publishes a new key now; it starts signing after `publishDelaySeconds` (default
   * KEY_PUBLISH_DELAY_SECONDS). With 0 it signs at once — only safe for validators that refresh
   * their JWKS on an unknown `kid`.
   */
  async rotate(publishDelaySeconds = this.config.KEY_PUBLISH_DELAY_SECONDS, now = new Date()): Promise<SigningKeyView> {
    const kid = await this.db.tx(async (m) => {
      await m.query('SELECT pg_advisory_xact_lock($1)', [ADVISORY_LOCK]);
      // A newer rotation replaces a pending key that never signed anything.
      await m.query(`UPDATE signing_keys SET status = 'expired', private_key = NULL WHERE status = 'pending'`);
      const id = await this.insertKey(m, 'pending', new Date(now.getTime() + publishDelaySeconds * 1000));
      if (publishDelaySeconds === 0) await this.activate(m, id, now);
      return id;
    });
    await this.reload();
    return (await this.list()).find((k) => k.kid === kid)!;
  }

  async list(): Promise<SigningKeyView[]> {
    const rows = await this.db.query<KeyRow>(`SELECT * FROM signing_keys ORDER BY created_at DESC`);
    return rows.map((r) => ({
      kid: r.kid,
      status: r.status,
      createdAt: r.created_at,
      activatesAt: r.activates_at,
      activatedAt: r.activated_at,
      retiredAt: r.retired_at,
      expiresAt: r.expires_at,
    }));
  }

  /**
   * The keys in the JWKS right now (pending, active, retired) with their public JWK, read from the
   * database (not this replica's cached view): what gateways holding one credential per key need.
   */
  async published(): Promise<Array<{ kid: string; status: KeyStatus; jwk: JWK; activatesAt: Date; expiresAt: Date | null }>> {
    const rows = await this.db.query<KeyRow>(
      `SELECT kid, public_jwk, status, activates_at, expires_at FROM signing_keys WHERE status IN ('pending', 'active', 'retired') ORDER BY created_at DESC`,
    );
    return rows.map((r) => ({ kid: r.kid, status: r.status, jwk: r.public_jwk, activatesAt: r.activates_at, expiresAt: r.expires_at }));
  }

  private async activate(m: { query: (sql: string, p?: unknown[]) => Promise<unknown> }, kid: string, now: Date): Promise<void> {
    const lifetime = this.config.ACCESS_TOKEN_TTL_SECONDS + this.config.CLOCK_SKEW_SECONDS;
    await m.query(`UPDATE signing_keys SET status = 'retired', retired_at = $1, expires_at = $2 WHERE status = 'active'`, [
      now,
      new Date(now.getTime() + lifetime * 1000),
    ]);
    await m.query(`UPDATE signing_keys SET status = 'active', activated_at = $2 WHERE kid = $1`, [kid, now]);
  }

  private async insertKey(
    m: { query: (sql: string, p?: unknown[]) => Promise<unknown> },
    status: KeyStatus,
    activatesAt: Date,
  ): Promise<string> {
    const { publicKey, privateKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
    const jwk = await exportJWK(publicKey);
    const kid = await calculateJwkThumbprint(jwk);
    const publicJwk: JWK = { kty: jwk.kty, n: jwk.n, e: jwk.e, kid, alg: 'RS256', use: 'sig' };
    const sealed = this.box.seal(await exportPKCS8(privateKey), keyContext(kid));
    await m.query(
      `INSERT INTO signing_keys (kid, alg, public_jwk, private_key, status, activates_at) VALUES ($1, 'RS256', $2, $3, $4, $5)`,
      [kid, JSON.stringify(publicJwk), sealed, status, activatesAt],
    );
    return kid;
  }

  private async reload(): Promise<void> {
    const rows = await this.db.query<KeyRow>(
      `SELECT kid, public_jwk, private_key, status FROM signing_keys WHERE status IN ('pending', 'active', 'retired') ORDER BY created_at DESC`,
    );
    const keys = rows.map((r) => r.public_jwk);
    const body = JSON.stringify({ keys });
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
    if (etag !== this.jwks.etag) this.jwks = { body, etag, keys };
    const active = rows.find((r) => r.status === 'active');
    if (!active?.private_key) {
      this.signer = undefined;
      return;
    }
    if (this.signer?.kid === active.kid) return;
    let key = this.privateKeyCache.get(active.kid);
    if (!key) {
      const pem = this.box.open(active.private_key, keyContext(active.kid)).toString('utf8');
      key = await importPKCS8(pem, 'RS256');
      this.privateKeyCache.clear();
      this.privateKeyCache.set(active.kid, key);
    }
    this.signer = { kid: active.kid, key };
  }
}
