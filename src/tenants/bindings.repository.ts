import { Injectable } from '@nestjs/common';
import type { Tx } from '../database/database.js';
import type { BindingHealth, ClaimMappingRules, IdpKind } from '../identity/port/identity-provider.port.js';

export type BindingStatus = 'draft' | 'active' | 'retired';

/** A `tenant_identity_providers` row: the configuration, the staged-activation and the health columns. */
export interface Binding {
  id: string;
  tenantId: string;
  kind: IdpKind;
  status: BindingStatus;
  config: Record<string, unknown>;
  /** Sealed (SecretBox, bound to the row id); opened by BindingsService. */
  secrets: Buffer | null;
  claimMapping: ClaimMappingRules;
  enabled: boolean;
  priority: number;
  version: number;
  createdAt: Date;
  updatedAt: Date;
  activatedAt: Date | null;
  retiredAt: Date | null;
  testLoginAt: Date | null;
  /** Sealed like `secrets`: the identity the last test login brought back. */
  testIdentity: Buffer | null;
  lastLoginSucceededAt: Date | null;
  lastLoginFailedAt: Date | null;
  lastFailure: string | null;
  health: BindingHealth | null;
  healthCheckedAt: Date | null;
}

interface BindingRow {
  id: string;
  tenant_id: string;
  kind: IdpKind;
  status: BindingStatus;
  config: Record<string, unknown>;
  secrets: Buffer | null;
  claim_mapping: ClaimMappingRules;
  enabled: boolean;
  priority: number;
  version: number;
  created_at: Date;
  updated_at: Date;
  activated_at: Date | null;
  retired_at: Date | null;
  test_login_at: Date | null;
  test_identity: Buffer | null;
  last_login_succeeded_at: Date | null;
  last_login_failed_at: Date | null;
  last_failure: string | null;
  health: BindingHealth | null;
  health_checked_at: Date | null;
}

const toBinding = (r: BindingRow): Binding => ({
  id: r.id,
  tenantId: r.tenant_id,
  kind: r.kind,
  status: r.status,
  config: r.config,
  secrets: r.secrets,
  claimMapping: r.claim_mapping,
  enabled: r.enabled,
  priority: r.priority,
  version: r.version,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  activatedAt: r.activated_at,
  retiredAt: r.retired_at,
  testLoginAt: r.test_login_at,
  testIdentity: r.test_identity,
  lastLoginSucceededAt: r.last_login_succeeded_at,
  lastLoginFailedAt: r.last_login_failed_at,
  lastFailure: r.last_failure,
  health: r.health,
  healthCheckedAt: r.health_checked_at,
});

export interface NewBindingRow {
  tenantId: string;
  kind: IdpKind;
  status: 'draft' | 'active';
  config: Record<string, unknown>;
  claimMapping: ClaimMappingRules;
  priority: number;
}

/**
 * `tenant_identity_providers`, a tenant-scoped table: every method needs a transaction in the
 * binding's tenant (row-level security). Lifecycle rules (what may be activated, what an
 * activation replaces) are the services'; the statements here only lock, stamp and switch rows.
 */
