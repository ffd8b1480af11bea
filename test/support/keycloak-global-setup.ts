/**
 * One real Keycloak for the whole Vitest run, shared by every test file that needs one (issue #3:
 * "started once per run, not per test"). A start costs 40-60 s of a 2-core machine; per file it
 * was paid five times.
 *
 * Design. This globalSetup runs in Vitest's main process and owns the Keycloak process (its
 * watchdog follows this process, teardown stops it). It does not start Keycloak itself: it opens
 * a small control server on 127.0.0.1 (random port, bearer token, handed to the test files with
 * `provide('keycloakControl')`) and Keycloak starts on the first request for it, once, whoever
 * asks first (single-flight promise; a failed start is remembered and reported to every file, so
 * a run never waits for two failing starts). So a run that selects no Keycloak file
 * (`npx vitest run test/readme.test.ts`) never starts a JVM. To not lose the head start, the
 * start is kicked off right here when a selected test file imports test/peers/keycloak-shared.ts
 * (read from Vitest's list of selected files; when that experimental API is missing, or a test
 * name filter is set, the first request starts it instead).
 *
 * Test files talk to it through test/peers/keycloak-shared.ts (`acquireKeycloak()`):
 * - a file holds a lease while it uses Keycloak and creates its own realms, with unique names,
 *   through the admin REST API (keycloak-realm.json itself is imported at start-up, as
 *   docker-compose does, and only read by the tests), so files running in parallel never collide;
 * - "Keycloak down" tests do not stop the shared server: they cut a TCP proxy of their own that
 *   stands between their service and Keycloak (what the service sees is the same refused
 *   connection);
 * - the one test that must really stop and start the server (data surviving a restart) asks for an
 *   exclusive restart: new leases wait, the restart waits until every other lease is released (or
 *   its process is gone), restarts the same instance and lets everyone in again.
 *
 * Requests that wait (the first start, a restart) are long polls of at most 20 s each that the
 * client repeats, so no HTTP timeout (fetch's 300 s headers timeout) limits how long a start may take.
 * A PeerUnavailableError (no JDK, no mvn) crosses over as `unavailable`: the files skip on a
 * developer machine and fail under CI=true, as before.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { startKeycloak, type KeycloakInstance } from '../peers/keycloak.js';
import { PeerUnavailableError } from '../peers/peer-unavailable.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The run's shared-Keycloak control server (see test/support/keycloak-global-setup.ts). */
    keycloakControl: { url: string; token: string };
  }
}

/** Replies of the control server (see test/peers/keycloak-shared.ts). */
export type ControlReply =
  | { pending: true }
  | { unavailable: string }
  | { error: string }
  | {
      lease: string;
      baseUrl: string;
      port: number;
      adminUser: string;
      adminPassword: string;
      startDurationMs: number;
    }
  | { lines: string[] }
  | { restarted: true; refusedWhileStopped: boolean; startDurationsMs: number[] };

