/**
 * The README's first command on a machine with no configuration: the real entry point with no
 * DATABASE_URL and no KEY_ENCRYPTION_KEY starts an embedded PostgreSQL and generates its keys,
 * serves discovery and the JWKS, stops cleanly on SIGTERM (its PostgreSQL with it), and comes
 * back with the same keys and data. `npm run migration:run` works on the same data directory.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { freePort } from './support/free-port.js';
import { alive } from './support/process.js';

const REGISTER = ['--import', '@swc-node/register/esm-register'];
let dataDir: string;
let env: NodeJS.ProcessEnv;
let base: string;
const started: ChildProcess[] = [];

const postmasterPid = () => {
  const file = join(dataDir, 'postgres', 'postmaster.pid');
  return existsSync(file) ? Number(readFileSync(file, 'utf8').split('\n')[0]) : undefined;
};

async function start(): Promise<{ child: ChildProcess; output: () => string }> {
  let output = '';
  const child = spawn(process.execPath, [...REGISTER, 'src/main.ts'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(child);
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  // Ready when it says it listens; a start that fails ends the process, which ends the wait at once.
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not listening after 150 s:\n${output}`)), 150_000);
    const check = () => {
      if (!/"msg":"auth-service listening"/.test(output)) return;
      clearTimeout(timer);
      resolve();
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the service exited with ${code}:\n${output}`));
    });
  });
  return { child, output: () => output };
}

async function stop(child: ChildProcess): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  return exited;
}

async function currentKid(): Promise<string> {
  const jwks = (await (await fetch(`${base}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string }> };
  expect(jwks.keys.length).toBeGreaterThan(0);
  return jwks.keys[0]!.kid;
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'auth-service-zero-config-'));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  // What a fresh shell has, plus ports and a data directory that cannot collide with other test files.
  env = { PATH: process.env['PATH'], HOME: process.env['HOME'], PORT: String(port), EMBEDDED_POSTGRES_PORT: String(await freePort()), DATA_DIR: dataDir };
});

afterAll(() => {
  for (const child of started) if (child.exitCode === null) child.kill('SIGKILL');
  const pid = postmasterPid();
  if (pid && alive(pid)) process.kill(pid, 'SIGQUIT');
});

describe('zero configuration (npm start on a fresh machine)', () => {
  let firstKid: string;

  it('starts with an embedded PostgreSQL and generated keys, and serves discovery and the JWKS', async () => {
    const { child, output } = await start();
    const res = await fetch(`${base}/.well-known/openid-configuration`);
    expect(res.status).toBe(200);
    const discovery = (await res.json()) as { issuer: string; jwks_uri: string; token_endpoint: string };
    // PUBLIC_URL is unset: the issuer is the development default on the port the service listens on.
    expect(discovery.issuer).toBe(`http://localhost:${new URL(base).port}`);
    expect(discovery.jwks_uri).toBe(`${discovery.issuer}/.well-known/jwks.json`);
    firstKid = await currentKid();
    // The unsafe defaults are announced, once each.
    expect(output()).toMatch(/DATABASE_URL is unset: starting an embedded PostgreSQL/);
    expect(output()).toMatch(/KEY_ENCRYPTION_KEY is unset: using a generated development key/);
    const pg = postmasterPid();
    expect(pg && alive(pg)).toBe(true);

    expect(await stop(child)).toBe(0);
    // The embedded PostgreSQL stops with the service, so the next start finds its port and data free.
    await vi.waitFor(() => expect(alive(pg!)).toBe(false), { timeout: 20_000, interval: 100 });
    expect(postmasterPid()).toBeUndefined();
  }, 200_000);

  it('npm run migration:run migrates the same data directory and stops its PostgreSQL', () => {
    const r = spawnSync(process.execPath, [...REGISTER, 'src/cli/migrate.ts'], { env, encoding: 'utf8', timeout: 120_000 });
    expect(r.stderr).toMatch(/migrating the embedded PostgreSQL/);
    expect(r.stdout).toBe('no pending migrations\n');
    expect(r.status).toBe(0);
    expect(postmasterPid()).toBeUndefined();
  }, 150_000);

  it('a start that fails (its port is taken) stops the embedded PostgreSQL it started', async () => {
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(Number(env['PORT']), '0.0.0.0', resolve));
    try {
      const child = spawn(process.execPath, [...REGISTER, 'src/main.ts'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      started.push(child);
      let output = '';
      child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
      expect(code).toBe(1);
      expect(output).toMatch(/auth-service failed to start: .*EADDRINUSE/);
      // The next start must find the data directory free.
      expect(postmasterPid()).toBeUndefined();
    } finally {
      await new Promise<void>((resolve) => squatter.close(() => resolve()));
    }
  }, 200_000);

  it('comes back after a restart with the same signing key (kept under DATA_DIR)', async () => {
    const { child } = await start();
    expect(await currentKid()).toBe(firstKid);
    expect(await stop(child)).toBe(0);
  }, 200_000);
});
