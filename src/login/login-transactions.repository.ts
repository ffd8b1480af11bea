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

export interface AuthorizationCodeRow {
  sessionId: string;
  clientId: string;
  redirectUri: string;
  codeChallenge: string;
  scope: string;
  nonce: string | null;
  expiresAt: Date;
  consumedAt: Date | null;
}

/**
 * `login_transactions` (one browser login under way, keyed by the hash of its handle) and
 * `authorization_codes` (single use, consumed by the token endpoint's authorization_code grant).
 */
@Injectable()
export class LoginTransactionsRepository {
  async insert(handle: Tx, t: NewLoginTransaction): Promise<void> {
    await handle.query(
      `INSERT INTO login_transactions (id_hash, tenant_id, binding_id, purpose, client_id, redirect_uri, state, nonce, scope, code_challenge, provider_state, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
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
      ],
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
    }>(`SELECT * FROM login_transactions WHERE id_hash = $1`, [idHash]);
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
    };
  }

  /** Binds a CSRF token's hash to a transaction still open. */
  async setCsrf(handle: Tx, idHash: string, csrfHash: string): Promise<void> {
    await handle.query(`UPDATE login_transactions SET csrf_hash = $2 WHERE id_hash = $1 AND completed_at IS NULL`, [idHash, csrfHash]);
  }

  /** Single use, across replicas: true for whoever marks the open, unexpired transaction completed first. */
  async claim(handle: Tx, idHash: string): Promise<boolean> {
    const res = await handle.query(
      `UPDATE login_transactions SET completed_at = now() WHERE id_hash = $1 AND completed_at IS NULL AND expires_at > now() RETURNING id_hash`,
      [idHash],
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
    );
  }

  /** The code, locked until the caller's transaction ends (a concurrent redemption waits, then sees it consumed). */
  async findCodeForUpdate(handle: Tx, codeHash: string): Promise<AuthorizationCodeRow | undefined> {
    const {
      rows: [r],
    } = await handle.query<{
      session_id: string;
      client_id: string;
      redirect_uri: string;
      code_challenge: string;
      scope: string;
      nonce: string | null;
      expires_at: Date;
      consumed_at: Date | null;
    }>(`SELECT * FROM authorization_codes WHERE code_hash = $1 FOR UPDATE`, [codeHash]);
    if (!r) return undefined;
    return {
      sessionId: r.session_id,
      clientId: r.client_id,
      redirectUri: r.redirect_uri,
      codeChallenge: r.code_challenge,
      scope: r.scope,
      nonce: r.nonce,
      expiresAt: r.expires_at,
      consumedAt: r.consumed_at,
    };
  }

  async consumeCode(handle: Tx, codeHash: string): Promise<void> {
    await handle.query(`UPDATE authorization_codes SET consumed_at = now() WHERE code_hash = $1`, [codeHash]);
  }
}
