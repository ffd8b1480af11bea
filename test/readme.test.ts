import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configEnvNames } from '../src/config/app-config.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> };
const ci = readFileSync(new URL('../.ci/run', import.meta.url), 'utf8');

describe('README', () => {
  it('documents every configuration variable the service reads', () => {
    const missing = configEnvNames().filter((name) => !readme.includes(`\`${name}\``));
    expect(missing).toEqual([]);
  });

  it('gives the two commands, and CI runs exactly the second', () => {
    expect(readme).toContain('npm ci && npm start');
    expect(readme).toContain('npm test');
    // The only test command in CI is the README's, run on this machine's Node and on the newest LTS.
    expect(ci.match(/^\s*npm test\b.*$/gm)).toEqual(['  npm test 2>&1 | tee "$log"']);
    expect(ci).not.toMatch(/vitest/);
    expect(ci.match(/^(?:PATH=\S+ )?run_suite /gm)).toHaveLength(2);
    expect(pkg.scripts['start']).toBeDefined();
    expect(pkg.scripts['test']).toBeDefined();
  });

  it('mentions every npm script it tells people to run', () => {
    for (const [, name] of readme.matchAll(/npm run ([a-z:-]+)/g)) expect(pkg.scripts, name).toHaveProperty(name!);
  });

  it('points every npm script at a file that exists', () => {
    // `node dist/x/y.js` is built from `x/y.ts`; `… scripts/z.ts` and `src/…ts` run as they are.
    const missing: string[] = [];
    for (const [name, command] of Object.entries(pkg.scripts)) {
      for (const [, built] of command.matchAll(/node dist\/(\S+)\.js/g))
        if (!existsSync(new URL(`../${built}.ts`, import.meta.url))) missing.push(`${name}: ${built}.ts`);
      for (const [, source] of command.matchAll(/\s((?:src|scripts)\/\S+\.ts)\b/g))
        if (!existsSync(new URL(`../${source}`, import.meta.url))) missing.push(`${name}: ${source}`);
    }
    expect(missing).toEqual([]);
  });
});
