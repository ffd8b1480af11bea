import { Injectable } from '@nestjs/common';
import { Database, type Tx } from '../database/database.js';
import { AuditService } from '../audit/audit.service.js';
import { DomainError, ProblemError } from '../common/errors.js';
import { BindingsService, type Binding } from '../tenants/bindings.service.js';
import { BindingsRepository } from '../tenants/bindings.repository.js';
import type { Tenant } from '../tenants/tenants.service.js';
import { UsersService } from '../users/users.service.js';
import { IdentityProviderRegistry } from '../identity/identity-provider.registry.js';
import type { BindingHealth, ClaimMappingRules, ExternalIdentity, IdpKind } from '../identity/port/identity-provider.port.js';
import { normaliseIdentity, type NormalisedIdentity } from '../users/claim-normaliser.js';
import { LoginService } from '../login/login.service.js';
import type { AdminPrincipal } from './admin-auth.js';
import type { CreateBindingDto, MappingPreviewDto, UpdateBindingDto } from './dto.js';

/** A binding as the admin API shows it: secrets are write-only, so only their names appear. */
export interface BindingView {
  id: string;
  tenantId: string;
  kind: IdpKind;
  status: Binding['status'];
  config: Record<string, unknown>;
  secretFields: string[];
  claimMapping: ClaimMappingRules;
  priority: number;
  version: number;
  createdAt: Date;
  updatedAt: Date;
  activatedAt: Date | null;
  retiredAt: Date | null;
  testLoginAt: Date | null;
}

export interface BindingHealthView {
  bindingId: string;
  status: Binding['status'];
  health: BindingHealth | null;
  checkedAt: Date | null;
  lastLoginSucceededAt: Date | null;
  lastLoginFailedAt: Date | null;
  lastFailure: string | null;
}

const notFound = () => new ProblemError({ type: 'binding-not-found' });

/** What a rollback changed: the binding it brought back (else the one it retired), and every binding it touched. */
export interface RollbackView extends BindingView {
  rollback: { activated: string[]; retired: string[] };
}

/**
 * Staged activation of identity-provider bindings: every new or changed configuration starts as a
 * draft, is proven by one real test login, and only then replaces the active one; the previous
 * version is kept (retired) so rollback is one call.
 *
 * Every change to a tenant's set of active bindings (activate, retire, rollback) runs with all of
 * the tenant's binding rows locked and stamps the rows it changes with one moment (`activated_at`
 * on the ones it activates, `retired_at` on the ones it retires). The latest stamp therefore names
 * the last change exactly, whatever the login styles involved, and rollback undoes it.
 */
@Injectable()
export class BindingsAdminService {
  constructor(
    private readonly db: Database,
    private readonly bindings: BindingsService,
    private readonly rows: BindingsRepository,
    private readonly registry: IdentityProviderRegistry,
    private readonly login: LoginService,
    private readonly audit: AuditService,
    private readonly users: UsersService,
  ) {}

  async create(p: AdminPrincipal, tenant: Tenant, dto: CreateBindingDto): Promise<BindingView> {
    const { config, health } = await this.validate(tenant, dto.kind, dto.config ?? {}, dto.secrets ?? {});
    const view = await this.db.transaction({ tenant: tenant.id }, async (tx) => {
      const created = await this.bindings.create(
        tenant,
        {
          kind: dto.kind,
          config,
          secrets: dto.secrets,
          claimMapping: dto.claimMapping ?? {},
          priority: dto.priority,
          status: 'draft',
          migrationImport: dto.migrationImport,
        },
        tx,
      );
      if (health) await this.rows.setHealth(tx, created.id, health);
      const v = this.view(await this.row(tx, created.id));
      await this.audit.record(tx, {
        tenantId: tenant.id,
        actor: p.actor,
        action: 'binding.created',
        target: created.id,
        data: { after: v },
      });
      return v;
    });
    this.db.rowsChanged('tenant_identity_providers');
    return view;
  }

  async list(tenant: Tenant): Promise<BindingView[]> {
    return this.db.transaction({ tenant: tenant.id }, async (tx) => (await this.rows.listAll(tx, tenant.id)).map((r) => this.view(r)));
  }

  async get(tenant: Tenant, id: string): Promise<BindingView> {
    return this.db.transaction({ tenant: tenant.id }, async (tx) => this.view(await this.row(tx, id)));
  }

