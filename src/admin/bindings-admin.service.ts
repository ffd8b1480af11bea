import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { Database } from '../database/database.js';
import { AuditService } from '../audit/audit.service.js';
import { DomainError, ProblemError, problemType } from '../common/errors.js';
import { BindingsService, type BindingRow } from '../tenants/bindings.service.js';
import type { Tenant } from '../tenants/tenants.service.js';
import { IdentityProviderRegistry } from '../identity/identity-provider.registry.js';
import type { BindingHealth, ClaimMappingRules, ExternalIdentity, IdpKind } from '../identity/port/identity-provider.port.js';
import { normaliseIdentity, type NormalisedIdentity } from '../users/claim-normaliser.js';
import { LoginService } from '../login/login.service.js';
import type { AdminPrincipal } from './admin-auth.js';
import type { CreateBindingDto, MappingPreviewDto, UpdateBindingDto } from './dto.js';

/** The full row, with the staged-activation and health columns the admin API shows. */
interface Row extends BindingRow {
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

/** A binding as the admin API shows it: secrets are write-only, so only their names appear. */
export interface BindingView {
  id: string;
  tenantId: string;
  kind: IdpKind;
  status: Row['status'];
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
  status: Row['status'];
  health: BindingHealth | null;
  checkedAt: Date | null;
  lastLoginSucceededAt: Date | null;
  lastLoginFailedAt: Date | null;
  lastFailure: string | null;
}

const notFound = () => new ProblemError(404, 'Binding not found', undefined, problemType('binding-not-found'));

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
    private readonly registry: IdentityProviderRegistry,
    private readonly login: LoginService,
    private readonly audit: AuditService,
  ) {}

  async create(p: AdminPrincipal, tenant: Tenant, dto: CreateBindingDto): Promise<BindingView> {
    const { config, health } = await this.validate(tenant, dto.kind, dto.config ?? {}, dto.secrets ?? {});
    const created = await this.bindings.create(tenant, {
      kind: dto.kind,
      config,
      secrets: dto.secrets,
      claimMapping: dto.claimMapping ?? {},
      priority: dto.priority,
      status: 'draft',
      migrationImport: dto.migrationImport,
    });
    const view = await this.db.tenantTx(tenant.id, async (m) => {
      if (health)
        await m.query(`UPDATE tenant_identity_providers SET health = $2, health_checked_at = now() WHERE id = $1`, [
          created.id,
          JSON.stringify(health),
        ]);
      const v = this.view(await this.row(m, created.id));
      await this.audit.record(m, {
        tenantId: tenant.id,
        actor: p.actor,
        action: 'binding.created',
        target: created.id,
        data: { after: v },
      });
      return v;
    });
    return view;
  }

  async list(tenant: Tenant): Promise<BindingView[]> {
    return this.db.tenantTx(tenant.id, async (m) =>
      (await m.query<Row[]>(`SELECT * FROM tenant_identity_providers WHERE tenant_id = $1 ORDER BY created_at DESC`, [tenant.id])).map(
        (r) => this.view(r),
      ),
    );
  }

  async get(tenant: Tenant, id: string): Promise<BindingView> {
    return this.db.tenantTx(tenant.id, async (m) => this.view(await this.row(m, id)));
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
      throw new ProblemError(
        400,
        'Status is not editable',
        "A binding's status changes only through POST …/bindings/{id}/activate, POST …/bindings/{id}/retire and POST …/bindings/rollback.",
        problemType('status-not-editable'),
      );
    const current = await this.db.tenantTx(tenant.id, (m) => this.row(m, id));
    if (current.version !== version)
      throw new ProblemError(412, 'Precondition failed', 'The binding changed since you read it.', problemType('stale-etag'));
    const secrets = dto.secrets ?? this.bindings.openSecrets(current.id, current.secrets);
    const { config, health } = await this.validate(tenant, current.kind, dto.config ?? current.config, secrets);
    const claimMapping = dto.claimMapping ?? current.claim_mapping;
    const before = this.view(current);
    if (current.status === 'draft') {
      const view = await this.db.tenantTx(tenant.id, async (m) => {
        const res = await m.query<[unknown, number]>(
          `UPDATE tenant_identity_providers SET config = $3, claim_mapping = $4, priority = $5, secrets = $6, health = $7, health_checked_at = now(),
                  version = version + 1, updated_at = now()
            WHERE id = $1 AND version = $2 AND status = 'draft'`,
          [
            id,
            version,
            JSON.stringify(config),
            JSON.stringify(claimMapping),
            dto.priority ?? current.priority,
            this.bindings.sealSecrets(id, secrets),
            health ? JSON.stringify(health) : null,
          ],
        );
        if (res[1] === 0)
          throw new ProblemError(412, 'Precondition failed', 'The binding changed since you read it.', problemType('stale-etag'));
        const after = this.view(await this.row(m, id));
        await this.audit.record(m, { tenantId: tenant.id, actor: p.actor, action: 'binding.updated', target: id, data: { before, after } });
        return after;
      });
      return { view, created: false };
    }
    const draft = await this.bindings.create(tenant, {
      kind: current.kind,
      config,
      secrets,
      claimMapping,
      priority: dto.priority ?? current.priority,
      status: 'draft',
      migrationImport: true,
    });
    const view = await this.db.tenantTx(tenant.id, async (m) => {
      if (health)
        await m.query(`UPDATE tenant_identity_providers SET health = $2, health_checked_at = now() WHERE id = $1`, [
          draft.id,
          JSON.stringify(health),
        ]);
      const after = this.view(await this.row(m, draft.id));
      await this.audit.record(m, {
        tenantId: tenant.id,
        actor: p.actor,
        action: 'binding.created',
        target: draft.id,
        data: { from: id, before, after },
      });
      return after;
    });
    return { view, created: true };
  }

  /** Starts a real login through the binding (even a draft) for the customer's IT admin. */
  async testLogin(p: AdminPrincipal, tenant: Tenant, id: string): Promise<{ url: string }> {
    const binding = await this.db.tenantTx(tenant.id, (m) => this.bindings.get(tenant, id, m));
    const url = await this.login.beginTest(tenant, binding);
    await this.db.tenantTx(tenant.id, (m) =>
      this.audit.record(m, { tenantId: tenant.id, actor: p.actor, action: 'binding.test_login_started', target: id }),
    );
    return { url };
  }

  /**
   * Activates a draft. A binding with a browser login must have completed a test login since its
   * last change. The bindings it replaces (the active ones with the same login style) are retired.
   */
  async activate(p: AdminPrincipal, tenant: Tenant, id: string, version: number): Promise<BindingView> {
    const view = await this.db.tenantTx(tenant.id, async (m) => {
      const at = await this.lockActiveSet(m, tenant.id);
      const row = await this.row(m, id);
      if (row.version !== version)
        throw new ProblemError(412, 'Precondition failed', 'The binding changed since you read it.', problemType('stale-etag'));
      if (row.status !== 'draft')
        throw new ProblemError(
          409,
          'Not a draft',
          `Only a draft can be activated; this binding is ${row.status}. Use rollback to undo the change that retired it.`,
          problemType('not-draft'),
        );
      const redirect = this.registry.get(row.kind).capabilities.loginRedirect;
      if (redirect && (!row.test_login_at || row.test_login_at < row.updated_at))
        throw new ProblemError(
          409,
          'Test login required',
          'Complete a test login through this binding (POST …/test-login) before activating it.',
          problemType('test-login-required'),
        );
      return this.switchTo(m, p, tenant, row, at);
    });
    this.db.rowsChanged('tenant_identity_providers');
    return view;
  }

  /**
   * Takes an active binding out of service without activating anything else (e.g. the end of a
   * Firebase overlap). The row is kept, with the identity links made through it; rollback undoes it.
   */
  async retire(p: AdminPrincipal, tenant: Tenant, id: string, version: number): Promise<BindingView> {
    const view = await this.db.tenantTx(tenant.id, async (m) => {
      const at = await this.lockActiveSet(m, tenant.id);
      const row = await this.row(m, id);
      if (row.version !== version)
        throw new ProblemError(412, 'Precondition failed', 'The binding changed since you read it.', problemType('stale-etag'));
      if (row.status !== 'active')
        throw new ProblemError(
          409,
          'Not active',
          `Only an active binding can be retired; this binding is ${row.status}.`,
          problemType('not-active'),
        );
      const before = this.view(row);
      await m.query(`UPDATE tenant_identity_providers SET status = 'retired', retired_at = $2, version = version + 1 WHERE id = $1`, [
        id,
        at,
      ]);
      const after = this.view(await this.row(m, id));
      await this.audit.record(m, { tenantId: tenant.id, actor: p.actor, action: 'binding.retired', target: id, data: { before, after } });
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
    const view = await this.db.tenantTx(tenant.id, async (m) => {
      const at = await this.lockActiveSet(m, tenant.id);
      const changed = await m.query<Row[]>(
        `WITH last AS (
           SELECT max(CASE status WHEN 'active' THEN activated_at WHEN 'retired' THEN retired_at END) AS at
             FROM tenant_identity_providers WHERE tenant_id = $1)
         SELECT t.* FROM tenant_identity_providers t, last
          WHERE t.tenant_id = $1
            AND ((t.status = 'active' AND t.activated_at = last.at) OR (t.status = 'retired' AND t.retired_at = last.at))
          ORDER BY t.priority DESC, t.created_at`,
        [tenant.id],
      );
      if (changed.length === 0)
        throw new ProblemError(
          409,
          'Nothing to roll back',
          'No binding of this tenant was activated or retired through the admin API.',
          problemType('nothing-to-roll-back'),
        );
      const restore = changed.filter((r) => r.status === 'retired');
      const retire = changed.filter((r) => r.status === 'active');
      for (const r of retire)
        await m.query(`UPDATE tenant_identity_providers SET status = 'retired', retired_at = $2, version = version + 1 WHERE id = $1`, [
          r.id,
          at,
        ]);
      for (const r of restore)
        await m.query(
          `UPDATE tenant_identity_providers SET status = 'active', activated_at = $2, retired_at = NULL, version = version + 1 WHERE id = $1`,
          [r.id, at],
        );
      const redirect = (r: Row) => this.registry.get(r.kind).capabilities.loginRedirect;
      const primary = restore.find(redirect) ?? restore[0] ?? retire[0]!;
      const after = this.view(await this.row(m, primary.id));
      const rollback = { activated: restore.map((r) => r.id), retired: retire.map((r) => r.id) };
      await this.audit.record(m, {
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
    const row = await this.db.tenantTx(tenant.id, (m) => this.row(m, id));
    let sample: ExternalIdentity;
    let source: 'sample' | 'test-login' = 'sample';
    if (dto.claims) sample = { issuer: dto.issuer ?? 'sample', subject: dto.subject ?? 'sample-subject', claims: dto.claims };
    else if (row.test_identity) {
      sample = this.bindings.openSecrets(row.id, row.test_identity) as unknown as ExternalIdentity;
      source = 'test-login';
    } else
      throw new ProblemError(
        400,
        'No sample',
        'Send a sample identity (claims), or complete a test login first.',
        problemType('no-sample'),
      );
    const n: NormalisedIdentity = normaliseIdentity(row.claim_mapping, sample);
    const claims = { email: n.email, email_verified: n.emailVerified, name: n.name, roles: n.roles };
    // A native login names an existing user (its subject is the user id): the tokens carry that
    // user's stored profile and roles, not what the mapping makes of the login's few claims.
    const user = row.kind === 'native' ? await this.nativeUser(tenant, sample.subject) : undefined;
    if (user)
      Object.assign(claims, {
        email: user.email,
        email_verified: user.email !== null && user.email_verified,
        name: user.display_name,
        roles: [...new Set([...user.roles, ...n.roles])].sort(),
      });
    const used = new Set<string>(
      [
        row.claim_mapping.email ?? 'email',
        row.claim_mapping.emailVerified ?? 'email_verified',
        row.claim_mapping.name ?? 'name',
        row.claim_mapping.givenName ?? 'given_name',
        row.claim_mapping.familyName ?? 'family_name',
        ...(row.claim_mapping.roles ?? []).map((r) => r.claim),
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

  /**
   * The native user a login through the binding would sign in, as the token endpoint will read it:
   * its profile, and the roles a login keeps (given by hand or by SCIM; the mapped roles of the
   * login replace the ones an earlier login mapped).
   */
  private async nativeUser(
    tenant: Tenant,
    userId: string,
  ): Promise<{ email: string | null; email_verified: boolean; display_name: string | null; roles: string[] } | undefined> {
    if (!/^[0-9a-f-]{36}$/.test(userId)) return undefined;
    return this.db.tenantTx(tenant.id, async (m) => {
      const [user] = await m.query<Array<{ email: string | null; email_verified: boolean; display_name: string | null; roles: string[] }>>(
        `SELECT u.email, u.email_verified, u.display_name,
                ARRAY(SELECT DISTINCT r.role FROM user_roles r WHERE r.user_id = u.id AND r.source <> 'idp' ORDER BY 1) AS roles
           FROM users u JOIN native_credentials c ON c.user_id = u.id WHERE u.id = $1 AND u.tenant_id = $2`,
        [userId, tenant.id],
      );
      return user;
    });
  }

  /** Probes the upstream now (discovery, JWKS, metadata, certificate expiry) and stores the result. */
  async health(tenant: Tenant, id: string, refresh = true): Promise<BindingHealthView> {
    if (refresh) await this.refreshHealth(tenant, id);
    return this.db.tenantTx(tenant.id, async (m) => {
      const r = await this.row(m, id);
      return {
        bindingId: r.id,
        status: r.status,
        health: r.health,
        checkedAt: r.health_checked_at,
        lastLoginSucceededAt: r.last_login_succeeded_at,
        lastLoginFailedAt: r.last_login_failed_at,
        lastFailure: r.last_failure,
      };
    });
  }

  async refreshHealth(tenant: Tenant, id: string): Promise<void> {
    const binding = await this.db.tenantTx(tenant.id, (m) => this.bindings.get(tenant, id, m));
    const adapter = this.registry.get(binding.kind);
    if (!adapter.probe) return;
    let health: BindingHealth;
    try {
      health = await adapter.probe(binding);
    } catch (err) {
      health = { ok: false, checks: { probe: `failed: ${err instanceof DomainError ? err.message : 'unexpected error'}` } };
    }
    await this.db.tenantTx(tenant.id, (m) =>
      m.query(`UPDATE tenant_identity_providers SET health = $2, health_checked_at = now() WHERE id = $1`, [id, JSON.stringify(health)]),
    );
  }

  /**
   * Serialises changes to the tenant's active bindings: locks all its binding rows (in id order, so
   * concurrent changes queue rather than deadlock) and returns this change's stamp, strictly later
   * than every stamp already stored (as text, to keep PostgreSQL's microseconds).
   */
  private async lockActiveSet(m: EntityManager, tenantId: string): Promise<string> {
    await m.query(`SELECT id FROM tenant_identity_providers WHERE tenant_id = $1 ORDER BY id FOR UPDATE`, [tenantId]);
    const [{ at }] = await m.query<[{ at: string }]>(
      `SELECT greatest(clock_timestamp(), max(greatest(activated_at, retired_at)) + interval '1 microsecond')::text AS at
         FROM tenant_identity_providers WHERE tenant_id = $1`,
      [tenantId],
    );
    return at;
  }

  private async switchTo(m: EntityManager, p: AdminPrincipal, tenant: Tenant, target: Row, at: string): Promise<BindingView> {
    const redirect = this.registry.get(target.kind).capabilities.loginRedirect;
    const active = await m.query<Row[]>(`SELECT * FROM tenant_identity_providers WHERE tenant_id = $1 AND status = 'active' AND id <> $2`, [
      tenant.id,
      target.id,
    ]);
    const replaced = active.filter((r) => (redirect ? this.registry.get(r.kind).capabilities.loginRedirect : r.kind === target.kind));
    for (const r of replaced)
      await m.query(`UPDATE tenant_identity_providers SET status = 'retired', retired_at = $2, version = version + 1 WHERE id = $1`, [
        r.id,
        at,
      ]);
    await m.query(
      `UPDATE tenant_identity_providers SET status = 'active', activated_at = $2, retired_at = NULL, version = version + 1 WHERE id = $1`,
      [target.id, at],
    );
    const after = this.view(await this.row(m, target.id));
    await this.audit.record(m, {
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
    const adapter = this.registry.get(kind);
    if (!adapter.validateConfig) return { config };
    return adapter.validateConfig({ tenantSlug: tenant.slug, config, secrets });
  }

  private async row(m: EntityManager, id: string): Promise<Row> {
    if (!/^[0-9a-f-]{36}$/.test(id)) throw notFound();
    const [row] = await m.query<Row[]>(`SELECT * FROM tenant_identity_providers WHERE id = $1`, [id]);
    if (!row) throw notFound();
    return row;
  }

  private view(r: Row): BindingView {
    return {
      id: r.id,
      tenantId: r.tenant_id,
      kind: r.kind,
      status: r.status,
      config: r.config,
      secretFields: Object.keys(this.bindings.openSecrets(r.id, r.secrets)).sort(),
      claimMapping: r.claim_mapping,
      priority: r.priority,
      version: r.version,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
      activatedAt: r.activated_at,
      retiredAt: r.retired_at,
      testLoginAt: r.test_login_at,
    };
  }
}
