/**
 * Behind a gateway: an idle keep-alive connection outlives Node's 5 s default, so a gateway that
 * reuses it after a pause (Kong keeps idle upstream connections for 60 s) is answered instead of
 * meeting a closed connection and answering 502. The cluster case is in cluster.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { twoRequestsOneConnection } from './support/keep-alive.js';

let app: TestApp;

beforeAll(async () => {
  app = await startTestApp(); // HTTP_KEEP_ALIVE_TIMEOUT_SECONDS at its default
});
afterAll(async () => {
  await app?.close();
});

describe('HTTP keep-alive', () => {
  it('answers a request on a connection that was idle for longer than Node’s default keep-alive', async () => {
    // 6.5 s of silence: past Node's 5 s default, well inside the configured 75 s. A wait, not a measurement.
    const [first, second] = await twoRequestsOneConnection(`${app.url}/health/live`, 6_500);
    expect(first).toMatchObject({ status: 200, reused: false, keepAlive: `timeout=${app.config.HTTP_KEEP_ALIVE_TIMEOUT_SECONDS}` });
    expect(second).toMatchObject({ status: 200, reused: true, localPort: first.localPort });
  }, 30_000);
});
