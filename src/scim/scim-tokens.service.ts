import { Inject, Injectable } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { Database } from '../database/database.js';
import { RowCache } from '../database/row-cache.js';
import { AuditService } from '../audit/audit.service.js';
import { ProblemError } from '../common/errors.js';
import { mintOpaqueToken, parseOpaqueToken } from '../crypto/opaque-token.js';
import { constantEquals } from '../crypto/random.js';
import { type ScimSettingsChange, ScimSettingsRepository } from './scim-settings.repository.js';
import { type ScimTokenRow, ScimTokensRepository } from './scim-tokens.repository.js';

export interface ScimGuardSettings {
  enabled: boolean;
  /** Share of the tenant's users (1–100 %) that may be deprovisioned within the window. */
  percent: number;
  windowSeconds: number;
  /** The guard never trips below this many deprovisionings in the window. */
  minCount: number;
}

export interface ScimTenantSettings {
  rateLimitPerMinute: number;
  guard: ScimGuardSettings;
}

/** Who is calling: decided by the bearer token alone. */
export interface ScimPrincipal {
  tenantId: string;
  tokenId: string;
  settings: ScimTenantSettings;
}

export interface CreatedScimToken {
  id: string;
  name: string;
  /** The bearer token: shown once, stored only as a hash. */
  token: string;
  /** Non-secret beginning of the token, to recognise it in lists. */
  prefix: string;
  createdAt: Date;
}

export type ScimTokenInfo = ScimTokenRow;

const TOKEN_PREFIX = 'st';
/** `st_` + 32 hex of the tenant + `_` + 6 characters of the secret: enough to tell tokens apart. */
const DISPLAY_PREFIX_LENGTH = 3 + 32 + 1 + 6;

/**
 * Per-tenant SCIM bearer tokens (`st_<tenant>_<secret>`). The tenant part of the token lets the
 * look-up run under that tenant's row-level security; only a SHA-256 of the token is stored and
 * compared in constant time. The admin API creates, lists and revokes them through this service.
 */
@Injectable()
export class ScimTokensService {
  /**
   * Verified tokens by hash. Dropped on every replica when a token is revoked, a SCIM setting
   * changes or any tenant changes (suspended, deleted): the tables notify (row-cache.ts), and
   * nothing is answered from memory while those notifications cannot be heard.
   */
  private readonly cache: RowCache<ScimPrincipal>;

  constructor(
    private readonly db: Database,
    private readonly audit: AuditService,
    private readonly tokens: ScimTokensRepository,
    @Inject(AppConfig) private readonly config: AppConfig,
  ) {
    this.cache = new RowCache(db.rowChanges, ['tenants', 'scim_tokens', 'scim_settings'], config.SCIM_TOKEN_CACHE_SECONDS * 1000, 10_000);
  }

  async create(tenantId: string, name: string, actor = 'admin'): Promise<CreatedScimToken> {
    const label = name.trim();
    if (label.length < 1 || label.length > 200)
      throw new ProblemError({ type: 'validation', title: 'Invalid token name', detail: 'A token name is 1–200 characters.' });
    const token = mintOpaqueToken(TOKEN_PREFIX, tenantId);
    const prefix = token.value.slice(0, DISPLAY_PREFIX_LENGTH);
    const row = await this.db.transaction({ tenant: tenantId }, async (tx) => {
      const r = await this.tokens.insert(tx, { tenantId, name: label, hash: token.hash, prefix });
      await this.audit.record(tx, { tenantId, actor, action: 'scim.token_created', target: r.id, data: { name: label, prefix } });
      return r;
    });
    return { id: row.id, name: label, token: token.value, prefix, createdAt: row.createdAt };
  }

  async list(tenantId: string): Promise<ScimTokenInfo[]> {
    return this.db.transaction({ tenant: tenantId }, (tx) => this.tokens.list(tx));
  }

  /** Revokes a token; false when the tenant has no such (unrevoked) token. Takes effect on the next request. */
  async revoke(tenantId: string, tokenId: string, actor = 'admin'): Promise<boolean> {
    if (!/^[0-9a-f-]{36}$/i.test(tokenId)) return false;
    return this.db
      .transaction({ tenant: tenantId }, async (tx) => {
        if (!(await this.tokens.revoke(tx, tokenId))) return false;
        await this.audit.record(tx, { tenantId, actor, action: 'scim.token_revoked', target: tokenId });
        return true;
      })
      .finally(() => this.db.rowsChanged('scim_tokens'));
  }

  /**
   * The caller of a SCIM request, or undefined for an unknown, revoked or malformed token, or a
   * tenant that is not active. A verified token is remembered for SCIM_TOKEN_CACHE_SECONDS (0: never)
   * unless its tables change first, which keeps a provisioning burst from paying a database
   * transaction per request for authentication alone.
   */
  async verify(presented: string, now = Date.now()): Promise<ScimPrincipal | undefined> {
    const token = parseOpaqueToken(TOKEN_PREFIX, presented);
    if (!token) return undefined;
    if (this.config.SCIM_TOKEN_CACHE_SECONDS <= 0) return this.lookUp(token.tenantId, token.hash);
    return this.cache.get(token.hash, () => this.lookUp(token.tenantId, token.hash), now);
  }

  private async lookUp(tenantId: string, hash: string): Promise<ScimPrincipal | undefined> {
    const row = await this.db.transaction({ tenant: tenantId }, (tx) => this.tokens.authenticate(tx, hash));
    if (!row || !constantEquals(row.tokenHash, hash) || row.tenantStatus !== 'active') return undefined;
    return {
      tenantId,
      tokenId: row.id,
      settings: {
        rateLimitPerMinute: row.rateLimitPerMinute ?? this.config.SCIM_RATE_LIMIT_PER_MINUTE,
        guard: {
          enabled: row.guardEnabled ?? true,
          percent: row.guardPercent !== null ? Number(row.guardPercent) : this.config.SCIM_DEPROVISION_GUARD_PERCENT,
          windowSeconds: row.guardWindowSeconds ?? this.config.SCIM_DEPROVISION_GUARD_WINDOW_SECONDS,
          minCount: row.guardMinCount ?? this.config.SCIM_DEPROVISION_GUARD_MIN_COUNT,
        },
      },
    };
  }
}

export type ScimSettingsUpdate = ScimSettingsChange;

/** Per-tenant overrides of the SCIM defaults; `null` restores the global default. For the admin API. */
@Injectable()
export class ScimSettingsService {
  constructor(
    private readonly db: Database,
    private readonly audit: AuditService,
    private readonly settings: ScimSettingsRepository,
  ) {}

  async update(tenantId: string, s: ScimSettingsUpdate, actor = 'admin'): Promise<void> {
    try {
      await this.write(tenantId, s, actor);
      this.db.rowsChanged('scim_settings');
    } catch (err) {
      if ((err as { code?: string }).code === '23514')
        throw new ProblemError({
          type: 'validation',
          title: 'Invalid SCIM settings',
          detail: 'Rate limit > 0, guard percent in (0, 100], window > 0 s, minimum count >= 0.',
        });
      throw err;
    }
  }

  private async write(tenantId: string, s: ScimSettingsUpdate, actor: string): Promise<void> {
    await this.db.transaction({ tenant: tenantId }, async (tx) => {
      await this.settings.upsert(tx, tenantId, s);
      await this.audit.record(tx, { tenantId, actor, action: 'scim.settings_updated', data: { ...s } });
    });
  }
}
