import { Inject, Injectable } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { Database, type Tx } from '../database/database.js';
import { OAuthError } from '../common/errors.js';
import { SessionsRepository, type RevocationCursor } from '../sessions/sessions.repository.js';

export interface RevokedSession {
  /** The `sid` claim of every access and ID token of the session. */
  sid: string;
  tid: string;
  revoked_at: string;
  reason: string | null;
  /** After this instant no token of the session can still be valid: a deny-list may drop the entry. */
  not_after: string;
}

export interface RevocationPage {
  revocations: RevokedSession[];
  /** Pass as `since` on the next poll (also when the page is empty). */
  next_cursor: string;
  /** More entries are ready now: poll again at once. */
  has_more: boolean;
}

type Cursor = RevocationCursor;

const MAX_UUID = 'ffffffff-ffff-ffff-ffff-ffffffffffff';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export const encodeCursor = (c: Cursor): string => Buffer.from(`${c.xid}:${c.id}`).toString('base64url');

export function decodeCursor(value: string): Cursor {
  const m = /^(\d{1,20}):(.+)$/.exec(value.length <= 100 ? Buffer.from(value, 'base64url').toString('utf8') : '');
  if (!m || !UUID.test(m[2]!)) throw new OAuthError('invalid_request', 'since is not a cursor this feed returned.');
  return { xid: BigInt(m[1]!), id: m[2]! };
}

/** Orders like PostgreSQL's (xid8, uuid) row comparison (uuid: bytewise, i.e. lower-case hex text order). */
const compareCursors = (a: Cursor, b: Cursor): number =>
  a.xid !== b.xid ? (a.xid < b.xid ? -1 : 1) : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;

/**
 * Sessions revoked since a cursor — logout, refresh-token reuse, SCIM deprovisioning, a disabled
 * user, a suspended or deleted tenant: everything that sets `sessions.revoked_at`. Ordered by the
 * revoking transaction's id and served only below the oldest running transaction, so a revocation
 * that commits late is never skipped (see the migration SessionRevocationFeed1765300000000).
 * Entries older than the longest token lifetime are left out: no token of theirs is still valid.
 */
@Injectable()
export class RevocationFeedService {
  constructor(
    private readonly db: Database,
    private readonly sessions: SessionsRepository,
    @Inject(AppConfig) private readonly config: AppConfig,
  ) {}

  /** `tenantId` undefined: every tenant (the explicit, read-only `app.revocation_reader` mode). */
  async read(scope: { tenantId?: string }, since: string | undefined, limit: number): Promise<RevocationPage> {
    const cursor = since === undefined ? undefined : decodeCursor(since);
    const lifetime = this.config.ACCESS_TOKEN_TTL_SECONDS + this.config.CLOCK_SKEW_SECONDS;
    // One snapshot for both statements: the horizon and the rows it bounds must agree.
    const readPage = async (tx: Tx): Promise<RevocationPage> => {
      const xmin = await this.sessions.revocationHorizon(tx);
      const rows = await this.sessions.revokedSince(tx, cursor, xmin, lifetime, limit + 1);
      const page = rows.slice(0, limit);
      const hasMore = rows.length > limit;
      const last = page[page.length - 1];
      // Nothing more below the horizon: the next poll starts at it (every later revocation is above it).
      let next: Cursor = hasMore ? { xid: BigInt(last!.xid), id: last!.id } : { xid: BigInt(xmin) - 1n, id: MAX_UUID };
      if (cursor && compareCursors(next, cursor) < 0) next = cursor; // never backwards (e.g. a cursor from a failed-over primary)
      return {
        revocations: page.map((r) => ({
          sid: r.id,
          tid: r.tenantId,
          revoked_at: r.revokedAt.toISOString(),
          reason: r.reason,
          not_after: new Date(r.revokedAt.getTime() + lifetime * 1000).toISOString(),
        })),
        next_cursor: encodeCursor(next),
        has_more: hasMore,
      };
    };
    if (scope.tenantId === undefined) return this.db.transaction('revocation-reader', readPage);
    return this.db.transaction({ tenant: scope.tenantId, snapshot: true }, readPage);
  }
}
