import { Injectable } from '@nestjs/common';
import { AuditRepository } from '../audit/audit.repository.js';
import type { Tx } from '../database/database.js';
import type { CompiledFilter } from './filter/scim-filter.js';

/** A SCIM user: a platform `users` row that SCIM manages (`user_name` set). */
export interface ScimUserRow {
  id: string;
  userName: string;
  externalId: string | null;
  displayName: string | null;
  givenName: string | null;
  familyName: string | null;
  status: 'active' | 'disabled';
  emails: unknown[];
  enterprise: Record<string, unknown>;
  profile: Record<string, unknown>;
  version: number;
  createdAt: Date;
  updatedAt: Date;
  /** The user's groups, ordered by name; present only when the read asked for them (`withGroups`). */
  groups?: Array<{ id: string; display: string }> | null;
}

/** The columns a SCIM User document is stored in. */
export interface ScimUserColumns {
  userName: string;
  externalId: string | null;
  displayName: string | null;
  givenName: string | null;
  familyName: string | null;
  active: boolean;
  emails: unknown[];
  enterprise: Record<string, unknown>;
  profile: Record<string, unknown>;
  /** The platform `email` (token claim). */
  email: string | null;
}

/** One create of a batch: its columns, its audit actor and request id, and the lower-cased values it may adopt an unmanaged user by. */
export interface ScimUserCreate {
  c: ScimUserColumns;
  actor: string;
  requestId: string | null;
  adoptionCandidates: string[];
}

/** What the batch statement did for one create (`ord`: its 1-based position in the batch). */
export interface ScimUserBatchResult {
  ord: number;
  /** Exactly one unmanaged user matches: nothing was inserted; the create must adopt it alone. */
  adopt: boolean;
  /** The inserted user; null when the userName was taken (or `adopt`). */
  row: ScimUserRow | null;
}

export interface ScimUserGroup {
  userId: string;
  id: string;
  displayName: string;
}

interface UserRecord {
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

/** The parameter a list filter follows: compile it with this `paramOffset` (`$1` is the tenant). */
export const USER_FILTER_PARAM_OFFSET = 1;

const toRow = (r: UserRecord): ScimUserRow => ({
  id: r.id,
  userName: r.user_name,
  externalId: r.external_id,
  displayName: r.display_name,
  givenName: r.given_name,
  familyName: r.family_name,
  status: r.status,
  emails: r.emails,
  enterprise: r.enterprise,
  profile: r.scim_profile,
  version: r.version,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  ...('groups_json' in r ? { groups: r.groups_json } : {}),
});

/** A row of `ins.*` left-joined: every column null when nothing was inserted. */
type Nullable<T> = { [K in keyof T]: T[K] | null };

const inserted = (r: Nullable<UserRecord>): ScimUserRow | undefined => (r.id === null ? undefined : toRow(r as UserRecord));

const COLUMN_PARAMS = 10;

/** The write parameters of a user's columns, in the order `$2`…`$11` of the insert and update statements. */
const columnParams = (c: ScimUserColumns): unknown[] => [
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
];

/**
 * SCIM users over the platform `users` table (with their group memberships and identity links on
 * delete). Every method runs in the caller's tenant transaction; row-level security keeps it to
 * that tenant.
 */
@Injectable()
export class ScimUsersRepository {
  /** The batch create: users and their `scim.user_created` audit events in one statement (one round trip per batch). */
  private readonly createBatchSql: string;

  constructor(audit: AuditRepository) {
    const audited = audit.insertSelectSql(
      {
        tenantId: '$1',
        actor: 'i.actor',
        action: `'scim.user_created'`,
        target: 'ins.id::text',
        data: `jsonb_build_object('active', i.status = 'active', 'adopted', false)`,
        requestId: 'i.request_id',
      },
      'FROM ins JOIN input i ON i.user_name = ins.user_name',
    );
    this.createBatchSql = `WITH input AS (
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
           -- one audit event per user inserted above (the audit module's insert)
           ${audited}
         )
         SELECT i.ord, COALESCE(m.n = 1, false) AS adopt, ins.*
           FROM input i LEFT JOIN matched m ON m.ord = i.ord LEFT JOIN ins ON ins.user_name = i.user_name`;
  }

  /** A page of the tenant's SCIM users in creation order; `filter` compiled with USER_FILTER_PARAM_OFFSET. */
  async page(
    tx: Tx,
    tenantId: string,
    filter: CompiledFilter | undefined,
    page: { limit: number; offset: number; withGroups: boolean },
  ): Promise<ScimUserRow[]> {
    const { whereSql, params } = where(tenantId, filter);
    const { rows } = await tx.query<UserRecord>(
      `SELECT ${COLUMNS}${page.withGroups ? `, ${GROUPS_COLUMN}` : ''} FROM users u WHERE ${whereSql} ORDER BY u.created_at, u.id LIMIT ${page.limit} OFFSET ${page.offset}`,
      params,
    );
    return rows.map(toRow);
  }

