/**
 * Group commit for writes that arrive concurrently under one key (a tenant): while a batch of a
 * key is being written, the next requests of that key wait in a queue, and the next batch takes
 * all of them at once. An idle key adds no delay (a lone request is a batch of one); under load
 * the batches grow by themselves, so one transaction, one statement and one WAL flush serve many
 * requests.
 *
 * `write` answers one outcome per item, in order. If it throws, every item of that batch is
 * rejected with the error; the caller decides what a failed batch means for its items.
 */
export class KeyedBatcher<K, I, O> {
  private readonly queues = new Map<K, Array<{ item: I; resolve: (o: O) => void; reject: (e: unknown) => void }>>();
  private readonly running = new Set<K>();

  constructor(
    private readonly write: (key: K, items: I[]) => Promise<O[]>,
    private readonly maxBatch = 100,
    /** Called with the size of every batch written (metrics). */
    private readonly observe?: (size: number) => void,
  ) {
    if (!(maxBatch >= 1)) throw new Error('KeyedBatcher: maxBatch must be at least 1');
  }

  submit(key: K, item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      let queue = this.queues.get(key);
      if (!queue) this.queues.set(key, (queue = []));
      queue.push({ item, resolve, reject });
      if (!this.running.has(key)) void this.drain(key);
    });
  }

  private async drain(key: K): Promise<void> {
    this.running.add(key);
    try {
      for (;;) {
        const queue = this.queues.get(key);
        if (!queue || queue.length === 0) break;
        const batch = queue.splice(0, this.maxBatch);
        if (queue.length === 0) this.queues.delete(key);
        this.observe?.(batch.length);
        try {
          const outcomes = await this.write(
            key,
            batch.map((b) => b.item),
          );
          if (outcomes.length !== batch.length) throw new Error(`KeyedBatcher: ${outcomes.length} outcomes for ${batch.length} items`);
          batch.forEach((b, i) => b.resolve(outcomes[i]!));
        } catch (err) {
          for (const b of batch) b.reject(err);
        }
      }
    } finally {
      this.running.delete(key);
    }
  }
}
