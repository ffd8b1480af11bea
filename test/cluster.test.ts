/**
 * WORKERS=2: the service as `npm start` runs it, one primary and two HTTP workers on one port.
 * Both workers serve, one scrape of /metrics counts every worker's requests, a worker keeps idle
 * keep-alive connections open as configured, a worker that dies is replaced, and SIGTERM stops the
 * whole process group.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { seedNativeTenant } from './support/seed.js';
import { freePort } from './support/free-port.js';
import { alive } from './support/process.js';
import { twoRequestsOneConnection } from './support/keep-alive.js';
import { ClientsService } from '../src/clients/clients.service.js';
import { TS_LOADER } from './support/ts-loader.js';

const METRICS_TOKEN = randomBytes(16).toString('hex');

let seeder: TestApp;
let service: ChildProcess;
let base: string;
let output = '';
let machine: { id: string; secret: string };

const workerPids = () => [...output.matchAll(/"msg":"auth-service listening","pid":(\d+)/g)].map((m) => Number(m[1]));

/** A token request on a connection of its own: the cluster hands out connections, not requests. */
function clientCredentials(): Promise<number> {
  return new Promise((resolve, reject) => {
    const body = 'grant_type=client_credentials&scope=api';
    const req = request(
      `${base}/oauth2/token`,
      {
        method: 'POST',
        agent: false,
        headers: {
          authorization: `Basic ${Buffer.from(`${machine.id}:${machine.secret}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
          'content-length': Buffer.byteLength(body),
          connection: 'close',
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.setTimeout(15_000, () => req.destroy(new Error('no answer in 15 s')));
    req.end(body);
  });
}

async function issuedByClientCredentials(): Promise<number> {
  const res = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  expect(res.status).toBe(200);
  const m = /^auth_tokens_issued_total\{grant_type="client_credentials"\} (\d+)$/m.exec(await res.text());
  return m ? Number(m[1]) : 0;
}

beforeAll(async () => {
  // Seed the database through an in-process instance, then run the real entry point against it.
  seeder = await startTestApp();
  const { tenant } = await seedNativeTenant(seeder, 'clusterco', []);
  const id = `svc-${randomBytes(3).toString('hex')}`;
  machine = {
    id,
    secret: (await seeder.app.get(ClientsService).create({ id, name: 'Machine', kind: 'machine', tenantId: tenant.id, scopes: ['api'] }))
      .secret,
  };
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  service = spawn(process.execPath, [...TS_LOADER, 'src/main.ts'], {
    env: {
      ...process.env,
      NODE_ENV: 'test',
      WORKERS: '2',
      PORT: String(port),
      PUBLIC_URL: base,
      DATABASE_URL: seeder.db.url,
      KEY_ENCRYPTION_KEY: seeder.db.kek,
      DATA_DIR: mkdtempSync(join(tmpdir(), 'auth-service-cluster-')),
      METRICS_TOKEN,
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  service.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  service.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  await vi.waitFor(() => expect(workerPids()).toHaveLength(2), { timeout: 90_000, interval: 200 });
}, 120_000);

afterAll(async () => {
  if (process.env['DEBUG_CLUSTER']) console.log(output);
  if (service && service.exitCode === null) service.kill('SIGKILL');
  for (const pid of workerPids()) if (alive(pid)) process.kill(pid, 'SIGKILL');
  await seeder?.close();
});

describe('WORKERS=2', () => {
  it('starts two workers on one port, each its own process', () => {
    const pids = workerPids();
    expect(new Set(pids).size).toBe(2);
    expect(pids).not.toContain(service.pid);
  });

  it('reports every worker’s requests in one scrape of /metrics', async () => {
    const before = await issuedByClientCredentials();
    const statuses = [];
    for (let i = 0; i < 30; i++) statuses.push(await clientCredentials());
    expect(statuses.every((s) => s === 200)).toBe(true);
    // Each scrape lands on one worker; each must report all 30 (a worker alone saw about half).
    for (let i = 0; i < 4; i++) expect((await issuedByClientCredentials()) - before).toBe(30);
  });

  it('keeps a worker’s idle keep-alive connection open past Node’s 5 s default, as behind a gateway', async () => {
    const [first, second] = await twoRequestsOneConnection(`${base}/health/live`, 6_500); // a wait, not a measurement
    expect(first).toMatchObject({ status: 200, keepAlive: 'timeout=75' });
    expect(second).toMatchObject({ status: 200, reused: true, localPort: first.localPort });
  }, 30_000);

  it('replaces a worker that dies, and keeps serving meanwhile', async () => {
    const [victim] = workerPids();
    process.kill(victim!, 'SIGKILL');
    await vi.waitFor(() => expect(output).toMatch(/a worker died; starting another/), { timeout: 10_000, interval: 50 });
    expect(await clientCredentials()).toBe(200); // the other worker, while the replacement starts
    await vi.waitFor(() => expect(workerPids()).toHaveLength(3), { timeout: 60_000, interval: 200 });
    const statuses = [];
    for (let i = 0; i < 6; i++) statuses.push(await clientCredentials());
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200]);
  }, 90_000);

  it('stops the primary and every worker on SIGTERM', async () => {
    const exited = new Promise<number | null>((resolve) => service.once('exit', (code) => resolve(code)));
    service.kill('SIGTERM');
    expect(await exited).toBe(0);
    const [, second, third] = workerPids();
    await vi.waitFor(() => expect([second, third].filter((pid) => alive(pid!))).toEqual([]), { timeout: 10_000 });
  }, 30_000);
});
