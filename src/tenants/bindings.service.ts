import { Injectable } from '@nestjs/common';
import { Database, type Tx } from '../database/database.js';
import { RowCache } from '../database/row-cache.js';
import { SecretBox } from '../crypto/secret-box.js';
import { ProblemError } from '../common/errors.js';
import type { BindingContext, ClaimMappingRules, IdpKind } from '../identity/port/identity-provider.port.js';
import { BindingsRepository, type Binding } from './bindings.repository.js';
import type { Tenant } from './tenants.repository.js';

export type { Binding, BindingStatus } from './bindings.repository.js';

export interface NewBinding {
  kind: IdpKind;
  config?: Record<string, unknown>;
  secrets?: Record<string, unknown>;
  claimMapping?: ClaimMappingRules;
  status?: 'draft' | 'active';
  priority?: number;
  /**
   * Ops only: bring an existing Firebase project's users over (ADR-0002). Without it a
   * firebase_legacy binding is refused for a tenant that has none yet.
   */
  migrationImport?: boolean;
}

const secretsContext = (bindingId: string) => `binding_secrets:${bindingId}`;

/** How often a binding's last successful login is written, at most, per process. */
const SUCCESS_RECORD_INTERVAL_MS = 60_000;
/** Past this many remembered bindings, the stale ones are dropped. */
const SUCCESS_RECORD_MAX_ENTRIES = 10_000;

/** tenant_identity_providers: which adapter, with which configuration, for each tenant. */
@Injectable()
export class BindingsService {
  /** A tenant's active bindings, read at every login start: cached, dropped on any binding change (row-cache.ts). */
  private readonly active: RowCache<BindingContext[]>;
  /** When this process last wrote a binding's last_login_succeeded_at (recordLoginOutcome). */
  private readonly lastSuccessRecorded = new Map<string, number>();

  constructor(
    private readonly db: Database,
    private readonly box: SecretBox,
    private readonly bindings: BindingsRepository,
  ) {
    this.active = new RowCache(db.rowChanges, 'tenant_identity_providers');
  }

  /**
   * `tx`: a transaction in the tenant to create the binding in, so that the caller can record the
   * creation in it; the caller then calls `db.rowsChanged('tenant_identity_providers')` after it
   * commits. Without one, the binding is created (and the caches told) here.
   */
  async create(tenant: Tenant, input: NewBinding, tx?: Tx): Promise<BindingContext> {
    if (tx) return this.insert(tx, tenant, input);
    const created = await this.db.transaction({ tenant: tenant.id }, (t) => this.insert(t, tenant, input));
    this.db.rowsChanged('tenant_identity_providers');
    return created;
  }

  private async insert(tx: Tx, tenant: Tenant, input: NewBinding): Promise<BindingContext> {
    if (input.kind === 'firebase_legacy' && input.migrationImport !== true) await this.refuseNewFirebaseTenant(tx, tenant);
    const row = await this.bindings.insert(tx, {
      tenantId: tenant.id,
      kind: input.kind,
      status: input.status ?? 'active',
      config: input.config ?? {},
      claimMapping: input.claimMapping ?? {},
      priority: input.priority ?? 0,
    });
    if (input.secrets && Object.keys(input.secrets).length > 0) {
      row.secrets = this.box.sealJson(input.secrets, secretsContext(row.id));
      await this.bindings.setSecrets(tx, row.id, row.secrets);
    }
    return this.toContext(row, tenant);
  }

  /** ADR-0002: Firebase is legacy. Tenants already on it keep it; nobody new is onboarded onto it. */
  private async refuseNewFirebaseTenant(tx: Tx, tenant: Tenant): Promise<void> {
    if (await this.bindings.hasKind(tx, tenant.id, 'firebase_legacy')) return;
    throw new ProblemError({
      type: 'firebase-legacy-closed',
      detail:
        'Firebase Authentication is legacy (ADR-0002): only tenants that already sign in with Firebase keep a firebase_legacy binding. ' +
        'Bind this tenant to Keycloak, its own OIDC/SAML identity provider or native logins instead. ' +
        'Ops migrating an existing Firebase project pass migrationImport.',
      extensions: { adr: 'ADR-0002' },
    });
  }

