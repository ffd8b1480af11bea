import { Injectable } from '@nestjs/common';
import { type Tx } from '../database/database.js';

/** A platform session (`sessions`): what tokens of the session say about its login. */
export interface Session {
  id: string;
  tenantId: string;
  userId: string;
  clientId: string;
  bindingId: string | null;
  idp: string;
  idpSub: string;
  authTime: Date;
  /** RFC 8176 methods of the login (null: not known, an upstream login). */
  amr: string[] | null;
  revokedAt: Date | null;
}

export interface NewSession {
  tenantId: string;
  userId: string;
  clientId: string | null;
  bindingId: string;
  idp: string;
  idpSub: string;
  authTime: Date;
  amr?: string[];
}

export interface NewRefreshToken {
  tokenHash: string;
  tenantId: string;
  sessionId: string;
  scope: string;
  expiresAt: Date;
}

export interface Rotation {
  /** The presented token's hash. */
  presentedHash: string;
  /** Its successor's hash, inserted when the rotation happens. */
  nextHash: string;
  tenantId: string;
  /** The client presenting the token: a token of another client is not rotated. */
  clientId: string;
  /** The successor's expiry. */
  expiresAt: Date;
  /** The scopes the refresh asks for (a refresh may only narrow): not rotated unless all were granted. Undefined: as granted. */
  narrowTo?: string[];
}

/**
 * What the rotation statement read about the presented token, its session, user and tenant (all
 * locked or read in the one statement), and whether it rotated the token.
 */
export interface RotationResult {
  sessionId: string;
  scope: string;
  expired: boolean;
  rotatedAt: Date | null;
  clientId: string;
  revokedAt: Date | null;
  idp: string;
  idpSub: string;
  authTime: Date;
  amr: string[] | null;
  userId: string;
  userStatus: string;
  email: string | null;
  emailVerified: boolean;
  displayName: string | null;
  tenantSlug: string;
  tenantStatus: string;
  roles: string[];
  /** This statement rotated the token (and inserted the successor). */
  rotated: boolean;
}

/** The access-token liveness read: the session with its user and the user's roles. */
export interface LiveSession {
  userId: string;
  clientId: string;
  revokedAt: Date | null;
  userStatus: 'active' | 'disabled';
  email: string | null;
  emailVerified: boolean;
  displayName: string | null;
  roles: string[];
}

export interface UpstreamSessionState {
  bindingId: string | null;
  upstreamState: Buffer | null;
}

/** A position in the revocation feed: the revoking transaction's id, then the session id. */
export interface RevocationCursor {
  xid: bigint;
  id: string;
}

export interface SessionRevocation {
  id: string;
  tenantId: string;
  revokedAt: Date;
  reason: string | null;
  /** The revoking transaction's id (xid8, as text). */
  xid: string;
}

/**
 * `sessions` and `refresh_tokens` (a session's refresh-token family). The refresh rotation, the
 * reuse-grace check and the access-token liveness read are the hot paths: named prepared
 * statements (ADR 0001, ADR 0008), run on a `Tx` (a TypeORM handle would not prepare them).
 */
