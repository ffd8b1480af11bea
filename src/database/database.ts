import pg from 'pg';
import { DataSource, QueryFailedError, QueryRunnerAlreadyReleasedError, QueryRunnerProviderAlreadyReleasedError } from 'typeorm';
import { MIGRATIONS } from '../../migrations/index.js';
import { DependencyUnavailableError } from '../common/errors.js';
import { noteTenant } from '../common/request-context.js';
import type { RowChangeFeed } from './row-cache.js';

/**
 * The one transaction handle repositories take: pg's own result, no ORM in between. Services open
 * it with `Database.transaction(scope, work)` and hand it to every repository call of that unit of
 * work (an audit event included), so the change and its record commit or roll back together.
 */
export interface Tx {
  /**
   * `prepare` names a statement the hot paths run constantly: each pooled connection then parses and
   * plans it once instead of on every call (planning the refresh rotation costs several times what
   * executing it does).
   */
  query<R = Record<string, unknown>>(sql: string, params?: unknown[], prepare?: string): Promise<{ rows: R[]; rowCount: number }>;
  /**
   * Narrows a platform transaction to one tenant from here on (row-level security then shows that
   * tenant's rows only): for work that changes a tenant row and then its tenant-scoped rows in one
   * transaction. The only other place the tenant setting is written is `Database.transaction`.
   */
  enterTenant(tenantId: string): Promise<void>;
}

/**
 * What a transaction may see:
 * - `{ tenant }`: one tenant's rows (`app.tenant_id`; row-level security hides the others);
 *   `{ tenant, snapshot: true }`: the same, read-only, in one REPEATABLE READ snapshot (reads whose
 *   statements must agree, e.g. the revocation feed's horizon and the rows it bounds);
 * - `'platform'`: platform tables only (no tenant is set, so tenant-scoped rows are invisible);
 * - `'audit-reader'` / `'revocation-reader'`: read-only, every tenant's audit events / session
 *   revocations (the explicit policies of those two tables), in one REPEATABLE READ snapshot;
 * - `'mail-delivery'`: the mail delivery loop, which claims due messages of every tenant: it may read
 *   and update `mail_outbox` rows of any tenant (that table's explicit policies), never insert or
 *   delete them, and sees no other tenant-scoped table.
 */
export type TxScope = { tenant: string; snapshot?: boolean } | 'platform' | 'audit-reader' | 'revocation-reader' | 'mail-delivery';

/** The statement that sets the transaction's tenant; the id is checked to be a UUID before it is written into it. */
function tenantSetting(tenantId: string): string {
  if (!UUID.test(tenantId)) throw new Error('tenant transaction: the tenant id is not a UUID');
  noteTenant(tenantId);
  return `SELECT set_config('app.tenant_id', '${tenantId}', true)`;
}

const SCOPE_START: Record<Exclude<TxScope, { tenant: string; snapshot?: boolean }>, string> = {
  platform: 'BEGIN',
  'audit-reader': `BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SELECT set_config('app.audit_reader', 'on', true)`,
  'revocation-reader': `BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SELECT set_config('app.revocation_reader', 'on', true)`,
  'mail-delivery': `BEGIN; SELECT set_config('app.mail_delivery', 'on', true)`,
};

/** BEGIN with the scope's isolation and setting, as one simple query. */
const scopeStart = (scope: TxScope): string =>
  typeof scope === 'object'
    ? `${scope.snapshot ? 'BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY' : 'BEGIN'}; ${tenantSetting(scope.tenant)}`
    : SCOPE_START[scope];

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  '57P01',
  '57P02',
  '57P03',
  '08000',
  '08003',
  '08006',
  '08001',
  '08004',
]);

export function isConnectionError(err: unknown): boolean {
  // TypeORM releases a transaction's query runner as soon as its connection fails; the next
  // statement (often the COMMIT) then throws one of these, and the server rolls the transaction back.
  if (err instanceof QueryRunnerAlreadyReleasedError || err instanceof QueryRunnerProviderAlreadyReleasedError) return true;
  const e = err as { code?: string; message?: string; driverError?: { code?: string } } | undefined;
  const code = e?.driverError?.code ?? e?.code;
  if (code && UNAVAILABLE_CODES.has(code)) return true;
  const msg = e?.message ?? '';
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|Query read timeout/i.test(
    msg,
  );
}