const realmFile = fileURLToPath(new URL('../../keycloak-realm.json', import.meta.url));
/** A test file that imports this module uses the shared Keycloak. */
const USES_SHARED_KEYCLOAK = /peers\/keycloak-shared(?:\.js)?['"]/;
const LONG_POLL_MS = 20_000;
/** How long an exclusive restart waits for the other files to release their leases. */
const EXCLUSIVE_WAIT_MS = 10 * 60_000;

interface Lease {
  pid: number;
  file: string;
}

interface RestartJob {
  lease: string;
  result: Promise<ControlReply>;
  settled?: ControlReply;
}

const log = (line: string): void => void process.stderr.write(`[keycloak-shared] ${line}\n`);

class SharedKeycloak {
  private starting?: Promise<KeycloakInstance>;
  private instance?: KeycloakInstance;
  private readonly startupLog: string[] = [];
  private readonly leases = new Map<string, Lease>();
  /** Restart jobs by request id; at most one runs at a time. */
  private readonly restarts = new Map<string, RestartJob>();
  private exclusive?: Promise<unknown>;

  /** Starts Keycloak once (later calls share the first start, or its failure). */
  ensureStarted(why: string): Promise<KeycloakInstance> {
    if (!this.starting) {
      this.starting = (async () => {
        log(`starting the run's Keycloak (${why})`);
        let ready = false;
        const kc = await startKeycloak({
          realmFiles: [realmFile],
          onLog: (line) => {
            if (!ready) this.startupLog.push(line);
          },
        });
        ready = true;
        this.instance = kc;
        log(`Keycloak ready at ${kc.baseUrl} (home: ${kc.runDir}) after ${kc.startDurationsMs[0]} ms`);
        return kc;
      })();
      this.starting.catch((err: unknown) => log(`Keycloak could not be started: ${(err as Error).message.split('\n')[0]}`));
    }
    return this.starting;
  }

  async stop(): Promise<void> {
    await this.starting?.catch(() => undefined);
    if (this.instance) {
      log(`stopping Keycloak at ${this.instance.baseUrl} (start durations: ${this.instance.startDurationsMs.join(', ')} ms)`);
      await this.instance.stop();
      this.instance = undefined;
    }
  }

  async acquire(pid: number, file: string): Promise<ControlReply> {
    const deadline = Date.now() + LONG_POLL_MS;
    let kc: KeycloakInstance | undefined;
    try {
      kc = await until(this.ensureStarted(`first requested by ${file}`), deadline);
    } catch (err) {
      return failure(err);
    }
    if (!kc) return { pending: true };
    // A restart under way: new users wait until it is over.
    for (let restart = this.exclusive; restart; restart = this.exclusive) {
      if (Date.now() >= deadline) return { pending: true };
      await until(
        restart.catch(() => undefined),
        deadline,
      );
    }
    const lease = randomBytes(8).toString('hex');
    this.leases.set(lease, { pid, file });
    return {
      lease,
      baseUrl: kc.baseUrl,
      port: kc.port,
      adminUser: kc.adminUser,
      adminPassword: kc.adminPassword,
      startDurationMs: kc.startDurationsMs[0]!,
    };
  }

  release(lease: string): ControlReply | undefined {
    this.leases.delete(lease);
    return undefined;
  }

  startupLines(): ControlReply {
    if (!this.instance) return { error: 'Keycloak has not been started' };
    return { lines: [...this.startupLog] };
  }

  /** Stops and starts the shared server while no other file holds a lease. */
  async restart(lease: string, requestId: string): Promise<ControlReply> {
    let job = this.restarts.get(requestId);
    if (!job) {
      if (!this.leases.has(lease)) return { error: 'restart: unknown lease' };
      if (this.exclusive) return { error: 'restart: another restart is under way' };
      const result = this.runExclusive(lease);
      const created: RestartJob = { lease, result };
      job = created;
      this.restarts.set(requestId, created);
      this.exclusive = result.then((r) => (created.settled = r)).finally(() => (this.exclusive = undefined));
    }
    const settled = job.settled ?? (await until(job.result, Date.now() + LONG_POLL_MS));
    if (!settled) return { pending: true };
    this.restarts.delete(requestId);
    return settled;
  }

  private async runExclusive(lease: string): Promise<ControlReply> {
    const kc = this.instance;
    if (!kc) return { error: 'restart: Keycloak is not running' };
    const deadline = Date.now() + EXCLUSIVE_WAIT_MS;
    for (;;) {
      for (const [id, l] of this.leases) if (!isAlive(l.pid)) this.leases.delete(id);
      const others = [...this.leases].filter(([id]) => id !== lease);
      if (others.length === 0) break;
      if (Date.now() > deadline) {
        return {
          error: `restart: still in use after ${EXCLUSIVE_WAIT_MS / 1000}s by ${others.map(([, l]) => `${l.file} (pid ${l.pid})`).join(', ')}`,
        };
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    try {
      log(`restarting Keycloak at ${kc.baseUrl} (exclusive)`);
      await kc.stopServer();
      const refusedWhileStopped = await fetch(`${kc.baseUrl}/realms/master`, { signal: AbortSignal.timeout(3000) }).then(
        () => false,
        () => true,
      );
      await kc.startServer();
      return { restarted: true, refusedWhileStopped, startDurationsMs: [...kc.startDurationsMs] };
    } catch (err) {
      return { error: `restart failed: ${(err as Error).message}` };
    }
  }
}

function failure(err: unknown): ControlReply {
  if (err instanceof PeerUnavailableError) return { unavailable: err.message.replace(/^keycloak unavailable: /, '') };
  return { error: err instanceof Error ? err.message : String(err) };
}

/** The promise's value, or undefined when the deadline comes first. */
async function until<T>(promise: Promise<T>, deadline: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), Math.max(0, deadline - Date.now()))));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether a selected test file uses the shared Keycloak (undefined when Vitest does not say which files run). */
function selectionUsesKeycloak(project: TestProject): boolean | undefined {
  let paths: string[];
  try {
    paths = project.vitest.state.getPaths();
  } catch {
    return undefined;
  }
  if (!Array.isArray(paths) || paths.length === 0) return undefined;
  return paths.some((path) => {
    try {
      return USES_SHARED_KEYCLOAK.test(readFileSync(path, 'utf8'));
    } catch {
      return false;
    }
  });
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const shared = new SharedKeycloak();
  const token = randomBytes(24).toString('base64url');
  const server = createServer((req, res) => {
    void handle(shared, token, req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: (err as Error).message }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  server.unref();
  project.provide('keycloakControl', { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, token });

  if (!project.config.testNamePattern && selectionUsesKeycloak(project)) {
    // Head start: the files that need it find it ready (or starting). Errors are reported to them.
    void shared.ensureStarted('a selected test file uses it').catch(() => undefined);
  }

  return async () => {
    await shared.stop();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
}

async function handle(shared: SharedKeycloak, token: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.headers.authorization !== `Bearer ${token}`) {
    res.writeHead(401).end();
    return;
  }
  let raw = '';
  for await (const chunk of req) raw += chunk;
  const body = (raw ? JSON.parse(raw) : {}) as { pid?: number; file?: string; lease?: string; requestId?: string };
  const url = new URL(req.url ?? '/', 'http://control');
  let reply: ControlReply | undefined;
  switch (`${req.method} ${url.pathname}`) {
    case 'POST /acquire':
      reply = await shared.acquire(Number(body.pid), String(body.file ?? '?'));
      break;
    case 'POST /release':
      reply = shared.release(String(body.lease));
      break;
    case 'POST /restart':
      reply = await shared.restart(String(body.lease), String(body.requestId));
      break;
    case 'GET /startup-log':
      reply = shared.startupLines();
      break;
    default:
      res.writeHead(404).end();
      return;
  }
  if (reply === undefined) {
    res.writeHead(204).end();
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(reply));
}
