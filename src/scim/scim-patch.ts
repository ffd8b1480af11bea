import { ScimError } from '../common/errors.js';
import type { FilterAst } from './filter/scim-filter.js';
import { type ScimPath, ScimFilterError, matchesFilter, parseScimPath } from './filter/scim-path.js';
import { type Doc, coerceAttribute, fixPrimary, isObject } from './scim-document.js';
import { type AttributeDef, type ResourceTypeDef, type SchemaDef, PATCH_OP, findAttr, findSchema } from './scim-schemas.js';

/**
 * RFC 7644 §3.5.2 PATCH, applied to a resource document in memory (the caller loads the row
 * FOR UPDATE, applies, validates the result and writes it back in the same transaction, so a
 * failing operation leaves nothing changed). Dialects accepted:
 * - Entra ID: capitalised `op` ("Replace", "Add", "Remove"), booleans as "True"/"False",
 *   `manager` given as a bare id, `add` to `emails[type eq "work"].value` on a user without one.
 * - Okta: `replace` without `path` whose value is the attributes to set (`{"active": false}`).
 * - Keys of a path-less value may themselves be paths (`"name.givenName"`, URN-prefixed).
 */
export type PatchOpName = 'add' | 'remove' | 'replace';

export interface PatchOperation {
  op: PatchOpName;
  path?: string;
  value?: unknown;
}

/** Parses and checks a PatchOp request body; op names are case-insensitive (Entra). */
export function parsePatchRequest(body: unknown, maxOperations = 1000): PatchOperation[] {
  if (!isObject(body)) throw new ScimError(400, 'The request body must be a PatchOp JSON object.', 'invalidSyntax');
  const schemas = body['schemas'];
  if (
    schemas !== undefined &&
    (!Array.isArray(schemas) || !schemas.some((s) => typeof s === 'string' && s.toLowerCase() === PATCH_OP.toLowerCase()))
  )
    throw new ScimError(400, `"schemas" must contain ${PATCH_OP}.`, 'invalidSyntax');
  const ops = body['Operations'] ?? body['operations'];
  if (!Array.isArray(ops) || ops.length === 0) throw new ScimError(400, '"Operations" must be a non-empty array.', 'invalidSyntax');
  if (ops.length > maxOperations) throw new ScimError(400, `At most ${maxOperations} operations per request.`, 'tooMany');
  return ops.map((raw, i) => {
    if (!isObject(raw)) throw new ScimError(400, `Operation ${i + 1} must be an object.`, 'invalidSyntax');
    const op = typeof raw['op'] === 'string' ? raw['op'].trim().toLowerCase() : '';
    if (op !== 'add' && op !== 'remove' && op !== 'replace')
      throw new ScimError(400, `Operation ${i + 1}: "op" must be add, remove or replace.`, 'invalidSyntax');
    const path = raw['path'];
    if (path !== undefined && path !== null && typeof path !== 'string')
      throw new ScimError(400, `Operation ${i + 1}: "path" must be a string.`, 'invalidPath');
    const p = typeof path === 'string' && path.trim() !== '' ? path.trim() : undefined;
    if (op !== 'remove' && !('value' in raw)) throw new ScimError(400, `Operation ${i + 1}: "${op}" needs a "value".`, 'invalidValue');
    if (op === 'remove' && p === undefined) throw new ScimError(400, `Operation ${i + 1}: "remove" needs a "path".`, 'noTarget');
    return { op, ...(p !== undefined ? { path: p } : {}), ...('value' in raw ? { value: raw['value'] } : {}) };
  });
}

/** Parses a PATCH path, turning parser errors into SCIM errors with their `scimType`. */
export function parsePath(text: string): ScimPath {
  try {
    return parseScimPath(text);
  } catch (err) {
    if (err instanceof ScimFilterError) throw new ScimError(400, err.message, err.scimType, { cause: err });
    throw err;
  }
}

/** Where a path points: the attribute definition and the object that holds it. */
interface Target {
  schema: SchemaDef;
  def: AttributeDef;
  /** The attribute's container in the document (the root, or the extension object). */
  container: Doc;
  label: string;
}

const IGNORED_IN_VALUES = new Set(['schemas', 'id', 'meta']);

export class PatchEngine {
  constructor(private readonly rt: ResourceTypeDef) {}

  /** Returns a new document; `doc` is not modified. Throws ScimError on the first bad operation. */
  apply(doc: Doc, ops: readonly PatchOperation[]): Doc {
    const out = structuredClone(doc);
    for (const op of ops) {
      if (op.path === undefined) this.applyWithoutPath(out, op);
      else this.applyAtPath(out, op.op, parsePath(op.path), op.value);
    }
    return out;
  }

