/**
 * The idempotency records behind `Idempotency-Key` on admin creates, below HTTP: an in-progress
 * record whose request died (older than a minute) frees its key, one still in progress is a 409,
 * a finished one replays its sealed answer for the same request only (else 422), and a released
 * key may be used again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { IdempotencyService } from '../src/admin/idempotency.service.js';
import { ProblemError } from '../src/common/errors.js';

let app: TestApp;
let records: IdempotencyService;

beforeAll(async () => {
  app = await startTestApp();
  records = app.app.get(IdempotencyService);
});

afterAll(async () => {
  await app.close();
});

const request = (key: string, requestHash = 'h1') => ({ actor: 'ops', key, method: 'POST', path: '/admin/v1/tenants', requestHash });

async function refusal(p: Promise<unknown>): Promise<number | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    if (err instanceof ProblemError) return err.status;
    throw err;
  }
}

describe('idempotency records', () => {
  it('claims a key once; a retry in progress is 409, a finished one replays for the same request and is 422 for another', async () => {
    expect(await records.start(request('k-a'))).toEqual({ run: true });
    expect(await refusal(records.start(request('k-a')))).toBe(409);
    await records.finish(request('k-a'), 201, { id: 't1', secret: 'shown once' });
    expect(await records.start(request('k-a'))).toEqual({ run: false, status: 201, body: { id: 't1', secret: 'shown once' } });
    expect(await refusal(records.start(request('k-a', 'h2')))).toBe(422);
    // The answer is stored sealed, never in clear.
    const [row] = await app.database.query<{ response: unknown }>(
      `SELECT response FROM idempotency_keys WHERE actor = 'ops' AND key = 'k-a'`,
    );
    expect(JSON.stringify(row?.response)).not.toContain('shown once');
  });

  it('frees the key of a request that died in progress more than a minute ago, and of one released after a failure', async () => {
    expect(await records.start(request('k-b'))).toEqual({ run: true });
    await app.database.query(`UPDATE idempotency_keys SET created_at = now() - interval '61 seconds' WHERE actor = 'ops' AND key = 'k-b'`);
    expect(await records.start(request('k-b', 'h2'))).toEqual({ run: true });
    await records.release(request('k-b'));
    expect(await records.start(request('k-b', 'h3'))).toEqual({ run: true });
  });
});
