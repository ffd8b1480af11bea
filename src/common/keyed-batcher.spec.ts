import { describe, expect, it } from 'vitest';
import { KeyedBatcher } from './keyed-batcher.js';

const tick = () => new Promise((r) => setImmediate(r));

describe('KeyedBatcher', () => {
  it('writes a lone item at once and gathers the items that arrive meanwhile into the next batch', async () => {
    const batches: Array<[string, number[]]> = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const b = new KeyedBatcher<string, number, number>(async (key, items) => {
      batches.push([key, items]);
      if (batches.length === 1) await gate;
      return items.map((i) => i * 10);
    });
    const first = b.submit('t1', 1);
    await tick();
    expect(batches).toEqual([['t1', [1]]]);
    const rest = [2, 3, 4].map((i) => b.submit('t1', i));
    const other = b.submit('t2', 9); // another key is not held up by t1's batch
    await tick();
    expect(batches).toEqual([
      ['t1', [1]],
      ['t2', [9]],
    ]);
    release();
    expect(await first).toBe(10);
    expect(await Promise.all(rest)).toEqual([20, 30, 40]);
    expect(await other).toBe(90);
    expect(batches[2]).toEqual(['t1', [2, 3, 4]]);
  });

  it('keeps batches within maxBatch and reports each size', async () => {
    const sizes: number[] = [];
    const seen: number[][] = [];
    const b = new KeyedBatcher<string, number, number>(
      async (_k, items) => {
        seen.push(items);
        await tick();
        return items;
      },
      2,
      (n) => sizes.push(n),
    );
    expect(await Promise.all([1, 2, 3, 4, 5].map((i) => b.submit('k', i)))).toEqual([1, 2, 3, 4, 5]);
    expect(seen).toEqual([[1], [2, 3], [4, 5]]);
    expect(sizes).toEqual([1, 2, 2]);
  });

  it('rejects every item of a failed batch, and the next batch still runs', async () => {
    let calls = 0;
    const b = new KeyedBatcher<string, number, number>(async (_k, items) => {
      calls++;
      await tick();
      if (items.includes(3)) throw new Error('refused');
      return items;
    });
    const results = await Promise.allSettled([1, 2, 3, 4].map((i) => b.submit('k', i)));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'rejected']);
    expect(await b.submit('k', 5)).toBe(5);
    expect(calls).toBe(3);
  });

  it('refuses a write that answers the wrong number of outcomes', async () => {
    const b = new KeyedBatcher<string, number, number>(async () => []);
    await expect(b.submit('k', 1)).rejects.toThrow(/0 outcomes for 1 items/);
  });
});
