import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { Database } from '../database/database.js';
import { RowCache } from '../database/row-cache.js';
import { SecretBox } from '../crypto/secret-box.js';
import { ProblemError, problemType } from '../common/errors.js';
import type { BindingContext, ClaimMappingRules, IdpKind } from '../identity/port/identity-provider.port.js';
import type { Tenant } from './tenants.service.js';

/** A tenant_identity_providers row as the core reads it. */
export interface BindingRow {
  id: string;
  tenant_id: string;
  kind: IdpKind;
  status: 'draft' | 'active' | 'retired';
  config: Record<string, unknown>;
  secrets: Buffer | null;
  claim_mapping: ClaimMappingRules;
  enabled: boolean;
  priority: number;
  version: number;
}

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

/** tenant_identity_providers: which adapter, with which configuration, for each tenant. */
@Injectable()
export class BindingsService {
  /** A tenant's active bindings, read at every login start: cached, dropped on any binding change (row-cache.ts). */
  private readonly active: RowCache<BindingContext[]>;

  constructor(
    private readonly db: Database,
    private readonly box: SecretBox,
  ) {
    this.active = new RowCache(db.rowChanges, 'tenant_identity_providers');
  }

  async create(tenant: Tenant, input: NewBinding): Promise<BindingContext> {
    const created = await this.db.tenantTx(tenant.id, async (m) => {
      if (input.kind === 'firebase_legacy' && input.migrationImport !== true) await this.refuseNewFirebaseTenant(m, tenant);
      const [row] = await m.query<BindingRow[]>(
        `INSERT INTO tenant_identity_providers (tenant_id, kind, status, config, claim_mapping, priority)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
        [
          tenant.id,
          input.kind,
          input.status ?? 'active',
          JSON.stringify(input.config ?? {}),
          JSON.stringify(input.claimMapping ?? {}),
          input.priority ?? 0,
        ],
      );
      if (input.secrets && Object.keys(input.secrets).length > 0) {
        row!.secrets = this.box.sealJson(input.secrets, secretsContext(row!.id));
        await m.query(`UPDATE tenant_identity_providers SET secrets = $2 WHERE id = $1`, [row!.id, row!.secrets]);
      }
      return this.toContext(row!, tenant);
    });
    this.db.rowsChanged('tenant_identity_providers');
    return created;
  }

  /** ADR-0002: Firebase is legacy. Tenants already on it keep it; nobody new is onboarded onto it. */
  private async refuseNewFirebaseTenant(m: EntityManager, tenant: Tenant): Promise<void> {
    const [existing] = await m.query<unknown[]>(
      `SELECT 1 FROM tenant_identity_providers WHERE tenant_id = $1 AND kind = 'firebase_legacy' LIMIT 1`,
      [tenant.id],
    );
    if (existing) return;
    throw new ProblemError(
      409,
      'Firebase is closed to new tenants',
      'Firebase Authentication is legacy (ADR-0002): only tenants that already sign in with Firebase keep a firebase_legacy binding. ' +
        'Bind this tenant to Keycloak, its own OIDC/SAML identity provider or native logins instead. ' +
        'Ops migrating an existing Firebase project pass migrationImport.',
      problemType('firebase-legacy-closed'),
      { adr: 'ADR-0002' },
    );
  }

  /** Every enabled, active binding of the tenant, highest priority first (token exchange picks among them). */
  async allActive(tenant: Tenant): Promise<BindingContext[]> {
    // Keyed by the tenant's version too: a context carries its tenant, which may have changed.
    const bindings = await this.active.get(`${tenant.id}:${tenant.version}:${tenant.status}`, () =>
      this.db.tenantTx(tenant.id, async (m) => {
        const rows = await m.query<BindingRow[]>(
          `SELECT * FROM tenant_identity_providers WHERE tenant_id = $1 AND status = 'active' AND enabled ORDER BY priority DESC, created_at`,
          [tenant.id],
        );
        return rows.map((r) => this.toContext(r, tenant));
      }),
    );
    return [...bindings!];
  }

  async activeOfKind(tenant: Tenant, kind: IdpKind): Promise<BindingContext | undefined> {
    return (await this.allActive(tenant)).find((b) => b.kind === kind);
  }

  async get(tenant: Tenant, bindingId: string, m: EntityManager): Promise<BindingContext> {
    const [row] = await m.query<BindingRow[]>(`SELECT * FROM tenant_identity_providers WHERE id = $1`, [bindingId]);
    if (!row) throw new ProblemError(404, 'Binding not found', undefined, problemType('binding-not-found'));
    return this.toContext(row, tenant);
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
    await this.db
      .tenantTx(tenantId, (m) =>
        m.query(
          ok
            ? `UPDATE tenant_identity_providers SET last_login_succeeded_at = now() WHERE id = $1`
            : `UPDATE tenant_identity_providers SET last_login_failed_at = now(), last_failure = $2 WHERE id = $1`,
          ok ? [bindingId] : [bindingId, (reason ?? 'unknown').slice(0, 300)],
        ),
      )
      .catch(() => undefined);
  }

  private toContext(row: BindingRow, tenant: Tenant): BindingContext {
    return {
      id: row.id,
      tenantId: row.tenant_id,
      tenantSlug: tenant.slug,
      kind: row.kind,
      config: row.config,
      secrets: row.secrets ? this.box.openJson<Record<string, unknown>>(row.secrets, secretsContext(row.id)) : {},
      claimMapping: row.claim_mapping,
      version: row.version,
    };
  }
}
