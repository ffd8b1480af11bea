/**
 * The README's first command on a machine with no configuration: the real entry point with no
 * DATABASE_URL and no KEY_ENCRYPTION_KEY starts an embedded PostgreSQL (on a free port when its
 * port is taken, remembered) and generates its keys, makes the operator client once and prints it
 * last, serves discovery and the JWKS, stops cleanly on SIGTERM (its PostgreSQL with it), and
 * comes back with the same keys and data. `npm run admin -- bootstrap` works while it runs, and
 * `npm run migration:run` after it on the same data directory.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFailed, vi } from 'vitest';
import { freePort } from './support/free-port.js';
import { alive } from './support/process.js';
import { TS_LOADER } from './support/ts-loader.js';

const REGISTER = TS_LOADER;
const RULE = '='.repeat(78);
let dataDir: string;
let env: NodeJS.ProcessEnv;
let base: string;
let squatter: Server;
let squatted: number;
const started: ChildProcess[] = [];

const postmasterPid = () => {
  const file = join(dataDir, 'postgres', 'postmaster.pid');
  return existsSync(file) ? Number(readFileSync(file, 'utf8').split('\n')[0]) : undefined;
};
const rememberedPort = () => Number(readFileSync(join(dataDir, 'embedded-postgres.port'), 'utf8'));

/** Runs the service until its start-up output is complete: it ends with the credentials block or the next-step line. */
async function start(): Promise<{ child: ChildProcess; output: () => string }> {
  let output = '';
  const child = spawn(process.execPath, [...REGISTER, 'src/main.ts'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(child);
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  // Ready when its output is complete; a start that fails ends the process, which ends the wait at once.
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready after 150 s:\n${output}`)), 150_000);
    const check = () => {
      const complete =
        /"msg":"next: [^\n]*\n/.test(output) ||
        (output.includes('ADMIN_CLIENT_SECRET=') && output.split(RULE).length === 3 && output.endsWith(`${RULE}\n`));
      if (!/"msg":"auth-service listening"/.test(output) || !complete) return;
      clearTimeout(timer);
      resolve();
    };
    child.stdout.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the service exited with ${code}:\n${output}`));
    });
  });
  return { child, output: () => output };
}

/** The admin CLI in a child process; asynchronous, so the test's own HTTP connections stay served meanwhile. */
const cli = (...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [...REGISTER, 'src/cli/admin.ts', ...args],
      { env, encoding: 'utf8', timeout: 120_000 },
      (_err, stdout, stderr) => resolve({ status: child.exitCode, stdout, stderr }),
    );
  });

/** An operator client's secret is good for a client_credentials token with the admin scope, and that token for the admin API. */
async function adminApiStatus(clientId: string, secret: string): Promise<number> {
  const token = await fetch(`${base}/oauth2/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`,
    },
    body: 'grant_type=client_credentials&scope=admin',
  });
  if (token.status !== 200) return token.status;
  const { access_token } = (await token.json()) as { access_token: string };
  return (await fetch(`${base}/admin/v1/tenants`, { headers: { authorization: `Bearer ${access_token}` } })).status;
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
  // What a fresh shell has, plus a port and a data directory that cannot collide with other test
  // files. EMBEDDED_POSTGRES_PORT is unset, as on a developer's machine; the port the data directory
  // remembers is taken (as 54329 is by a second checkout), so the service must pick another.
  squatter = createServer();
  await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
  squatted = (squatter.address() as { port: number }).port;
  writeFileSync(join(dataDir, 'embedded-postgres.port'), `${squatted}\n`);
  env = { PATH: process.env['PATH'], HOME: process.env['HOME'], PORT: String(port), DATA_DIR: dataDir };
});

afterAll(async () => {
  for (const child of started) if (child.exitCode === null) child.kill('SIGKILL');
  const pid = postmasterPid();
  if (pid && alive(pid)) process.kill(pid, 'SIGQUIT');
  await new Promise<void>((resolve) => squatter.close(() => resolve()));
});

/** The start-up output as lines, the credentials block (if any) counted as one. */
const startupLines = (output: string) =>
  output
    .split(RULE)[0]!
    .split('\n')
    .filter((l) => l.trim() !== '');

