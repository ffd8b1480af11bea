import { ScimError } from '../common/errors.js';
import { isObject, splitList } from './scim-document.js';
import { LIST_RESPONSE } from './scim-schemas.js';

export const MAX_PAGE_SIZE = 1000;
export const DEFAULT_PAGE_SIZE = 100;

export interface ListQuery {
  filter?: string;
  /** 1-based (RFC 7644 §3.4.2.4). */
  startIndex: number;
  count: number;
  attributes?: string[];
  excludedAttributes?: string[];
}

export interface ProjectionQuery {
  attributes?: string[];
  excludedAttributes?: string[];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (s: unknown): s is string => typeof s === 'string' && UUID.test(s);

/** Query parameter names are case-insensitive in practice (`startIndex`, `startindex`). */
function param(q: Record<string, unknown>, name: string): unknown {
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(q)) if (k.toLowerCase() === lower) return v;
  return undefined;
}

function intParam(q: Record<string, unknown>, name: string): number | undefined {
  const v = param(q, name);
  if (v === undefined || v === '') return undefined;
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v !== 'string' || !/^-?\d{1,9}$/.test(v.trim())) throw new ScimError(400, `${name} must be an integer.`, 'invalidValue');
  return Number(v.trim());
}

export function projectionQuery(q: unknown): ProjectionQuery {
  const o = isObject(q) ? q : {};
  const attributes = splitList(param(o, 'attributes'));
  const excludedAttributes = splitList(param(o, 'excludedAttributes'));
  if (attributes?.length && excludedAttributes?.length)
    throw new ScimError(400, 'Use attributes or excludedAttributes, not both.', 'invalidSyntax');
  return { ...(attributes ? { attributes } : {}), ...(excludedAttributes ? { excludedAttributes } : {}) };
}

/** GET query string or a `.search` body (RFC 7644 §3.4.3): both spell the same parameters. */
export function listQuery(q: unknown): ListQuery {
  const o = isObject(q) ? q : {};
  const filter = param(o, 'filter');
  if (filter !== undefined && typeof filter !== 'string') throw new ScimError(400, 'filter must be a single string.', 'invalidFilter');
  if (param(o, 'sortBy') !== undefined) {
    // Sorting is not offered (ServiceProviderConfig sort.supported = false); results keep creation order.
  }
  const start = intParam(o, 'startIndex');
  const count = intParam(o, 'count');
  return {
    ...(typeof filter === 'string' && filter.trim() !== '' ? { filter } : {}),
    startIndex: start === undefined || start < 1 ? 1 : start,
    count: count === undefined ? DEFAULT_PAGE_SIZE : Math.min(Math.max(count, 0), MAX_PAGE_SIZE),
    ...projectionQuery(o),
  };
}

/**
 * totalResults without a COUNT when the page itself tells: a page shorter than requested ends
 * the result set (the usual `userName eq` probe: 0 or 1 row, one query). Undefined otherwise.
 */
export function knownTotal(rowsOnPage: number, q: ListQuery): number | undefined {
  if (q.count === 0 || rowsOnPage >= q.count) return undefined;
  if (rowsOnPage === 0 && q.startIndex > 1) return undefined;
  return q.startIndex - 1 + rowsOnPage;
}

export function listResponse(total: number, startIndex: number, resources: unknown[]): Record<string, unknown> {
  return { schemas: [LIST_RESPONSE], totalResults: total, startIndex, itemsPerPage: resources.length, Resources: resources };
}

export const etagOf = (version: number): string => `W/"${version}"`;

/** RFC 7232 weak comparison of `If-Match` against the current version; `*` matches anything. */
export function assertIfMatch(header: string | undefined, version: number): void {
  if (header === undefined || header.trim() === '') return;
  const current = `"${version}"`;
  const ok = header.split(',').some((raw) => {
    const t = raw.trim();
    return t === '*' || t.replace(/^W\//, '') === current;
  });
  if (!ok) throw new ScimError(412, `The resource has changed: its current version is ${etagOf(version)}.`);
}

export function ifNoneMatchHits(header: string | undefined, version: number): boolean {
  if (!header) return false;
  const current = `"${version}"`;
  return header.split(',').some((raw) => raw.trim() === '*' || raw.trim().replace(/^W\//, '') === current);
}
