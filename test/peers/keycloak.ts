/**
 * Real Keycloak for tests and local development.
 *
 * Test files do not call `startKeycloak()` themselves: a Vitest run starts one instance, on first
 * use, and shares it between files (test/support/keycloak-global-setup.ts, and
 * test/peers/keycloak-shared.ts for the files' side). Benchmarks and scripts/keycloak.ts use it directly.
 *
 * - `ensureKeycloakDistribution()` fetches the server distribution through Maven (when the archive
 *   is missing from `.cache/keycloak/`) and unpacks it once into `.cache/keycloak/keycloak-<version>/`.
 * - `startKeycloak()` runs `bin/kc.sh start-dev` on 127.0.0.1 with the machine's JDK. Every instance
 *   gets its own Keycloak home under `.cache/keycloak/runs/<id>/`: `lib`, `conf`, `providers` and
 *   `themes` are symlinks into the shared distribution, `data/` is private. Keycloak derives its data
 *   directory (H2 database, `data/import`, transaction logs, tmp) from the `kc.home.dir` system
 *   property and `kc.sh` lets a later `-Dkc.home.dir=...` override its own, so each instance starts
 *   with an empty H2 database and imports exactly the realm files it was given.
 * - `stopServer()` / `startServer()` / `restart()` stop and start the same instance (same port, same
 *   data: realms, users and organisations survive); `stop()` ends it for good and deletes its data.
 *
 * Java (17+), `tar` and, when the archive is missing, `mvn` must be on the machine; otherwise a
 * `PeerUnavailableError` is thrown.
 *
 * Timings measured on a 2-core machine (JDK 17): the very first start re-augments the distribution
 * for dev mode (about 17-27 s extra, once per unpacked distribution, serialised by a lock); a start
 * with a fresh database then takes about 15-23 s (schema creation, master realm, import); a restart
 * on existing data about 8-10 s; a graceful stop about 1.5 s.
 *
 * Environment knobs: KEYCLOAK_LOG=1 echoes Keycloak's log to stderr; KEYCLOAK_KEEP_DATA=1 keeps the
 * per-run directory after stop(); KEYCLOAK_JAVA_OPTS_APPEND replaces the extra JVM options (by
 * default C1-only JIT, which starts about 25 % faster and is plenty for tests).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, type WriteStream } from 'node:fs';
import { copyFile, lstat, mkdir, readdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PeerUnavailableError } from './peer-unavailable.js';

export const KEYCLOAK_VERSION = '26.7.3';
const PEER = 'keycloak';
const MAVEN_ARTIFACT = `org.keycloak:keycloak-quarkus-dist:${KEYCLOAK_VERSION}:tar.gz`;

const here = fileURLToPath(new URL('../../', import.meta.url));
// `npm run bench` runs this file compiled into dist/test/peers/, one level below the repository.
const repoRoot = existsSync(join(here, 'package.json')) ? here : join(here, '..');
const cacheDir = join(repoRoot, '.cache', 'keycloak');
const archivePath = join(cacheDir, `keycloak-quarkus-dist-${KEYCLOAK_VERSION}.tar.gz`);
const distHome = join(cacheDir, `keycloak-${KEYCLOAK_VERSION}`);
/** Written after the first successful start-dev: the distribution has been re-augmented for dev mode. */
const devBuildMarker = join(cacheDir, `keycloak-${KEYCLOAK_VERSION}.dev-build-done`);
const runsDir = join(cacheDir, 'runs');
const lockDir = join(cacheDir, '.prepare.lock');

const DEFAULT_JAVA_OPTS_APPEND = '-XX:TieredStopAtLevel=1';
const LOG_TAIL_LINES = 200;

export interface StartKeycloakOptions {
  /** HTTP port on 127.0.0.1; a free one is picked when omitted. */
  port?: number;
  /** Realm JSON files imported on the first start (`--import-realm`). The master realm cannot be imported. */
  realmFiles: string[];
  adminUser?: string;
  /**
   * Defaults to a random value per instance, or to 'admin' when `runDir` is given: Keycloak creates
   * the bootstrap admin only once per database, so a reused data directory needs a stable password.
   */
  adminPassword?: string;
  /** How long one start may take before it is declared failed (default 240 s: the very first start re-augments the server). */
  startTimeoutMs?: number;
  /** Receives every log line of the server (in addition to the log file in the run directory). */
  onLog?: (line: string) => void;
  /** Use this directory as the instance's Keycloak home instead of a fresh one (its data is reused and kept). */
  runDir?: string;
  /** Extra `kc.sh start-dev` arguments, e.g. `--log-level=org.keycloak.organization:debug`. */
  extraArgs?: string[];
}