@Injectable()
export class SessionsRepository {
  async create(handle: Tx, s: NewSession): Promise<string> {
    const {
      rows: [row],
    } = await handle.query<{ id: string }>(
      `INSERT INTO sessions (tenant_id, user_id, client_id, binding_id, idp, idp_sub, auth_time, amr) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
      [s.tenantId, s.userId, s.clientId, s.bindingId, s.idp, s.idpSub, s.authTime, s.amr ?? null],
      'session-insert',
    );
    if (!row) throw new Error('sessions: INSERT … RETURNING returned no row');
    return row.id;
  }

  async find(handle: Tx, id: string): Promise<Session | undefined> {
    const {
      rows: [r],
    } = await handle.query<{
      id: string;
      tenant_id: string;
      user_id: string;
      client_id: string;
      binding_id: string | null;
      idp: string;
      idp_sub: string;
      auth_time: Date;
      amr: string[] | null;
      revoked_at: Date | null;
    }>(`SELECT id, tenant_id, user_id, client_id, binding_id, idp, idp_sub, auth_time, amr, revoked_at FROM sessions WHERE id = $1`, [id]);
    if (!r) return undefined;
    return {
      id: r.id,
      tenantId: r.tenant_id,
      userId: r.user_id,
      clientId: r.client_id,
      bindingId: r.binding_id,
      idp: r.idp,
      idpSub: r.idp_sub,
      authTime: r.auth_time,
      amr: r.amr,
      revokedAt: r.revoked_at,
    };
  }

  /** Ends one session (and so its refresh-token family); false when it had ended already. */
  async revoke(handle: Tx, id: string, reason: string): Promise<boolean> {
    const res = await handle.query(`UPDATE sessions SET revoked_at = now(), revoked_reason = $2 WHERE id = $1 AND revoked_at IS NULL`, [
      id,
      reason,
    ]);
    return res.rowCount > 0;
  }

  /** Ends every live session of a user (SCIM deprovisioning, a disabled user); returns how many. */
  async revokeAllOfUser(handle: Tx, userId: string, reason: string): Promise<number> {
    const res = await handle.query(
      `UPDATE sessions SET revoked_at = now(), revoked_reason = $2 WHERE user_id = $1 AND revoked_at IS NULL`,
      [userId, reason],
    );
    return res.rowCount;
  }

  /** Ends every live session of a tenant (suspended, deleted); the handle must be in that tenant. Returns how many. */
  async revokeAllOfTenant(handle: Tx, tenantId: string, reason: string): Promise<number> {
    const res = await handle.query(
      `UPDATE sessions SET revoked_at = now(), revoked_reason = $2 WHERE tenant_id = $1 AND revoked_at IS NULL`,
      [tenantId, reason],
    );
    return res.rowCount;
  }

  /** Keeps an adapter's sealed upstream session data with the session. */
  async setUpstreamState(handle: Tx, id: string, sealed: Buffer): Promise<void> {
    await handle.query(`UPDATE sessions SET upstream_state = $2 WHERE id = $1`, [id, sealed]);
  }

  async findUpstreamState(handle: Tx, id: string): Promise<UpstreamSessionState | undefined> {
    const {
      rows: [r],
    } = await handle.query<{ binding_id: string | null; upstream_state: Buffer | null }>(
      `SELECT binding_id, upstream_state FROM sessions WHERE id = $1`,
      [id],
    );
    return r ? { bindingId: r.binding_id, upstreamState: r.upstream_state } : undefined;
  }

  /**
   * The access-token check's liveness read: the session, its user and the user's roles, one indexed
   * statement in the token's tenant (`access-token-live`).
   */
  async findLive(tx: Tx, sessionId: string | undefined): Promise<LiveSession | undefined> {
    const {
      rows: [r],
    } = await tx.query<{
      user_id: string;
      client_id: string;
      revoked_at: Date | null;
      status: 'active' | 'disabled';
      email: string | null;
      email_verified: boolean;
      display_name: string | null;
      roles: string[];
    }>(
      `SELECT s.user_id, s.client_id, s.revoked_at, u.status, u.email, u.email_verified, u.display_name,
                ARRAY(SELECT DISTINCT ur.role FROM user_roles ur WHERE ur.user_id = u.id ORDER BY 1) AS roles
           FROM sessions s JOIN users u ON u.id = s.user_id
          WHERE s.id = $1`,
      [sessionId],
      'access-token-live',
    );
    if (!r) return undefined;
    return {
      userId: r.user_id,
      clientId: r.client_id,
      revokedAt: r.revoked_at,
      userStatus: r.status,
      email: r.email,
      emailVerified: r.email_verified,
      displayName: r.display_name,
      roles: r.roles,
    };
  }

  async insertRefreshToken(handle: Tx, t: NewRefreshToken): Promise<void> {
    await handle.query(`INSERT INTO refresh_tokens (token_hash, tenant_id, session_id, scope, expires_at) VALUES ($1, $2, $3, $4, $5)`, [
      t.tokenHash,
      t.tenantId,
      t.sessionId,
      t.scope,
      t.expiresAt,
    ]);
  }

  /** Locks a session row until the transaction ends (the rotation statement takes the same lock). */
  async lock(tx: Tx, sessionId: string): Promise<void> {
    await tx.query(`SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE`, [sessionId]);
  }

  /**
   * The refresh hot path, one statement (`refresh-token-rotate`): locks the presented token and its
   * session, reads what the new tokens say, and rotates (marks it rotated, inserts the successor) only
   * if the token is unrotated, unrevoked, unexpired, of this client, with tenant and user active.
   * Undefined when no token has that hash.
   */
  async rotateRefreshToken(tx: Tx, r: Rotation): Promise<RotationResult | undefined> {
    const {
      rows: [row],
    } = await tx.query<{
      session_id: string;
      scope: string;
      expired: boolean;
      rotated_at: Date | null;
      client_id: string;
      revoked_at: Date | null;
      idp: string;
      idp_sub: string;
      auth_time: Date;
      amr: string[] | null;
      user_id: string;
      user_status: string;
      email: string | null;
      email_verified: boolean;
      display_name: string | null;
      slug: string;
      tenant_status: string;
      roles: string[];
      rotated: boolean;
    }>(
      `WITH cur AS (
           SELECT r.session_id, r.scope, r.expires_at <= now() AS expired, r.rotated_at, s.client_id, s.revoked_at, s.idp, s.idp_sub, s.auth_time, s.amr, s.user_id,
                  u.status AS user_status, u.email, u.email_verified, u.display_name, t.slug, t.status AS tenant_status,
                  ARRAY(SELECT DISTINCT ur.role FROM user_roles ur WHERE ur.user_id = s.user_id ORDER BY 1) AS roles
             FROM refresh_tokens r
             JOIN sessions s ON s.id = r.session_id
             JOIN users u ON u.id = s.user_id
             JOIN tenants t ON t.id = r.tenant_id
            WHERE r.token_hash = $1
            FOR UPDATE OF r, s
         ), rotated AS (
           UPDATE refresh_tokens r SET rotated_at = now() FROM cur
            WHERE r.token_hash = $1 AND cur.rotated_at IS NULL AND cur.revoked_at IS NULL AND NOT cur.expired
              AND cur.tenant_status = 'active' AND cur.user_status = 'active' AND cur.client_id = $4
              AND ($6::text[] IS NULL OR $6::text[] <@ string_to_array(cur.scope, ' '))
           RETURNING r.session_id, r.scope
         ), issued AS (
           INSERT INTO refresh_tokens (token_hash, tenant_id, session_id, scope, expires_at)
           SELECT $2, $3, session_id, scope, $5 FROM rotated RETURNING 1
         )
         SELECT cur.*, EXISTS (SELECT 1 FROM issued) AS rotated FROM cur`,
      [r.presentedHash, r.nextHash, r.tenantId, r.clientId, r.expiresAt, r.narrowTo ?? null],
      'refresh-token-rotate',
    );
    if (!row) return undefined;
    return {
      sessionId: row.session_id,
      scope: row.scope,
      expired: row.expired,
      rotatedAt: row.rotated_at,
      clientId: row.client_id,
      revokedAt: row.revoked_at,
      idp: row.idp,
      idpSub: row.idp_sub,
      authTime: row.auth_time,
      amr: row.amr,
      userId: row.user_id,
      userStatus: row.user_status,
      email: row.email,
      emailVerified: row.email_verified,
      displayName: row.display_name,
      tenantSlug: row.slug,
      tenantStatus: row.tenant_status,
      roles: row.roles,
      rotated: row.rotated,
    };
  }

  /**
   * The reuse grace (`refresh-token-grace`): was `presentedHash` rotated less than `graceSeconds`
   * ago (database clock, a fresh snapshot), and is its successor `nextHash` still unrotated and
   * unexpired?
   */
  async successorStillCurrent(tx: Tx, presentedHash: string, nextHash: string, graceSeconds: number): Promise<boolean> {
    const { rows } = await tx.query(
      `SELECT 1 FROM refresh_tokens o, refresh_tokens n
        WHERE o.token_hash = $1 AND o.rotated_at > clock_timestamp() - make_interval(secs => $3)
          AND n.token_hash = $2 AND n.rotated_at IS NULL AND n.expires_at > now()`,
      [presentedHash, nextHash, graceSeconds],
      'refresh-token-grace',
    );
    return rows.length === 1;
  }

  /** The session of a refresh token issued to `clientId` (RFC 7009 revocation), if any. */
  async findSessionOfRefreshToken(handle: Tx, tokenHash: string, clientId: string): Promise<string | undefined> {
    const {
      rows: [row],
    } = await handle.query<{ session_id: string }>(
      `SELECT r.session_id FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id WHERE r.token_hash = $1 AND s.client_id = $2`,
      [tokenHash, clientId],
    );
    return row?.session_id;
  }

  /** The revocation feed's horizon: the oldest transaction still running in this snapshot (xid8 as text). */
  async revocationHorizon(handle: Tx): Promise<string> {
    const {
      rows: [row],
    } = await handle.query<{ xmin: string }>(`SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin`);
    if (!row) throw new Error('sessions: the snapshot horizon query returned no row');
    return row.xmin;
  }

  /**
   * Sessions revoked after `cursor` (all, without one) by transactions below `xmin`, revoked less than
   * `lifetimeSeconds` ago, in (revoking transaction, id) order, at most `take`.
   */
  async revokedSince(
    handle: Tx,
    cursor: RevocationCursor | undefined,
    xmin: string,
    lifetimeSeconds: number,
    take: number,
  ): Promise<SessionRevocation[]> {
    const tx = handle;
    const select = `SELECT id, tenant_id, revoked_at, revoked_reason, revoked_xid::text AS xid FROM sessions`;
    const recent = `revoked_at > now() - make_interval(secs => $2)`;
    type Row = { id: string; tenant_id: string; revoked_at: Date; revoked_reason: string | null; xid: string };
    const { rows } = !cursor
      ? await tx.query<Row>(
          `${select} WHERE revoked_xid < $1::xid8 AND revoked_at IS NOT NULL AND ${recent} ORDER BY revoked_xid, id LIMIT $3`,
          [xmin, lifetimeSeconds, take],
        )
      : await tx.query<Row>(
          `${select} WHERE (revoked_xid, id) > ($4::xid8, $5::uuid) AND revoked_xid < $1::xid8 AND ${recent} ORDER BY revoked_xid, id LIMIT $3`,
          [xmin, lifetimeSeconds, take, cursor.xid.toString(), cursor.id],
        );
    return rows.map((r) => ({ id: r.id, tenantId: r.tenant_id, revokedAt: r.revoked_at, reason: r.revoked_reason, xid: r.xid }));
  }
}
