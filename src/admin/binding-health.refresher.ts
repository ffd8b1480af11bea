import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { Database } from '../database/database.js';
import { IdentityProviderRegistry } from '../identity/identity-provider.registry.js';
import type { IdpKind } from '../identity/port/identity-provider.port.js';
import { CERT_WARNING_DAYS } from '../identity/saml/saml-idp-metadata.service.js';
import type { Tenant } from '../tenants/tenants.service.js';
import { BindingsRepository } from '../tenants/bindings.repository.js';
import { TenantsRepository } from '../tenants/tenants.repository.js';
import { BindingsAdminService } from './bindings-admin.service.js';

export interface HealthRefreshOutcome {
  tenantId: string;
  bindingId: string;
  kind: IdpKind;
  ok: boolean;
  certificateExpiresInDays?: number;
}

export interface HealthRefreshReport {
  /** Bindings this replica probed in this round. */
  probed: HealthRefreshOutcome[];
  /** Due bindings another replica claimed first. */
  skipped: number;
  /** Bindings whose probe failed unexpectedly (logged; retried next round). */
  failed: number;
}

const TENANT_PAGE = 500;
/** Probes run in parallel per replica; each is bounded by the adapters' own request timeouts. */
const CONCURRENCY = 4;
/** First round this long after start, so a fresh replica does not wait a whole interval. */
const FIRST_ROUND_DELAY_MS = 30_000;

/**
 * Refreshes the connection health of every active binding of every active tenant in the
 * background (discovery and JWKS reachable, SAML metadata and certificate expiry), so the admin
 * API's health view is current and an IdP going bad shows up in the logs before users notice.
 *
 * Several replicas share the work through `health_checked_at`: a binding checked less than
 * 90 % of an interval ago (by anyone, including an admin's explicit refresh) is not due, and a
 * replica claims a due binding with a conditional update before probing it, so each binding is
 * probed about once per interval whatever the number of replicas.
 */
@Injectable()
export class BindingHealthRefresher implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('BindingHealthRefresher');
  private timers: NodeJS.Timeout[] = [];
  private running?: Promise<HealthRefreshReport>;

  constructor(
    private readonly db: Database,
    private readonly bindings: BindingsAdminService,
    private readonly tenantRows: TenantsRepository,
    private readonly bindingRows: BindingsRepository,
    private readonly registry: IdentityProviderRegistry,
    @Inject(AppConfig) private readonly config: AppConfig,
  ) {}

  /** On by default, off under NODE_ENV=test unless BINDING_HEALTH_REFRESH turns it on. */
  get enabled(): boolean {
    return this.config.BINDING_HEALTH_REFRESH ?? this.config.NODE_ENV !== 'test';
  }

  private get intervalMs(): number {
    return this.config.BINDING_HEALTH_INTERVAL_SECONDS * 1000;
  }

  onApplicationBootstrap(): void {
    if (!this.enabled) return;
    const tick = () => {
      this.refreshAll().catch((err: unknown) =>
        this.logger.warn({ reason: err instanceof Error ? err.message : 'unknown' }, 'binding health refresh round failed'),
      );
    };
    const first = setTimeout(tick, Math.min(FIRST_ROUND_DELAY_MS, this.intervalMs));
    const every = setInterval(tick, this.intervalMs);
    first.unref();
    every.unref();
    this.timers = [first, every];
  }

  onApplicationShutdown(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
  }

  /** One round over all tenants. Concurrent calls on one replica share the round in progress. */
  refreshAll(): Promise<HealthRefreshReport> {
    this.running ??= this.round().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async round(): Promise<HealthRefreshReport> {
    const report: HealthRefreshReport = { probed: [], skipped: 0, failed: 0 };
    const dueBefore = new Date(Date.now() - Math.floor(this.intervalMs * 0.9));
    let after = '00000000-0000-0000-0000-000000000000';
    for (;;) {
      const tenants = await this.db.transaction('platform', (tx) => this.tenantRows.listActiveById(tx, after, TENANT_PAGE));
      const work: Array<{ tenant: Tenant; id: string; kind: IdpKind }> = [];
      for (const tenant of tenants) {
        const due = await this.db.transaction({ tenant: tenant.id }, (tx) => this.bindingRows.listDueForHealth(tx, tenant.id, dueBefore));
        for (const b of due) if (this.probeable(b.kind)) work.push({ tenant, id: b.id, kind: b.kind });
      }
      await this.runPool(work, async (w) => {
        try {
          if (!(await this.claim(w.tenant.id, w.id, dueBefore))) {
            report.skipped += 1;
            return;
          }
          const view = await this.bindings.health(w.tenant, w.id, true);
          const outcome: HealthRefreshOutcome = {
            tenantId: w.tenant.id,
            bindingId: w.id,
            kind: w.kind,
            ok: view.health?.ok ?? false,
            certificateExpiresInDays: view.health?.certificateExpiresInDays,
          };
          report.probed.push(outcome);
          this.warnAbout(outcome, view.health?.checks ?? {}, view.health?.warnings ?? []);
        } catch (err) {
          report.failed += 1;
          this.logger.warn(
            { tenant: w.tenant.id, binding: w.id, kind: w.kind, reason: err instanceof Error ? err.message : 'unknown' },
            'binding health probe failed',
          );
        }
      });
      if (tenants.length < TENANT_PAGE) break;
      after = tenants[tenants.length - 1]!.id;
    }
    return report;
  }

  private probeable(kind: IdpKind): boolean {
    try {
      return this.registry.healthProbe(kind) !== undefined;
    } catch {
      return false;
    }
  }

  /** Marks the binding as being checked now, unless another replica did (or is doing) it since the round started. */
  private async claim(tenantId: string, bindingId: string, dueBefore: Date): Promise<boolean> {
    return this.db.transaction({ tenant: tenantId }, (tx) => this.bindingRows.claimHealthCheck(tx, bindingId, dueBefore));
  }

  private warnAbout(o: HealthRefreshOutcome, checks: Record<string, string>, warnings: string[]): void {
    if (!o.ok)
      this.logger.warn({ tenant: o.tenantId, binding: o.bindingId, kind: o.kind, checks }, 'identity-provider binding is unhealthy');
    // Configuration that weakens a working binding (e.g. SHA-1 accepted) is repeated every round until changed.
    if (warnings.length > 0)
      this.logger.warn(
        { tenant: o.tenantId, binding: o.bindingId, kind: o.kind, warnings },
        'identity-provider binding configuration is weakened',
      );
    if (o.certificateExpiresInDays !== undefined && o.certificateExpiresInDays < CERT_WARNING_DAYS)
      this.logger.warn(
        { tenant: o.tenantId, binding: o.bindingId, kind: o.kind, daysUntilExpiry: o.certificateExpiresInDays },
        o.certificateExpiresInDays < 0 ? 'IdP signing certificate has expired' : 'IdP signing certificate expires soon',
      );
  }

  private async runPool<T>(items: T[], work: (item: T) => Promise<void>): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < items.length) await work(items[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(CONCURRENCY, items.length) }, worker));
  }
}