export interface KeycloakInstance {
  /** `http://127.0.0.1:<port>`, no trailing slash. A realm's issuer is `${baseUrl}/realms/<realm>`. */
  readonly baseUrl: string;
  readonly port: number;
  readonly adminUser: string;
  readonly adminPassword: string;
  /** The instance's own Keycloak home (data in `data/`, server output in `keycloak.log`). */
  readonly runDir: string;
  /** Realm names found in the imported realm files. */
  readonly realms: readonly string[];
  /** Whether the server process is up (it may still be starting). */
  readonly running: boolean;
  /** Wall-clock duration of every start of this instance, in ms (first start first). */
  readonly startDurationsMs: readonly number[];
  /** Stops the server for good and deletes its run directory (unless KEYCLOAK_KEEP_DATA=1 or runDir was given). */
  stop(): Promise<void>;
  /**
   * Stops the server process but keeps its data, so `startServer()` brings the same instance back.
   * SIGTERM (default) shuts Keycloak down gracefully; SIGKILL simulates a crash. Resolves when every
   * process of the instance is gone.
   */
  stopServer(opts?: { signal?: 'SIGTERM' | 'SIGKILL'; timeoutMs?: number }): Promise<void>;
  /** Starts the stopped server again on the same port with the same data; resolves when it is ready. */
  startServer(): Promise<void>;
  /** `stopServer()` then `startServer()`. */
  restart(): Promise<void>;
  /** The last `lines` lines of server output. */
  logTail(lines?: number): string;
}

// ---------------------------------------------------------------------------------------------
// Distribution

/**
 * Makes sure the Keycloak distribution is unpacked in `.cache/keycloak/keycloak-<version>/` and
 * returns that directory. Downloads the archive with `mvn dependency:copy` when it is missing.
 * Safe to call concurrently from several processes.
 */
export async function ensureKeycloakDistribution(): Promise<string> {
  if (existsSync(join(distHome, 'bin', 'kc.sh')) && existsSync(join(distHome, 'lib', 'quarkus-run.jar'))) {
    return distHome;
  }
  await mkdir(cacheDir, { recursive: true });
  return withLock(async () => {
    if (existsSync(join(distHome, 'bin', 'kc.sh'))) return distHome;
    if (!existsSync(archivePath)) await fetchArchive();
    await requireCommand('tar', ['--version'], 'tar is needed to unpack the Keycloak distribution');
    const tmp = join(cacheDir, `.unpack-${process.pid}-${randomBytes(4).toString('hex')}`);
    await mkdir(tmp, { recursive: true });
    try {
      const result = await run('tar', ['-xzf', archivePath, '-C', tmp]);
      if (result.code !== 0) {
        throw new Error(`unpacking ${basename(archivePath)} failed (exit ${result.code}): ${lastLines(result.output, 20)}`);
      }
      await rename(join(tmp, `keycloak-${KEYCLOAK_VERSION}`), distHome);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
    await rm(devBuildMarker, { force: true });
    return distHome;
  });
}

async function fetchArchive(): Promise<void> {
  await requireCommand('mvn', ['-v'], `Maven (mvn) is needed to fetch ${MAVEN_ARTIFACT}`);
  const relativeOut = join('.cache', 'keycloak');
  const result = await run('mvn', ['-q', '-B', 'dependency:copy', `-Dartifact=${MAVEN_ARTIFACT}`, `-DoutputDirectory=${relativeOut}`], {
    cwd: repoRoot,
  });
  if (result.code !== 0 || !existsSync(archivePath)) {
    throw new PeerUnavailableError(
      PEER,
      `mvn dependency:copy of ${MAVEN_ARTIFACT} failed (exit ${result.code}): ${lastLines(result.output, 30)}`,
    );
  }
}

async function checkJava(): Promise<string> {
  const java = process.env.JAVA_HOME ? join(process.env.JAVA_HOME, 'bin', 'java') : 'java';
  const result = await run(java, ['-version']).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') {
      throw new PeerUnavailableError(PEER, `no Java runtime found (${java}); Keycloak ${KEYCLOAK_VERSION} needs JDK 17, 21 or 25`);
    }
    throw err;
  });
  const match = /version "(\d+)(?:\.(\d+))?/.exec(result.output);
  const major = match ? Number(match[1] === '1' ? match[2] : match[1]) : NaN;
  if (result.code !== 0 || !(major >= 17)) {
    throw new PeerUnavailableError(PEER, `Java 17+ required, '${java} -version' said: ${lastLines(result.output, 3)}`);
  }
  return java;
}

