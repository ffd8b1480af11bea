/**
 * Real-peer harness for the Firebase Authentication emulator (from the `firebase-tools` npm package).
 *
 * - `ensureFirebaseTools()` installs a pinned `firebase-tools` into the git-ignored `.cache/firebase-tools`
 *   the first time it is needed (a few minutes, about 700 packages) and reuses it afterwards. Concurrent
 *   callers (parallel test files, the dev script) serialise on a lock directory.
 * - `startFirebaseAuthEmulator()` runs `firebase emulators:start --only auth` for a `demo-*` project (offline
 *   mode: no credentials, no network) from a generated `firebase.json` in a temp dir, on free loopback ports,
 *   waits until it answers, and returns a handle whose `stop()` kills the whole process group.
 *
 * When the emulator cannot be provisioned (no npm, registry unreachable, emulator dies) a
 * `PeerUnavailableError` is thrown; tests turn it into a skip locally and a failure under CI.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { PeerUnavailableError } from './peer-unavailable.js';

/** Pinned: 15.x still supports Node 20 (`engines: >=20.0.0`). */
export const FIREBASE_TOOLS_VERSION = '15.34.2';

const PEER = 'Firebase Auth emulator';
const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CACHE_DIR = join(PROJECT_ROOT, '.cache', 'firebase-tools');
const LOCK_DIR = `${CACHE_DIR}.lock`;
const READY_MARKER = join(CACHE_DIR, `.installed-${FIREBASE_TOOLS_VERSION}`);
const CLI_JS = join(CACHE_DIR, 'node_modules', 'firebase-tools', 'lib', 'bin', 'firebase.js');

/**
 * Preloaded into the emulator's process: if the process that started it dies without calling stop() (a
 * killed test worker, a SIGTERM'd CI job), the emulator's process group terminates itself within a second
 * instead of lingering on its ports, and removes its temp dir.
 */
const ORPHAN_GUARD = `data:text/javascript,${encodeURIComponent(
  [
    "import { rmSync } from 'node:fs';",
    'const parent = Number(process.env.FIREBASE_EMULATOR_PARENT_PID);',
    'if (parent > 0) setInterval(() => {',
    '  try { process.kill(parent, 0); } catch (e) {',
    "    if (e.code !== 'ESRCH') return;",
    '    const dir = process.env.FIREBASE_EMULATOR_WORKDIR;',
    "    if (dir) process.once('exit', () => { try { rmSync(dir, { recursive: true, force: true }); } catch {} });",
    "    try { process.kill(-process.pid, 'SIGTERM'); } catch { process.exit(1); }",
    '  }',
    '}, 1000).unref();',
  ].join('\n'),
)}`;

const INSTALL_TIMEOUT_MS = 15 * 60_000;
const STALE_LOCK_MS = INSTALL_TIMEOUT_MS + 60_000;
const START_TIMEOUT_MS = 120_000;
const STOP_GRACE_MS = 10_000;

export interface FirebaseAuthEmulator {
  /** `127.0.0.1:<port>`, the value for `FIREBASE_AUTH_EMULATOR_HOST`. */
  readonly host: string;
  readonly projectId: string;
  /** Any string works as an API key against the emulator. */
  readonly apiKey: string;
  /** Signs a user in through the emulator's Identity Toolkit REST endpoint. */
  signInWithPassword(email: string, password: string): Promise<FirebaseSignInResult>;
  /** Deletes every account of the project (emulator-only endpoint). */
  clearAccounts(): Promise<void>;
  /** Emulator output so far (for diagnosing a failed test). */
  logs(): string;
  /** Kills the emulator's whole process tree and removes its temp dir. Idempotent. */
  stop(): Promise<void>;
}

export interface FirebaseSignInResult {
  idToken: string;
  refreshToken: string;
  localId: string;
}

export interface StartFirebaseAuthEmulatorOptions {
  /** Must start with `demo-` (the emulator's offline mode). Default `demo-auth-service`. */
  projectId?: string;
}

