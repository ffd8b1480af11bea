import { Injectable } from '@nestjs/common';
import { Database } from '../database/database.js';
import { SecretBox } from '../crypto/secret-box.js';
import { ProblemError } from '../common/errors.js';
import { IdempotencyRepository, type NewIdempotencyRecord } from './idempotency.repository.js';

const IN_PROGRESS_SECONDS = 60;

/** What a request with an Idempotency-Key does: run (it is the first), or replay the first one's answer. */
export type IdempotentStart = { run: true } | { run: false; status: number; body: unknown };

/**
 * Idempotency records of admin creates: the first request's response is stored (encrypted: a
 * create may show a secret once) and replayed for a retry with the same key and request; the same
 * key with another request is a 422, and one still in progress a 409. Keys are scoped to the actor.
 */
@Injectable()
export class IdempotencyService {
  constructor(
    private readonly db: Database,
    private readonly records: IdempotencyRepository,
    private readonly box: SecretBox,
  ) {}

  /** Claims the key for this request, or answers the first request's stored response. */
  async start(r: NewIdempotencyRecord): Promise<IdempotentStart> {
    const claim = await this.db.transaction('platform', async (tx) => {
      // An in-progress record older than IN_PROGRESS_SECONDS belongs to a request that died: its key may be used again.
      await this.records.deleteStaleInProgress(tx, IN_PROGRESS_SECONDS);
      if (await this.records.insert(tx, r)) return { inserted: true as const };
      // READ COMMITTED: this statement sees the record that made the insert conflict, committed meanwhile.
      return { inserted: false as const, prior: await this.records.find(tx, r.actor, r.key) };
    });
    if (claim.inserted) return { run: true };
    const { prior } = claim;
    if (!prior || prior.requestHash !== r.requestHash)
      throw new ProblemError({ type: 'idempotency-key-reused', detail: 'This Idempotency-Key was used with a different request.' });
    if (prior.status === null || !prior.response)
      throw new ProblemError({ type: 'idempotency-in-progress', detail: 'A request with this Idempotency-Key is still being processed.' });
    return { run: false, status: prior.status, body: this.box.openJson(Buffer.from(prior.response.sealed, 'base64'), sealContext(r)) };
  }

  /** Stores the first request's answer for retries. */
  async finish(r: Pick<NewIdempotencyRecord, 'actor' | 'key'>, status: number, body: unknown): Promise<void> {
    const sealed = this.box.sealJson(body ?? null, sealContext(r)).toString('base64');
    await this.db.transaction('platform', (tx) => this.records.complete(tx, r.actor, r.key, status, { sealed }));
  }

  /** The first request failed and created nothing: the key may be used again. */
  async release(r: Pick<NewIdempotencyRecord, 'actor' | 'key'>): Promise<void> {
    await this.db.transaction('platform', (tx) => this.records.delete(tx, r.actor, r.key));
  }
}

/** The stored response is sealed to its actor and key. */
const sealContext = (r: Pick<NewIdempotencyRecord, 'actor' | 'key'>): string => `idempotency:${r.actor}:${r.key}`;
