import { Inject, Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { AppConfig } from '../config/app-config.js';
import { Database } from '../database/database.js';
import { AuditService } from '../audit/audit.service.js';
import { ScimError } from '../common/errors.js';
import type { FilterAst } from './filter/scim-filter.js';
import { type Doc, coerceAttribute, isObject, normaliseDocument, projectDocument, wantsAttribute } from './scim-document.js';
import { parsePatchRequest, parsePath } from './scim-patch.js';
import { CORE_GROUP, GROUP_RESOURCE, GROUP_SCHEMA, findAttr } from './scim-schemas.js';
import { GROUP_CI, GROUP_SQL, MEMBER_SQL, compileAst, compileFilter } from './scim-sql.js';
import { type ListQuery, type ProjectionQuery, assertIfMatch, etagOf, isUuid, knownTotal, listResponse } from './scim-http.js';
import type { ScimPrincipal } from './scim-tokens.service.js';

interface GroupRow {
  id: string;
  display_name: string;
  external_id: string | null;
  version: number;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = 'g.id, g.display_name, g.external_id, g.version, g.created_at, g.updated_at';

/** Members per request body (a PATCH may carry several operations of this size). */
export const MAX_MEMBERS_PER_REQUEST = 50_000;

export interface RenderedGroup {
  resource: Doc;
  version: number;
  id: string;
}

interface MemberChange {
  added: number;
  removed: number;
}

const DISPLAY_NAME = findAttr(GROUP_SCHEMA.attributes, 'displayName')!;
const EXTERNAL_ID = findAttr(GROUP_SCHEMA.attributes, 'externalId')!;
const IGNORED_IN_VALUES = new Set(['schemas', 'id', 'meta']);

/**
 * Member ids of a `members` value: `[{ "value": "<user id>" }, …]` (Entra also sends
 * `"$ref": null`, Okta a `display`). Only users can be members; nested groups are refused.
 */
function memberIds(value: unknown): string[] {
  const items = value === undefined || value === null ? [] : Array.isArray(value) ? value : [value];
  if (items.length > MAX_MEMBERS_PER_REQUEST)
    throw new ScimError(400, `At most ${MAX_MEMBERS_PER_REQUEST} members per request.`, 'tooMany');
  const ids = new Set<string>();
  for (const item of items) {
    const v = isObject(item) ? item['value'] : item;
    if (!isUuid(v)) throw new ScimError(400, 'Every member needs a "value" that is the id of a user of this tenant.', 'invalidValue');
    const type = isObject(item) ? item['type'] : undefined;
    if (type !== undefined && type !== null && (typeof type !== 'string' || type.toLowerCase() !== 'user'))
      throw new ScimError(400, 'Only users can be group members (nested groups are not supported).', 'invalidValue');
    ids.add(v.toLowerCase());
  }
  return [...ids];
}

/**
 * SCIM Groups. Membership changes are set-based SQL inside the group's transaction (one
 * statement per operation, whatever the number of members), so a PATCH adding thousands of
 * members is one INSERT … SELECT, and a failing operation rolls back all of them.
 */
@Injectable()
export class ScimGroupsService {
  constructor(
    private readonly db: Database,
    private readonly audit: AuditService,
    @Inject(AppConfig) private readonly config: AppConfig,
  ) {}

  private get base(): string {
    return `${this.config.issuer}/scim/v2`;
  }

  location(id: string): string {
    return `${this.base}/Groups/${id}`;
  }

  async list(p: ScimPrincipal, q: ListQuery): Promise<Record<string, unknown>> {
    const where = ['g.tenant_id = $1'];
    const params: unknown[] = [p.tenantId];
    if (q.filter !== undefined) {
      const f = compileFilter(q.filter, GROUP_SQL, params.length, GROUP_CI);
      where.push(`(${f.sql})`);
      params.push(...f.params);
    }
    const whereSql = where.join(' AND ');
    return this.db.tenantTx(p.tenantId, async (m) => {
      const rows =
        q.count > 0
          ? await m.query<GroupRow[]>(
              `SELECT ${COLUMNS} FROM groups g WHERE ${whereSql} ORDER BY g.created_at, g.id LIMIT ${q.count} OFFSET ${q.startIndex - 1}`,
              params,
            )
          : [];
      const total =
        knownTotal(rows.length, q) ??
        (await m.query<Array<{ n: number }>>(`SELECT count(*)::int AS n FROM groups g WHERE ${whereSql}`, params))[0]!.n;
      return listResponse(total, q.startIndex, await this.renderAll(m, rows, q));
    });
  }

  async get(p: ScimPrincipal, id: string, q: ProjectionQuery): Promise<RenderedGroup> {
    return this.db.tenantTx(p.tenantId, async (m) => this.rendered(m, await this.find(m, id, false), q));
  }

  async create(p: ScimPrincipal, body: unknown, q: ProjectionQuery): Promise<RenderedGroup> {
    const doc = normaliseDocument(GROUP_RESOURCE, body, { checkSchemas: true });
    const members = memberIds(isObject(body) ? findValue(body, 'members') : undefined);
    return this.db.tenantTx(p.tenantId, async (m) => {
      const [row] = await m.query<GroupRow[]>(
        `INSERT INTO groups AS g (tenant_id, display_name, external_id) VALUES ($1, $2, $3) RETURNING ${COLUMNS}`,
        [p.tenantId, doc['displayName'], doc['externalId'] ?? null],
      );
      const added = members.length ? await this.addMembers(m, p.tenantId, row!.id, members) : 0;
      await this.audit.record(m, {
        tenantId: p.tenantId,
        actor: this.actor(p),
        action: 'scim.group_created',
        target: row!.id,
        data: { members: added },
      });
      return this.rendered(m, row!, q);
    });
  }

  /** PUT: displayName and externalId are replaced; `members`, when present, becomes the whole membership. */
  async replace(p: ScimPrincipal, id: string, body: unknown, ifMatch: string | undefined, q: ProjectionQuery): Promise<RenderedGroup> {
    const doc = normaliseDocument(GROUP_RESOURCE, body, { checkSchemas: true });
    const rawMembers = isObject(body) ? findValue(body, 'members') : undefined;
    const members = rawMembers === undefined ? undefined : memberIds(rawMembers);
    return this.db.tenantTx(p.tenantId, async (m) => {
      const row = await this.find(m, id, true);
      assertIfMatch(ifMatch, row.version);
      const change: MemberChange = { added: 0, removed: 0 };
      if (members !== undefined) Object.assign(change, await this.setMembers(m, p.tenantId, row.id, members));
      const attrsChanged = row.display_name !== doc['displayName'] || row.external_id !== (doc['externalId'] ?? null);
      const updated = await this.touch(
        m,
        row,
        { displayName: doc['displayName'] as string, externalId: (doc['externalId'] as string | undefined) ?? null },
        attrsChanged || change.added + change.removed > 0,
      );
      if (updated !== row)
        await this.audit.record(m, {
          tenantId: p.tenantId,
          actor: this.actor(p),
          action: 'scim.group_updated',
          target: row.id,
          data: { ...change },
        });
      return this.rendered(m, updated, q);
    });
  }

  /**
   * PATCH. Renders the group only when the caller asked for attributes (otherwise 204):
   * answering a membership change with thousands of members would be waste.
   */
  async patch(
    p: ScimPrincipal,
    id: string,
    body: unknown,
    ifMatch: string | undefined,
    q: ProjectionQuery,
    wantBody: boolean,
  ): Promise<{ id: string; version: number; resource?: Doc }> {
    const ops = parsePatchRequest(body);
    return this.db.tenantTx(p.tenantId, async (m) => {
      const row = await this.find(m, id, true);
      assertIfMatch(ifMatch, row.version);
      const state = { displayName: row.display_name, externalId: row.external_id };
      const change: MemberChange = { added: 0, removed: 0 };
      const members = async (op: 'add' | 'remove' | 'replace', value: unknown, filter?: FilterAst): Promise<void> => {
        const c = await this.membersOp(m, p.tenantId, row.id, op, value, filter);
        change.added += c.added;
        change.removed += c.removed;
      };
      const setAttr = (name: string, op: 'add' | 'remove' | 'replace', value: unknown): void => {
        const lower = name.toLowerCase();
        if (lower === 'displayname') {
          const v = op === 'remove' ? undefined : coerceAttribute(DISPLAY_NAME, value, 'displayName');
          if (typeof v !== 'string' || v.trim() === '') throw new ScimError(400, "Attribute 'displayName' is required.", 'invalidValue');
          state.displayName = v;
        } else if (lower === 'externalid') {
          const v = op === 'remove' ? undefined : coerceAttribute(EXTERNAL_ID, value, 'externalId');
          state.externalId = typeof v === 'string' ? v : null;
        } else if (IGNORED_IN_VALUES.has(lower)) {
          throw new ScimError(400, `Attribute '${name}' is read-only.`, 'mutability');
        } else throw new ScimError(400, `Unknown attribute '${name}' in path.`, 'invalidPath');
      };

      for (const op of ops) {
        if (op.path === undefined) {
          // Okta renames with `{"op":"replace","value":{"id":"…","displayName":"…"}}`.
          if (!isObject(op.value)) throw new ScimError(400, `"${op.op}" without "path" needs an object "value".`, 'invalidValue');
          for (const [k, v] of Object.entries(op.value)) {
            if (IGNORED_IN_VALUES.has(k.toLowerCase())) continue;
            if (k.toLowerCase() === 'members') await members(op.op, v);
            else setAttr(k, op.op, v);
          }
          continue;
        }
        const path = parsePath(op.path);
        if (path.uri !== undefined && path.uri.toLowerCase() !== CORE_GROUP.toLowerCase())
          throw new ScimError(400, `Unknown schema '${path.uri}' in path.`, 'invalidPath');
        if (path.attribute.toLowerCase() === 'members') {
          if (path.subAttribute !== undefined)
            throw new ScimError(400, 'Members are added or removed as a whole; their sub-attributes cannot be changed.', 'invalidPath');
          if (path.valueFilter && op.op !== 'remove')
            throw new ScimError(400, `"${op.op}" cannot take a members[filter] path; use "add" with a value.`, 'invalidPath');
          await members(op.op, op.value, path.valueFilter);
          continue;
        }
        if (path.valueFilter || path.subAttribute !== undefined)
          throw new ScimError(400, `'${path.attribute}' has no sub-attributes.`, 'invalidPath');
        setAttr(path.attribute, op.op, op.value);
      }
      const attrsChanged = state.displayName !== row.display_name || state.externalId !== row.external_id;
      const updated = await this.touch(m, row, state, attrsChanged || change.added + change.removed > 0);
      if (updated !== row)
        await this.audit.record(m, {
          tenantId: p.tenantId,
          actor: this.actor(p),
          action: 'scim.group_updated',
          target: row.id,
          data: { ...change },
        });
      return wantBody ? this.rendered(m, updated, q) : { id: updated.id, version: updated.version };
    });
  }

  async delete(p: ScimPrincipal, id: string, ifMatch: string | undefined): Promise<void> {
    await this.db.tenantTx(p.tenantId, async (m) => {
      const row = await this.find(m, id, true);
      assertIfMatch(ifMatch, row.version);
      await m.query(`DELETE FROM groups WHERE id = $1`, [row.id]);
      await this.audit.record(m, { tenantId: p.tenantId, actor: this.actor(p), action: 'scim.group_deleted', target: row.id });
    });
  }

  // ----- internals -------------------------------------------------------------------

  private actor(p: ScimPrincipal): string {
    return `scim:${p.tokenId}`;
  }

  private async find(m: EntityManager, id: string, forUpdate: boolean): Promise<GroupRow> {
    if (!isUuid(id)) throw new ScimError(404, 'No such group in this tenant.');
    const [row] = await m.query<GroupRow[]>(`SELECT ${COLUMNS} FROM groups g WHERE g.id = $1${forUpdate ? ' FOR UPDATE' : ''}`, [id]);
    if (!row) throw new ScimError(404, 'No such group in this tenant.');
    return row;
  }

  /** Writes the group's own attributes and bumps its version when anything changed. */
  private async touch(
    m: EntityManager,
    row: GroupRow,
    s: { displayName: string; externalId: string | null },
    changed: boolean,
  ): Promise<GroupRow> {
    if (!changed) return row;
    const [rows] = await m.query<[GroupRow[], number]>(
      `UPDATE groups AS g SET display_name = $2, external_id = $3, version = g.version + 1, updated_at = now() WHERE g.id = $1 RETURNING ${COLUMNS}`,
      [row.id, s.displayName, s.externalId],
    );
    return rows[0]!;
  }

  private async membersOp(
    m: EntityManager,
    tenantId: string,
    groupId: string,
    op: 'add' | 'remove' | 'replace',
    value: unknown,
    filter?: FilterAst,
  ): Promise<MemberChange> {
    if (op === 'add') return { added: await this.addMembers(m, tenantId, groupId, memberIds(value)), removed: 0 };
    if (op === 'replace') return this.setMembers(m, tenantId, groupId, memberIds(value));
    if (filter) {
      // `members[value eq "…"]` (Okta), or any filter over value/display/type: one DELETE.
      const f = compileAst(filter, MEMBER_SQL, 1);
      const res = await m.query<[unknown, number]>(`DELETE FROM group_members gm WHERE gm.group_id = $1 AND (${f.sql})`, [
        groupId,
        ...f.params,
      ]);
      return { added: 0, removed: res[1] };
    }
    if (value === undefined || value === null) {
      const res = await m.query<[unknown, number]>(`DELETE FROM group_members WHERE group_id = $1`, [groupId]);
      return { added: 0, removed: res[1] };
    }
    // Entra: `{"op":"Remove","path":"members","value":[{"value":"…"}]}`.
    const ids = memberIds(value);
    const res = await m.query<[unknown, number]>(`DELETE FROM group_members WHERE group_id = $1 AND user_id = ANY($2::uuid[])`, [
      groupId,
      ids,
    ]);
    return { added: 0, removed: res[1] };
  }

  /** Adds users (ids already validated as UUIDs); every id must be a SCIM user of this tenant. */
  private async addMembers(m: EntityManager, tenantId: string, groupId: string, ids: string[]): Promise<number> {
    if (ids.length === 0) return 0;
    const [r] = await m.query<Array<{ wanted: number; found: number; inserted: number }>>(
      `WITH wanted AS (SELECT DISTINCT unnest($3::uuid[]) AS id),
            found AS (SELECT u.id FROM users u JOIN wanted w ON w.id = u.id WHERE u.user_name IS NOT NULL),
            ins AS (INSERT INTO group_members (tenant_id, group_id, user_id) SELECT $1, $2, id FROM found ON CONFLICT DO NOTHING RETURNING 1)
       SELECT (SELECT count(*) FROM wanted)::int AS wanted, (SELECT count(*) FROM found)::int AS found, (SELECT count(*) FROM ins)::int AS inserted`,
      [tenantId, groupId, ids],
    );
    if (r!.found < r!.wanted)
      throw new ScimError(
        400,
        `${r!.wanted - r!.found} member value(s) are not users of this tenant; no member was changed.`,
        'invalidValue',
      );
    return r!.inserted;
  }

  private async setMembers(m: EntityManager, tenantId: string, groupId: string, ids: string[]): Promise<MemberChange> {
    const res = await m.query<[unknown, number]>(`DELETE FROM group_members WHERE group_id = $1 AND NOT (user_id = ANY($2::uuid[]))`, [
      groupId,
      ids,
    ]);
    return { removed: res[1], added: await this.addMembers(m, tenantId, groupId, ids) };
  }

  private async rendered(m: EntityManager, row: GroupRow, q: ProjectionQuery): Promise<RenderedGroup> {
    const [resource] = await this.renderAll(m, [row], q);
    return { resource: resource!, version: row.version, id: row.id };
  }

  private async renderAll(m: EntityManager, rows: GroupRow[], q: ProjectionQuery): Promise<Doc[]> {
    const members = new Map<string, Doc[]>();
    const withMembers = wantsAttribute(GROUP_RESOURCE, 'members', q.attributes, q.excludedAttributes);
    if (rows.length && withMembers) {
      const found = await m.query<Array<{ group_id: string; id: string; display: string | null }>>(
        `SELECT gm.group_id, u.id, COALESCE(u.display_name, u.user_name) AS display FROM group_members gm JOIN users u ON u.id = gm.user_id
          WHERE gm.group_id = ANY($1::uuid[]) ORDER BY gm.created_at, u.id`,
        [rows.map((r) => r.id)],
      );
      for (const f of found) {
        const list = members.get(f.group_id) ?? [];
        list.push({ value: f.id, $ref: `${this.base}/Users/${f.id}`, type: 'User', ...(f.display !== null ? { display: f.display } : {}) });
        members.set(f.group_id, list);
      }
    }
    return rows.map((r) => {
      const resource: Doc = {
        schemas: [CORE_GROUP],
        id: r.id,
        displayName: r.display_name,
        ...(r.external_id !== null ? { externalId: r.external_id } : {}),
        ...(withMembers ? { members: members.get(r.id) ?? [] } : {}),
        meta: {
          resourceType: 'Group',
          created: r.created_at.toISOString(),
          lastModified: r.updated_at.toISOString(),
          location: this.location(r.id),
          version: etagOf(r.version),
        },
      };
      return projectDocument(GROUP_RESOURCE, resource, q.attributes, q.excludedAttributes);
    });
  }
}

/** Case-insensitive look-up of a top-level body key. */
function findValue(o: Record<string, unknown>, name: string): unknown {
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(o)) if (k.toLowerCase() === lower) return v;
  return undefined;
}
