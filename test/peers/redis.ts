/**
 * A real redis-server (Debian's `redis-server` package) on a free loopback port, for the rate-limit
 * tests. ensureRedisServer() installs the package when missing (root only); startRedisServer()
 * runs one without persistence, and can stop, freeze (SIGSTOP) and restart it on the same port.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { promisify } from 'node:util';
import { freePort } from '../support/free-port.js';
import { PeerUnavailableError } from './peer-unavailable.js';

const PEER = 'redis-server';
const run = promisify(execFile);

function installed(): boolean {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export async function ensureRedisServer(): Promise<void> {
  if (installed()) return;
  if (process.platform !== 'linux' || process.getuid?.() !== 0)
    throw new PeerUnavailableError(PEER, 'not on PATH and not root; run: apt-get install -y --no-install-recommends redis-server');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const lock = ['-o', 'DPkg::Lock::Timeout=300'];
  const install = () =>
    run('apt-get', [...lock, 'install', '-y', '--no-install-recommends', 'redis-server'], { env, maxBuffer: 64 * 1024 * 1024 });
  try {
    try {
      await install();
    } catch {
      await run('apt-get', [...lock, 'update'], { env, maxBuffer: 64 * 1024 * 1024 });
      await install();
    }
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new PeerUnavailableError(PEER, `apt-get install failed: ${(e.stderr ?? e.message).trim().split('\n').slice(-3).join(' | ')}`);
  }
  if (!installed()) throw new PeerUnavailableError(PEER, 'installed the package but redis-server is not on PATH');
}

const accepts = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });

export class RedisServer {
  private proc: ChildProcess | undefined;

  private constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<RedisServer> {
    await ensureRedisServer();
    const server = new RedisServer(await freePort());
    await server.restart();
    return server;
  }

  /** (Re)starts on the same port, empty (no persistence). */
  async restart(): Promise<void> {
    if (this.proc) throw new Error('redis-server is running');
    const proc = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'],
      { stdio: 'ignore' },
    );
    this.proc = proc;
    let exited = false;
    proc.once('exit', () => {
      exited = true;
      if (this.proc === proc) this.proc = undefined;
    });
    for (let i = 0; i < 200; i++) {
      if (exited) throw new PeerUnavailableError(PEER, `exited at start on port ${this.port}`);
      if (await accepts(this.port)) return;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new PeerUnavailableError(PEER, `did not accept connections on port ${this.port}`);
  }

  /** Kills it (connections drop at once). */
  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    this.proc = undefined;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGCONT'); // in case it is frozen
    proc.kill('SIGKILL');
    await exited;
  }

  /** Freezes it: connections stay open but nothing answers (a hung Redis). */
  freeze(): void {
    this.proc?.kill('SIGSTOP');
  }

  thaw(): void {
    this.proc?.kill('SIGCONT');
  }
}
