import { KeyedBatcher } from '../common/keyed-batcher.js';
import type { Database } from '../database/database.js';
import type { MetricsService } from '../metrics/metrics.service.js';
import { adoptionCandidates } from './scim-user-columns.js';
import type { ScimUserColumns, ScimUserCreate, ScimUserRow, ScimUsersRepository } from './scim-users.repository.js';

/** One POST /Users waiting for its tenant's next batch. */
export interface CreateItem {
  c: ScimUserColumns;
  actor: string;
  requestId: string | null;
}

/** What the batch did for one request: inserted it, found its userName taken, or left it to be done alone. */
export type CreateOutcome = { kind: 'created'; row: ScimUserRow } | { kind: 'taken' } | { kind: 'alone' };

/** Creates of one tenant written in one statement at most (a provisioning burst forms larger queues only if the database falls behind). */
const CREATE_BATCH_MAX = 100;

/**
 * Group commit of SCIM user creates: concurrent creates of one tenant go to the database together
 * (KeyedBatcher), in one transaction and one statement that inserts every user of the batch with
 * its audit event. A userName already taken is skipped by the insert and answered `taken`; the rare
 * request that needs more than an insert (a user to adopt, a second request for the same userName
 * in the same batch) is sent back to be done alone.
 */
export class ScimUserCreateBatcher {
  private readonly creates: KeyedBatcher<string, CreateItem, CreateOutcome>;

  constructor(
    private readonly db: Database,
    private readonly users: ScimUsersRepository,
    metrics: MetricsService,
  ) {
    this.creates = new KeyedBatcher(
      (tenantId, items) => this.insertBatch(tenantId, items),
      CREATE_BATCH_MAX,
      (n) => metrics.scimCreateBatchWritten(n),
    );
  }

  /** Rejects with the batch's error when the batch failed as a whole. */
  submit(tenantId: string, item: CreateItem): Promise<CreateOutcome> {
    return this.creates.submit(tenantId, item);
  }

  private async insertBatch(tenantId: string, items: CreateItem[]): Promise<CreateOutcome[]> {
    const outcomes: CreateOutcome[] = items.map(() => ({ kind: 'alone' }));
    const sent: number[] = [];
    const seen = new Set<string>();
    items.forEach((it, i) => {
      const key = it.c.userName.toLowerCase();
      if (seen.has(key)) return;
      seen.add(key);
      sent.push(i);
    });
    const batch: ScimUserCreate[] = sent.map((i) => {
      const it = items[i] as CreateItem;
      return { ...it, adoptionCandidates: adoptionCandidates(it.c) };
    });
    const results = await this.db.transaction({ tenant: tenantId }, (tx) => this.users.insertBatch(tx, tenantId, batch));
    for (const r of results) {
      const i = sent[r.ord - 1];
      if (i === undefined) continue;
      // A row is matched to its request by the exact userName, and the batch holds no two equal
      // ones: a userName that only lower-cases alike to another one in the batch is 'taken' here.
      outcomes[i] = r.adopt ? { kind: 'alone' } : r.row ? { kind: 'created', row: r.row } : { kind: 'taken' };
    }
    return outcomes;
  }
}