  /**
   * A draft changes in place. An active (or retired) binding is never edited: the change becomes a
   * new draft, and the running configuration keeps serving logins until that draft is activated.
   */
  async update(
    p: AdminPrincipal,
    tenant: Tenant,
    id: string,
    version: number,
    dto: UpdateBindingDto,
  ): Promise<{ view: BindingView; created: boolean }> {
    if (dto.status !== undefined)
      throw new ProblemError({
        type: 'status-not-editable',
        detail:
          "A binding's status changes only through POST …/bindings/{id}/activate, POST …/bindings/{id}/retire and POST …/bindings/rollback.",
      });
    const current = await this.db.transaction({ tenant: tenant.id }, (tx) => this.row(tx, id));
    if (current.version !== version) throw new ProblemError({ type: 'stale-etag', detail: 'The binding changed since you read it.' });
    const secrets = dto.secrets ?? this.bindings.openSecrets(current.id, current.secrets);
    const { config, health } = await this.validate(tenant, current.kind, dto.config ?? current.config, secrets);
    const claimMapping = dto.claimMapping ?? current.claimMapping;
    const before = this.view(current);
    if (current.status === 'draft') {
      const view = await this.db.transaction({ tenant: tenant.id }, async (tx) => {
        const changed = await this.rows.updateDraft(tx, id, version, {
          config,
          claimMapping,
          priority: dto.priority ?? current.priority,
          secrets: this.bindings.sealSecrets(id, secrets),
          health: health ?? null,
        });
        if (!changed) throw new ProblemError({ type: 'stale-etag', detail: 'The binding changed since you read it.' });
        const after = this.view(await this.row(tx, id));
        await this.audit.record(tx, {
          tenantId: tenant.id,
          actor: p.actor,
          action: 'binding.updated',
          target: id,
          data: { before, after },
        });
        return after;
      });
      return { view, created: false };
    }
    const view = await this.db.transaction({ tenant: tenant.id }, async (tx) => {
      const draft = await this.bindings.create(
        tenant,
        {
          kind: current.kind,
          config,
          secrets,
          claimMapping,
          priority: dto.priority ?? current.priority,
          status: 'draft',
          migrationImport: true,
        },
        tx,
      );
      if (health) await this.rows.setHealth(tx, draft.id, health);
      const after = this.view(await this.row(tx, draft.id));
      await this.audit.record(tx, {
        tenantId: tenant.id,
        actor: p.actor,
        action: 'binding.created',
        target: draft.id,
        data: { from: id, before, after },
      });
      return after;
    });
    this.db.rowsChanged('tenant_identity_providers');
    return { view, created: true };
  }

  /** Starts a real login through the binding (even a draft) for the customer's IT admin. */
  async testLogin(p: AdminPrincipal, tenant: Tenant, id: string): Promise<{ url: string }> {
    const binding = await this.db.transaction({ tenant: tenant.id }, (tx) => this.bindings.get(tenant, id, tx));
    const url = await this.login.beginTest(tenant, binding);
    await this.db.transaction({ tenant: tenant.id }, (tx) =>
      this.audit.record(tx, { tenantId: tenant.id, actor: p.actor, action: 'binding.test_login_started', target: id }),
    );
    return { url };
  }

  /**
   * Activates a draft. A binding with a browser login must have completed a test login since its
   * last change. The bindings it replaces (the active ones with the same login style) are retired.
   */
  async activate(p: AdminPrincipal, tenant: Tenant, id: string, version: number): Promise<BindingView> {
    const view = await this.db.transaction({ tenant: tenant.id }, async (tx) => {
      const at = await this.rows.lockActiveSet(tx, tenant.id);
      const row = await this.row(tx, id);
      if (row.version !== version) throw new ProblemError({ type: 'stale-etag', detail: 'The binding changed since you read it.' });
      if (row.status !== 'draft')
        throw new ProblemError({
          type: 'not-draft',
          detail: `Only a draft can be activated; this binding is ${row.status}. Use rollback to undo the change that retired it.`,
        });
      const redirect = this.registry.get(row.kind).capabilities.loginRedirect;
      if (redirect && (!row.testLoginAt || row.testLoginAt < row.updatedAt))
        throw new ProblemError({
          type: 'test-login-required',
          detail: 'Complete a test login through this binding (POST …/test-login) before activating it.',
        });
      return this.switchTo(tx, p, tenant, row, at);
    });
    this.db.rowsChanged('tenant_identity_providers');
    return view;
  }