// ---------------------------------------------------------------------------------------------
// Server

interface RunningProcess {
  child: ChildProcess;
  pgid: number;
  exited: Promise<number | null>;
  exitCode?: number | null;
}

const liveGroups = new Set<number>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort when the test process ends without calling stop(): kill whatever is left.
  process.on('exit', () => {
    for (const pgid of liveGroups) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

/**
 * Starts Keycloak in dev mode on 127.0.0.1, importing `realmFiles` into a fresh database, and
 * resolves once every imported realm answers.
 */
export async function startKeycloak(opts: StartKeycloakOptions): Promise<KeycloakInstance> {
  const java = await checkJava();
  const home = await ensureKeycloakDistribution();
  const realmDocs = await Promise.all(
    opts.realmFiles.map(async (file) => {
      const doc = JSON.parse(await readFile(file, 'utf8')) as { realm?: unknown };
      if (typeof doc.realm !== 'string' || doc.realm === '') throw new Error(`${file}: no "realm" name`);
      if (doc.realm === 'master') throw new Error(`${file}: the master realm cannot be imported`);
      return { file, realm: doc.realm };
    }),
  );
  const realms = realmDocs.map((r) => r.realm);
  const duplicate = realms.find((r, i) => realms.indexOf(r) !== i);
  if (duplicate) throw new Error(`realm ${duplicate} appears in more than one realm file`);

  await mkdir(runsDir, { recursive: true });
  await pruneStaleRuns();
  const ownRunDir = opts.runDir === undefined;
  const runDir = opts.runDir ?? join(runsDir, `${Date.now().toString(36)}-${process.pid}-${randomBytes(3).toString('hex')}`);
  await mkdir(join(runDir, 'data', 'import'), { recursive: true });
  await writeFile(join(runDir, 'owner.json'), JSON.stringify({ pid: process.pid, started: new Date().toISOString() }));
  for (const entry of ['lib', 'conf', 'providers', 'themes']) {
    const link = join(runDir, entry);
    if ((await lstat(link).catch(() => undefined))?.isSymbolicLink()) await rm(link);
    await symlink(join(home, entry), link);
  }
  // Keycloak's directory import insists on `<realm>-realm.json` file names.
  const importDir = join(runDir, 'data', 'import');
  for (const { file, realm } of realmDocs) {
    await copyFile(file, join(importDir, `${realm}-realm.json`));
  }

  const port = opts.port ?? (await freePort());
  const baseUrl = `http://127.0.0.1:${port}`;
  const adminUser = opts.adminUser ?? 'admin';
  const adminPassword = opts.adminPassword ?? (ownRunDir ? randomBytes(12).toString('base64url') : 'admin');
  const startTimeoutMs = opts.startTimeoutMs ?? 240_000;
  const logFile: WriteStream = createWriteStream(join(runDir, 'keycloak.log'), { flags: 'a' });
  const tail: string[] = [];
  const echo = process.env.KEYCLOAK_LOG === '1';
  const onLine = (line: string): void => {
    tail.push(line);
    if (tail.length > LOG_TAIL_LINES) tail.shift();
    logFile.write(`${line}\n`);
    if (echo) process.stderr.write(`[keycloak:${port}] ${line}\n`);
    opts.onLog?.(line);
  };
  const logTail = (lines = 40): string => tail.slice(-lines).join('\n');

  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    // Keep the developer's Keycloak/Quarkus/JVM settings out of the test server.
    if (/^(KC_|KEYCLOAK_|QUARKUS_|QUARKUS\.)/.test(key)) continue;
    if (
      ['JAVA_OPTS', 'JAVA_OPTS_KC_HEAP', 'JAVA_ADD_OPENS', 'JAVA_LOCALE', 'DEBUG', 'DEBUG_PORT', 'DEBUG_SUSPEND', 'PRINT_ENV'].includes(key)
    )
      continue;
    env[key] = value;
  }
  env.KC_BOOTSTRAP_ADMIN_USERNAME = adminUser;
  env.KC_BOOTSTRAP_ADMIN_PASSWORD = adminPassword;
  env.JAVA_OPTS_APPEND = process.env.KEYCLOAK_JAVA_OPTS_APPEND ?? DEFAULT_JAVA_OPTS_APPEND;
  if (java !== 'java') env.JAVA = java;

  const kcArgs = [
    'start-dev',
    `-Dkc.home.dir=${runDir}`,
    '--http-host=127.0.0.1',
    `--http-port=${port}`,
    '--import-realm',
    ...(opts.extraArgs ?? []),
  ];

  let proc: RunningProcess | undefined;
  const durations: number[] = [];
  let stopped = false;

  const launch = (): RunningProcess => {
    // A small sh wrapper owns the process group: it runs kc.sh and takes the whole group down when
    // this Node process disappears without calling stop() (a killed Vitest worker, Ctrl-C, ...).
    const watchdog = [
      '"$@" &',
      'kc=$!',
      `while kill -0 ${process.pid} 2>/dev/null; do`,
      '  if ! kill -0 "$kc" 2>/dev/null; then wait "$kc"; exit $?; fi',
      '  sleep 1',
      'done',
      'kill -TERM 0',
    ].join('\n');
    const child = spawn('sh', ['-c', watchdog, 'keycloak-watchdog', join(home, 'bin', 'kc.sh'), ...kcArgs], {
      cwd: runDir,
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (child.pid === undefined) throw new Error('could not spawn kc.sh');
    const pgid = child.pid;
    liveGroups.add(pgid);
    installExitHook();
    for (const stream of [child.stdout, child.stderr]) {
      let buffered = '';
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        buffered += chunk;
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          onLine(buffered.slice(0, nl).replace(/\r$/, ''));
          buffered = buffered.slice(nl + 1);
        }
      });
      stream?.on('end', () => {
        if (buffered) onLine(buffered);
        buffered = '';
      });
    }
    const running: RunningProcess = {
      child,
      pgid,
      exited: new Promise((resolve) => {
        child.once('exit', (code, signal) => {
          running.exitCode = code ?? (signal ? -1 : null);
          resolve(code);
        });
        child.once('error', () => resolve(-1));
      }),
    };
    return running;
  };

  const waitReady = async (p: RunningProcess, startedAt: number): Promise<void> => {
    const deadline = startedAt + startTimeoutMs;
    const urls = [...new Set(['master', ...realms])].map((r) => `${baseUrl}/realms/${encodeURIComponent(r)}`);
    let lastProblem = 'no answer yet';
    while (Date.now() < deadline) {
      if (p.exitCode !== undefined) {
        throw new Error(
          `Keycloak exited with code ${p.exitCode} before it was ready (${(Date.now() - startedAt) / 1000}s).\n` +
            `Last log lines:\n${logTail(60)}`,
        );
      }
      try {
        let allReady = true;
        for (const url of urls) {
          const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
          await res.arrayBuffer();
          if (res.status !== 200) {
            allReady = false;
            lastProblem = `${url} answered ${res.status}`;
            break;
          }
        }
        if (allReady) return;
      } catch (err) {
        lastProblem = (err as Error).message;
      }
      await Promise.race([sleep(500), p.exited]);
    }
    throw new Error(
      `Keycloak did not become ready within ${startTimeoutMs / 1000}s (last check: ${lastProblem}).\n` + `Last log lines:\n${logTail(60)}`,
    );
  };

  const stopProcess = async (signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM', timeoutMs = 30_000): Promise<void> => {
    const p = proc;
    if (!p) return;
    const signalGroup = (sig: NodeJS.Signals): void => {
      try {
        process.kill(-p.pgid, sig);
      } catch {
        // group already gone
      }
    };
    signalGroup(signal);
    if (!(await waitGroupGone(p, timeoutMs))) {
      signalGroup('SIGKILL');
      if (!(await waitGroupGone(p, 10_000))) throw new Error(`Keycloak process group ${p.pgid} survived SIGKILL`);
    }
    liveGroups.delete(p.pgid);
    proc = undefined;
  };

  const startProcess = async (): Promise<void> => {
    if (stopped) throw new Error('this Keycloak instance was stopped for good; start a new one');
    if (proc) throw new Error('Keycloak is already running');
    const startedAt = Date.now();
    const firstEver = !existsSync(devBuildMarker);
    const go = async (): Promise<void> => {
      const p = launch();
      proc = p;
      try {
        await waitReady(p, startedAt);
      } catch (err) {
        await stopProcess('SIGKILL').catch(() => undefined);
        throw err;
      }
    };
    if (firstEver) {
      // The first start-dev re-augments the shared distribution (writes lib/quarkus): never let two
      // processes do that at once.
      await withLock(async () => {
        await go();
        await writeFile(devBuildMarker, new Date().toISOString());
      });
    } else {
      await go();
    }
    durations.push(Date.now() - startedAt);
  };

  const instance: KeycloakInstance = {
    baseUrl,
    port,
    adminUser,
    adminPassword,
    runDir,
    realms,
    get running() {
      return proc !== undefined;
    },
    startDurationsMs: durations,
    logTail,
    async stopServer(o) {
      await stopProcess(o?.signal, o?.timeoutMs);
    },
    async startServer() {
      await startProcess();
    },
    async restart() {
      await stopProcess();
      await startProcess();
    },
    async stop() {
      if (stopped) return;
      await stopProcess();
      stopped = true;
      await new Promise<void>((resolve) => logFile.end(resolve));
      if (ownRunDir && process.env.KEYCLOAK_KEEP_DATA !== '1') {
        await rm(runDir, { recursive: true, force: true });
      }
    },
  };

  try {
    await startProcess();
  } catch (err) {
    stopped = true;
    logFile.end();
    if (ownRunDir && process.env.KEYCLOAK_KEEP_DATA !== '1') {
      // Keep the failed run's log next to the other runs for a post-mortem, drop the rest.
      await rm(join(runDir, 'data'), { recursive: true, force: true }).catch(() => undefined);
    }
    throw err;
  }
  return instance;
}

