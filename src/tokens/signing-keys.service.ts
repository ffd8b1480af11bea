import { createHash } from 'node:crypto';
import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { calculateJwkThumbprint, exportJWK, exportPKCS8, generateKeyPair, importPKCS8, type JWK, type CryptoKey } from 'jose';
import { AppConfig } from '../config/app-config.js';
import { Database, type Tx } from '../database/database.js';
import { SecretBox } from '../crypto/secret-box.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { AuditService } from '../audit/audit.service.js';
import { SigningKeysRepository, type KeyStatus, type SigningKeyRecord } from './signing-keys.repository.js';

export type { KeyStatus } from './signing-keys.repository.js';

export type SigningKeyView = SigningKeyRecord;

export interface ActiveSigner {
  kid: string;
  key: CryptoKey;
}

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
    private readonly keys: SigningKeysRepository,
    private readonly audit: AuditService,
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
    await this.db.transaction('platform', async (tx) => {
      if (!(await this.keys.tryLockTransitions(tx))) return;
      const active = await this.keys.listActive(tx);
      const due = await this.keys.latestDuePending(tx, now);
      if (due) {
        await this.activate(tx, due, now);
      } else if (active.length === 0) {
        // First start (or every key lost): nothing can sign, so there is nothing to wait for.
        const kid = (await this.keys.firstPending(tx)) ?? (await this.insertKey(tx, 'pending', now));
        await this.activate(tx, kid, now);
        this.logger.log({ kid }, 'created the first signing key');
      } else if (this.config.KEY_ROTATION_INTERVAL_SECONDS > 0) {
        const age = (now.getTime() - new Date(active[0]!.activatedAt).getTime()) / 1000;
        const n = await this.keys.countPending(tx);
        if (n === 0 && age >= this.config.KEY_ROTATION_INTERVAL_SECONDS) {
          const kid = await this.insertKey(tx, 'pending', new Date(now.getTime() + this.config.KEY_PUBLISH_DELAY_SECONDS * 1000));
          this.logger.log({ kid }, 'scheduled rotation: new signing key published, pending activation');
        }
      }
      await this.keys.expireRetired(tx, now);
    });
    await this.reload();
  }

  /**
   * Publishes a new key now; it starts signing after `publishDelaySeconds` (default
   * KEY_PUBLISH_DELAY_SECONDS). With 0 it signs at once — only safe for validators that refresh
   * their JWKS on an unknown `kid`. With an `actor`, the rotation is audited in its transaction.
   */
  async rotate(publishDelaySeconds = this.config.KEY_PUBLISH_DELAY_SECONDS, now = new Date(), actor?: string): Promise<SigningKeyView> {
    const kid = await this.db.transaction('platform', async (tx) => {
      await this.keys.lockTransitions(tx);
      // A newer rotation replaces a pending key that never signed anything.
      await this.keys.expirePending(tx);
      const activatesAt = new Date(now.getTime() + publishDelaySeconds * 1000);
      const id = await this.insertKey(tx, 'pending', activatesAt);
      if (publishDelaySeconds === 0) await this.activate(tx, id, now);
      if (actor !== undefined)
        await this.audit.record(tx, { tenantId: null, actor, action: 'signing_key.rotated', target: id, data: { activatesAt } });
      return id;
    });
    await this.reload();
    return (await this.list()).find((k) => k.kid === kid)!;
  }

  async list(): Promise<SigningKeyView[]> {
    return this.db.transaction('platform', (tx) => this.keys.list(tx));
  }

  /**
   * The keys in the JWKS right now (pending, active, retired) with their public JWK, read from the
   * database (not this replica's cached view): what gateways holding one credential per key need.
   */
  async published(): Promise<Array<{ kid: string; status: KeyStatus; jwk: JWK; activatesAt: Date; expiresAt: Date | null }>> {
    const rows = await this.db.transaction('platform', (tx) => this.keys.listPublished(tx));
    return rows.map((r) => ({ kid: r.kid, status: r.status, jwk: r.publicJwk, activatesAt: r.activatesAt, expiresAt: r.expiresAt }));
  }

  private async activate(tx: Tx, kid: string, now: Date): Promise<void> {
    const lifetime = this.config.ACCESS_TOKEN_TTL_SECONDS + this.config.CLOCK_SKEW_SECONDS;
    await this.keys.retireActive(tx, now, new Date(now.getTime() + lifetime * 1000));
    await this.keys.markActive(tx, kid, now);
  }

  private async insertKey(tx: Tx, status: KeyStatus, activatesAt: Date): Promise<string> {
    const { publicKey, privateKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
    const jwk = await exportJWK(publicKey);
    const kid = await calculateJwkThumbprint(jwk);
    const publicJwk: JWK = { kty: jwk.kty, n: jwk.n, e: jwk.e, kid, alg: 'RS256', use: 'sig' };
    const sealed = this.box.seal(await exportPKCS8(privateKey), keyContext(kid));
    await this.keys.insert(tx, { kid, publicJwk, sealedPrivateKey: sealed, status, activatesAt });
    return kid;
  }

  private async reload(): Promise<void> {
    const rows = await this.db.transaction('platform', (tx) => this.keys.listPublishedWithPrivateKeys(tx));
    const keys = rows.map((r) => r.publicJwk);
    const body = JSON.stringify({ keys });
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
    if (etag !== this.jwks.etag) this.jwks = { body, etag, keys };
    const active = rows.find((r) => r.status === 'active');
    if (!active?.privateKey) {
      this.signer = undefined;
      return;
    }
    if (this.signer?.kid === active.kid) return;
    let key = this.privateKeyCache.get(active.kid);
    if (!key) {
      const pem = this.box.open(active.privateKey, keyContext(active.kid)).toString('utf8');
      key = await importPKCS8(pem, 'RS256');
      this.privateKeyCache.clear();
      this.privateKeyCache.set(active.kid, key);
    }
    this.signer = { kid: active.kid, key };
  }
}