/** Absolute path of the firebase CLI entry point, installing the pinned `firebase-tools` first if needed. */
export async function ensureFirebaseTools(): Promise<string> {
  if (await isInstalled()) return CLI_JS;
  await mkdir(join(PROJECT_ROOT, '.cache'), { recursive: true });
  await acquireLock();
  try {
    if (await isInstalled()) return CLI_JS; // another process finished while we waited
    await rm(CACHE_DIR, { recursive: true, force: true });
    await mkdir(CACHE_DIR, { recursive: true });
    // A package.json of its own so npm treats the cache dir as the project root.
    await writeFile(join(CACHE_DIR, 'package.json'), `${JSON.stringify({ name: 'firebase-tools-cache', private: true }, null, 2)}\n`);
    const { code, output } = await run(
      'npm',
      [
        'install',
        '--prefix',
        CACHE_DIR,
        '--no-audit',
        '--no-fund',
        '--no-update-notifier',
        '--ignore-scripts',
        '--loglevel=error',
        `firebase-tools@${FIREBASE_TOOLS_VERSION}`,
      ],
      INSTALL_TIMEOUT_MS,
    );
    if (code !== 0 || !existsSync(CLI_JS)) {
      throw new PeerUnavailableError(PEER, `npm install firebase-tools@${FIREBASE_TOOLS_VERSION} failed (exit ${code}): ${tail(output)}`);
    }
    await writeFile(READY_MARKER, `${new Date().toISOString()}\n`);
    return CLI_JS;
  } finally {
    await rm(LOCK_DIR, { recursive: true, force: true });
  }
}