  private applyWithoutPath(doc: Doc, op: PatchOperation): void {
    if (!isObject(op.value)) throw new ScimError(400, `"${op.op}" without "path" needs an object "value".`, 'invalidValue');
    for (const [key, value] of Object.entries(op.value)) {
      if (IGNORED_IN_VALUES.has(key.toLowerCase())) continue;
      const ext = key.includes(':') ? findSchema(this.rt, key) : undefined;
      if (ext && ext !== this.rt.schema) {
        if (!isObject(value)) throw new ScimError(400, `'${ext.id}' must be an object.`, 'invalidValue');
        for (const [k, v] of Object.entries(value)) this.applyAtPath(doc, op.op, { uri: ext.id, attribute: k }, v, true);
        continue;
      }
      this.applyAtPath(doc, op.op, parsePath(key), value, true);
    }
  }

  private resolve(doc: Doc, path: ScimPath): Target {
    let schema: SchemaDef | undefined;
    let def: AttributeDef | undefined;
    if (path.uri !== undefined) {
      schema = findSchema(this.rt, path.uri);
      if (!schema) throw new ScimError(400, `Unknown schema '${path.uri}' in path.`, 'invalidPath');
      def = findAttr(schema.attributes, path.attribute);
    } else {
      for (const s of [this.rt.schema, ...this.rt.extensions]) {
        def = findAttr(s.attributes, path.attribute);
        if (def) {
          schema = s;
          break;
        }
      }
    }
    if (!schema || !def) throw new ScimError(400, `Unknown attribute '${path.attribute}' in path.`, 'invalidPath');
    let container = doc;
    if (schema !== this.rt.schema) {
      const existing = doc[schema.id];
      container = isObject(existing) ? existing : {};
      doc[schema.id] = container;
    }
    return { schema, def, container, label: schema === this.rt.schema ? def.name : `${schema.id}:${def.name}` };
  }

  private applyAtPath(doc: Doc, op: PatchOpName, path: ScimPath, value: unknown, fromValueObject = false): void {
    const t = this.resolve(doc, path);
    const { def, container } = t;
    if (def.mutability === 'writeOnly') return; // passwords are never stored
    if (def.mutability === 'readOnly') {
      if (fromValueObject) return; // Okta repeats read-only attributes in path-less values
      throw new ScimError(400, `Attribute '${t.label}' is read-only.`, 'mutability');
    }
    const subDef = path.subAttribute !== undefined ? findAttr(def.subAttributes, path.subAttribute) : undefined;
    if (path.subAttribute !== undefined && !subDef)
      throw new ScimError(400, `Unknown sub-attribute '${path.subAttribute}' of '${t.label}'.`, 'invalidPath');
    if (subDef?.mutability === 'readOnly') throw new ScimError(400, `Attribute '${t.label}.${subDef.name}' is read-only.`, 'mutability');

    if (path.valueFilter) {
      if (!def.multiValued)
        throw new ScimError(400, `'${t.label}' is not multi-valued; a value filter cannot select from it.`, 'invalidPath');
      this.applyFiltered(container, t, path.valueFilter, subDef, op, value);
    } else if (subDef) {
      this.applySub(container, t, subDef, op, value);
    } else {
      this.applyWhole(container, t, op, value);
    }
    if (schemaIsExtension(this.rt, t.schema) && Object.keys(container).length === 0) delete doc[t.schema.id];
  }

  private applyWhole(container: Doc, t: Target, op: PatchOpName, value: unknown): void {
    const { def } = t;
    const name = def.name;
    if (op === 'remove') {
      if (def.multiValued && value !== undefined && value !== null) {
        // Non-standard but common: remove the listed values (`{"op":"remove","path":"emails","value":[{"value":"x"}]}`).
        const drop = (coerceAttribute(def, value, t.label) as unknown[] | undefined) ?? [];
        const current = asArray(container[name]);
        const kept = current.filter((e) => !drop.some((d) => sameValue(def, e, d)));
        setOrDelete(container, name, kept.length ? kept : undefined);
      } else delete container[name];
      return;
    }
    const coerced = coerceAttribute(def, value, t.label);
    if (def.multiValued) {
      const incoming = (coerced as unknown[] | undefined) ?? [];
      if (op === 'replace') {
        setOrDelete(container, name, incoming.length ? incoming : undefined);
        return;
      }
      const current = asArray(container[name]).slice();
      for (const item of incoming) {
        const i = current.findIndex((e) => sameValue(def, e, item, true));
        if (i >= 0) current[i] = isObject(current[i]) && isObject(item) ? { ...current[i], ...item } : item;
        else current.push(item);
      }
      setOrDelete(container, name, current.length ? fixPrimary(current) : undefined);
      return;
    }
    if (def.type === 'complex') {
      // RFC 7644 §3.5.2.1/.3: sub-attributes given replace or add; the others are kept.
      if (coerced === undefined) {
        if (op === 'replace') delete container[name];
        return;
      }
      const current = isObject(container[name]) ? (container[name] as Doc) : {};
      container[name] = { ...current, ...(coerced as Doc) };
      return;
    }
    setOrDelete(container, name, coerced);
  }