  /** Every enabled, active binding of the tenant, highest priority first (token exchange picks among them). */
  async allActive(tenant: Tenant): Promise<BindingContext[]> {
    // Keyed by the tenant's version too: a context carries its tenant, which may have changed.
    const bindings = await this.active.get(`${tenant.id}:${tenant.version}:${tenant.status}`, () =>
      this.db.transaction({ tenant: tenant.id }, async (tx) =>
        (await this.bindings.listActive(tx, tenant.id)).map((r) => this.toContext(r, tenant)),
      ),
    );
    return [...bindings!];
  }

  async activeOfKind(tenant: Tenant, kind: IdpKind): Promise<BindingContext | undefined> {
    return (await this.allActive(tenant)).find((b) => b.kind === kind);
  }

  /** `handle`: a transaction in the tenant (either kind while #15 moves callers to `Tx`). */
  async get(tenant: Tenant, bindingId: string, handle: Tx): Promise<BindingContext> {
    const row = await this.bindings.findById(handle, bindingId);
    if (!row) throw new ProblemError({ type: 'binding-not-found' });
    return this.toContext(row, tenant);
  }

  /** See BindingsRepository.preferredOfKind; in the caller's tenant transaction. */
  async preferredOfKind(
    tenant: Tenant,
    kind: IdpKind,
    opts: { statuses?: readonly string[]; enabledOnly?: boolean },
    handle: Tx,
  ): Promise<BindingContext | undefined> {
    const tx = handle;
    const id = await this.bindings.preferredOfKind(tx, tenant.id, kind, opts);
    return id === undefined ? undefined : this.get(tenant, id, tx);
  }

  /** A test login through the binding succeeded: keeps what it signed in as (sealed with the binding's key), in the caller's transaction. */
  async recordTestLogin(handle: Tx, bindingId: string, identity: Record<string, unknown>): Promise<void> {
    await this.bindings.recordTestLogin(handle, bindingId, this.sealSecrets(bindingId, identity));
  }

  /** Seals a binding's secrets for its row (the row id is the associated data). */
  sealSecrets(bindingId: string, secrets: Record<string, unknown>): Buffer {
    return this.box.sealJson(secrets, secretsContext(bindingId));
  }

  openSecrets(bindingId: string, sealed: Buffer | null): Record<string, unknown> {
    return sealed ? this.box.openJson<Record<string, unknown>>(sealed, secretsContext(bindingId)) : {};
  }

  /** Last login outcome per binding, for the connection-health view (best effort, never fails a login). */
  async recordLoginOutcome(tenantId: string, bindingId: string, ok: boolean, reason?: string): Promise<void> {
    // A success is written at most once a minute per binding and process (every login of a tenant
    // would otherwise update the same row, one after another); a failure always, and the next
    // success after it at once, so the health never shows a failure older than a success it hides.
    const now = Date.now();
    if (ok) {
      const last = this.lastSuccessRecorded.get(bindingId);
      if (last !== undefined && now - last < SUCCESS_RECORD_INTERVAL_MS) return;
      // Entries older than the interval decide nothing: drop them before the map grows with the tenants.
      if (this.lastSuccessRecorded.size >= SUCCESS_RECORD_MAX_ENTRIES)
        for (const [id, at] of this.lastSuccessRecorded) if (now - at >= SUCCESS_RECORD_INTERVAL_MS) this.lastSuccessRecorded.delete(id);
      this.lastSuccessRecorded.set(bindingId, now);
    } else this.lastSuccessRecorded.delete(bindingId);
    await this.db
      .transaction({ tenant: tenantId }, (tx) =>
        ok
          ? this.bindings.recordLoginSucceeded(tx, bindingId)
          : this.bindings.recordLoginFailed(tx, bindingId, (reason ?? 'unknown').slice(0, 300)),
      )
      .catch(() => undefined);
  }

  private toContext(row: Binding, tenant: Tenant): BindingContext {
    return {
      id: row.id,
      tenantId: row.tenantId,
      tenantSlug: tenant.slug,
      kind: row.kind,
      config: row.config,
      secrets: this.openSecrets(row.id, row.secrets),
      claimMapping: row.claimMapping,
      version: row.version,
    };
  }
}
