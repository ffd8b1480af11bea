import { Inject, Injectable } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { Database, type Tx } from '../database/database.js';
import { SessionsService } from '../sessions/sessions.service.js';
import { AuditService } from '../audit/audit.service.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { DependencyUnavailableError, ScimError } from '../common/errors.js';
import { currentRequestId } from '../common/request-context.js';
import { type Doc, isObject, normaliseDocument, projectDocument, wantsAttribute } from './scim-document.js';
import { PatchEngine, type PatchOperation, parsePatchRequest } from './scim-patch.js';
import { CORE_USER, ENTERPRISE_USER, USER_RESOURCE } from './scim-schemas.js';
import { USER_CI, USER_SQL, compileFilter } from './scim-sql.js';
import { type ListQuery, type ProjectionQuery, assertIfMatch, etagOf, isUuid, knownTotal, listResponse } from './scim-http.js';
import { ScimDeprovisionGuard, type HeldRequest } from './scim-deprovision-guard.service.js';
import type { ScimPrincipal } from './scim-tokens.service.js';
import { adoptionCandidates, canonical, columnsOf, documentOf } from './scim-user-columns.js';
import { type CreateOutcome, ScimUserCreateBatcher } from './scim-user-create-batcher.js';
import { type ScimUserColumns, type ScimUserRow, ScimUsersRepository, USER_FILTER_PARAM_OFFSET } from './scim-users.repository.js';

/** Whether a PATCH says something about `active` (then it may supersede a held deactivation). */
function patchMentionsActive(ops: readonly PatchOperation[]): boolean {
  return ops.some((o) =>
    o.path !== undefined ? /^active$/i.test(o.path) : isObject(o.value) && Object.keys(o.value).some((k) => /^active$/i.test(k)),
  );
}

export interface RenderedUser {
  resource: Doc;
  version: number;
  id: string;
}

type WriteOutcome = { ok: true; row: ScimUserRow } | { ok: false; error: ScimError };

const UNIQUE_USER_NAME = 'users_user_name_key';

/**
 * SCIM Users over the platform `users` table. Creates that arrive together for one tenant share a
 * transaction (ScimUserCreateBatcher); every other write runs in one tenant transaction with
 * the row locked (`FOR UPDATE`): a PATCH is applied in memory, validated as a whole and written
 * back, so a failing operation changes nothing. Deactivation (active=false or DELETE) disables
 * the platform user, revokes every session (and with them every refresh-token family) and is
 * audited; the mass-deprovisioning guard may hold it instead.
 */
@Injectable()
export class ScimUsersService {
  private readonly patcher = new PatchEngine(USER_RESOURCE);
  private readonly creates: ScimUserCreateBatcher;

  constructor(
    private readonly db: Database,
    private readonly audit: AuditService,
    private readonly guard: ScimDeprovisionGuard,
    private readonly users: ScimUsersRepository,
    private readonly sessions: SessionsService,
    @Inject(AppConfig) private readonly config: AppConfig,
    metrics: MetricsService,
  ) {
    this.creates = new ScimUserCreateBatcher(db, users, metrics);
  }

  private get base(): string {
    return `${this.config.issuer}/scim/v2`;
  }

  location(id: string): string {
    return `${this.base}/Users/${id}`;
  }

  // ----- reads -----------------------------------------------------------------------

  async list(p: ScimPrincipal, q: ListQuery): Promise<Record<string, unknown>> {
    const filter = q.filter !== undefined ? compileFilter(q.filter, USER_SQL, USER_FILTER_PARAM_OFFSET, USER_CI) : undefined;
    return this.db.transaction({ tenant: p.tenantId }, async (tx) => {
      const rows =
        q.count > 0
          ? await this.users.page(tx, p.tenantId, filter, { limit: q.count, offset: q.startIndex - 1, withGroups: this.wantsGroups(q) })
          : [];
      const total = knownTotal(rows.length, q) ?? (await this.users.count(tx, p.tenantId, filter));
      return listResponse(total, q.startIndex, await this.renderAll(tx, rows, q));
    });
  }

