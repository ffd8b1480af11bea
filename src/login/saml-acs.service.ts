import { Injectable } from '@nestjs/common';
import { Database } from '../database/database.js';
import { AuditService } from '../audit/audit.service.js';
import { BindingsService } from '../tenants/bindings.service.js';
import type { Tenant } from '../tenants/tenants.service.js';
import type { BindingContext } from '../identity/port/identity-provider.port.js';
import type { SamlRejectReason } from '../identity/saml/saml-errors.js';

/** What the SAML service-provider endpoints (`SamlController`) read and record. */
@Injectable()
export class SamlAcsService {
  constructor(
    private readonly db: Database,
    private readonly bindings: BindingsService,
    private readonly audit: AuditService,
  ) {}

  /** The tenant's SAML binding: the active one first, else (with `includeDraft`) a draft; by priority, newest. */
  async samlBinding(tenant: Tenant, includeDraft: boolean): Promise<BindingContext | undefined> {
    return this.db.transaction({ tenant: tenant.id }, (tx) =>
      this.bindings.preferredOfKind(tenant, 'saml', { statuses: includeDraft ? ['active', 'draft'] : ['active'], enabledOnly: true }, tx),
    );
  }

  /** An IdP-initiated response was accepted. */
  async recordIdpInitiatedAccepted(tenant: Tenant, binding: BindingContext, requestId: string | undefined): Promise<void> {
    await this.db.transaction({ tenant: tenant.id }, (tx) =>
      this.audit.record(tx, {
        tenantId: tenant.id,
        actor: 'idp:saml',
        action: 'saml.idp_initiated_accepted',
        target: binding.id,
        requestId,
      }),
    );
  }

  /** A SAML response was refused (`reason`: the adapter's classification, never the response itself). */
  async recordRejection(tenant: Tenant, binding: BindingContext, reason: SamlRejectReason, requestId: string | undefined): Promise<void> {
    await this.db.transaction({ tenant: tenant.id }, (tx) =>
      this.audit.record(tx, {
        tenantId: tenant.id,
        actor: 'idp:saml',
        action: 'saml.response_rejected',
        target: binding.id,
        data: { reason },
        requestId,
      }),
    );
  }
}
