import { ScimError } from '../common/errors.js';
import { type AttributeDef, type ResourceTypeDef, type SchemaDef, findAttr, findSchema } from './scim-schemas.js';

/**
 * SCIM resources as plain JSON documents keyed by canonical attribute names. Input from any
 * client (Entra ID, Okta, the RFC examples) goes through `normaliseDocument`, which matches
 * names case-insensitively, coerces the dialects (Entra's `"False"`, a manager given as a bare
 * id, a single value where an array belongs) and drops what clients may not set (read-only
 * attributes, passwords). Extension attributes live under their schema URN.
 */
export type Doc = Record<string, unknown>;

export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const invalid = (detail: string): never => {
  throw new ScimError(400, detail, 'invalidValue');
};

const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/i;

function coerceScalar(def: AttributeDef, value: unknown, path: string): unknown {
  switch (def.type) {
    case 'string':
    case 'reference':
    case 'binary': {
      let s: string;
      if (typeof value === 'string') s = value;
      else if (typeof value === 'number' || typeof value === 'boolean') s = String(value);
      else return invalid(`Attribute '${path}' must be a string.`);
      if (def.maxLength !== undefined && s.length > def.maxLength)
        invalid(`Attribute '${path}' is longer than ${def.maxLength} characters.`);
      // U+0000 (which PostgreSQL cannot store) never gets here: the input guard refuses it for every route.
      return s;
    }
    case 'boolean':
      if (typeof value === 'boolean') return value;
      // Entra ID sends booleans as the strings "True" / "False".
      if (typeof value === 'string' && /^(true|false)$/i.test(value.trim())) return value.trim().toLowerCase() === 'true';
      return invalid(`Attribute '${path}' must be a boolean.`);
    case 'integer':
    case 'decimal': {
      const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isFinite(n) || (def.type === 'integer' && !Number.isInteger(n)))
        invalid(`Attribute '${path}' must be a number.`);
      return n;
    }
    case 'dateTime':
      if (typeof value !== 'string' || !DATE_TIME.test(value) || Number.isNaN(Date.parse(value)))
        invalid(`Attribute '${path}' must be an RFC 3339 date-time.`);
      return value;
    case 'complex':
      return coerceComplex(def, value, path);
  }
}