  async get(p: ScimPrincipal, id: string, q: ProjectionQuery): Promise<RenderedUser> {
    return this.db.transaction({ tenant: p.tenantId }, async (tx) => {
      const row = await this.find(tx, id, false, this.wantsGroups(q));
      return this.rendered(tx, row, q);
    });
  }

  // ----- writes ----------------------------------------------------------------------

  async create(p: ScimPrincipal, body: unknown, q: ProjectionQuery): Promise<RenderedUser> {
    const doc = normaliseDocument(USER_RESOURCE, body, { checkSchemas: true });
    const c = columnsOf(doc);
    let outcome: CreateOutcome;
    try {
      outcome = await this.creates.submit(p.tenantId, { c, actor: this.actor(p), requestId: currentRequestId() ?? null });
    } catch (err) {
      // The database is unreachable, or the batch's COMMIT may or may not have landed: answering
      // for this request alone could turn a created user into a 409. Anything else (a value the
      // database refused) failed the whole batch: each of its requests is retried on its own below,
      // so only the offending one fails.
      if (err instanceof DependencyUnavailableError) throw err;
      outcome = { kind: 'alone' };
    }
    if (outcome.kind === 'created') return this.rendered(undefined, outcome.row, q, true);
    if (outcome.kind === 'taken') throw new ScimError(409, 'A user with this userName already exists in this tenant.', 'uniqueness');
    return this.createAlone(p, c, q);
  }

  /** One create in its own transaction: adopts a user who logged in before SCIM pushed them. */
  private async createAlone(p: ScimPrincipal, c: ScimUserColumns, q: ProjectionQuery): Promise<RenderedUser> {
    return this.uniquely(() =>
      this.db.transaction({ tenant: p.tenantId }, async (tx) => {
        // A user who logged in before the directory pushed them (JIT, native) is adopted rather
        // than duplicated: same tenant, same verified email, not yet managed by SCIM.
        const res = await this.users.insertUnlessAdoptable(tx, p.tenantId, c, adoptionCandidates(c));
        const adopt = !res.row && res.candidates.length === 1 ? res.candidates[0] : undefined;
        const row = adopt ? await this.users.update(tx, adopt, c) : res.row;
        if (!row) throw new Error('scim user create: neither inserted nor adopted');
        if (adopt) await this.audit.record(tx, { tenantId: p.tenantId, actor: this.actor(p), action: 'scim.user_adopted', target: row.id });
        await this.audit.record(tx, {
          tenantId: p.tenantId,
          actor: this.actor(p),
          action: 'scim.user_created',
          target: row.id,
          data: { active: c.active, adopted: !!adopt },
        });
        // A user created just now belongs to no group yet; an adopted one may.
        return this.rendered(tx, row, q, !adopt);
      }),
    );
  }

  async replace(p: ScimPrincipal, id: string, body: unknown, ifMatch: string | undefined, q: ProjectionQuery): Promise<RenderedUser> {
    const doc = normaliseDocument(USER_RESOURCE, body, { checkSchemas: true });
    const assertsActive = isObject(body) && Object.keys(body).some((k) => /^active$/i.test(k)) && doc['active'] === true;
    return this.writeAndRender(p, id, ifMatch, q, { method: 'PUT', body }, assertsActive, (old) => {
      // Okta sends the whole object; an omitted `active` keeps the current state.
      if (doc['active'] === undefined) doc['active'] = old['active'];
      return doc;
    });
  }

  async patch(p: ScimPrincipal, id: string, body: unknown, ifMatch: string | undefined, q: ProjectionQuery): Promise<RenderedUser> {
    const ops = parsePatchRequest(body);
    const assertsActive = patchMentionsActive(ops);
    return this.writeAndRender(p, id, ifMatch, q, { method: 'PATCH', body }, assertsActive, (old) =>
      normaliseDocument(USER_RESOURCE, this.patcher.apply(old, ops)),
    );
  }

