/**
 * The module layering (docs/architecture.md, ADR 0015) as `npm run lint:deps` checks it: the real
 * tree breaks no rule, and each rule fires on a copy of the tree with one violation of it added, so
 * a rule that stopped matching (a wrong path pattern, an import that no longer resolves) fails here.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DEPCRUISE = join(ROOT, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');

interface Violation {
  from: string;
  to: string;
  rule: { name: string };
}

/** Runs `npm run lint:deps`'s command in `cwd`: its exit code, and (from a JSON run) its violations. */
async function lintDeps(cwd: string): Promise<{ code: number; violations: Violation[] }> {
  const run = (extra: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
      execFile(
        process.execPath,
        [DEPCRUISE, 'src', 'migrations', '--config', '.dependency-cruiser.cjs', ...extra],
        { cwd, maxBuffer: 64 * 1024 * 1024 },
        (err, stdout, stderr) => done({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
      );
    });
  // The exit code comes from the default (err) reporter, the one CI runs; the JSON reporter exits 0.
  const [plain, json] = await Promise.all([run([]), run(['--output-type', 'json'])]);
  try {
    return { code: plain.code, violations: (JSON.parse(json.stdout) as { summary: { violations: Violation[] } }).summary.violations };
  } catch {
    throw new Error(`depcruise printed no JSON (exit ${json.code}): ${json.stderr}`);
  }
}

const rulesOf = (violations: Violation[], from: string) => violations.filter((v) => v.from === from).map((v) => `${v.rule.name} → ${v.to}`);

describe('the module layering', () => {
  it('holds on the real tree: no rule is broken and no exception is configured', async () => {
    const { code, violations } = await lintDeps(ROOT);
    expect(violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`)).toEqual([]);
    expect(code).toBe(0);
  });

  describe('on a copy of the tree with one violation of each rule', () => {
    let copy: string;
    let result: { code: number; violations: Violation[] };
    const add = (path: string, text: string) => {
      mkdirSync(dirname(join(copy, path)), { recursive: true });
      writeFileSync(join(copy, path), text);
    };

    beforeAll(async () => {
      copy = mkdtempSync(join(tmpdir(), 'architecture-test-'));
      for (const entry of ['src', 'migrations', 'tsconfig.json', 'package.json', '.dependency-cruiser.cjs']) {
        cpSync(join(ROOT, entry), join(copy, entry), { recursive: true });
      }
      symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'), 'dir');
      // Upward (layer 1 → composition, layer 1 → layer 2 by a type-only import): the two the doc fixed.
      add('src/metrics/probe-upward.ts', "import { clusterMetrics } from '../cluster.js';\nexport const probe = clusterMetrics;\n");
      add(
        'src/metrics/probe-type.ts',
        "import type { SigningKeysService } from '../tokens/signing-keys.service.js';\nexport type Probe = SigningKeysService;\n",
      );
      // identity (layer 3) → login (layer 4): upward, and a folder cycle (login imports identity).
      add(
        'src/identity/saml/probe-login.ts',
        "import { LoginService } from '../../login/login.service.js';\nexport const probe = LoginService;\n",
      );
      // Sideways in layer 4 the wrong way round: login may not import oauth (oauth imports login).
      add(
        'src/login/probe-oauth.ts',
        "import { OAuthController } from '../oauth/oauth.controller.js';\nexport const probe = OAuthController;\n",
      );
      // Domain data may use identity/port as types only.
      add(
        'src/users/probe-port.ts',
        "import { IDP_KINDS } from '../identity/port/identity-provider.port.js';\nexport const probe = IDP_KINDS;\n",
      );
      // A file cycle inside one folder.
      add('src/common/probe-a.ts', "import { b } from './probe-b.js';\nexport const a = (): unknown => b;\n");
      add('src/common/probe-b.ts', "import { a } from './probe-a.js';\nexport const b = (): unknown => a;\n");
      // src/ → tests; migrations → src/; an import that does not resolve.
      add('test/support/probe-fixture.ts', 'export const fixture = 1;\n');
      add('src/common/probe-test.ts', "import { fixture } from '../../test/support/probe-fixture.js';\nexport const probe = fixture;\n");
      add('migrations/probe-migration.ts', "import { ProblemError } from '../src/common/errors.js';\nexport const probe = ProblemError;\n");
      add('src/common/probe-missing.ts', "import { nothing } from './no-such-file.js';\nexport const probe = nothing;\n");
      result = await lintDeps(copy);
    });

    afterAll(() => {
      if (copy) rmSync(copy, { recursive: true, force: true });
    });

    it('fails the run', () => {
      expect(result.code).not.toBe(0);
    });

    it('refuses upward imports, type-only ones included', () => {
      expect(rulesOf(result.violations, 'src/metrics/probe-upward.ts')).toEqual(['layer:metrics → src/cluster.ts']);
      expect(rulesOf(result.violations, 'src/metrics/probe-type.ts')).toEqual(['layer:metrics → src/tokens/signing-keys.service.ts']);
      expect(rulesOf(result.violations, 'src/identity/saml/probe-login.ts')).toEqual(['layer:identity → src/login/login.service.ts']);
      expect(rulesOf(result.violations, 'src/login/probe-oauth.ts')).toEqual(['layer:login → src/oauth/oauth.controller.ts']);
    });

    it('refuses a runtime import of identity/port from domain data', () => {
      expect(rulesOf(result.violations, 'src/users/probe-port.ts')).toEqual([
        'port-types-only-from-domain → src/identity/port/identity-provider.port.ts',
      ]);
    });

    it('refuses cycles between files and between folders', () => {
      expect(rulesOf(result.violations, 'src/common/probe-a.ts')).toEqual(['no-circular → src/common/probe-b.ts']);
      const folderCycles = result.violations.filter((v) => v.rule.name === 'no-circular-folders').map((v) => v.from);
      // The probes close three: identity/saml → login (login imports identity), login → oauth (oauth
      // imports login) and metrics → tokens (tokens registers its gauges with metrics).
      expect(folderCycles).toEqual(expect.arrayContaining(['src/identity', 'src/login', 'src/oauth', 'src/metrics', 'src/tokens']));
      expect(folderCycles.filter((f) => !/^src\/(identity|login|oauth|metrics|tokens)(\/|$)/.test(f))).toEqual([]);
    });

    it('keeps src/ from the tests and migrations from src/', () => {
      expect(rulesOf(result.violations, 'src/common/probe-test.ts')).toEqual(['src-not-to-tests → test/support/probe-fixture.ts']);
      expect(rulesOf(result.violations, 'migrations/probe-migration.ts')).toEqual(['migrations-stand-alone → src/common/errors.ts']);
    });

    it('refuses an import that does not resolve (it would escape every other rule)', () => {
      expect(rulesOf(result.violations, 'src/common/probe-missing.ts')).toEqual(['not-to-unresolvable → ./no-such-file.js']);
    });

    it('reports nothing else', () => {
      const expected = new Set([
        'src/metrics/probe-upward.ts',
        'src/metrics/probe-type.ts',
        'src/identity/saml/probe-login.ts',
        'src/login/probe-oauth.ts',
        'src/users/probe-port.ts',
        'src/common/probe-a.ts',
        'src/common/probe-b.ts',
        'src/common/probe-test.ts',
        'migrations/probe-migration.ts',
        'src/common/probe-missing.ts',
      ]);
      const other = result.violations.filter((v) => v.rule.name !== 'no-circular-folders' && !expected.has(v.from));
      expect(other).toEqual([]);
    });
  });
});
