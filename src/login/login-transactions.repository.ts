import { Injectable } from '@nestjs/common';
import { type Tx } from '../database/database.js';

/** What the authorization request asked for, as a login transaction keeps it. */
export interface LoginRequest {
  /** `test`: an IT admin's test login through a draft binding; it issues nothing. */
  purpose: 'login' | 'test';
  clientId: string | null;
  redirectUri: string | null;
  state: string | null;
  nonce: string | null;
  scope: string;
  codeChallenge: string | null;
  /** `acr_values` asked for two-step verification: a native login without it enrols first. */
  mfaRequested?: boolean;
  /** `max_age` (seconds) and `prompt=login` of the request (OIDC Core §3.1.2.1), held against the upstream's auth_time. */
  maxAge?: number | null;
  promptLogin?: boolean;
  /** `ui_locales` of the request (OIDC Core §3.1.2.1): its well-formed tags, space-separated; the hosted pages' first choice of language. */
  uiLocales?: string | null;
}

/** The second step of a native login: who passed the password, and what the login waits on. */
export interface MfaState {
  userId: string;
  stage: 'verify' | 'offer' | 'enrol' | 'enrolled' | 'passkey-offer';
  /** The identity the password check returned, sealed (SecretBox) by the caller, bound to the transaction. */
  identity: Buffer;
  /** The methods already passed (RFC 8176), while the login offers to register a passkey. */
  amr?: string[] | null;
}

export interface NewLoginTransaction extends LoginRequest {
  idHash: string;
  tenantId: string;
  bindingId: string;
  /** Sealed (SecretBox) by the caller, bound to the transaction. */
  providerState: Buffer;
  expiresAt: Date;
}

export interface LoginTransactionRow extends LoginRequest {
  tenantId: string;
  bindingId: string;
  providerState: Buffer | null;
  csrfHash: string | null;
  expiresAt: Date;
  completedAt: Date | null;
  mfa: MfaState | null;
  createdAt: Date;
}

export interface NewAuthorizationCode {
  codeHash: string;
  tenantId: string;
  sessionId: string;
  clientId: string | null;
  redirectUri: string | null;
  codeChallenge: string | null;
  scope: string;
  nonce: string | null;
  expiresAt: Date;
}

export interface CodeRedemption {
  codeHash: string;
  tenantId: string;
  /** The client presenting the code, its redirect_uri and S256 of its code_verifier (undefined: not a valid verifier). */
  clientId: string;
  redirectUri: string;
  pkceChallenge: string | undefined;
  /** The refresh token to insert when every check passes; absent for a client without the refresh_token grant. */
  refresh?: { tokenHash: string; expiresAt: Date };
}

export interface CodeRedemptionRow {
  sessionId: string;
  clientId: string;
  redirectUri: string;
  codeChallenge: string;
  scope: string;
  nonce: string | null;
  expired: boolean;
  /** Consumed before this redemption: a replay. */
  consumedBefore: boolean;
  /** The code's session and its user; undefined when the session row is gone. */
  session?: {
    revoked: boolean;
    idp: string;
    idpSub: string;
    authTime: Date;
    amr: string[] | null;
    userId: string;
    userActive: boolean;
    email: string | null;
    emailVerified: boolean;
    displayName: string | null;
    roles: string[];
  };
  /** The refresh token was inserted (every check passed and one was asked for). */
  refreshIssued: boolean;
}

/**
 * `login_transactions` (one browser login under way, keyed by the hash of its handle) and
 * `authorization_codes` (single use, consumed by the token endpoint's authorization_code grant).
 */