  /**
   * Takes an active binding out of service without activating anything else (e.g. the end of a
   * Firebase overlap). The row is kept, with the identity links made through it; rollback undoes it.
   */
  async retire(p: AdminPrincipal, tenant: Tenant, id: string, version: number): Promise<BindingView> {
    const view = await this.db.transaction({ tenant: tenant.id }, async (tx) => {
      const at = await this.rows.lockActiveSet(tx, tenant.id);
      const row = await this.row(tx, id);
      if (row.version !== version) throw new ProblemError({ type: 'stale-etag', detail: 'The binding changed since you read it.' });
      if (row.status !== 'active')
        throw new ProblemError({ type: 'not-active', detail: `Only an active binding can be retired; this binding is ${row.status}.` });
      const before = this.view(row);
      await this.rows.markRetired(tx, id, at);
      const after = this.view(await this.row(tx, id));
      await this.audit.record(tx, { tenantId: tenant.id, actor: p.actor, action: 'binding.retired', target: id, data: { before, after } });
      return after;
    });
    this.db.rowsChanged('tenant_identity_providers');
    return view;
  }

  /**
   * Undoes the last change to the tenant's active bindings (an activation, a retirement, or a
   * rollback), across login styles: the bindings it retired are active again and the ones it
   * activated are retired, so the tenant is exactly as it was before that change. A second rollback
   * undoes the first.
   */
  async rollback(p: AdminPrincipal, tenant: Tenant): Promise<RollbackView> {
    const view = await this.db.transaction({ tenant: tenant.id }, async (tx) => {
      const at = await this.rows.lockActiveSet(tx, tenant.id);
      const changed = await this.rows.listLastChanged(tx, tenant.id);
      if (changed.length === 0)
        throw new ProblemError({
          type: 'nothing-to-roll-back',
          detail: 'No binding of this tenant was activated or retired through the admin API.',
        });
      const restore = changed.filter((r) => r.status === 'retired');
      const retire = changed.filter((r) => r.status === 'active');
      for (const r of retire) await this.rows.markRetired(tx, r.id, at);
      for (const r of restore) await this.rows.markActive(tx, r.id, at);
      const redirect = (r: Binding) => this.registry.get(r.kind).capabilities.loginRedirect;
      const primary = restore.find(redirect) ?? restore[0] ?? retire[0]!;
      const after = this.view(await this.row(tx, primary.id));
      const rollback = { activated: restore.map((r) => r.id), retired: retire.map((r) => r.id) };
      await this.audit.record(tx, {
        tenantId: tenant.id,
        actor: p.actor,
        action: 'binding.rolled_back',
        target: primary.id,
        data: { ...rollback, after },
      });
      return { ...after, rollback };
    });
    this.db.rowsChanged('tenant_identity_providers');
    return view;
  }

  /** Runs the mapping rules on a sample (or the last test login's identity) without issuing anything. */
  async preview(
    tenant: Tenant,
    id: string,
    dto: MappingPreviewDto,
  ): Promise<{ source: 'sample' | 'test-login'; platformClaims: Record<string, unknown>; droppedClaims: string[] }> {
    const row = await this.db.transaction({ tenant: tenant.id }, (tx) => this.row(tx, id));
    let sample: ExternalIdentity;
    let source: 'sample' | 'test-login' = 'sample';
    if (dto.claims) sample = { issuer: dto.issuer ?? 'sample', subject: dto.subject ?? 'sample-subject', claims: dto.claims };
    else if (row.testIdentity) {
      sample = this.bindings.openSecrets(row.id, row.testIdentity) as unknown as ExternalIdentity;
      source = 'test-login';
    } else throw new ProblemError({ type: 'no-sample', detail: 'Send a sample identity (claims), or complete a test login first.' });
    const n: NormalisedIdentity = normaliseIdentity(row.claimMapping, sample);
    const claims = { email: n.email, email_verified: n.emailVerified, name: n.name, roles: n.roles };
    // A native login names an existing user (its subject is the user id): the tokens carry that
    // user's stored profile and roles, not what the mapping makes of the login's few claims.
    const user = row.kind === 'native' ? await this.users.nativeLoginProfile(tenant.id, sample.subject) : undefined;
    if (user)
      Object.assign(claims, {
        email: user.email,
        email_verified: user.email !== null && user.emailVerified,
        name: user.displayName,
        roles: [...new Set([...user.keptRoles, ...n.roles])].sort(),
      });
    const used = new Set<string>(
      [
        row.claimMapping.email ?? 'email',
        row.claimMapping.emailVerified ?? 'email_verified',
        row.claimMapping.name ?? 'name',
        row.claimMapping.givenName ?? 'given_name',
        row.claimMapping.familyName ?? 'family_name',
        ...(row.claimMapping.roles ?? []).map((r) => r.claim),
      ].map((c) => c.split('.')[0]!),
    );
    return {
      source,
      platformClaims: { tid: tenant.id, org: tenant.slug, ...claims, idp: row.kind, idp_sub: sample.subject },
      droppedClaims: Object.keys(sample.claims)
        .filter((k) => !used.has(k) && !used.has(k.split('.')[0]!))
        .sort(),
    };
  }

