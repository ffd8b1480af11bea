import pg from 'pg';

/** The channel a trigger on every cached table notifies on, with the table's name as payload. */
export const ROW_CHANGES_CHANNEL = 'auth_service_row_changes';
/** Application name of the listening connection (operators see it in pg_stat_activity). */
export const ROW_CHANGES_APPLICATION = 'auth-service-row-changes';

/**
 * Tells each replica when a cached table changed. One dedicated connection LISTENs on
 * `auth_service_row_changes`; a statement-level trigger on the cached tables notifies on commit
 * (migration 1765500000000). While that connection is down, caches serve nothing and every read
 * goes to the database; when it comes back, everything cached before is dropped, since changes
 * made in between were not heard.
 */
export class RowChangeFeed {
  private client: pg.Client | undefined;
  private listening = false;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;
  private readonly subscribers = new Map<string, Set<() => void>>();

  constructor(
    private readonly url: string,
    private readonly warn: (message: string, err?: unknown) => void,
    private readonly retryMs = 1_000,
  ) {}

  /** True while changes are being heard: only then may a cache answer from memory. */
  get live(): boolean {
    return this.listening;
  }

  subscribe(table: string, onChange: () => void): void {
    let set = this.subscribers.get(table);
    if (!set) this.subscribers.set(table, (set = new Set()));
    set.add(onChange);
  }

  /**
   * A change this process has just committed: its own caches drop the table at once, without
   * waiting for the notification to come back (which every other replica still relies on).
   */
  changedHere(table: string): void {
    this.notify(table);
  }

  async start(): Promise<void> {
    await this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    this.listening = false;
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client({
      connectionString: this.url,
      application_name: ROW_CHANGES_APPLICATION,
      connectionTimeoutMillis: 3_000,
      keepAlive: true,
    });
    client.on('notification', (n) => {
      if (n.channel === ROW_CHANGES_CHANNEL && n.payload) this.notify(n.payload);
    });
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client));
    try {
      await client.connect();
      await client.query(`LISTEN ${ROW_CHANGES_CHANNEL}`);
    } catch (err) {
      await client.end().catch(() => undefined);
      this.warn('row change feed: cannot listen; caches are bypassed until it can', err);
      this.scheduleRetry();
      return;
    }
    if (this.stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.notifyAll();
    this.listening = true;
    this.heartbeat(client);
  }

  /** A connection that died without a word (a dropped route, a frozen server) is noticed within a period. */
  private heartbeat(client: pg.Client): void {
    const timer = setInterval(() => {
      if (this.client !== client) {
        clearInterval(timer);
        return;
      }
      const timeout = setTimeout(() => this.lost(client, new Error('heartbeat timed out')), this.retryMs * 5);
      timeout.unref();
      client.query('SELECT 1').then(
        () => clearTimeout(timeout),
        (err: unknown) => {
          clearTimeout(timeout);
          this.lost(client, err);
        },
      );
    }, this.retryMs * 10);
    timer.unref();
  }

  private lost(client: pg.Client, err?: unknown): void {
    if (this.client !== client) return;
    this.client = undefined;
    this.listening = false;
    this.notifyAll();
    if (this.stopped) return;
    this.warn('row change feed: connection lost; caches are bypassed until it is back', err);
    client.end().catch(() => undefined);
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.stopped) return;
    clearTimeout(this.retry);
    this.retry = setTimeout(() => void this.connect(), this.retryMs);
    this.retry.unref();
  }

  private notify(table: string): void {
    for (const fn of this.subscribers.get(table) ?? []) fn();
  }

  private notifyAll(): void {
    for (const set of this.subscribers.values()) for (const fn of set) fn();
  }
}

/**
 * A read-through cache of rows that change rarely and are read on every token request (clients,
 * tenants). Entries are dropped whenever their table changes on any replica; a TTL bounds how long
 * an entry lives even so. Only found rows are cached: a row created a moment ago is never hidden
 * by an earlier miss.
 */
export class RowCache<V> {
  private readonly entries = new Map<string, { value: V; expires: number }>();
  /** Bumped on every change: a load that started before a change must not store what it read. */
  private generation = 0;

  constructor(
    private readonly feed: RowChangeFeed | undefined,
    /** The table (or tables) whose change drops every entry. */
    table: string | string[],
    private readonly ttlMs = 30_000,
    private readonly maxEntries = 50_000,
  ) {
    for (const t of Array.isArray(table) ? table : [table]) feed?.subscribe(t, () => this.clear());
  }

  async get(key: string, load: () => Promise<V | undefined>, now = Date.now()): Promise<V | undefined> {
    if (!this.feed?.live) return load();
    const hit = this.entries.get(key);
    if (hit && hit.expires > now) return hit.value;
    const generation = this.generation;
    const value = await load();
    if (value !== undefined && generation === this.generation && this.feed.live) {
      if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
      this.entries.set(key, { value, expires: now + this.ttlMs });
    }
    return value;
  }

  clear(): void {
    this.generation += 1;
    this.entries.clear();
  }
}