describe('zero configuration (npm start on a fresh machine)', () => {
  let firstKid: string;
  let secret: string;

  it('starts with an embedded PostgreSQL and generated keys, serves discovery and the JWKS, and ends its output with a one-time operator client', async () => {
    const { child, output } = await start();
    onTestFailed(() => void child.kill('SIGKILL'));
    // The start-up output as it was when the service was ready (requests add their own lines after it).
    const startup = output();
    const res = await fetch(`${base}/.well-known/openid-configuration`);
    expect(res.status).toBe(200);
    const discovery = (await res.json()) as { issuer: string; jwks_uri: string; token_endpoint: string };
    // PUBLIC_URL is unset: the issuer is the development default on the port the service listens on.
    expect(discovery.issuer).toBe(`http://localhost:${new URL(base).port}`);
    expect(discovery.jwks_uri).toBe(`${discovery.issuer}/.well-known/jwks.json`);
    firstKid = await currentKid();
    // The unsafe defaults are announced, once each.
    expect(output()).toMatch(/DATABASE_URL is unset: started an embedded PostgreSQL/);
    expect(output()).toMatch(/KEY_ENCRYPTION_KEY is unset: using a generated development key/);
    // The remembered port was taken: another one is used, said so, and remembered.
    const port = rememberedPort();
    expect(port).not.toBe(squatted);
    expect(output()).toContain(`port ${squatted} is taken; using port ${port}, remembered in`);
    const pg = postmasterPid();
    expect(pg && alive(pg)).toBe(true);

    // A short start-up output (no route list at info), the credentials last, alone, once, with ADMIN_URL.
    const lines = startupLines(startup);
    expect(lines.length).toBeLessThanOrEqual(10);
    for (const line of lines) expect(() => JSON.parse(line) as unknown, line).not.toThrow();
    expect(startup).not.toMatch(/Mapped \{|RoutesResolver|InstanceLoader/);
    const block = startup.slice(startup.indexOf(RULE));
    expect(startup.split('shown ONCE').length).toBe(2);
    expect(JSON.parse(lines.at(-1)!)).toMatchObject({ msg: 'auth-service listening' });
    secret = /^ {2}ADMIN_CLIENT_SECRET=(\S+)$/m.exec(block)![1]!;
    expect(block).toContain(`export ADMIN_URL=${discovery.issuer} ADMIN_CLIENT_ID=ops-admin ADMIN_CLIENT_SECRET=${secret}`);
    expect(block).toContain('npm run admin -- bootstrap --rotate');
    expect(startup.endsWith(`${RULE}\n`)).toBe(true);
    expect(await adminApiStatus('ops-admin', secret)).toBe(200);

    // `npm run admin -- bootstrap` while the service runs: it uses the service's embedded PostgreSQL.
    const again = await cli('bootstrap');
    expect(again.stderr).toContain(`using the embedded PostgreSQL the running service started (pid ${pg}, port ${port}`);
    expect(again.stderr).toContain(
      'client "ops-admin" exists already: bootstrap runs once. Lost its secret? npm run admin -- bootstrap --rotate',
    );
    expect(again.status).toBe(2);
    const second = await cli('bootstrap', '--id', 'second-ops');
    expect(second.status).toBe(0);
    const made = JSON.parse(second.stdout) as { clientId: string; clientSecret: string; adminUrl: string; note: string };
    expect(made).toMatchObject({
      clientId: 'second-ops',
      adminUrl: discovery.issuer,
      note: expect.stringContaining(`export ADMIN_URL=${discovery.issuer} ADMIN_CLIENT_ID=second-ops`),
    });
    expect(await adminApiStatus('second-ops', made.clientSecret)).toBe(200);
    // A lost secret: --rotate issues a new one, and the old one stops working on the running service.
    const rotated = await cli('bootstrap', '--rotate');
    expect(rotated.status).toBe(0);
    const fresh = (JSON.parse(rotated.stdout) as { clientSecret: string }).clientSecret;
    await vi.waitFor(async () => expect(await adminApiStatus('ops-admin', secret)).toBe(401), { timeout: 10_000, interval: 200 });
    expect(await adminApiStatus('ops-admin', fresh)).toBe(200);
    secret = fresh;
    // A second service on the same data directory (another PORT) says who runs its database instead of starting a second server.
    const twin = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const c = execFile(
        process.execPath,
        [...REGISTER, 'src/main.ts'],
        { env: { ...env, PORT: '0' }, encoding: 'utf8', timeout: 120_000 },
        (_e, _o, stderr) => resolve({ code: c.exitCode, stderr }),
      );
    });
    expect(twin.stderr).toContain(`the embedded PostgreSQL of ${join(dataDir, 'postgres')} already runs (pid ${pg}, port ${port})`);
    expect(twin.code).toBe(1);
    expect(postmasterPid()).toBe(pg);

    expect(await stop(child)).toBe(0);
    // The embedded PostgreSQL stops with the service, so the next start finds its port and data free.
    await vi.waitFor(() => expect(alive(pg!)).toBe(false), { timeout: 20_000, interval: 100 });
    expect(postmasterPid()).toBeUndefined();
  }, 300_000);

  it('npm run migration:run migrates the same data directory and stops its PostgreSQL', () => {
    const r = spawnSync(process.execPath, [...REGISTER, 'src/cli/migrate.ts'], { env, encoding: 'utf8', timeout: 120_000 });
    expect(r.stderr).toMatch(/migrating the embedded PostgreSQL/);
    expect(r.stdout).toBe('no pending migrations\n');
    expect(r.status).toBe(0);
    expect(postmasterPid()).toBeUndefined();
  }, 150_000);

  it('a start on a taken HTTP port fails first, naming the port: no data directory, no database, no migrations', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(Number(env['PORT']), '0.0.0.0', resolve));
    const freshDir = join(dataDir, 'never-created');
    try {
      const child = spawn(process.execPath, [...REGISTER, 'src/main.ts'], {
        env: { ...env, DATA_DIR: freshDir },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      started.push(child);
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
      expect(code).toBe(1);
      expect(output).toMatch(new RegExp(`auth-service failed to start: PORT ${env['PORT']} on 127\\.0\\.0\\.1 is taken \\(EADDRINUSE\\)`));
      expect(output).not.toMatch(/embedded PostgreSQL|applied migrations|KEY_ENCRYPTION_KEY/);
      expect(existsSync(freshDir)).toBe(false);
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()));
    }
  }, 200_000);

  it('an EMBEDDED_POSTGRES_PORT that is taken is an error naming it (an explicit port is never replaced)', () => {
    const r = spawnSync(process.execPath, [...REGISTER, 'src/main.ts'], {
      env: { ...env, EMBEDDED_POSTGRES_PORT: String(squatted) },
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`auth-service failed to start: EMBEDDED_POSTGRES_PORT=${squatted} is taken (EADDRINUSE)`);
    expect(postmasterPid()).toBeUndefined();
  }, 150_000);

  it('comes back after a restart with the same signing key, port and operator client, and prints no secret again', async () => {
    const port = rememberedPort();
    const { child, output: current } = await start();
    const startup = current();
    const output = () => startup;
    expect(await currentKid()).toBe(firstKid);
    expect(output()).toContain(`"port":${port},`);
    expect(output()).not.toContain('is taken');
    expect(output()).not.toContain('ADMIN_CLIENT_SECRET=' + secret);
    expect(output()).not.toContain(RULE);
    const lines = startupLines(output());
    expect(lines.length).toBeLessThanOrEqual(10);
    // After the development warnings, the last line says what to do next.
    const next = JSON.parse(lines.at(-1)!) as { msg: string };
    expect(next.msg).toContain(`next: export ADMIN_URL=http://localhost:${new URL(base).port} ADMIN_CLIENT_ID=ops-admin`);
    expect(next.msg).toContain('npm run admin -- bootstrap --rotate');
    expect(lines.findIndex((l) => l.includes('"level":40'))).toBeLessThan(lines.length - 1);
    expect(await adminApiStatus('ops-admin', secret)).toBe(200);
    expect(await stop(child)).toBe(0);
  }, 200_000);
});