function coerceComplex(def: AttributeDef, value: unknown, path: string): Doc | undefined {
  // A complex attribute given as its bare value (Entra: the enterprise `manager` as an id string).
  if ((typeof value === 'string' || typeof value === 'number') && findAttr(def.subAttributes, 'value')) value = { value };
  if (!isObject(value)) return invalid(`Attribute '${path}' must be an object.`);
  const out: Doc = {};
  for (const [key, v] of Object.entries(value)) {
    const sub = findAttr(def.subAttributes, key);
    if (!sub || sub.mutability === 'readOnly') continue;
    const coerced = coerceSingle(sub, v, `${path}.${sub.name}`);
    if (coerced !== undefined) out[sub.name] = coerced;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** One value of `def` (an element when `def` is multi-valued). Null and "" mean unassigned (RFC 7643 §2.5). */
function coerceSingle(def: AttributeDef, value: unknown, path: string): unknown {
  if (value === null || value === undefined) return undefined;
  const v = coerceScalar(def, value, path);
  return v === '' ? undefined : v;
}

/** A whole attribute value: arrays for multi-valued attributes (a lone element is wrapped). */
export function coerceAttribute(def: AttributeDef, value: unknown, path: string): unknown {
  if (value === null || value === undefined) return undefined;
  if (!def.multiValued) return coerceSingle(def, value, path);
  const items = Array.isArray(value) ? value : [value];
  const out = items.map((item) => coerceSingle(def, item, path)).filter((x) => x !== undefined);
  return out.length > 0 ? fixPrimary(out) : undefined;
}

/** RFC 7643 §2.4: at most one `primary: true`; the last one given (the newest) wins. */
export function fixPrimary(items: unknown[]): unknown[] {
  const last = items.findLastIndex((e) => isObject(e) && e['primary'] === true);
  if (last < 0) return items;
  return items.map((e, i) => (isObject(e) && e['primary'] === true && i !== last ? { ...e, primary: false } : e));
}

/** Attributes a client may write (readOnly and writeOnly ones are ignored in resource bodies). */
const writable = (a: AttributeDef): boolean => a.mutability === 'readWrite' || a.mutability === 'immutable';

function normaliseSchemaAttributes(schema: SchemaDef, source: Record<string, unknown>, prefix: string): Doc {
  const out: Doc = {};
  for (const [key, value] of Object.entries(source)) {
    const def = findAttr(schema.attributes, key);
    if (!def || !writable(def)) continue;
    const v = coerceAttribute(def, value, `${prefix}${def.name}`);
    if (v !== undefined) out[def.name] = v;
  }
  return out;
}

/**
 * Validates and canonicalises a resource body (POST, PUT, or the result of a PATCH). Unknown
 * attributes and unknown schema extensions are ignored (Entra sends its own group schema URN);
 * read-only attributes (`id`, `meta`, `groups`) and passwords are dropped.
 */
export function normaliseDocument(rt: ResourceTypeDef, body: unknown, opts: { checkSchemas?: boolean } = {}): Doc {
  if (!isObject(body)) throw new ScimError(400, 'The request body must be a JSON object.', 'invalidSyntax');
  if (opts.checkSchemas && body['schemas'] !== undefined) {
    const schemas = body['schemas'];
    if (!Array.isArray(schemas) || !schemas.some((s) => typeof s === 'string' && s.toLowerCase() === rt.schema.id.toLowerCase()))
      throw new ScimError(400, `"schemas" must contain ${rt.schema.id}.`, 'invalidSyntax');
  }
  const core: Record<string, unknown> = {};
  const doc: Doc = {};
  for (const [key, value] of Object.entries(body)) {
    const ext = key.includes(':') ? findSchema(rt, key) : undefined;
    if (ext && ext !== rt.schema) {
      if (value === null) continue;
      if (!isObject(value)) invalid(`'${ext.id}' must be an object.`);
      const e = normaliseSchemaAttributes(ext, value as Record<string, unknown>, `${ext.id}:`);
      if (Object.keys(e).length > 0) doc[ext.id] = e;
    } else if (ext === rt.schema && isObject(value)) {
      // Core attributes nested under the core URN (allowed by RFC 7643 §3, rare).
      Object.assign(core, value);
    } else {
      core[key] = value;
    }
  }
  Object.assign(doc, normaliseSchemaAttributes(rt.schema, core, ''));
  for (const a of rt.schema.attributes) {
    if (a.required && writable(a)) {
      const v = doc[a.name];
      if (v === undefined || (typeof v === 'string' && v.trim() === '')) invalid(`Attribute '${a.name}' is required.`);
    }
  }
  return doc;
}

// ---------------------------------------------------------------------------------------
// attributes / excludedAttributes (RFC 7644 §3.4.2.5, §3.9)
// ---------------------------------------------------------------------------------------

/** A requested attribute: `[schemaUrn, attribute, subAttribute?]`; attribute undefined = the whole extension. */
interface Selector {
  schema: string;
  attr?: string;
  sub?: string;
}

function parseSelectors(rt: ResourceTypeDef, list: string[] | undefined): Selector[] | undefined {
  if (!list) return undefined;
  const out: Selector[] = [];
  for (const raw of list) {
    const item = raw.trim();
    if (!item) continue;
    let schema = rt.schema;
    let rest = item;
    const lower = item.toLowerCase();
    for (const s of [rt.schema, ...rt.extensions]) {
      const id = s.id.toLowerCase();
      if (lower === id) {
        schema = s;
        rest = '';
        break;
      }
      if (lower.startsWith(`${id}:`)) {
        schema = s;
        rest = item.slice(id.length + 1);
        break;
      }
    }
    if (rest === '') {
      out.push({ schema: schema.id });
      continue;
    }
    const [name, sub] = rest.split('.', 2);
    const def = findAttr(schema.attributes, name!);
    if (!def) continue;
    const subDef = sub !== undefined ? findAttr(def.subAttributes, sub) : undefined;
    out.push({ schema: schema.id, attr: def.name, ...(subDef ? { sub: subDef.name } : {}) });
  }
  return out;
}

/** Which top-level attributes of the core schema a projection will return (lets services skip loading members). */
export function wantsAttribute(rt: ResourceTypeDef, name: string, attributes?: string[], excluded?: string[]): boolean {
  const inc = parseSelectors(rt, attributes);
  if (inc && inc.length > 0) return inc.some((s) => s.schema === rt.schema.id && s.attr === name);
  const exc = parseSelectors(rt, excluded) ?? [];
  return !exc.some((s) => s.schema === rt.schema.id && s.attr === name && s.sub === undefined);
}

function pick(value: unknown, sub: string | undefined): unknown {
  if (sub === undefined) return value;
  if (Array.isArray(value)) {
    const items = value
      .filter(isObject)
      .map((e) => (e[sub] !== undefined ? { [sub]: e[sub] } : undefined))
      .filter(Boolean);
    return items.length ? items : undefined;
  }
  return isObject(value) && value[sub] !== undefined ? { [sub]: value[sub] } : undefined;
}

function merge(a: unknown, b: unknown): unknown {
  if (a === undefined) return b;
  if (Array.isArray(a) && Array.isArray(b)) return a.map((x, i) => ({ ...(x as Doc), ...(b[i] as Doc) }));
  if (isObject(a) && isObject(b)) return { ...a, ...b };
  return b;
}

/**
 * Applies `attributes` or `excludedAttributes` to a rendered resource. `schemas` and `id`
 * (returned "always") are never removed; `meta` follows the request like any attribute.
 */
export function projectDocument(rt: ResourceTypeDef, doc: Doc, attributes?: string[], excluded?: string[]): Doc {
  const inc = parseSelectors(rt, attributes);
  if (inc && inc.length > 0) {
    const out: Doc = { schemas: doc['schemas'], id: doc['id'] };
    for (const s of inc) {
      if (s.schema !== rt.schema.id) {
        const ext = doc[s.schema];
        if (!isObject(ext)) continue;
        if (s.attr === undefined) out[s.schema] = ext;
        else {
          const v = pick(ext[s.attr], s.sub);
          if (v !== undefined)
            out[s.schema] = {
              ...(out[s.schema] ?? {}),
              [s.attr]: merge((out[s.schema] as Doc | undefined)?.[s.attr], v),
            };
        }
        continue;
      }
      if (s.attr === undefined) continue;
      const v = pick(doc[s.attr], s.sub);
      if (v !== undefined) out[s.attr] = merge(out[s.attr], v);
    }
    // `meta` is not a schema attribute; keep it only when asked for by name.
    if (attributes!.some((a) => a.trim().toLowerCase() === 'meta' || a.trim().toLowerCase().startsWith('meta.'))) out['meta'] = doc['meta'];
    return out;
  }
  const exc = parseSelectors(rt, excluded);
  const excludeMeta = (excluded ?? []).some((a) => a.trim().toLowerCase() === 'meta');
  if ((!exc || exc.length === 0) && !excludeMeta) return doc;
  const out: Doc = structuredClone(doc);
  if (excludeMeta) delete out['meta'];
  for (const s of exc ?? []) {
    const container = s.schema === rt.schema.id ? out : (out[s.schema] as Doc | undefined);
    if (!isObject(container)) continue;
    if (s.attr === undefined) {
      if (s.schema !== rt.schema.id) delete out[s.schema];
      continue;
    }
    const def = findAttr((s.schema === rt.schema.id ? rt.schema : rt.extensions.find((e) => e.id === s.schema)!).attributes, s.attr);
    if (def?.returned === 'always') continue;
    if (s.sub === undefined) delete container[s.attr];
    else {
      const v = container[s.attr];
      if (Array.isArray(v)) for (const e of v) if (isObject(e)) delete e[s.sub];
      if (isObject(v)) delete v[s.sub];
    }
  }
  return out;
}

/** `a,b, c` → `['a','b','c']`; undefined when absent. */
export function splitList(v: unknown): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (Array.isArray(v))
    return v
      .flatMap((x) => (typeof x === 'string' ? x.split(',') : []))
      .map((s) => s.trim())
      .filter(Boolean);
  if (typeof v !== 'string')
    throw new ScimError(400, 'attributes / excludedAttributes must be comma-separated attribute names.', 'invalidValue');
  return v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}
