/**
 * A real redis-server (Debian's `redis-server` package) on a free loopback port, for the rate-limit
 * tests. ensureRedisServer() installs the package when missing (root only); startRedisServer()
 * runs one without persistence, and can stop, freeze (SIGSTOP) and restart it on the same port.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { freePort, portAccepts } from '../support/free-port.js';
import { aptInstall } from './apt.js';
import { PeerUnavailableError } from './peer-unavailable.js';

const PEER = 'redis-server';

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
  await aptInstall(PEER, ['redis-server'], { missing: 'not on PATH' });
  if (!installed()) throw new PeerUnavailableError(PEER, 'installed the package but redis-server is not on PATH');
}

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
      if (await portAccepts(this.port)) return;
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
