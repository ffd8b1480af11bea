import { Inject, Injectable } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { Database, type Tx } from '../database/database.js';
import { AuditService } from '../audit/audit.service.js';
import { ScimError } from '../common/errors.js';
import type { FilterAst } from './filter/scim-filter.js';
import { type Doc, coerceAttribute, isObject, normaliseDocument, projectDocument, wantsAttribute } from './scim-document.js';
import { parsePatchRequest, parsePath } from './scim-patch.js';
import { CORE_GROUP, GROUP_RESOURCE, GROUP_SCHEMA, findAttr } from './scim-schemas.js';
import { GROUP_CI, GROUP_SQL, MEMBER_SQL, compileAst, compileFilter } from './scim-sql.js';
import { type ListQuery, type ProjectionQuery, assertIfMatch, etagOf, isUuid, knownTotal, listResponse } from './scim-http.js';
import type { ScimPrincipal } from './scim-tokens.service.js';
import {
  GROUP_FILTER_PARAM_OFFSET,
  MEMBER_FILTER_PARAM_OFFSET,
  type ScimGroupRow,
  ScimGroupsRepository,
} from './scim-groups.repository.js';

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
    private readonly groups: ScimGroupsRepository,
    @Inject(AppConfig) private readonly config: AppConfig,
  ) {}

  private get base(): string {
    return `${this.config.issuer}/scim/v2`;
  }

  location(id: string): string {
    return `${this.base}/Groups/${id}`;
  }

  async list(p: ScimPrincipal, q: ListQuery): Promise<Record<string, unknown>> {
    const filter = q.filter !== undefined ? compileFilter(q.filter, GROUP_SQL, GROUP_FILTER_PARAM_OFFSET, GROUP_CI) : undefined;
    return this.db.transaction({ tenant: p.tenantId }, async (tx) => {
      const rows = q.count > 0 ? await this.groups.page(tx, p.tenantId, filter, { limit: q.count, offset: q.startIndex - 1 }) : [];
      const total = knownTotal(rows.length, q) ?? (await this.groups.count(tx, p.tenantId, filter));
      return listResponse(total, q.startIndex, await this.renderAll(tx, rows, q));
    });
  }

  async get(p: ScimPrincipal, id: string, q: ProjectionQuery): Promise<RenderedGroup> {
    return this.db.transaction({ tenant: p.tenantId }, async (tx) => this.rendered(tx, await this.find(tx, id, false), q));
  }

  async create(p: ScimPrincipal, body: unknown, q: ProjectionQuery): Promise<RenderedGroup> {
    const doc = normaliseDocument(GROUP_RESOURCE, body, { checkSchemas: true });
    const members = memberIds(isObject(body) ? findValue(body, 'members') : undefined);
    return this.db.transaction({ tenant: p.tenantId }, async (tx) => {
      const row = await this.groups.insert(tx, p.tenantId, doc['displayName'], doc['externalId'] ?? null);
      const added = members.length ? await this.addMembers(tx, p.tenantId, row.id, members) : 0;
      await this.audit.record(tx, {
        tenantId: p.tenantId,
        actor: this.actor(p),
        action: 'scim.group_created',
        target: row.id,
        data: { members: added },
      });
      return this.rendered(tx, row, q);
    });
  }

  /** PUT: displayName and externalId are replaced; `members`, when present, becomes the whole membership. */
  async replace(p: ScimPrincipal, id: string, body: unknown, ifMatch: string | undefined, q: ProjectionQuery): Promise<RenderedGroup> {
    const doc = normaliseDocument(GROUP_RESOURCE, body, { checkSchemas: true });
    const rawMembers = isObject(body) ? findValue(body, 'members') : undefined;
    const members = rawMembers === undefined ? undefined : memberIds(rawMembers);
    return this.db.transaction({ tenant: p.tenantId }, async (tx) => {
      const row = await this.find(tx, id, true);
      assertIfMatch(ifMatch, row.version);
      const change: MemberChange = { added: 0, removed: 0 };
      if (members !== undefined) Object.assign(change, await this.setMembers(tx, p.tenantId, row.id, members));
      const attrsChanged = row.displayName !== doc['displayName'] || row.externalId !== (doc['externalId'] ?? null);
      const updated = await this.touch(
        tx,
        row,
        { displayName: doc['displayName'] as string, externalId: (doc['externalId'] as string | undefined) ?? null },
        attrsChanged || change.added + change.removed > 0,
      );
      if (updated !== row)
        await this.audit.record(tx, {
          tenantId: p.tenantId,
          actor: this.actor(p),
          action: 'scim.group_updated',
          target: row.id,
          data: { ...change },
        });
      return this.rendered(tx, updated, q);
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
    return this.db.transaction({ tenant: p.tenantId }, async (tx) => {
      const row = await this.find(tx, id, true);
      assertIfMatch(ifMatch, row.version);
      const state = { displayName: row.displayName, externalId: row.externalId };
      const change: MemberChange = { added: 0, removed: 0 };
      const members = async (op: 'add' | 'remove' | 'replace', value: unknown, filter?: FilterAst): Promise<void> => {
        const c = await this.membersOp(tx, p.tenantId, row.id, op, value, filter);
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
      const attrsChanged = state.displayName !== row.displayName || state.externalId !== row.externalId;
      const updated = await this.touch(tx, row, state, attrsChanged || change.added + change.removed > 0);
      if (updated !== row)
        await this.audit.record(tx, {
          tenantId: p.tenantId,
          actor: this.actor(p),
          action: 'scim.group_updated',
          target: row.id,
          data: { ...change },
        });
      return wantBody ? this.rendered(tx, updated, q) : { id: updated.id, version: updated.version };
    });
  }

  async delete(p: ScimPrincipal, id: string, ifMatch: string | undefined): Promise<void> {
    await this.db.transaction({ tenant: p.tenantId }, async (tx) => {
      const row = await this.find(tx, id, true);
      assertIfMatch(ifMatch, row.version);
      await this.groups.delete(tx, row.id);
      await this.audit.record(tx, { tenantId: p.tenantId, actor: this.actor(p), action: 'scim.group_deleted', target: row.id });
    });
  }

  // ----- internals -------------------------------------------------------------------

  private actor(p: ScimPrincipal): string {
    return `scim:${p.tokenId}`;
  }

  private async find(tx: Tx, id: string, forUpdate: boolean): Promise<ScimGroupRow> {
    if (!isUuid(id)) throw new ScimError(404, 'No such group in this tenant.');
    const row = await this.groups.find(tx, id, forUpdate);
    if (!row) throw new ScimError(404, 'No such group in this tenant.');
    return row;
  }

  /** Writes the group's own attributes and bumps its version when anything changed. */
  private async touch(
    tx: Tx,
    row: ScimGroupRow,
    s: { displayName: string; externalId: string | null },
    changed: boolean,
  ): Promise<ScimGroupRow> {
    if (!changed) return row;
    return this.groups.update(tx, row.id, s.displayName, s.externalId);
  }

  private async membersOp(
    tx: Tx,
    tenantId: string,
    groupId: string,
    op: 'add' | 'remove' | 'replace',
    value: unknown,
    filter?: FilterAst,
  ): Promise<MemberChange> {
    if (op === 'add') return { added: await this.addMembers(tx, tenantId, groupId, memberIds(value)), removed: 0 };
    if (op === 'replace') return this.setMembers(tx, tenantId, groupId, memberIds(value));
    if (filter) {
      // `members[value eq "…"]` (Okta), or any filter over value/display/type: one DELETE.
      const f = compileAst(filter, MEMBER_SQL, MEMBER_FILTER_PARAM_OFFSET);
      return { added: 0, removed: await this.groups.removeMembersMatching(tx, groupId, f) };
    }
    if (value === undefined || value === null) return { added: 0, removed: await this.groups.removeAllMembers(tx, groupId) };
    // Entra: `{"op":"Remove","path":"members","value":[{"value":"…"}]}`.
    return { added: 0, removed: await this.groups.removeMembers(tx, groupId, memberIds(value)) };
  }

  /** Adds users (ids already validated as UUIDs); every id must be a SCIM user of this tenant. */
  private async addMembers(tx: Tx, tenantId: string, groupId: string, ids: string[]): Promise<number> {
    if (ids.length === 0) return 0;
    const r = await this.groups.addMembers(tx, tenantId, groupId, ids);
    if (r.found < r.wanted)
      throw new ScimError(
        400,
        `${r.wanted - r.found} member value(s) are not users of this tenant; no member was changed.`,
        'invalidValue',
      );
    return r.inserted;
  }

  private async setMembers(tx: Tx, tenantId: string, groupId: string, ids: string[]): Promise<MemberChange> {
    const removed = await this.groups.removeMembersExcept(tx, groupId, ids);
    return { removed, added: await this.addMembers(tx, tenantId, groupId, ids) };
  }

  private async rendered(tx: Tx, row: ScimGroupRow, q: ProjectionQuery): Promise<RenderedGroup> {
    const [resource] = await this.renderAll(tx, [row], q);
    if (!resource) throw new Error('renderAll: no resource');
    return { resource, version: row.version, id: row.id };
  }

  private async renderAll(tx: Tx, rows: ScimGroupRow[], q: ProjectionQuery): Promise<Doc[]> {
    const members = new Map<string, Doc[]>();
    const withMembers = wantsAttribute(GROUP_RESOURCE, 'members', q.attributes, q.excludedAttributes);
    if (rows.length && withMembers) {
      const found = await this.groups.membersOf(
        tx,
        rows.map((r) => r.id),
      );
      for (const f of found) {
        const list = members.get(f.groupId) ?? [];
        list.push({
          value: f.userId,
          $ref: `${this.base}/Users/${f.userId}`,
          type: 'User',
          ...(f.display !== null ? { display: f.display } : {}),
        });
        members.set(f.groupId, list);
      }
    }
    return rows.map((r) => {
      const resource: Doc = {
        schemas: [CORE_GROUP],
        id: r.id,
        displayName: r.displayName,
        ...(r.externalId !== null ? { externalId: r.externalId } : {}),
        ...(withMembers ? { members: members.get(r.id) ?? [] } : {}),
        meta: {
          resourceType: 'Group',
          created: r.createdAt.toISOString(),
          lastModified: r.updatedAt.toISOString(),
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