  /**
   * DELETE: the platform user is disabled (never erased: sessions and audit keep pointing at it),
   * leaves SCIM (404 from now on, userName free again), loses its group memberships and its
   * upstream identity links, so that a user the IdP creates again later links afresh.
   */
  async delete(p: ScimPrincipal, id: string, ifMatch: string | undefined, bypassGuard = false): Promise<void> {
    const outcome = await this.db.transaction({ tenant: p.tenantId }, async (tx): Promise<ScimError | undefined> => {
      const row = await this.find(tx, id, true);
      assertIfMatch(ifMatch, row.version);
      if (row.status === 'active') {
        if (bypassGuard) await this.guard.recordApplied(tx, p.tenantId, row.id, 'delete');
        else {
          const decision = await this.guard.check(tx, p, row.id, 'delete', { method: 'DELETE' });
          if (!decision.allowed) return decision.error;
        }
      }
      await this.users.leaveScim(tx, row.id);
      const revoked = await this.revokeSessions(tx, row.id, 'scim_deleted');
      await this.audit.record(tx, {
        tenantId: p.tenantId,
        actor: this.actor(p),
        action: 'scim.user_deleted',
        target: row.id,
        data: { sessionsRevoked: revoked, released: bypassGuard },
      });
      return undefined;
    });
    if (outcome) throw outcome;
  }

  /** Applies a request the guard held, now released by an administrator. */
  async applyReleased(p: ScimPrincipal, userId: string, request: HeldRequest): Promise<void> {
    if (request.method === 'DELETE') return this.delete(p, userId, undefined, true);
    const body = request.body;
    if (request.method === 'PUT') {
      const doc = normaliseDocument(USER_RESOURCE, body, { checkSchemas: true });
      await this.writeAndRender(
        p,
        userId,
        undefined,
        {},
        request,
        false,
        (old) => {
          if (doc['active'] === undefined) doc['active'] = old['active'];
          return doc;
        },
        true,
      );
      return;
    }
    const ops = parsePatchRequest(body);
    await this.writeAndRender(
      p,
      userId,
      undefined,
      {},
      request,
      false,
      (old) => normaliseDocument(USER_RESOURCE, this.patcher.apply(old, ops)),
      true,
    );
  }

  // ----- internals -------------------------------------------------------------------

  private actor(p: ScimPrincipal): string {
    return `scim:${p.tokenId}`;
  }

  private wantsGroups(q: ProjectionQuery): boolean {
    return wantsAttribute(USER_RESOURCE, 'groups', q.attributes, q.excludedAttributes);
  }

  private async find(tx: Tx, id: string, forUpdate: boolean, withGroups = false): Promise<ScimUserRow> {
    // A malformed id is answered like an unknown one: 404, nothing to learn.
    if (!isUuid(id)) throw new ScimError(404, 'No such user in this tenant.');
    const row = await this.users.find(tx, id, { forUpdate, withGroups });
    if (!row) throw new ScimError(404, 'No such user in this tenant.');
    return row;
  }

  private async writeAndRender(
    p: ScimPrincipal,
    id: string,
    ifMatch: string | undefined,
    q: ProjectionQuery,
    request: HeldRequest,
    assertsActive: boolean,
    next: (old: Doc) => Doc,
    bypassGuard = false,
  ): Promise<RenderedUser> {
    const outcome = await this.uniquely(() =>
      this.db.transaction(
        { tenant: p.tenantId },
        async (tx): Promise<{ ok: true; user: RenderedUser } | { ok: false; error: ScimError }> => {
          const row = await this.find(tx, id, true);
          assertIfMatch(ifMatch, row.version);
          const old = documentOf(row);
          const doc = next(old);
          const result = await this.commit(tx, p, row, old, doc, request, assertsActive, bypassGuard);
          if (!result.ok) return result;
          return { ok: true, user: await this.rendered(tx, result.row, q) };
        },
      ),
    );
    // A held request commits the hold (and nothing else) before the error is sent.
    if (!outcome.ok) throw outcome.error;
    return outcome.user;
  }