  async count(tx: Tx, tenantId: string, filter: CompiledFilter | undefined): Promise<number> {
    const { whereSql, params } = where(tenantId, filter);
    const { rows } = await tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM users u WHERE ${whereSql}`, params);
    return rows[0]?.n ?? 0;
  }

  /** `id` must be a UUID. `forUpdate` locks the row for the rest of the transaction. */
  async find(tx: Tx, id: string, opts: { forUpdate?: boolean; withGroups?: boolean } = {}): Promise<ScimUserRow | undefined> {
    const { rows } = await tx.query<UserRecord>(
      `SELECT ${COLUMNS}${opts.withGroups ? `, ${GROUPS_COLUMN}` : ''} FROM users u WHERE u.id = $1 AND u.user_name IS NOT NULL${opts.forUpdate ? ' FOR UPDATE OF u' : ''}`,
      [id],
    );
    return rows[0] && toRow(rows[0]);
  }

  /**
   * Inserts the batch's users with their audit events in one statement. A userName already taken is
   * skipped (ON CONFLICT DO NOTHING); a create with exactly one unmanaged user to adopt is not
   * inserted. The batch must hold no two equal userNames: a row is matched to its create by the
   * exact userName. Inserts in lower-cased userName order, so that racing batches cannot deadlock.
   */
  async insertBatch(tx: Tx, tenantId: string, batch: ScimUserCreate[]): Promise<ScimUserBatchResult[]> {
    const candidateOrd: number[] = [];
    const candidateValue: string[] = [];
    batch.forEach((it, n) => {
      for (const v of new Set(it.adoptionCandidates)) {
        candidateOrd.push(n + 1);
        candidateValue.push(v);
      }
    });
    const columns = batch.map((it) => columnParams(it.c));
    const { rows } = await tx.query<Nullable<UserRecord> & { ord: string; adopt: boolean }>(
      this.createBatchSql,
      [
        tenantId,
        ...Array.from({ length: COLUMN_PARAMS }, (_, i) => columns.map((p) => p[i])),
        batch.map((it) => it.actor),
        batch.map((it) => it.requestId),
        candidateOrd,
        candidateValue,
      ],
      'scim-user-create-batch',
    );
    return rows.map(({ ord, adopt, ...r }) => ({ ord: Number(ord), adopt, row: inserted(r) ?? null }));
  }

  /**
   * One create: inserts the user unless exactly one unmanaged user (same tenant, verified email
   * among `adoptionCandidates`, not managed by SCIM) is there to adopt instead. Answers the
   * inserted row (undefined when nothing was inserted) and the candidates found (at most two).
   */
  async insertUnlessAdoptable(
    tx: Tx,
    tenantId: string,
    c: ScimUserColumns,
    adoptionCandidates: string[],
  ): Promise<{ row: ScimUserRow | undefined; candidates: string[] }> {
    const { rows } = await tx.query<Nullable<UserRecord> & { candidates: string[] | null }>(
      `WITH candidates AS (
         SELECT id FROM users WHERE tenant_id = $1 AND user_name IS NULL AND scim_deleted_at IS NULL AND email_verified AND email = ANY($12::text[]) LIMIT 2
       ), ins AS (
         INSERT INTO users AS u (tenant_id, user_name, external_id, display_name, given_name, family_name, status, emails, enterprise, scim_profile, email)
         SELECT $1::uuid, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text, $8::jsonb, $9::jsonb, $10::jsonb, $11::text
          WHERE (SELECT count(*) FROM candidates) <> 1
         RETURNING ${COLUMNS}
       )
       SELECT (SELECT array_agg(id) FROM candidates) AS candidates, ins.* FROM (SELECT 1) AS one LEFT JOIN ins ON true`,
      [tenantId, ...columnParams(c), adoptionCandidates],
      'scim-user-create',
    );
    const res = rows[0];
    if (!res) throw new Error('scim user create: the statement returned no row');
    const { candidates, ...r } = res;
    return { row: inserted(r), candidates: candidates ?? [] };
  }

  /** Writes the user's columns (an email change un-verifies it) and bumps the version. */
  async update(tx: Tx, id: string, c: ScimUserColumns): Promise<ScimUserRow> {
    const { rows } = await tx.query<UserRecord>(
      `UPDATE users AS u SET user_name = $2, external_id = $3, display_name = $4, given_name = $5, family_name = $6, status = $7,
              emails = $8, enterprise = $9, scim_profile = $10,
              email_verified = CASE WHEN u.email IS NOT DISTINCT FROM $11 THEN u.email_verified ELSE false END, email = $11,
              version = u.version + 1, updated_at = now()
        WHERE u.id = $1 RETURNING ${COLUMNS}`,
      [id, ...columnParams(c)],
    );
    if (!rows[0]) throw new Error('scim user update: no such user');
    return toRow(rows[0]);
  }

  /**
   * DELETE through SCIM: the user is disabled (never erased), leaves SCIM (userName free again),
   * loses its group memberships and its upstream identity links.
   */
  async leaveScim(tx: Tx, id: string): Promise<void> {
    await tx.query(
      `UPDATE users SET status = 'disabled', user_name = NULL, external_id = NULL, scim_deleted_at = now(), version = version + 1, updated_at = now() WHERE id = $1`,
      [id],
    );
    await tx.query(`DELETE FROM group_members WHERE user_id = $1`, [id]);
    await tx.query(`DELETE FROM user_identities WHERE user_id = $1`, [id]);
  }

  /** The groups of these users, ordered by group name then id. */
  async groupsOf(tx: Tx, userIds: string[]): Promise<ScimUserGroup[]> {
    const { rows } = await tx.query<{ user_id: string; id: string; display_name: string }>(
      `SELECT gm.user_id, g.id, g.display_name FROM group_members gm JOIN groups g ON g.id = gm.group_id WHERE gm.user_id = ANY($1::uuid[]) ORDER BY g.display_name, g.id`,
      [userIds],
    );
    return rows.map((r) => ({ userId: r.user_id, id: r.id, displayName: r.display_name }));
  }
}

function where(tenantId: string, filter: CompiledFilter | undefined): { whereSql: string; params: unknown[] } {
  const conditions = [`u.tenant_id = $1`, `u.user_name IS NOT NULL`];
  if (filter) conditions.push(`(${filter.sql})`);
  return { whereSql: conditions.join(' AND '), params: [tenantId, ...(filter?.params ?? [])] };
}