  private applySub(container: Doc, t: Target, subDef: AttributeDef, op: PatchOpName, value: unknown): void {
    const { def } = t;
    const name = def.name;
    const coerced = op === 'remove' ? undefined : coerceAttribute(subDef, value, `${t.label}.${subDef.name}`);
    if (!def.multiValued) {
      const current = isObject(container[name]) ? { ...(container[name] as Doc) } : {};
      setOrDelete(current, subDef.name, coerced);
      setOrDelete(container, name, Object.keys(current).length ? current : undefined);
      return;
    }
    // `emails.value` without a filter addresses every element.
    const current = asArray(container[name]);
    if (current.length === 0) {
      if (op !== 'remove' && coerced !== undefined) container[name] = [{ [subDef.name]: coerced }];
      return;
    }
    const next = current.map((e) => {
      const copy = isObject(e) ? { ...e } : {};
      setOrDelete(copy, subDef.name, coerced);
      return copy;
    });
    setOrDelete(container, name, prune(next));
  }

  private applyFiltered(
    container: Doc,
    t: Target,
    filter: FilterAst,
    subDef: AttributeDef | undefined,
    op: PatchOpName,
    value: unknown,
  ): void {
    const { def } = t;
    const name = def.name;
    const caseExact = (p: string): boolean => findAttr(def.subAttributes, p.split('.')[0]!)?.caseExact ?? false;
    const current = asArray(container[name]);
    const matched = current.map((e) => matchesFilter(filter, e, { caseExact }));
    const any = matched.some(Boolean);

    if (op === 'remove') {
      if (!any) return; // nothing selected: removing is already done
      const next = subDef
        ? current.map((e, i) => {
            if (!matched[i] || !isObject(e)) return e;
            const copy = { ...e };
            delete copy[subDef.name];
            return copy;
          })
        : current.filter((_, i) => !matched[i]);
      setOrDelete(container, name, prune(next));
      return;
    }

    const elementDef: AttributeDef = { ...def, multiValued: false };
    const coerced = subDef ? coerceAttribute(subDef, value, `${t.label}.${subDef.name}`) : coerceAttribute(elementDef, value, t.label);
    if (!any) {
      // Entra adds `phoneNumbers[type eq "mobile"].value` to a user without a mobile number:
      // create the element the filter describes, when the filter is a plain conjunction of `eq`.
      const seed = seedFromFilter(def, filter);
      if (!seed) throw new ScimError(400, `No value of '${t.label}' matches the filter in the path.`, 'noTarget');
      if (coerced === undefined) return;
      const element = subDef ? { ...seed, [subDef.name]: coerced } : { ...seed, ...(coerced as Doc) };
      container[name] = fixPrimary([...current, element]);
      return;
    }
    const next = current.map((e, i) => {
      if (!matched[i]) return e;
      if (subDef) {
        const copy = isObject(e) ? { ...e } : {};
        setOrDelete(copy, subDef.name, coerced);
        return copy;
      }
      return op === 'add' && isObject(e) && isObject(coerced) ? { ...e, ...coerced } : coerced;
    });
    setOrDelete(container, name, prune(next));
  }
}

function schemaIsExtension(rt: ResourceTypeDef, s: SchemaDef): boolean {
  return s !== rt.schema;
}

const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : v === undefined || v === null ? [] : [v]);

function setOrDelete(o: Doc, key: string, v: unknown): void {
  if (v === undefined) delete o[key];
  else o[key] = v;
}

/** Drops elements left without a value (e.g. after removing `phoneNumbers[type eq "work"].value`). */
function prune(items: unknown[]): unknown[] | undefined {
  const kept = items.filter(
    (e) =>
      e !== undefined &&
      e !== null &&
      (!isObject(e) ||
        (e['value'] !== undefined && e['value'] !== '') ||
        Object.keys(e).some((k) => k !== 'type' && k !== 'primary' && k !== 'display')),
  );
  return kept.length ? fixPrimary(kept) : undefined;
}

/** Same element for add/remove purposes: equal `value` (and `type`, when both have one). */
function sameValue(def: AttributeDef, a: unknown, b: unknown, compareType = false): boolean {
  if (!isObject(a) || !isObject(b)) return a === b;
  const va = a['value'];
  const vb = b['value'];
  if (va === undefined || vb === undefined) return false;
  const exact = findAttr(def.subAttributes, 'value')?.caseExact ?? false;
  const eq = typeof va === 'string' && typeof vb === 'string' && !exact ? va.toLowerCase() === vb.toLowerCase() : va === vb;
  if (!eq) return false;
  if (compareType && a['type'] !== undefined && b['type'] !== undefined)
    return String(a['type']).toLowerCase() === String(b['type']).toLowerCase();
  return true;
}

/** `type eq "work"` (and conjunctions of such) → `{ type: "work" }`; anything else → undefined. */
function seedFromFilter(def: AttributeDef, f: FilterAst): Doc | undefined {
  const leaves = f.op === 'and' ? f.filters : [f];
  const out: Doc = {};
  for (const leaf of leaves) {
    if (leaf.op !== 'eq' || leaf.attr.uri !== undefined || leaf.attr.subAttr !== undefined || leaf.value === null) return undefined;
    const sub = findAttr(def.subAttributes, leaf.attr.name);
    if (!sub || sub.mutability === 'readOnly') return undefined;
    out[sub.name] = leaf.value;
  }
  return out;
}
