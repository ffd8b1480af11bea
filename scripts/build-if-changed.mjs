/**
 * `npm start` (and the other scripts that run dist/): compiles with `tsc -p tsconfig.build.json`
 * only when an input of that build changed since the last build this script made, so a start with
 * no change goes straight to `node dist/…` (a full tsc takes a minute or more on a busy machine;
 * this check takes milliseconds). Type checking stays in `npm run check` and CI.
 *
 * Plain JavaScript on purpose: it must run before anything is compiled and without a TypeScript
 * loader. The inputs are read from the build config (its `include`, minus its `exclude`), plus the
 * tsconfig files and package-lock.json (a changed compiler or typings), plus every source tsc
 * compiled from outside that list because an input imports it; their content hashes are kept in
 * dist/.build-inputs.<config>.json. A plain `npm run build` does not write that stamp: the next start
 * compiles once more.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// `node scripts/build-if-changed.mjs [config]`: tsconfig.build.json (the service, what the image
// ships) unless another config is named (tsconfig.bench.json adds the benchmark and the peers it starts).
const BUILD_CONFIG = process.argv[2] ?? 'tsconfig.build.json';
const STAMP = join(root, 'dist', `.build-inputs.${BUILD_CONFIG.replace(/\.json$/, '')}.json`);
const ALWAYS = [BUILD_CONFIG, 'tsconfig.json', 'package-lock.json'];

/** tsconfig files may hold comments and trailing commas; an unreadable one means "compile". */
function readConfig(file) {
  const text = readFileSync(join(root, file), 'utf8')
    .replace(/("(?:[^"\\]|\\.)*")|\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, (m, str) => str ?? '')
    .replace(/,(\s*[}\]])/g, '$1');
  return JSON.parse(text);
}

/** `include`/`exclude` of the build config, following `extends` the way tsc does (the nearest one wins). */
function buildPatterns() {
  let include;
  let exclude;
  let file = BUILD_CONFIG;
  for (let depth = 0; file && depth < 5; depth++) {
    const config = readConfig(file);
    include ??= config.include;
    exclude ??= config.exclude;
    file =
      typeof config.extends === 'string' && config.extends.startsWith('.')
        ? relative(root, join(root, dirname(file), config.extends))
        : undefined;
  }
  return { include: include ?? ['**/*'], exclude: exclude ?? [] };
}

const globToRegExp = (glob) =>
  new RegExp(
    `^${glob
      .replace(/\/+$/, '')
      .split(/(\*\*\/|\*|\?)/)
      .map((part) =>
        part === '**/' ? '(?:.*/)?' : part === '*' ? '[^/]*' : part === '?' ? '[^/]' : part.replace(/[.+^${}()|[\]\\]/g, '\\$&'),
      )
      .join('')}(?:/.*)?$`,
  );

function inputFiles() {
  const { include, exclude } = buildPatterns();
  const excluded = exclude.map(globToRegExp);
  const files = new Set(ALWAYS.filter((f) => existsSync(join(root, f))));
  const walk = (dir) => {
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      if (entry.name.startsWith('.') || entry.name === 'node_modules') continue;
      const path = dir ? `${dir}/${entry.name}` : entry.name;
      if (path === 'dist' || excluded.some((re) => re.test(path))) continue;
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile()) files.add(path);
    }
  };
  for (const pattern of include) {
    // The fixed directory part of the pattern ("src/**/*.ts" → "src"); tsc reads the rest.
    const parts = pattern.replace(/^\.\//, '').split('/');
    const wild = parts.findIndex((p) => /[*?]/.test(p));
    const base = (wild === -1 ? parts : parts.slice(0, wild)).join('/');
    if (base && !existsSync(join(root, base))) continue;
    if (base && statSync(join(root, base)).isFile()) files.add(base);
    else walk(base);
  }
  return [...files].sort();
}

const hash = (file) =>
  existsSync(join(root, file))
    ? createHash('sha256')
        .update(readFileSync(join(root, file)))
        .digest('base64url')
    : null;
const hashAll = (files) => Object.fromEntries([...new Set(files)].sort().map((f) => [f, hash(f)]));

/** Sources tsc compiled from outside the include list (imported from it): dist/x/y.js ← x/y.ts. */
function emittedSources() {
  const found = [];
  const walk = (dir) => {
    for (const entry of readdirSync(join(root, 'dist', dir), { withFileTypes: true })) {
      const path = dir ? `${dir}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.js'))
        for (const ext of ['.ts', '.mts', '.tsx'])
          if (existsSync(join(root, path.replace(/\.js$/, ext)))) found.push(path.replace(/\.js$/, ext));
    }
  };
  if (existsSync(join(root, 'dist'))) walk('');
  return found;
}

function readStamp() {
  try {
    return JSON.parse(readFileSync(STAMP, 'utf8'));
  } catch {
    return undefined;
  }
}

function changes(before, now) {
  if (!before) return 'no build of these sources yet';
  const changed = Object.keys(now).filter((f) => now[f] !== before[f]);
  if (changed.length === 0) return undefined;
  return `${changed.slice(0, 3).join(', ')}${changed.length > 3 ? ` and ${changed.length - 3} more` : ''} changed since the last build`;
}

let now;
let why;
try {
  const before = readStamp();
  now = hashAll([...inputFiles(), ...Object.keys(before ?? {})]);
  why = changes(before, now);
} catch (err) {
  now = undefined;
  why = `the build inputs could not be read (${err instanceof Error ? err.message : String(err)})`;
}
if (why) {
  process.stderr.write(`auth-service: compiling (${why}): tsc -p ${BUILD_CONFIG}\n`);
  const tsc = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', BUILD_CONFIG], {
    cwd: root,
    stdio: 'inherit',
  });
  if (tsc.status !== 0) process.exit(tsc.status ?? 1);
  // The hashes taken before compiling: a file saved during the build is compiled next time.
  if (now) {
    const extra = emittedSources().filter((f) => !(f in now));
    mkdirSync(dirname(STAMP), { recursive: true });
    writeFileSync(STAMP, `${JSON.stringify({ ...now, ...hashAll(extra) }, null, 1)}\n`);
  }
}