@Injectable()
export class LoginTransactionsRepository {
  async insert(handle: Tx, t: NewLoginTransaction): Promise<void> {
    await handle.query(
      `INSERT INTO login_transactions (id_hash, tenant_id, binding_id, purpose, client_id, redirect_uri, state, nonce, scope, code_challenge, provider_state, expires_at, mfa_requested, max_age, prompt_login, ui_locales)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
      [
        t.idHash,
        t.tenantId,
        t.bindingId,
        t.purpose,
        t.clientId,
        t.redirectUri,
        t.state,
        t.nonce,
        t.scope,
        t.codeChallenge,
        t.providerState,
        t.expiresAt,
        t.mfaRequested ?? false,
        t.maxAge ?? null,
        t.promptLogin ?? false,
        t.uiLocales ?? null,
      ],
      'login-txn-insert',
    );
  }

  async find(handle: Tx, idHash: string): Promise<LoginTransactionRow | undefined> {
    const {
      rows: [r],
    } = await handle.query<{
      tenant_id: string;
      binding_id: string;
      purpose: 'login' | 'test';
      client_id: string | null;
      redirect_uri: string | null;
      state: string | null;
      nonce: string | null;
      scope: string;
      code_challenge: string | null;
      provider_state: Buffer | null;
      csrf_hash: string | null;
      expires_at: Date;
      completed_at: Date | null;
      mfa_requested: boolean;
      mfa_user_id: string | null;
      mfa_stage: MfaState['stage'] | null;
      mfa_identity: Buffer | null;
      mfa_amr: string[] | null;
      max_age: number | null;
      prompt_login: boolean;
      ui_locales: string | null;
      created_at: Date;
    }>(`SELECT * FROM login_transactions WHERE id_hash = $1`, [idHash], 'login-txn-find');
    if (!r) return undefined;
    return {
      tenantId: r.tenant_id,
      bindingId: r.binding_id,
      purpose: r.purpose,
      clientId: r.client_id,
      redirectUri: r.redirect_uri,
      state: r.state,
      nonce: r.nonce,
      scope: r.scope,
      codeChallenge: r.code_challenge,
      providerState: r.provider_state,
      csrfHash: r.csrf_hash,
      expiresAt: r.expires_at,
      completedAt: r.completed_at,
      mfaRequested: r.mfa_requested,
      mfa:
        r.mfa_user_id && r.mfa_stage && r.mfa_identity
          ? { userId: r.mfa_user_id, stage: r.mfa_stage, identity: r.mfa_identity, amr: r.mfa_amr }
          : null,
      maxAge: r.max_age,
      promptLogin: r.prompt_login,
      uiLocales: r.ui_locales,
      createdAt: r.created_at,
    };
  }

  /** Records the second step a transaction still open waits on. */
  async setMfa(handle: Tx, idHash: string, m: MfaState): Promise<void> {
    await handle.query(
      `UPDATE login_transactions SET mfa_user_id = $2, mfa_stage = $3, mfa_identity = $4, mfa_amr = $5 WHERE id_hash = $1 AND completed_at IS NULL`,
      [idHash, m.userId, m.stage, m.identity, m.amr ?? null],
    );
  }

  /** The WebAuthn challenge of the page just served (replacing the one before). */
  async setWebauthnChallenge(handle: Tx, idHash: string, challenge: string): Promise<void> {
    await handle.query(`UPDATE login_transactions SET webauthn_challenge = $2 WHERE id_hash = $1 AND completed_at IS NULL`, [
      idHash,
      challenge,
    ]);
  }

  /** Takes the challenge (single use: whoever clears it first gets it); undefined when there is none. */
  async takeWebauthnChallenge(handle: Tx, idHash: string): Promise<string | undefined> {
    const { rows } = await handle.query<{ challenge: string }>(
      `UPDATE login_transactions t SET webauthn_challenge = NULL
         FROM (SELECT id_hash, webauthn_challenge FROM login_transactions WHERE id_hash = $1 FOR UPDATE) old
        WHERE t.id_hash = old.id_hash AND old.webauthn_challenge IS NOT NULL AND t.completed_at IS NULL AND t.expires_at > now()
      RETURNING old.webauthn_challenge AS challenge`,
      [idHash],
    );
    return rows[0]?.challenge;
  }

  /** Binds a CSRF token's hash to a transaction still open. */
  async setCsrf(handle: Tx, idHash: string, csrfHash: string): Promise<void> {
    await handle.query(
      `UPDATE login_transactions SET csrf_hash = $2 WHERE id_hash = $1 AND completed_at IS NULL`,
      [idHash, csrfHash],
      'login-txn-csrf',
    );
  }

  /** Single use, across replicas: true for whoever marks the open, unexpired transaction completed first. */
  async claim(handle: Tx, idHash: string): Promise<boolean> {
    const res = await handle.query(
      `UPDATE login_transactions SET completed_at = now() WHERE id_hash = $1 AND completed_at IS NULL AND expires_at > now() RETURNING id_hash`,
      [idHash],
      'login-txn-claim',
    );
    return res.rowCount > 0;
  }

  /** Ends a transaction whatever its state (an aborted login). */
  async complete(handle: Tx, idHash: string): Promise<void> {
    await handle.query(`UPDATE login_transactions SET completed_at = now() WHERE id_hash = $1`, [idHash]);
  }

  async insertCode(handle: Tx, c: NewAuthorizationCode): Promise<void> {
    await handle.query(
      `INSERT INTO authorization_codes (code_hash, tenant_id, session_id, client_id, redirect_uri, code_challenge, scope, nonce, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [c.codeHash, c.tenantId, c.sessionId, c.clientId, c.redirectUri, c.codeChallenge, c.scope, c.nonce, c.expiresAt],
      'authorization-code-insert',
    );
  }

  /**
   * The authorization_code grant's hot path in one statement (like the refresh rotation): lock the
   * code, consume it (whatever follows: an expired or mismatched code is used up too), read its
   * session and user, and insert the refresh token only when every check passes. The caller then
   * reads what failed from the returned row, in the order it reports failures; `codeConsumedBefore`
   * is a replay. A concurrent redemption waits for the lock, then sees the code consumed.
   * `refresh` is omitted for a client without the refresh_token grant (nothing is inserted).
   */
  async redeemCode(tx: Tx, r: CodeRedemption): Promise<CodeRedemptionRow | undefined> {
    const {
      rows: [row],
    } = await tx.query<{
      session_id: string;
      client_id: string;
      redirect_uri: string;
      code_challenge: string;
      scope: string;
      nonce: string | null;
      expired: boolean;
      consumed_at: Date | null;
      session_found: boolean;
      revoked_at: Date | null;
      idp: string | null;
      idp_sub: string | null;
      auth_time: Date | null;
      amr: string[] | null;
      user_id: string | null;
      user_status: string | null;
      email: string | null;
      email_verified: boolean | null;
      display_name: string | null;
      roles: string[] | null;
      issued: boolean;
    }>(
      `WITH code AS (
           SELECT c.session_id, c.client_id, c.redirect_uri, c.code_challenge, c.scope, c.nonce, c.expires_at <= now() AS expired, c.consumed_at
             FROM authorization_codes c
            WHERE c.code_hash = $1
            FOR UPDATE
         ), consumed AS (
           UPDATE authorization_codes c SET consumed_at = now() FROM code WHERE c.code_hash = $1 AND code.consumed_at IS NULL RETURNING 1
         ), cur AS (
           SELECT s.revoked_at, s.idp, s.idp_sub, s.auth_time, s.amr, s.user_id, u.status AS user_status, u.email, u.email_verified, u.display_name,
                  ARRAY(SELECT DISTINCT ur.role FROM user_roles ur WHERE ur.user_id = s.user_id ORDER BY 1) AS roles
             FROM code JOIN sessions s ON s.id = code.session_id JOIN users u ON u.id = s.user_id
         ), issued AS (
           INSERT INTO refresh_tokens (token_hash, tenant_id, session_id, scope, expires_at)
           SELECT $2, $3, code.session_id, code.scope, $4 FROM code, cur
            WHERE $2::text IS NOT NULL AND code.consumed_at IS NULL AND NOT code.expired AND code.client_id = $5
              AND code.redirect_uri = $6 AND code.code_challenge = $7 AND cur.revoked_at IS NULL AND cur.user_status = 'active'
           RETURNING 1
         )
         SELECT code.*, cur.user_id IS NOT NULL AS session_found, cur.*, EXISTS (SELECT 1 FROM issued) AS issued
           FROM code LEFT JOIN cur ON true`,
      [
        r.codeHash,
        r.refresh?.tokenHash ?? null,
        r.tenantId,
        r.refresh?.expiresAt ?? null,
        r.clientId,
        r.redirectUri,
        r.pkceChallenge ?? null,
      ],
      'authorization-code-redeem',
    );
    if (!row) return undefined;
    return {
      sessionId: row.session_id,
      clientId: row.client_id,
      redirectUri: row.redirect_uri,
      codeChallenge: row.code_challenge,
      scope: row.scope,
      nonce: row.nonce,
      expired: row.expired,
      consumedBefore: row.consumed_at !== null,
      session:
        row.session_found && row.user_id !== null && row.idp !== null && row.idp_sub !== null && row.auth_time !== null
          ? {
              revoked: row.revoked_at !== null,
              idp: row.idp,
              idpSub: row.idp_sub,
              authTime: row.auth_time,
              amr: row.amr,
              userId: row.user_id,
              userActive: row.user_status === 'active',
              email: row.email,
              emailVerified: row.email_verified ?? false,
              displayName: row.display_name,
              roles: row.roles ?? [],
            }
          : undefined,
      refreshIssued: row.issued,
    };
  }
}