/**
 * A statement's parameters (password hashes, e-mail addresses, token hashes) must never reach a
 * log: errors leave the database layer without them.
 */
function dropParameters(err: unknown): void {
  if (err instanceof QueryFailedError) delete (err as { parameters?: unknown }).parameters;
  // A constraint violation's DETAIL quotes the offending values ("Key (user_name)=(…) already exists").
  // Only the database's errors: a ProblemError thrown by `work` carries its own `detail` for the client.
  const candidates = err instanceof QueryFailedError ? [err, (err as { driverError?: unknown }).driverError] : [err];
  for (const e of candidates) {
    if (e instanceof pg.DatabaseError && typeof e.detail === 'string') e.detail = '[values removed]';
    if (e instanceof QueryFailedError && typeof (e as { detail?: unknown }).detail === 'string')
      (e as { detail?: string }).detail = '[values removed]';
  }
}

export const dbUnavailable = (err: unknown): DependencyUnavailableError =>
  new DependencyUnavailableError('database', 'The database is unreachable; the request was not applied.', { cause: err });

export function createDataSource(url: string, poolSize = 10): DataSource {
  return new DataSource({
    type: 'postgres',
    url,
    migrations: MIGRATIONS,
    migrationsTableName: 'schema_migrations',
    migrationsTransactionMode: 'all',
    synchronize: false,
    logging: false,
    // statement_timeout bounds a slow statement on the server; query_timeout bounds the wait on
    // this side too, for a server that stops answering altogether (a frozen host, a lost route).
    extra: {
      max: poolSize,
      // Statements are sent without waiting for the previous answer (Database.run pipelines a
      // transaction's start with its first statement). Every caller still awaits each statement
      // before the next, so nothing else changes; cursors (which this service does not use) are refused.
      pipeline: true,
      connectionTimeoutMillis: 3000,
      statement_timeout: 10_000,
      query_timeout: 15_000,
      application_name: 'auth-service',
    },
  });
}

/**
 * The one door to PostgreSQL. Tenant-scoped work runs in `transaction({ tenant })`, which sets `app.tenant_id`
 * for that transaction only; row-level security then hides every other tenant's rows even from
 * a query that forgot its tenant filter.
 */
export class Database {
  constructor(
    readonly dataSource: DataSource,
    /** Change notifications for the row caches; absent where no cache is wanted (migrations CLI). */
    readonly rowChanges?: RowChangeFeed,
  ) {}

  /** Call after committing a change to a cached table (row-cache.ts): this replica's caches see it at once. */
  rowsChanged(
    table: 'tenants' | 'clients' | 'tenant_identity_providers' | 'scim_tokens' | 'scim_settings' | 'tenant_branding' | 'tenant_logos',
  ): void {
    this.rowChanges?.changedHere(table);
  }

  /**
   * One transaction on one pooled connection. The pool's connections pipeline (node-postgres
   * `pipeline: true`): BEGIN and the scope's setting are sent without waiting for their answer, and
   * the socket stays corked until the end of this tick, so the first statement of `work` (issued
   * synchronously, as the hot paths do) leaves in the same write. A unit of work of one statement
   * then costs two round trips and two writes (start + statement, COMMIT) instead of three; that
   * statement's result is handed to `work` only once the start has succeeded. The TypeORM query
   * runner owns the connection: it drops one that fails mid-transaction instead of handing it to
   * the next request.
   */
  private async run<T>(start: string, work: (tx: Tx) => Promise<T>): Promise<T> {
    const runner = this.dataSource.createQueryRunner();
    let open = false;
    try {
      const client = (await runner.connect()) as pg.PoolClient;
      open = true;
      const stream = socketOf(client);
      stream?.cork?.();
      process.nextTick(() => stream?.uncork?.());
      const started = client.query(start);
      // Awaited by the first statement (and below); a rejection is never left unobserved meanwhile.
      started.catch(() => undefined);
      const result = await work(txOf(client, started));
      await started;
      await client.query('COMMIT');
      open = false;
      return result;
    } catch (err) {
      if (open && !runner.isReleased) await runner.query('ROLLBACK').catch(() => undefined);
      dropParameters(err);
      if (isConnectionError(err)) throw dbUnavailable(err);
      throw err;
    } finally {
      if (!runner.isReleased) await runner.release();
    }
  }