@Injectable()
export class BindingsRepository {
  async insert(tx: Tx, b: NewBindingRow): Promise<Binding> {
    const { rows } = await tx.query<BindingRow>(
      `INSERT INTO tenant_identity_providers (tenant_id, kind, status, config, claim_mapping, priority)
       VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
      [b.tenantId, b.kind, b.status, JSON.stringify(b.config), JSON.stringify(b.claimMapping), b.priority],
    );
    const [row] = rows;
    if (!row) throw new Error('tenant_identity_providers: INSERT … RETURNING returned no row');
    return toBinding(row);
  }

  async setSecrets(tx: Tx, id: string, sealed: Buffer): Promise<void> {
    await tx.query(`UPDATE tenant_identity_providers SET secrets = $2 WHERE id = $1`, [id, sealed]);
  }

  /** Whether the tenant has (or had) a binding of this kind, in any status. */
  async hasKind(tx: Tx, tenantId: string, kind: IdpKind): Promise<boolean> {
    const { rows } = await tx.query(`SELECT 1 FROM tenant_identity_providers WHERE tenant_id = $1 AND kind = $2 LIMIT 1`, [tenantId, kind]);
    return rows.length > 0;
  }

  async findById(tx: Tx, id: string): Promise<Binding | undefined> {
    const { rows } = await tx.query<BindingRow>(`SELECT * FROM tenant_identity_providers WHERE id = $1`, [id]);
    return rows[0] ? toBinding(rows[0]) : undefined;
  }

  /** Enabled, active bindings, highest priority first, then oldest first. */
  async listActive(tx: Tx, tenantId: string): Promise<Binding[]> {
    const { rows } = await tx.query<BindingRow>(
      `SELECT * FROM tenant_identity_providers WHERE tenant_id = $1 AND status = 'active' AND enabled ORDER BY priority DESC, created_at`,
      [tenantId],
    );
    return rows.map(toBinding);
  }

  /** Every binding of the tenant, newest first. */
  async listAll(tx: Tx, tenantId: string): Promise<Binding[]> {
    const { rows } = await tx.query<BindingRow>(`SELECT * FROM tenant_identity_providers WHERE tenant_id = $1 ORDER BY created_at DESC`, [
      tenantId,
    ]);
    return rows.map(toBinding);
  }

  /** The active bindings of the tenant other than `exceptId` (enabled or not). */
  async listActiveExcept(tx: Tx, tenantId: string, exceptId: string): Promise<Binding[]> {
    const { rows } = await tx.query<BindingRow>(
      `SELECT * FROM tenant_identity_providers WHERE tenant_id = $1 AND status = 'active' AND id <> $2`,
      [tenantId, exceptId],
    );
    return rows.map(toBinding);
  }

  /**
   * The bindings the last change to the tenant's active set touched: the active ones it activated
   * and the retired ones it retired (those stamped with the latest stamp), highest priority first.
   */
  async listLastChanged(tx: Tx, tenantId: string): Promise<Binding[]> {
    const { rows } = await tx.query<BindingRow>(
      `WITH last AS (
         SELECT max(CASE status WHEN 'active' THEN activated_at WHEN 'retired' THEN retired_at END) AS at
           FROM tenant_identity_providers WHERE tenant_id = $1)
       SELECT t.* FROM tenant_identity_providers t, last
        WHERE t.tenant_id = $1
          AND ((t.status = 'active' AND t.activated_at = last.at) OR (t.status = 'retired' AND t.retired_at = last.at))
        ORDER BY t.priority DESC, t.created_at`,
      [tenantId],
    );
    return rows.map(toBinding);
  }

  /**
   * Locks all the tenant's binding rows (in id order, so concurrent changes queue rather than
   * deadlock) and returns a stamp strictly later than every stamp already stored (as text, to keep
   * PostgreSQL's microseconds).
   */
  async lockActiveSet(tx: Tx, tenantId: string): Promise<string> {
    await tx.query(`SELECT id FROM tenant_identity_providers WHERE tenant_id = $1 ORDER BY id FOR UPDATE`, [tenantId]);
    const { rows } = await tx.query<{ at: string }>(
      `SELECT greatest(clock_timestamp(), max(greatest(activated_at, retired_at)) + interval '1 microsecond')::text AS at
         FROM tenant_identity_providers WHERE tenant_id = $1`,
      [tenantId],
    );
    const [row] = rows;
    if (!row) throw new Error('tenant_identity_providers: an aggregate returned no row');
    return row.at;
  }

  async markRetired(tx: Tx, id: string, at: string): Promise<void> {
    await tx.query(`UPDATE tenant_identity_providers SET status = 'retired', retired_at = $2, version = version + 1 WHERE id = $1`, [
      id,
      at,
    ]);
  }

  async markActive(tx: Tx, id: string, at: string): Promise<void> {
    await tx.query(
      `UPDATE tenant_identity_providers SET status = 'active', activated_at = $2, retired_at = NULL, version = version + 1 WHERE id = $1`,
      [id, at],
    );
  }

  /**
   * Changes a draft in place if it is still a draft at `version` (optimistic concurrency); the
   * health columns are overwritten (null health: none known). Returns whether a row changed.
   */
  async updateDraft(
    tx: Tx,
    id: string,
    version: number,
    d: {
      config: Record<string, unknown>;
      claimMapping: ClaimMappingRules;
      priority: number;
      secrets: Buffer;
      health: BindingHealth | null;
    },
  ): Promise<boolean> {
    const { rowCount } = await tx.query(
      `UPDATE tenant_identity_providers SET config = $3, claim_mapping = $4, priority = $5, secrets = $6, health = $7, health_checked_at = now(),
              version = version + 1, updated_at = now()
        WHERE id = $1 AND version = $2 AND status = 'draft'`,
      [
        id,
        version,
        JSON.stringify(d.config),
        JSON.stringify(d.claimMapping),
        d.priority,
        d.secrets,
        d.health ? JSON.stringify(d.health) : null,
      ],
    );
    return rowCount > 0;
  }

  async setHealth(tx: Tx, id: string, health: BindingHealth): Promise<void> {
    await tx.query(`UPDATE tenant_identity_providers SET health = $2, health_checked_at = now() WHERE id = $1`, [
      id,
      JSON.stringify(health),
    ]);
  }

  /** Active bindings whose health was not checked since `checkedBefore` (or never), by id. */
  async listDueForHealth(tx: Tx, tenantId: string, checkedBefore: Date): Promise<Array<{ id: string; kind: IdpKind }>> {
    const { rows } = await tx.query<{ id: string; kind: IdpKind }>(
      `SELECT id, kind FROM tenant_identity_providers
        WHERE tenant_id = $1 AND status = 'active' AND (health_checked_at IS NULL OR health_checked_at < $2) ORDER BY id`,
      [tenantId, checkedBefore],
    );
    return rows;
  }

  /** Stamps the health check as started now if the binding is active and still due; returns whether it was. */
  async claimHealthCheck(tx: Tx, id: string, checkedBefore: Date): Promise<boolean> {
    const { rowCount } = await tx.query(
      `UPDATE tenant_identity_providers SET health_checked_at = now()
        WHERE id = $1 AND status = 'active' AND (health_checked_at IS NULL OR health_checked_at < $2) RETURNING id`,
      [id, checkedBefore],
    );
    return rowCount > 0;
  }

  async recordLoginSucceeded(tx: Tx, id: string): Promise<void> {
    await tx.query(`UPDATE tenant_identity_providers SET last_login_succeeded_at = now() WHERE id = $1`, [id], 'binding-login-succeeded');
  }

  /** A test login through the binding succeeded: what it signed in as (sealed), and when. */
  async recordTestLogin(tx: Tx, id: string, sealedIdentity: Buffer): Promise<void> {
    await tx.query(
      `UPDATE tenant_identity_providers SET test_login_at = now(), test_identity = $2, last_login_succeeded_at = now() WHERE id = $1`,
      [id, sealedIdentity],
    );
  }

  /**
   * The id of the tenant's binding of a kind that a flow outside the active set uses (the SAML ACS,
   * a Firebase import): the active one first, then by priority, newest first. `statuses` and
   * `enabledOnly` narrow it; unset, any status.
   */
  async preferredOfKind(
    tx: Tx,
    tenantId: string,
    kind: IdpKind,
    opts: { statuses?: readonly string[]; enabledOnly?: boolean } = {},
  ): Promise<string | undefined> {
    const { rows } = await tx.query<{ id: string }>(
      `SELECT id FROM tenant_identity_providers
        WHERE tenant_id = $1 AND kind = $2 AND (NOT $3::boolean OR enabled) AND ($4::text[] IS NULL OR status = ANY($4::text[]))
        ORDER BY (status = 'active') DESC, priority DESC, created_at DESC LIMIT 1`,
      [tenantId, kind, opts.enabledOnly ?? false, opts.statuses ?? null],
    );
    return rows[0]?.id;
  }

  async recordLoginFailed(tx: Tx, id: string, failure: string): Promise<void> {
    await tx.query(`UPDATE tenant_identity_providers SET last_login_failed_at = now(), last_failure = $2 WHERE id = $1`, [id, failure]);
  }
}