  /** Probes the upstream now (discovery, JWKS, metadata, certificate expiry) and stores the result. */
  async health(tenant: Tenant, id: string, refresh = true): Promise<BindingHealthView> {
    if (refresh) await this.refreshHealth(tenant, id);
    return this.db.transaction({ tenant: tenant.id }, async (tx) => {
      const r = await this.row(tx, id);
      return {
        bindingId: r.id,
        status: r.status,
        health: r.health,
        checkedAt: r.healthCheckedAt,
        lastLoginSucceededAt: r.lastLoginSucceededAt,
        lastLoginFailedAt: r.lastLoginFailedAt,
        lastFailure: r.lastFailure,
      };
    });
  }

  async refreshHealth(tenant: Tenant, id: string): Promise<void> {
    const binding = await this.db.transaction({ tenant: tenant.id }, (tx) => this.bindings.get(tenant, id, tx));
    const adapter = this.registry.healthProbe(binding.kind);
    if (!adapter) return;
    let health: BindingHealth;
    try {
      health = await adapter.probe(binding);
    } catch (err) {
      health = { ok: false, checks: { probe: `failed: ${err instanceof DomainError ? err.message : 'unexpected error'}` } };
    }
    await this.db.transaction({ tenant: tenant.id }, (tx) => this.rows.setHealth(tx, id, health));
  }

  /**
   * Activates `target` (the tenant's active set is locked, `at` is this change's stamp) and retires
   * the active bindings it replaces: with a browser login, every other one with a browser login;
   * otherwise the others of its kind.
   */
  private async switchTo(tx: Tx, p: AdminPrincipal, tenant: Tenant, target: Binding, at: string): Promise<BindingView> {
    const redirect = this.registry.get(target.kind).capabilities.loginRedirect;
    const active = await this.rows.listActiveExcept(tx, tenant.id, target.id);
    const replaced = active.filter((r) => (redirect ? this.registry.get(r.kind).capabilities.loginRedirect : r.kind === target.kind));
    for (const r of replaced) await this.rows.markRetired(tx, r.id, at);
    await this.rows.markActive(tx, target.id, at);
    const after = this.view(await this.row(tx, target.id));
    await this.audit.record(tx, {
      tenantId: tenant.id,
      actor: p.actor,
      action: 'binding.activated',
      target: target.id,
      data: { replaced: replaced.map((r) => r.id), after },
    });
    return after;
  }

  private async validate(
    tenant: Tenant,
    kind: IdpKind,
    config: Record<string, unknown>,
    secrets: Record<string, unknown>,
  ): Promise<{ config: Record<string, unknown>; health?: BindingHealth }> {
    const adapter = this.registry.configCheck(kind);
    if (!adapter) return { config };
    return adapter.validateConfig({ tenantSlug: tenant.slug, config, secrets });
  }

  private async row(tx: Tx, id: string): Promise<Binding> {
    if (!/^[0-9a-f-]{36}$/.test(id)) throw notFound();
    const row = await this.rows.findById(tx, id);
    if (!row) throw notFound();
    return row;
  }

  private view(r: Binding): BindingView {
    return {
      id: r.id,
      tenantId: r.tenantId,
      kind: r.kind,
      status: r.status,
      config: r.config,
      secretFields: Object.keys(this.bindings.openSecrets(r.id, r.secrets)).sort(),
      claimMapping: r.claimMapping,
      priority: r.priority,
      version: r.version,
      createdAt: r.createdAt,
      updatedAt: r.updatedAt,
      activatedAt: r.activatedAt,
      retiredAt: r.retiredAt,
      testLoginAt: r.testLoginAt,
    };
  }
}
