import { Injectable } from '@nestjs/common';
import type { Tx } from '../database/database.js';
import type { CompiledFilter } from './filter/scim-filter.js';

export interface ScimGroupRow {
  id: string;
  displayName: string;
  externalId: string | null;
  version: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface ScimGroupMember {
  groupId: string;
  userId: string;
  /** The user's displayName, else its userName. */
  display: string | null;
}

/** What adding members found: `found < wanted` means some ids are not SCIM users of the tenant (and nothing may be kept). */
export interface AddedMembers {
  wanted: number;
  found: number;
  inserted: number;
}

interface GroupRecord {
  id: string;
  display_name: string;
  external_id: string | null;
  version: number;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = 'g.id, g.display_name, g.external_id, g.version, g.created_at, g.updated_at';

/** The parameter a list filter follows: compile it with this `paramOffset` (`$1` is the tenant). */
export const GROUP_FILTER_PARAM_OFFSET = 1;
/** The parameter a members[filter] follows (MEMBER_SQL): `$1` is the group. */
export const MEMBER_FILTER_PARAM_OFFSET = 1;

const toRow = (r: GroupRecord): ScimGroupRow => ({
  id: r.id,
  displayName: r.display_name,
  externalId: r.external_id,
  version: r.version,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

function one(rows: GroupRecord[], what: string): ScimGroupRow {
  const r = rows[0];
  if (!r) throw new Error(`scim group ${what}: no row`);
  return toRow(r);
}

/**
 * SCIM groups (`groups`) and their members (`group_members`). Membership changes are set-based:
 * one statement per change, whatever the number of members. Every method runs in the caller's
 * tenant transaction.
 */
@Injectable()
export class ScimGroupsRepository {
  /** A page of the tenant's groups in creation order; `filter` compiled with GROUP_FILTER_PARAM_OFFSET. */
  async page(
    tx: Tx,
    tenantId: string,
    filter: CompiledFilter | undefined,
    page: { limit: number; offset: number },
  ): Promise<ScimGroupRow[]> {
    const { whereSql, params } = where(tenantId, filter);
    const { rows } = await tx.query<GroupRecord>(
      `SELECT ${COLUMNS} FROM groups g WHERE ${whereSql} ORDER BY g.created_at, g.id LIMIT ${page.limit} OFFSET ${page.offset}`,
      params,
    );
    return rows.map(toRow);
  }

  async count(tx: Tx, tenantId: string, filter: CompiledFilter | undefined): Promise<number> {
    const { whereSql, params } = where(tenantId, filter);
    const { rows } = await tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM groups g WHERE ${whereSql}`, params);
    return rows[0]?.n ?? 0;
  }

  /** `id` must be a UUID. `forUpdate` locks the group for the rest of the transaction. */
  async find(tx: Tx, id: string, forUpdate: boolean): Promise<ScimGroupRow | undefined> {
    const { rows } = await tx.query<GroupRecord>(`SELECT ${COLUMNS} FROM groups g WHERE g.id = $1${forUpdate ? ' FOR UPDATE' : ''}`, [id]);
    return rows[0] && toRow(rows[0]);
  }

  async insert(tx: Tx, tenantId: string, displayName: unknown, externalId: unknown): Promise<ScimGroupRow> {
    const { rows } = await tx.query<GroupRecord>(
      `INSERT INTO groups AS g (tenant_id, display_name, external_id) VALUES ($1, $2, $3) RETURNING ${COLUMNS}`,
      [tenantId, displayName, externalId],
    );
    return one(rows, 'insert');
  }

  /** Writes the group's own attributes and bumps its version. */
  async update(tx: Tx, id: string, displayName: string, externalId: string | null): Promise<ScimGroupRow> {
    const { rows } = await tx.query<GroupRecord>(
      `UPDATE groups AS g SET display_name = $2, external_id = $3, version = g.version + 1, updated_at = now() WHERE g.id = $1 RETURNING ${COLUMNS}`,
      [id, displayName, externalId],
    );
    return one(rows, 'update');
  }

  /** Deletes the group (its memberships go with it). */
  async delete(tx: Tx, id: string): Promise<void> {
    await tx.query(`DELETE FROM groups WHERE id = $1`, [id]);
  }

  /**
   * Adds SCIM users of the tenant to the group (duplicates ignored) in one statement; counts what
   * was wanted, found and inserted, so the caller can refuse unknown ids (and roll back).
   */
  async addMembers(tx: Tx, tenantId: string, groupId: string, userIds: string[]): Promise<AddedMembers> {
    const { rows } = await tx.query<AddedMembers>(
      `WITH wanted AS (SELECT DISTINCT unnest($3::uuid[]) AS id),
            found AS (SELECT u.id FROM users u JOIN wanted w ON w.id = u.id WHERE u.user_name IS NOT NULL),
            ins AS (INSERT INTO group_members (tenant_id, group_id, user_id) SELECT $1, $2, id FROM found ON CONFLICT DO NOTHING RETURNING 1)
       SELECT (SELECT count(*) FROM wanted)::int AS wanted, (SELECT count(*) FROM found)::int AS found, (SELECT count(*) FROM ins)::int AS inserted`,
      [tenantId, groupId, userIds],
    );
    return rows[0] ?? { wanted: 0, found: 0, inserted: 0 };
  }

  /** Removes the members matching a members[filter] (MEMBER_SQL, compiled with MEMBER_FILTER_PARAM_OFFSET); answers how many. */
  async removeMembersMatching(tx: Tx, groupId: string, filter: CompiledFilter): Promise<number> {
    const res = await tx.query(`DELETE FROM group_members gm WHERE gm.group_id = $1 AND (${filter.sql})`, [groupId, ...filter.params]);
    return res.rowCount;
  }

  async removeAllMembers(tx: Tx, groupId: string): Promise<number> {
    const res = await tx.query(`DELETE FROM group_members WHERE group_id = $1`, [groupId]);
    return res.rowCount;
  }

  async removeMembers(tx: Tx, groupId: string, userIds: string[]): Promise<number> {
    const res = await tx.query(`DELETE FROM group_members WHERE group_id = $1 AND user_id = ANY($2::uuid[])`, [groupId, userIds]);
    return res.rowCount;
  }

  /** Removes every member not among `userIds`. */
  async removeMembersExcept(tx: Tx, groupId: string, userIds: string[]): Promise<number> {
    const res = await tx.query(`DELETE FROM group_members WHERE group_id = $1 AND NOT (user_id = ANY($2::uuid[]))`, [groupId, userIds]);
    return res.rowCount;
  }

  /** The members of these groups, in the order they joined. */
  async membersOf(tx: Tx, groupIds: string[]): Promise<ScimGroupMember[]> {
    const { rows } = await tx.query<{ group_id: string; id: string; display: string | null }>(
      `SELECT gm.group_id, u.id, COALESCE(u.display_name, u.user_name) AS display FROM group_members gm JOIN users u ON u.id = gm.user_id
        WHERE gm.group_id = ANY($1::uuid[]) ORDER BY gm.created_at, u.id`,
      [groupIds],
    );
    return rows.map((r) => ({ groupId: r.group_id, userId: r.id, display: r.display }));
  }
}

function where(tenantId: string, filter: CompiledFilter | undefined): { whereSql: string; params: unknown[] } {
  const conditions = ['g.tenant_id = $1'];
  if (filter) conditions.push(`(${filter.sql})`);
  return { whereSql: conditions.join(' AND '), params: [tenantId, ...(filter?.params ?? [])] };
}