  /**
   * A unit of work of exactly one statement, in one round trip: BEGIN and the scope's setting, the
   * statement and COMMIT leave in one write, and the result is handed to `work` once all three have
   * answered (so a 2xx built on it is durable). For the hot paths whose statement decides everything
   * itself (the refresh rotation); what must follow it runs in a transaction of its own. A second
   * statement on this `tx` is a programming error and throws.
   */
  async statement<T>(scope: TxScope, work: (tx: Tx) => Promise<T>): Promise<T> {
    const start = scopeStart(scope);
    const runner = this.dataSource.createQueryRunner();
    let inFlight: Promise<unknown> | undefined;
    try {
      const client = (await runner.connect()) as pg.PoolClient;
      const stream = socketOf(client);
      let used = false;
      const tx: Tx = {
        query: async <R>(sql: string, params: unknown[] = [], prepare?: string) => {
          if (used) throw new Error('Database.statement: a second statement in a one-statement unit of work');
          used = true;
          stream?.cork?.();
          const started = client.query(start);
          const pending = client.query(statementOf(sql, params, prepare));
          // A statement that failed leaves the transaction aborted: this COMMIT then rolls it back.
          const committed = client.query('COMMIT');
          stream?.uncork?.();
          inFlight = Promise.allSettled([started, pending, committed]);
          await started;
          const r = await pending;
          await committed;
          return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 };
        },
        enterTenant: () => Promise.reject(new Error('Database.statement: enterTenant in a one-statement unit of work')),
      };
      return await work(tx);
    } catch (err) {
      dropParameters(err);
      if (isConnectionError(err)) throw dbUnavailable(err);
      throw err;
    } finally {
      // Never hand the connection back with this unit's messages still in flight.
      await inFlight;
      if (!runner.isReleased) await runner.release();
    }
  }

  /** The unit of work of a service: every repository call inside `work` shares `tx`; see `TxScope`. */
  async transaction<T>(scope: TxScope, work: (tx: Tx) => Promise<T>): Promise<T> {
    return this.run(scopeStart(scope), work);
  }

  async query<T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
    try {
      return await this.dataSource.query<T[]>(sql, params);
    } catch (err) {
      dropParameters(err);
      if (isConnectionError(err)) throw dbUnavailable(err);
      throw err;
    }
  }

  async ping(): Promise<boolean> {
    try {
      await this.dataSource.query('SELECT 1');
      return true;
    } catch {
      return false;
    }
  }
}

/** The connection's socket, to cork several messages into one write (node-postgres keeps it on `connection.stream`). */
const socketOf = (client: pg.PoolClient) =>
  (client as unknown as { connection?: { stream?: { cork?(): void; uncork?(): void } } }).connection?.stream;

/** A statement as node-postgres takes it: named (prepared once per connection) when `prepare` is given. */
const statementOf = (text: string, values: unknown[], prepare?: string): pg.QueryConfig =>
  prepare ? { name: prepare, text, values } : { text, values };

/** `started`: the transaction's start, pipelined ahead of the first statement; no result is handed out before it succeeded. */
function txOf(client: pg.PoolClient, started: Promise<unknown>): Tx {
  return {
    query: async <R>(sql: string, params: unknown[] = [], prepare?: string) => {
      const pending = client.query(statementOf(sql, params, prepare));
      pending.catch(() => undefined);
      await started;
      const r = await pending;
      return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 };
    },
    enterTenant: async (tenantId: string) => {
      await client.query(tenantSetting(tenantId));
    },
  };
}

/** Refuses a role that would make row-level security meaningless. */
export async function assertUnprivilegedRole(dataSource: DataSource): Promise<void> {
  const [row] = await dataSource.query<Array<{ name: string; rolsuper: boolean; rolbypassrls: boolean }>>(
    'SELECT current_user AS name, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user',
  );
  if (row && (row.rolsuper || row.rolbypassrls)) {
    throw new Error(
      `DATABASE_URL connects as "${row.name}", a ${row.rolsuper ? 'superuser' : 'BYPASSRLS'} role: row-level security would not apply. ` +
        'Create a plain role that owns the database (see README, "Database") and connect as that.',
    );
  }
}
