import { Injectable } from '@nestjs/common';
import type { JWK } from 'jose';
import type { Tx } from '../database/database.js';

export type KeyStatus = 'pending' | 'active' | 'retired' | 'expired';

/** A signing key as the admin API lists it (no key material). */
export interface SigningKeyRecord {
  kid: string;
  status: KeyStatus;
  createdAt: Date;
  activatesAt: Date;
  activatedAt: Date | null;
  retiredAt: Date | null;
  expiresAt: Date | null;
}

/** A key in the JWKS (pending, active or retired), with its public JWK. */
export interface PublishedKeyRecord {
  kid: string;
  status: KeyStatus;
  publicJwk: JWK;
  activatesAt: Date;
  expiresAt: Date | null;
}

/** A published key with its sealed private key (null once expired), what a replica signs with. */
export interface LoadedKeyRecord {
  kid: string;
  status: KeyStatus;
  publicJwk: JWK;
  privateKey: Buffer | null;
}

export interface NewSigningKey {
  kid: string;
  publicJwk: JWK;
  /** The PKCS#8 private key, sealed by the secret box. */
  sealedPrivateKey: Buffer;
  status: KeyStatus;
  activatesAt: Date;
}

/** Transaction-scoped lock: only its holder performs key transitions. */
const ADVISORY_LOCK = 0x6b65_7973; // 'keys'

/** `signing_keys`: RS256 keys and their lifecycle (pending → active → retired → expired). */
@Injectable()
export class SigningKeysRepository {
  /** Takes the transitions lock for this transaction if it is free; false if another holds it. */
  async tryLockTransitions(tx: Tx): Promise<boolean> {
    const { rows } = await tx.query<{ locked: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS locked', [ADVISORY_LOCK]);
    return rows[0]?.locked === true;
  }

  /** Waits for the transitions lock, held until the transaction ends. */
  async lockTransitions(tx: Tx): Promise<void> {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [ADVISORY_LOCK]);
  }

  async listActive(tx: Tx): Promise<Array<{ kid: string; activatedAt: Date }>> {
    const { rows } = await tx.query<{ kid: string; activated_at: Date }>(
      `SELECT kid, activated_at FROM signing_keys WHERE status = 'active'`,
    );
    return rows.map((r) => ({ kid: r.kid, activatedAt: r.activated_at }));
  }

  /** The latest pending key due to sign by `now`. */
  async latestDuePending(tx: Tx, now: Date): Promise<string | undefined> {
    const { rows } = await tx.query<{ kid: string }>(
      `SELECT kid FROM signing_keys WHERE status = 'pending' AND activates_at <= $1 ORDER BY activates_at DESC LIMIT 1`,
      [now],
    );
    return rows[0]?.kid;
  }

  /** The pending key due first, whenever that is. */
  async firstPending(tx: Tx): Promise<string | undefined> {
    const { rows } = await tx.query<{ kid: string }>(`SELECT kid FROM signing_keys WHERE status = 'pending' ORDER BY activates_at LIMIT 1`);
    return rows[0]?.kid;
  }

  async countPending(tx: Tx): Promise<number> {
    const { rows } = await tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM signing_keys WHERE status = 'pending'`);
    return rows[0]?.n ?? 0;
  }

  /** Retired keys whose last token has expired by `now` leave the JWKS; their private key is dropped. */
  async expireRetired(tx: Tx, now: Date): Promise<void> {
    await tx.query(`UPDATE signing_keys SET status = 'expired', private_key = NULL WHERE status = 'retired' AND expires_at <= $1`, [now]);
  }

  /** Every pending key (one that never signed anything) leaves the JWKS; its private key is dropped. */
  async expirePending(tx: Tx): Promise<void> {
    await tx.query(`UPDATE signing_keys SET status = 'expired', private_key = NULL WHERE status = 'pending'`);
  }

  /** The active key stops signing at `now` and stays published until `expiresAt`. */
  async retireActive(tx: Tx, now: Date, expiresAt: Date): Promise<void> {
    await tx.query(`UPDATE signing_keys SET status = 'retired', retired_at = $1, expires_at = $2 WHERE status = 'active'`, [
      now,
      expiresAt,
    ]);
  }

  async markActive(tx: Tx, kid: string, now: Date): Promise<void> {
    await tx.query(`UPDATE signing_keys SET status = 'active', activated_at = $2 WHERE kid = $1`, [kid, now]);
  }

  async insert(tx: Tx, k: NewSigningKey): Promise<void> {
    await tx.query(
      `INSERT INTO signing_keys (kid, alg, public_jwk, private_key, status, activates_at) VALUES ($1, 'RS256', $2, $3, $4, $5)`,
      [k.kid, JSON.stringify(k.publicJwk), k.sealedPrivateKey, k.status, k.activatesAt],
    );
  }

  /** Every key, newest first. */
  async list(tx: Tx): Promise<SigningKeyRecord[]> {
    const { rows } = await tx.query<{
      kid: string;
      status: KeyStatus;
      created_at: Date;
      activates_at: Date;
      activated_at: Date | null;
      retired_at: Date | null;
      expires_at: Date | null;
    }>(`SELECT kid, status, created_at, activates_at, activated_at, retired_at, expires_at FROM signing_keys ORDER BY created_at DESC`);
    return rows.map((r) => ({
      kid: r.kid,
      status: r.status,
      createdAt: r.created_at,
      activatesAt: r.activates_at,
      activatedAt: r.activated_at,
      retiredAt: r.retired_at,
      expiresAt: r.expires_at,
    }));
  }

  /** The keys in the JWKS (pending, active, retired), newest first. */
  async listPublished(tx: Tx): Promise<PublishedKeyRecord[]> {
    const { rows } = await tx.query<{ kid: string; public_jwk: JWK; status: KeyStatus; activates_at: Date; expires_at: Date | null }>(
      `SELECT kid, public_jwk, status, activates_at, expires_at FROM signing_keys WHERE status IN ('pending', 'active', 'retired') ORDER BY created_at DESC`,
    );
    return rows.map((r) => ({
      kid: r.kid,
      status: r.status,
      publicJwk: r.public_jwk,
      activatesAt: r.activates_at,
      expiresAt: r.expires_at,
    }));
  }

  /** The keys in the JWKS with their sealed private keys, newest first. */
  async listPublishedWithPrivateKeys(tx: Tx): Promise<LoadedKeyRecord[]> {
    const { rows } = await tx.query<{ kid: string; public_jwk: JWK; private_key: Buffer | null; status: KeyStatus }>(
      `SELECT kid, public_jwk, private_key, status FROM signing_keys WHERE status IN ('pending', 'active', 'retired') ORDER BY created_at DESC`,
    );
    return rows.map((r) => ({ kid: r.kid, status: r.status, publicJwk: r.public_jwk, privateKey: r.private_key }));
  }
}