async function waitGroupGone(p: RunningProcess, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p.exited, new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
  clearTimeout(timer);
  while (Date.now() < deadline) {
    try {
      process.kill(-p.pgid, 0);
    } catch {
      return true;
    }
    await sleep(100);
  }
  try {
    process.kill(-p.pgid, 0);
    return false;
  } catch {
    return true;
  }
}

/** Removes run directories left behind by test processes that no longer exist. */
async function pruneStaleRuns(): Promise<void> {
  const entries = await readdir(runsDir).catch(() => [] as string[]);
  for (const entry of entries) {
    const dir = join(runsDir, entry);
    try {
      const owner = JSON.parse(await readFile(join(dir, 'owner.json'), 'utf8')) as { pid?: number };
      if (typeof owner.pid === 'number' && owner.pid !== process.pid && isAlive(owner.pid)) continue;
      if (owner.pid === process.pid) continue;
    } catch {
      // no owner file: only prune when clearly old
      const info = await stat(dir).catch(() => undefined);
      if (!info || Date.now() - info.mtimeMs < 3_600_000) continue;
    }
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A cross-process lock (a directory) around preparing the shared distribution. */
async function withLock<T>(fn: () => Promise<T>, timeoutMs = 15 * 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await mkdir(lockDir);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number(await readFile(join(lockDir, 'pid'), 'utf8').catch(() => 'NaN'));
      const info = await stat(lockDir).catch(() => undefined);
      const stale = Number.isInteger(holder) ? !isAlive(holder) : !info || Date.now() - info.mtimeMs > 60_000;
      if (stale) {
        await rm(lockDir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lockDir} (held by pid ${holder})`);
      await sleep(500);
    }
  }
  try {
    await writeFile(join(lockDir, 'pid'), String(process.pid));
    return await fn();
  } finally {
    await rm(lockDir, { recursive: true, force: true });
  }
}

async function requireCommand(command: string, args: string[], why: string): Promise<void> {
  try {
    await run(command, args);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new PeerUnavailableError(PEER, `${command} not found: ${why}`);
    throw err;
  }
}

function run(command: string, args: string[], options: { cwd?: string } = {}): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function lastLines(text: string, n: number): string {
  return text.trim().split('\n').slice(-n).join('\n');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