export async function startFirebaseAuthEmulator(opts: StartFirebaseAuthEmulatorOptions = {}): Promise<FirebaseAuthEmulator> {
  const projectId = opts.projectId ?? 'demo-auth-service';
  if (!/^demo-[a-z0-9-]{1,24}$/.test(projectId)) {
    throw new Error(`projectId must be a demo-* project id (offline emulator mode), got ${projectId}`);
  }
  const cli = await ensureFirebaseTools();

  const [authPort, hubPort, loggingPort] = await freePorts(3);
  const host = `127.0.0.1:${authPort}`;
  const workDir = await mkdtemp(join(tmpdir(), 'firebase-auth-emulator-'));
  await writeFile(
    join(workDir, 'firebase.json'),
    JSON.stringify(
      {
        emulators: {
          auth: { host: '127.0.0.1', port: authPort },
          hub: { host: '127.0.0.1', port: hubPort },
          logging: { host: '127.0.0.1', port: loggingPort },
          ui: { enabled: false },
          singleProjectMode: true,
        },
      },
      null,
      2,
    ),
  );

  const child = spawn(process.execPath, ['--import', ORPHAN_GUARD, cli, 'emulators:start', '--only', 'auth', '--project', projectId], {
    cwd: workDir,
    detached: true, // own process group, so stop() can kill the whole tree
    stdio: ['ignore', 'pipe', 'pipe'],
    env: emulatorEnv(workDir),
  });
  let log = '';
  const append = (chunk: Buffer) => {
    log += chunk.toString('utf8');
    if (log.length > 200_000) log = log.slice(-100_000);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  const exited = onExit(child);
  const killOnExit = () => {
    killGroup(child, 'SIGKILL');
    rmSync(workDir, { recursive: true, force: true });
  };
  process.once('exit', killOnExit);

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopped ??= (async () => {
      process.off('exit', killOnExit);
      if (child.exitCode === null && child.signalCode === null) {
        killGroup(child, 'SIGTERM');
        const timedOut = await Promise.race([exited.then(() => false), sleep(STOP_GRACE_MS, true)]);
        if (timedOut) killGroup(child, 'SIGKILL');
        await Promise.race([exited, sleep(STOP_GRACE_MS)]);
      }
      killGroup(child, 'SIGKILL'); // stragglers left in the group, if any
      await rm(workDir, { recursive: true, force: true });
    })());

  const base = `http://${host}`;
  try {
    await waitUntilReady(base, projectId, exited, () => log);
  } catch (err) {
    await stop();
    throw err;
  }

  const apiKey = 'fake-api-key';
  return {
    host,
    projectId,
    apiKey,
    logs: () => log,
    stop,
    async signInWithPassword(email, password) {
      const res = await fetch(`${base}/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword?key=${apiKey}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email, password, returnSecureToken: true }),
      });
      const body = (await res.json()) as Partial<FirebaseSignInResult> & { error?: { message?: string } };
      if (!res.ok || !body.idToken || !body.refreshToken || !body.localId) {
        throw new Error(`signInWithPassword failed (${res.status}): ${body.error?.message ?? JSON.stringify(body)}`);
      }
      return { idToken: body.idToken, refreshToken: body.refreshToken, localId: body.localId };
    },
    async clearAccounts() {
      const res = await fetch(`${base}/emulator/v1/projects/${projectId}/accounts`, { method: 'DELETE' });
      if (!res.ok) throw new Error(`clearAccounts failed (${res.status}): ${await res.text()}`);
    },
  };
}

function emulatorEnv(workDir: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CI: '1', // no update check, no prompts
    NO_UPDATE_NOTIFIER: '1',
    // keep the CLI's configstore (and any login) away from the developer's home
    XDG_CONFIG_HOME: join(workDir, 'config'),
    FIREBASE_EMULATOR_PARENT_PID: String(process.pid),
    FIREBASE_EMULATOR_WORKDIR: workDir,
  };
  for (const key of ['FIREBASE_AUTH_EMULATOR_HOST', 'GOOGLE_APPLICATION_CREDENTIALS', 'FIREBASE_TOKEN']) {
    delete env[key];
  }
  return env;
}

async function isInstalled(): Promise<boolean> {
  if (!existsSync(READY_MARKER) || !existsSync(CLI_JS)) return false;
  try {
    const pkg = JSON.parse(await readFile(join(CACHE_DIR, 'node_modules', 'firebase-tools', 'package.json'), 'utf8')) as {
      version?: string;
    };
    return pkg.version === FIREBASE_TOOLS_VERSION;
  } catch {
    return false;
  }
}

async function acquireLock(): Promise<void> {
  const deadline = Date.now() + STALE_LOCK_MS + 60_000;
  for (;;) {
    try {
      await mkdir(LOCK_DIR);
      await writeFile(join(LOCK_DIR, 'pid'), String(process.pid));
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const age = await stat(LOCK_DIR).then(
      (s) => Date.now() - s.mtimeMs,
      () => 0,
    );
    const holder = Number(await readFile(join(LOCK_DIR, 'pid'), 'utf8').catch(() => ''));
    // A holder that died mid-install (Ctrl-C) leaves the lock behind; its pid tells.
    const holderGone = holder > 0 && !isAlive(holder) && age > 2_000;
    if (holderGone || age > STALE_LOCK_MS) {
      await rm(LOCK_DIR, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) throw new PeerUnavailableError(PEER, `lock ${LOCK_DIR} held too long`);
    await sleep(1_000);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    let output = '';
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: process.env });
    } catch (err) {
      resolve({ code: null, output: String(err) });
      return;
    }
    const collect = (b: Buffer) => {
      output += b.toString('utf8');
      if (output.length > 100_000) output = output.slice(-50_000);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    const timer = setTimeout(() => {
      output += `\n[timed out after ${timeoutMs} ms]`;
      killGroup(child, 'SIGKILL');
    }, timeoutMs);
    const kill = () => killGroup(child, 'SIGKILL');
    process.once('exit', kill);
    child.on('error', (err) => {
      output += `\n${String(err)}`;
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      process.off('exit', kill);
      resolve({ code, output });
    });
  });
}

async function waitUntilReady(base: string, projectId: string, exited: Promise<number | null>, logs: () => string): Promise<void> {
  let dead: number | null | undefined;
  void exited.then((code) => {
    dead = code;
  });
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (dead !== undefined) {
      throw new PeerUnavailableError(PEER, `emulator exited (code ${dead}) before it was ready: ${tail(logs())}`);
    }
    try {
      // Answers only once the auth emulator is listening with the project loaded.
      const res = await fetch(`${base}/emulator/v1/projects/${projectId}/config`, {
        signal: AbortSignal.timeout(2_000),
      });
      if (res.ok) {
        await res.arrayBuffer();
        return;
      }
    } catch {
      // not listening yet
    }
    await sleep(250);
  }
  throw new PeerUnavailableError(PEER, `not ready after ${START_TIMEOUT_MS} ms: ${tail(logs())}`);
}

function onExit(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
    child.once('error', () => resolve(null));
  });
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // group already gone
  }
}

async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<Server>((resolve, reject) => {
          const srv = createServer();
          srv.once('error', reject);
          srv.listen(0, '127.0.0.1', () => resolve(srv));
        }),
    ),
  );
  const ports = servers.map((s) => {
    const addr = s.address();
    if (addr === null || typeof addr === 'string') throw new Error('no port');
    return addr.port;
  });
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}

function tail(text: string, max = 2_000): string {
  const t = text.trim();
  return t.length > max ? `…${t.slice(-max)}` : t;
}