  private async commit(
    tx: Tx,
    p: ScimPrincipal,
    row: ScimUserRow,
    old: Doc,
    doc: Doc,
    request: HeldRequest,
    assertsActive: boolean,
    bypassGuard: boolean,
  ): Promise<WriteOutcome> {
    const wasActive = row.status === 'active';
    const c = columnsOf(doc);
    if (wasActive && !c.active) {
      if (bypassGuard) await this.guard.recordApplied(tx, p.tenantId, row.id, 'deactivate');
      else {
        const decision = await this.guard.check(tx, p, row.id, 'deactivate', request);
        if (!decision.allowed) return { ok: false, error: decision.error };
      }
    }
    if (c.active && assertsActive) await this.guard.supersede(tx, p.tenantId, row.id);
    if (canonical(old) === canonical(doc)) return { ok: true, row };
    const written = await this.users.update(tx, row.id, c);
    if (wasActive && !c.active) {
      const revoked = await this.revokeSessions(tx, row.id, 'scim_deactivated');
      await this.audit.record(tx, {
        tenantId: p.tenantId,
        actor: this.actor(p),
        action: 'scim.user_deactivated',
        target: row.id,
        data: { sessionsRevoked: revoked, released: bypassGuard },
      });
    } else if (!wasActive && c.active) {
      await this.audit.record(tx, { tenantId: p.tenantId, actor: this.actor(p), action: 'scim.user_reactivated', target: row.id });
    } else {
      await this.audit.record(tx, { tenantId: p.tenantId, actor: this.actor(p), action: 'scim.user_updated', target: row.id });
    }
    return { ok: true, row: written };
  }

  /** Ends every session of the user at once; refresh tokens hang off sessions, so every family dies with them. */
  private async revokeSessions(tx: Tx, userId: string, reason: string): Promise<number> {
    return this.sessions.revokeAllOfUser(tx, userId, reason);
  }

  /** `tx` may be left out when `noGroups` says there is nothing to read. */
  private async rendered(tx: Tx | undefined, row: ScimUserRow, q: ProjectionQuery, noGroups = false): Promise<RenderedUser> {
    const [resource] = await this.renderAll(tx, [row], q, noGroups);
    if (!resource) throw new Error('renderAll: no resource');
    return { resource, version: row.version, id: row.id };
  }

  private async renderAll(tx: Tx | undefined, rows: ScimUserRow[], q: ProjectionQuery, noGroups = false): Promise<Doc[]> {
    const groups = new Map<string, Doc[]>();
    const ref = (id: string, display: string): Doc => ({ value: id, $ref: `${this.base}/Groups/${id}`, display, type: 'direct' });
    const wanted = !noGroups && this.wantsGroups(q);
    if (wanted && rows.every((r) => r.groups !== undefined)) {
      for (const r of rows)
        if (r.groups?.length)
          groups.set(
            r.id,
            r.groups.map((g) => ref(g.id, g.display)),
          );
    } else if (rows.length && wanted) {
      if (!tx) throw new Error('renderAll: groups wanted outside a transaction');
      for (const g of await this.users.groupsOf(
        tx,
        rows.map((r) => r.id),
      )) {
        const list = groups.get(g.userId) ?? [];
        list.push(ref(g.id, g.displayName));
        groups.set(g.userId, list);
      }
    }
    return rows.map((r) => {
      const doc = documentOf(r);
      const resource: Doc = {
        schemas: doc[ENTERPRISE_USER] ? [CORE_USER, ENTERPRISE_USER] : [CORE_USER],
        id: r.id,
        ...doc,
        ...(groups.has(r.id) ? { groups: groups.get(r.id) } : {}),
        meta: {
          resourceType: 'User',
          created: r.createdAt.toISOString(),
          lastModified: r.updatedAt.toISOString(),
          location: this.location(r.id),
          version: etagOf(r.version),
        },
      };
      return projectDocument(USER_RESOURCE, resource, q.attributes, q.excludedAttributes);
    });
  }

  /** userName is unique per tenant, case-insensitively: a clash is 409 `uniqueness`. */
  private async uniquely<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      const e = err as { code?: string; constraint?: string; driverError?: { code?: string; constraint?: string } };
      const code = e.driverError?.code ?? e.code;
      const constraint = e.driverError?.constraint ?? e.constraint;
      if (code === '23505' && constraint === UNIQUE_USER_NAME)
        throw new ScimError(409, 'A user with this userName already exists in this tenant.', 'uniqueness', { cause: err });
      throw err;
    }
  }
}
