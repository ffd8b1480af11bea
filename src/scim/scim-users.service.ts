import { Inject, Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { AppConfig } from '../config/app-config.js';
import { Database, statementsOf, type Tx } from '../database/database.js';
import { AuditService } from '../audit/audit.service.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { DependencyUnavailableError, ScimError } from '../common/errors.js';
import { KeyedBatcher } from '../common/keyed-batcher.js';
import { currentRequestId } from '../common/request-context.js';
import { type Doc, isObject, normaliseDocument, projectDocument, wantsAttribute } from './scim-document.js';
import { PatchEngine, type PatchOperation, parsePatchRequest } from './scim-patch.js';
import { CORE_USER, ENTERPRISE_USER, USER_RESOURCE } from './scim-schemas.js';
import { USER_CI, USER_SQL, compileFilter } from './scim-sql.js';
import { type ListQuery, type ProjectionQuery, assertIfMatch, etagOf, isUuid, knownTotal, listResponse } from './scim-http.js';
import { ScimDeprovisionGuard, type HeldRequest } from './scim-deprovision-guard.service.js';
import type { ScimPrincipal } from './scim-tokens.service.js';

interface UserRow {
  id: string;
  user_name: string;
  external_id: string | null;
  display_name: string | null;
  given_name: string | null;
  family_name: string | null;
  status: 'active' | 'disabled';
  emails: unknown[];
  enterprise: Record<string, unknown>;
  scim_profile: Record<string, unknown>;
  version: number;
  created_at: Date;
  updated_at: Date;
  /** Present when the query selected GROUPS_COLUMN. */
  groups_json?: Array<{ id: string; display: string }> | null;
}

const COLUMNS = `u.id, u.user_name, u.external_id, u.display_name, u.given_name, u.family_name, u.status, u.emails, u.enterprise,
  u.scim_profile, u.version, u.created_at, u.updated_at`;

/** The user's groups in the same statement as the user (one round trip less per read). */
const GROUPS_COLUMN = `(SELECT json_agg(json_build_object('id', g.id, 'display', g.display_name) ORDER BY g.display_name, g.id)
    FROM group_members gm JOIN groups g ON g.id = gm.group_id WHERE gm.user_id = u.id) AS groups_json`;

/** Core attributes kept in `scim_profile` (everything without a column of its own). */
const PROFILE_ATTRIBUTES = [
  'nickName',
  'profileUrl',
  'title',
  'userType',
  'preferredLanguage',
  'locale',
  'timezone',
  'phoneNumbers',
  'ims',
  'photos',
  'addresses',
  'entitlements',
  'roles',
  'x509Certificates',
] as const;
const PROFILE_NAME_PARTS = ['formatted', 'middleName', 'honorificPrefix', 'honorificSuffix'] as const;

/** The columns a SCIM User document is stored in. */
interface UserColumns {
  userName: string;
  externalId: string | null;
  displayName: string | null;
  givenName: string | null;
  familyName: string | null;
  active: boolean;
  emails: unknown[];
  enterprise: Doc;
  profile: Doc;
  /** The platform `email` (token claim): the primary email, else the work one, else the first. */
  email: string | null;
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

function columnsOf(doc: Doc): UserColumns {
  const name = isObject(doc['name']) ? doc['name'] : {};
  const profile: Doc = {};
  const profileName: Doc = {};
  for (const k of PROFILE_NAME_PARTS) if (name[k] !== undefined) profileName[k] = name[k];
  if (Object.keys(profileName).length) profile['name'] = profileName;
  for (const k of PROFILE_ATTRIBUTES) if (doc[k] !== undefined) profile[k] = doc[k];
  const emails = Array.isArray(doc['emails']) ? doc['emails'] : [];
  const objects = emails.filter(isObject);
  const chosen = objects.find((e) => e['primary'] === true) ?? objects.find((e) => str(e['type'])?.toLowerCase() === 'work') ?? objects[0];
  const email = str(chosen?.['value']);
  return {
    userName: doc['userName'] as string,
    externalId: str(doc['externalId']),
    displayName: str(doc['displayName']),
    givenName: str(name['givenName']),
    familyName: str(name['familyName']),
    active: doc['active'] !== false,
    emails,
    enterprise: isObject(doc[ENTERPRISE_USER]) ? doc[ENTERPRISE_USER] : {},
    profile,
    email: email && /^[^\s@]+@[^\s@]+$/.test(email) && email.length <= 320 ? email.toLowerCase() : null,
  };
}

/** The stored row as a canonical SCIM document (without id, meta and groups). */
function documentOf(r: UserRow): Doc {
  const profile = r.scim_profile ?? {};
  const doc: Doc = { userName: r.user_name };
  if (r.external_id !== null) doc['externalId'] = r.external_id;
  const name: Doc = { ...(isObject(profile['name']) ? profile['name'] : {}) };
  if (r.given_name !== null) name['givenName'] = r.given_name;
  if (r.family_name !== null) name['familyName'] = r.family_name;
  if (Object.keys(name).length) doc['name'] = name;
  if (r.display_name !== null) doc['displayName'] = r.display_name;
  for (const k of PROFILE_ATTRIBUTES) if (profile[k] !== undefined) doc[k] = profile[k];
  doc['active'] = r.status === 'active';
  if (Array.isArray(r.emails) && r.emails.length) doc['emails'] = r.emails;
  if (r.enterprise && Object.keys(r.enterprise).length) doc[ENTERPRISE_USER] = r.enterprise;
  return doc;
}

/** Key-order-independent JSON, to tell whether a write changes anything. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (isObject(v))
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`)
      .join(',')}}`;
  return JSON.stringify(v);
}

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

type WriteOutcome = { ok: true; row: UserRow } | { ok: false; error: ScimError };

/** One POST /Users waiting for its tenant's next batch. */
interface CreateItem {
  c: UserColumns;
  actor: string;
  requestId: string | null;
}

/** What the batch did for one request: inserted it, found its userName taken, or left it to be done alone. */
type CreateOutcome = { kind: 'created'; row: UserRow } | { kind: 'taken' } | { kind: 'alone' };

/** The lower-cased values a new user's verified email may match to adopt an unmanaged user: userName and emails. */
function adoptionCandidates(c: UserColumns): string[] {
  return [c.userName, ...c.emails.filter(isObject).map((e) => str(e['value']))].filter((x): x is string => !!x).map((x) => x.toLowerCase());
}

const UNIQUE_USER_NAME = 'users_user_name_key';

/** Creates of one tenant written in one statement at most (a provisioning burst forms larger queues only if the database falls behind). */
const CREATE_BATCH_MAX = 100;

/**
 * SCIM Users over the platform `users` table. Creates that arrive together for one tenant share a
 * transaction (insertBatch); every other write runs in one tenant transaction with
 * the row locked (`FOR UPDATE`): a PATCH is applied in memory, validated as a whole and written
 * back, so a failing operation changes nothing. Deactivation (active=false or DELETE) disables
 * the platform user, revokes every session (and with them every refresh-token family) and is
 * audited; the mass-deprovisioning guard may hold it instead.
 */
@Injectable()
export class ScimUsersService {
  private readonly patcher = new PatchEngine(USER_RESOURCE);
  private readonly creates: KeyedBatcher<string, CreateItem, CreateOutcome>;

  constructor(
    private readonly db: Database,
    private readonly audit: AuditService,
    private readonly guard: ScimDeprovisionGuard,
    @Inject(AppConfig) private readonly config: AppConfig,
    metrics: MetricsService,
  ) {
    this.creates = new KeyedBatcher(
      (tenantId, items) => this.insertBatch(tenantId, items),
      CREATE_BATCH_MAX,
      (n) => metrics.scimCreateBatchWritten(n),
    );
  }

  private get base(): string {
    return `${this.config.issuer}/scim/v2`;
  }

  location(id: string): string {
    return `${this.base}/Users/${id}`;
  }

  // ----- reads -----------------------------------------------------------------------

  async list(p: ScimPrincipal, q: ListQuery): Promise<Record<string, unknown>> {
    const where = [`u.tenant_id = $1`, `u.user_name IS NOT NULL`];
    const params: unknown[] = [p.tenantId];
    if (q.filter !== undefined) {
      const f = compileFilter(q.filter, USER_SQL, params.length, USER_CI);
      where.push(`(${f.sql})`);
      params.push(...f.params);
    }
    const whereSql = where.join(' AND ');
    return this.db.tenantTx(p.tenantId, async (m) => {
      const rows =
        q.count > 0
          ? await m.query<UserRow[]>(
              `SELECT ${COLUMNS}${this.groupsColumn(q)} FROM users u WHERE ${whereSql} ORDER BY u.created_at, u.id LIMIT ${q.count} OFFSET ${q.startIndex - 1}`,
              params,
            )
          : [];
      const total =
        knownTotal(rows.length, q) ??
        (await m.query<Array<{ n: number }>>(`SELECT count(*)::int AS n FROM users u WHERE ${whereSql}`, params))[0]!.n;
      return listResponse(total, q.startIndex, await this.renderAll(statementsOf(m), rows, q));
    });
  }

  async get(p: ScimPrincipal, id: string, q: ProjectionQuery): Promise<RenderedUser> {
    return this.db.tenantTx(p.tenantId, async (m) => {
      const row = await this.find(m, id, false, this.groupsColumn(q));
      return this.rendered(statementsOf(m), row, q);
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

  /**
   * Concurrent creates of one tenant go to the database together (KeyedBatcher): one transaction
   * and one statement insert every user of the batch with its audit event. A userName already
   * taken is skipped by the insert (ON CONFLICT DO NOTHING) and answered 409; the rare request
   * that needs more than an insert (a user to adopt, a second request for the same userName in
   * the same batch) is sent back to be done alone.
   */
  private async insertBatch(tenantId: string, items: CreateItem[]): Promise<CreateOutcome[]> {
    const outcomes: CreateOutcome[] = items.map(() => ({ kind: 'alone' }));
    const sent: number[] = [];
    const seen = new Set<string>();
    items.forEach((it, i) => {
      const key = it.c.userName.toLowerCase();
      if (seen.has(key)) return;
      seen.add(key);
      sent.push(i);
    });
    const batch = sent.map((i) => items[i]!);
    const candidateOrd: number[] = [];
    const candidateValue: string[] = [];
    batch.forEach((it, n) => {
      for (const v of new Set(adoptionCandidates(it.c))) {
        candidateOrd.push(n + 1);
        candidateValue.push(v);
      }
    });
    const col = <T>(f: (c: UserColumns) => T) => batch.map((it) => f(it.c));
    const rows = await this.db.tenantStatements(tenantId, async (s) => {
      const { rows } = await s.query<UserRow & { ord: string; adopt: boolean }>(
        `WITH input AS (
           SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::jsonb[], $9::jsonb[], $10::jsonb[], $11::text[], $12::text[], $13::text[])
             WITH ORDINALITY AS i(user_name, external_id, display_name, given_name, family_name, status, emails, enterprise, scim_profile, email, actor, request_id, ord)
         ), matched AS (
           -- users who logged in before the directory pushed them (JIT, native): adopted, not duplicated
           SELECT c.ord, count(DISTINCT u.id) AS n
             FROM unnest($14::bigint[], $15::text[]) AS c(ord, value)
             JOIN users u ON u.tenant_id = $1 AND u.user_name IS NULL AND u.scim_deleted_at IS NULL AND u.email_verified AND u.email = c.value
            GROUP BY c.ord
         ), ins AS (
           INSERT INTO users AS u (tenant_id, user_name, external_id, display_name, given_name, family_name, status, emails, enterprise, scim_profile, email)
           SELECT $1::uuid, i.user_name, i.external_id, i.display_name, i.given_name, i.family_name, i.status, i.emails, i.enterprise, i.scim_profile, i.email
             FROM input i
            WHERE NOT EXISTS (SELECT 1 FROM matched m WHERE m.ord = i.ord AND m.n = 1)
            -- one order for every batch: two batches racing for the same userNames cannot deadlock
            ORDER BY lower(i.user_name)
           ON CONFLICT (tenant_id, user_name_ci) DO NOTHING
           RETURNING ${COLUMNS}
         ), audited AS (
           -- the rows AuditService.record writes, one per user inserted above
           INSERT INTO audit_events (tenant_id, actor, action, target, data, request_id)
           SELECT $1, i.actor, 'scim.user_created', ins.id::text, jsonb_build_object('active', i.status = 'active', 'adopted', false), i.request_id
             FROM ins JOIN input i ON i.user_name = ins.user_name
         )
         SELECT i.ord, COALESCE(m.n = 1, false) AS adopt, ins.*
           FROM input i LEFT JOIN matched m ON m.ord = i.ord LEFT JOIN ins ON ins.user_name = i.user_name`,
        [
          tenantId,
          col((c) => c.userName),
          col((c) => c.externalId),
          col((c) => c.displayName),
          col((c) => c.givenName),
          col((c) => c.familyName),
          col((c) => (c.active ? 'active' : 'disabled')),
          col((c) => JSON.stringify(c.emails)),
          col((c) => JSON.stringify(c.enterprise)),
          col((c) => JSON.stringify(c.profile)),
          col((c) => c.email),
          batch.map((it) => it.actor),
          batch.map((it) => it.requestId),
          candidateOrd,
          candidateValue,
        ],
        'scim-user-create-batch',
      );
      return rows;
    });
    for (const r of rows) {
      const i = sent[Number(r.ord) - 1]!;
      // A row is matched to its request by the exact userName, and the batch holds no two equal
      // ones: a userName that only lower-cases alike to another one in the batch is 'taken' here.
      outcomes[i] = r.adopt ? { kind: 'alone' } : r.id ? { kind: 'created', row: r } : { kind: 'taken' };
    }
    return outcomes;
  }

  /** One create in its own transaction: adopts a user who logged in before SCIM pushed them. */
  private async createAlone(p: ScimPrincipal, c: UserColumns, q: ProjectionQuery): Promise<RenderedUser> {
    return this.uniquely(() =>
      this.db.tenantStatements(p.tenantId, async (s) => {
        // A user who logged in before the directory pushed them (JIT, native) is adopted rather
        // than duplicated: same tenant, same verified email, not yet managed by SCIM.
        const {
          rows: [res],
        } = await s.query<UserRow & { candidates: string[] | null }>(
          `WITH candidates AS (
             SELECT id FROM users WHERE tenant_id = $1 AND user_name IS NULL AND scim_deleted_at IS NULL AND email_verified AND email = ANY($12::text[]) LIMIT 2
           ), ins AS (
             INSERT INTO users AS u (tenant_id, user_name, external_id, display_name, given_name, family_name, status, emails, enterprise, scim_profile, email)
             SELECT $1::uuid, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text, $8::jsonb, $9::jsonb, $10::jsonb, $11::text
              WHERE (SELECT count(*) FROM candidates) <> 1
             RETURNING ${COLUMNS}
           )
           SELECT (SELECT array_agg(id) FROM candidates) AS candidates, ins.* FROM (SELECT 1) AS one LEFT JOIN ins ON true`,
          [
            p.tenantId,
            c.userName,
            c.externalId,
            c.displayName,
            c.givenName,
            c.familyName,
            c.active ? 'active' : 'disabled',
            JSON.stringify(c.emails),
            JSON.stringify(c.enterprise),
            JSON.stringify(c.profile),
            c.email,
            adoptionCandidates(c),
          ],
          'scim-user-create',
        );
        const adopt = res!.id === null && res!.candidates?.length === 1 ? res!.candidates[0]! : undefined;
        const row = adopt ? await this.write(s, adopt, c) : res!;
        if (adopt) await this.audit.record(s, { tenantId: p.tenantId, actor: this.actor(p), action: 'scim.user_adopted', target: row.id });
        await this.audit.record(s, {
          tenantId: p.tenantId,
          actor: this.actor(p),
          action: 'scim.user_created',
          target: row.id,
          data: { active: c.active, adopted: !!adopt },
        });
        // A user created just now belongs to no group yet; an adopted one may.
        return this.rendered(s, row, q, !adopt);
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
    const outcome = await this.db.tenantTx(p.tenantId, async (m): Promise<ScimError | undefined> => {
      const row = await this.find(m, id, true);
      assertIfMatch(ifMatch, row.version);
      if (row.status === 'active') {
        if (bypassGuard) await this.guard.recordApplied(m, p.tenantId, row.id, 'delete');
        else {
          const decision = await this.guard.check(m, p, row.id, 'delete', { method: 'DELETE' });
          if (!decision.allowed) return decision.error;
        }
      }
      await m.query(
        `UPDATE users SET status = 'disabled', user_name = NULL, external_id = NULL, scim_deleted_at = now(), version = version + 1, updated_at = now() WHERE id = $1`,
        [row.id],
      );
      await m.query(`DELETE FROM group_members WHERE user_id = $1`, [row.id]);
      await m.query(`DELETE FROM user_identities WHERE user_id = $1`, [row.id]);
      const revoked = await this.revokeSessions(m, row.id, 'scim_deleted');
      await this.audit.record(m, {
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

  private groupsColumn(q: ProjectionQuery): string {
    return wantsAttribute(USER_RESOURCE, 'groups', q.attributes, q.excludedAttributes) ? `, ${GROUPS_COLUMN}` : '';
  }

  private async find(m: EntityManager, id: string, forUpdate: boolean, extra = ''): Promise<UserRow> {
    // A malformed id is answered like an unknown one: 404, nothing to learn.
    if (!isUuid(id)) throw new ScimError(404, 'No such user in this tenant.');
    const [row] = await m.query<UserRow[]>(
      `SELECT ${COLUMNS}${extra} FROM users u WHERE u.id = $1 AND u.user_name IS NOT NULL${forUpdate ? ' FOR UPDATE OF u' : ''}`,
      [id],
    );
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
      this.db.tenantTx(p.tenantId, async (m): Promise<{ ok: true; user: RenderedUser } | { ok: false; error: ScimError }> => {
        const row = await this.find(m, id, true);
        assertIfMatch(ifMatch, row.version);
        const old = documentOf(row);
        const doc = next(old);
        const result = await this.commit(m, p, row, old, doc, request, assertsActive, bypassGuard);
        if (!result.ok) return result;
        return { ok: true, user: await this.rendered(statementsOf(m), result.row, q) };
      }),
    );
    // A held request commits the hold (and nothing else) before the error is sent.
    if (!outcome.ok) throw outcome.error;
    return outcome.user;
  }

  private async commit(
    m: EntityManager,
    p: ScimPrincipal,
    row: UserRow,
    old: Doc,
    doc: Doc,
    request: HeldRequest,
    assertsActive: boolean,
    bypassGuard: boolean,
  ): Promise<WriteOutcome> {
    const wasActive = row.status === 'active';
    const c = columnsOf(doc);
    if (wasActive && !c.active) {
      if (bypassGuard) await this.guard.recordApplied(m, p.tenantId, row.id, 'deactivate');
      else {
        const decision = await this.guard.check(m, p, row.id, 'deactivate', request);
        if (!decision.allowed) return { ok: false, error: decision.error };
      }
    }
    if (c.active && assertsActive) await this.guard.supersede(m, p.tenantId, row.id);
    if (canonical(old) === canonical(doc)) return { ok: true, row };
    const written = await this.write(statementsOf(m), row.id, c);
    if (wasActive && !c.active) {
      const revoked = await this.revokeSessions(m, row.id, 'scim_deactivated');
      await this.audit.record(m, {
        tenantId: p.tenantId,
        actor: this.actor(p),
        action: 'scim.user_deactivated',
        target: row.id,
        data: { sessionsRevoked: revoked, released: bypassGuard },
      });
    } else if (!wasActive && c.active) {
      await this.audit.record(m, { tenantId: p.tenantId, actor: this.actor(p), action: 'scim.user_reactivated', target: row.id });
    } else {
      await this.audit.record(m, { tenantId: p.tenantId, actor: this.actor(p), action: 'scim.user_updated', target: row.id });
    }
    return { ok: true, row: written };
  }

  private async write(q: Tx, id: string, c: UserColumns): Promise<UserRow> {
    const { rows } = await q.query<UserRow>(
      `UPDATE users AS u SET user_name = $2, external_id = $3, display_name = $4, given_name = $5, family_name = $6, status = $7,
              emails = $8, enterprise = $9, scim_profile = $10,
              email_verified = CASE WHEN u.email IS NOT DISTINCT FROM $11 THEN u.email_verified ELSE false END, email = $11,
              version = u.version + 1, updated_at = now()
        WHERE u.id = $1 RETURNING ${COLUMNS}`,
      [
        id,
        c.userName,
        c.externalId,
        c.displayName,
        c.givenName,
        c.familyName,
        c.active ? 'active' : 'disabled',
        JSON.stringify(c.emails),
        JSON.stringify(c.enterprise),
        JSON.stringify(c.profile),
        c.email,
      ],
    );
    return rows[0]!;
  }

  /** Ends every session of the user at once; refresh tokens hang off sessions, so every family dies with them. */
  private async revokeSessions(m: EntityManager, userId: string, reason: string): Promise<number> {
    const res = await m.query<[unknown, number]>(
      `UPDATE sessions SET revoked_at = now(), revoked_reason = $2 WHERE user_id = $1 AND revoked_at IS NULL`,
      [userId, reason],
    );
    return res[1];
  }

  /** `s` may be left out when `noGroups` says there is nothing to read. */
  private async rendered(s: Tx | undefined, row: UserRow, q: ProjectionQuery, noGroups = false): Promise<RenderedUser> {
    const [resource] = await this.renderAll(s, [row], q, noGroups);
    return { resource: resource!, version: row.version, id: row.id };
  }

  private async renderAll(s: Tx | undefined, rows: UserRow[], q: ProjectionQuery, noGroups = false): Promise<Doc[]> {
    const groups = new Map<string, Doc[]>();
    const ref = (id: string, display: string): Doc => ({ value: id, $ref: `${this.base}/Groups/${id}`, display, type: 'direct' });
    const wanted = !noGroups && wantsAttribute(USER_RESOURCE, 'groups', q.attributes, q.excludedAttributes);
    if (wanted && rows.every((r) => r.groups_json !== undefined)) {
      for (const r of rows)
        if (r.groups_json?.length)
          groups.set(
            r.id,
            r.groups_json.map((g) => ref(g.id, g.display)),
          );
    } else if (rows.length && wanted) {
      if (!s) throw new Error('renderAll: groups wanted outside a transaction');
      const { rows: found } = await s.query<{ user_id: string; id: string; display_name: string }>(
        `SELECT gm.user_id, g.id, g.display_name FROM group_members gm JOIN groups g ON g.id = gm.group_id WHERE gm.user_id = ANY($1::uuid[]) ORDER BY g.display_name, g.id`,
        [rows.map((r) => r.id)],
      );
      for (const g of found) {
        const list = groups.get(g.user_id) ?? [];
        list.push(ref(g.id, g.display_name));
        groups.set(g.user_id, list);
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
          created: r.created_at.toISOString(),
          lastModified: r.updated_at.toISOString(),
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
