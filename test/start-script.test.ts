/**
 * `npm start` compiles only when a build input changed: the repository's own start script and
 * scripts/build-if-changed.mjs, run with npm in a small project laid out like this one (its
 * tsconfig files, a src/ entry point importing a file from outside the build's include list).
 * "Did tsc run" is read from the compiled file itself (tsc rewrites every output), not from time.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const repo = new URL('..', import.meta.url).pathname;
const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
let project: string;

const write = (path: string, text: string) => {
  mkdirSync(join(project, path, '..'), { recursive: true });
  writeFileSync(join(project, path), text);
};
const npmStart = async () => {
  const { stdout, stderr } = await run('npm', ['start', '--silent'], {
    cwd: project,
    timeout: 120_000,
    env: { PATH: process.env['PATH'], HOME: process.env['HOME'] },
  });
  return { stdout, stderr, compiled: statSync(join(project, 'dist/src/main.js')).mtimeMs };
};

beforeAll(() => {
  project = mkdtempSync(join(tmpdir(), 'auth-service-start-script-'));
  for (const f of ['tsconfig.json', 'tsconfig.build.json', 'scripts/build-if-changed.mjs']) {
    mkdirSync(join(project, f, '..'), { recursive: true });
    copyFileSync(join(repo, f), join(project, f));
  }
  symlinkSync(join(repo, 'node_modules'), join(project, 'node_modules'));
  write('package.json', JSON.stringify({ name: 'start-fixture', private: true, type: 'module', scripts: { start: pkg.scripts['start'] } }));
  // An input of the build (src/) importing a file outside its include list, as bench/ imports test/support/.
  write('src/main.ts', `import { greeting } from '../support/greeting.js';\nprocess.stdout.write(\`\${greeting}\\n\`);\n`);
  write('support/greeting.ts', `export const greeting: string = 'first build';\n`);
});
afterAll(() => {
  if (project) rmSync(project, { recursive: true, force: true });
});

describe('npm start', { timeout: 240_000 }, () => {
  it('compiles on the first start, then starts the built output without running tsc while nothing changed', async () => {
    expect(pkg.scripts['start']).toMatch(/^node scripts\/build-if-changed\.mjs && node dist\/src\/main\.js$/);
    const first = await npmStart();
    expect(first.stderr).toContain('compiling (no build of these sources yet): tsc -p tsconfig.build.json');
    expect(first.stdout).toBe('first build\n');

    const second = await npmStart();
    expect(second.stderr).not.toContain('compiling');
    expect(second.stdout).toBe('first build\n');
    expect(second.compiled).toBe(first.compiled);
  });

  it('compiles again when a source changes, also one outside the include list that an input imports', async () => {
    const before = statSync(join(project, 'dist/src/main.js')).mtimeMs;
    write('support/greeting.ts', `export const greeting: string = 'second build';\n`);
    const changed = await npmStart();
    expect(changed.stderr).toContain('compiling (support/greeting.ts changed since the last build)');
    expect(changed.stdout).toBe('second build\n');
    expect(changed.compiled).not.toBe(before);

    // The build config excludes specs: a new one compiles nothing.
    write('src/main.spec.ts', `export {};\n`);
    const spec = await npmStart();
    expect(spec.stderr).not.toContain('compiling');
    expect(spec.compiled).toBe(changed.compiled);
  });

  it('compiles again when the build config changes, and a failed build is not remembered as done', async () => {
    write(
      'tsconfig.build.json',
      readFileSync(join(project, 'tsconfig.build.json'), 'utf8').replace('"exclude"', '"compileOnSave": false, "exclude"'),
    );
    expect((await npmStart()).stderr).toContain('compiling (tsconfig.build.json changed since the last build)');

    write('src/main.ts', `const n: number = 'not a number';\nprocess.stdout.write(String(n));\n`);
    await expect(npmStart()).rejects.toMatchObject({ stdout: expect.stringContaining('TS2322') });
    await expect(npmStart()).rejects.toMatchObject({
      stderr: expect.stringContaining('compiling (src/main.ts changed since the last build)'),
    });
  });
});
