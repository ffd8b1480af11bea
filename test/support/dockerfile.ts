/**
 * The project's Dockerfile replayed without a Docker engine: the build context that
 * `.dockerignore` leaves, then each stage's instructions in order, every stage in a directory of
 * its own that stands for the container's root file system. It understands exactly the
 * instructions the Dockerfile uses and refuses anything else, so a new instruction cannot be
 * skipped silently.
 *
 * What it does not emulate: the base image (the steps run on this machine's Node, or the Node of
 * the test run), file ownership (`--chown`) and `USER` (checked by reading the file).
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';

export interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

export interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

/** Splits the Dockerfile into stages (line continuations joined, comments dropped). */
export function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i + 1;
    let line = lines[i]!;
    if (/^\s*(#|$)/.test(line)) continue;
    while (line.endsWith('\\') && i + 1 < lines.length) line = `${line.slice(0, -1)} ${lines[++i]!.trim()}`;
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`Dockerfile line ${start}: cannot read "${line}"`);
    const keyword = m[1]!.toUpperCase();
    const args = m[2]!.trim();
    if (keyword === 'FROM') {
      const f = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (!f) throw new Error(`Dockerfile line ${start}: FROM ${args}`);
      stages.push({ from: f[1]!, name: f[2], instructions: [] });
    } else {
      if (stages.length === 0) throw new Error(`Dockerfile line ${start}: ${keyword} before FROM`);
      stages.at(-1)!.instructions.push({ keyword, args, line: start });
    }
  }
  return stages;
}

/**
 * `.dockerignore` the way the Docker engine reads it: each pattern is matched against the whole
 * path relative to the context (`*` within one segment, `**` across segments), a path is left out
 * when it or one of its parent directories matches, and the last matching pattern wins (a
 * leading `!` takes a path back in).
 */
export function dockerignoreMatcher(text: string): (path: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const exception = l.startsWith('!');
      const pattern = posix.normalize((exception ? l.slice(1) : l).trim()).replace(/^\/+|\/+$/g, '');
      const source = pattern
        .split(/(\*\*\/?|\*|\?)/)
        .map((part) =>
          part === '**' || part === '**/'
            ? '.*'
            : part === '*'
              ? '[^/]*'
              : part === '?'
                ? '[^/]'
                : part.replace(/[.+^${}()|[\]\\]/g, '\\$&'),
        )
        .join('');
      return { exception, re: new RegExp(`^${source}$`) };
    });
  return (path: string) => {
    const parts = path.split('/');
    const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
    let excluded = false;
    for (const rule of rules) if (candidates.some((c) => rule.re.test(c))) excluded = !rule.exception;
    return excluded;
  };
}

/** The files of the build context: every file under `root` that `.dockerignore` keeps. */
export function buildContext(root: string): string[] {
  const ignorePath = join(root, '.dockerignore');
  const ignored = dockerignoreMatcher(existsSync(ignorePath) ? readFileSync(ignorePath, 'utf8') : '');
  const hasExceptions = existsSync(ignorePath) && /^\s*!/m.test(readFileSync(ignorePath, 'utf8'));
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      const path = dir ? `${dir}/${entry.name}` : entry.name;
      // An ignored directory is skipped whole unless an exception could take part of it back.
      if (entry.isDirectory()) {
        if (!ignored(path) || hasExceptions) walk(path);
      } else if (entry.isFile() && !ignored(path)) files.push(path);
    }
  };
  walk('');
  return files.sort();
}

export interface StageResult {
  /** The directory standing for the stage's `/`. */
  root: string;
  workdir: string;
  env: Record<string, string>;
  cmd?: string[];
  user?: string;
  exposed: string[];
}

export interface ReplayOptions {
  contextRoot: string;
  /** A directory per stage is made under it. */
  scratch: string;
  /** Added to every RUN's environment (after the stage's ENV). */
  runEnv: Record<string, string>;
  /** Each RUN's output, as it comes. */
  log: (chunk: string) => void;
}

const tokens = (args: string) => args.split(/\s+/).filter(Boolean);

function run(command: string, cwd: string, env: NodeJS.ProcessEnv, log: (chunk: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', command], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d: Buffer) => log(d.toString()));
    child.stderr.on('data', (d: Buffer) => log(d.toString()));
    child.once('error', reject);
    child.once('exit', (code, signal) => (code === 0 ? resolve() : reject(new Error(`RUN ${command} ended with ${code ?? signal}`))));
  });
}

/** Replays every stage in order; returns the last one (the image). */
export async function replayDockerfile(stages: Stage[], o: ReplayOptions): Promise<StageResult> {
  const context = buildContext(o.contextRoot);
  const done = new Map<string, StageResult>();
  let last: StageResult | undefined;
  for (const [index, stage] of stages.entries()) {
    const root = join(o.scratch, `stage-${index}${stage.name ? `-${stage.name}` : ''}`);
    mkdirSync(root, { recursive: true });
    const state: StageResult = { root, workdir: '/', env: {}, exposed: [] };
    const inStage = (containerPath: string) => join(root, posix.resolve(state.workdir, containerPath));
    for (const { keyword, args, line } of stage.instructions) {
      const where = `Dockerfile line ${line}`;
      switch (keyword) {
        case 'WORKDIR':
          state.workdir = posix.resolve(state.workdir, args);
          mkdirSync(inStage('.'), { recursive: true });
          break;
        case 'ENV':
          for (const m of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S*)/g)) state.env[m[1]!] = m[2]!.replace(/^"|"$/g, '');
          break;
        case 'COPY': {
          const words = tokens(args);
          const flags = words.filter((w) => w.startsWith('--'));
          const [dest, ...reversed] = words.filter((w) => !w.startsWith('--')).reverse();
          const sources = reversed.reverse();
          if (!dest || sources.length === 0) throw new Error(`${where}: COPY needs a source and a destination`);
          const unknown = flags.filter((f) => !/^--(from|chown)=/.test(f));
          if (unknown.length > 0) throw new Error(`${where}: COPY ${unknown.join(' ')} is not replayed`);
          const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
          const target = inStage(dest);
          const intoDir = dest.endsWith('/') || sources.length > 1;
          if (from !== undefined) {
            const source = done.get(from);
            if (!source) throw new Error(`${where}: no earlier stage ${from}`);
            for (const s of sources) {
              const path = join(source.root, posix.resolve(source.workdir, s));
              if (!existsSync(path)) throw new Error(`${where}: ${s} does not exist in stage ${from}`);
              const to = intoDir ? join(target, posix.basename(s)) : target;
              mkdirSync(dirname(to), { recursive: true });
              cpSync(path, to, { recursive: true, verbatimSymlinks: true });
            }
          } else {
            for (const s of sources) {
              const pattern = posix.normalize(s).replace(/^\.\/|\/$/g, '');
              const re = new RegExp(
                `^${pattern
                  .replace(/[.+^${}()|[\]\\]/g, '\\$&')
                  .replace(/\*/g, '[^/]*')
                  .replace(/\?/g, '[^/]')}$`,
              );
              const files = context.filter((f) => re.test(f));
              const isDir = !files.length && context.some((f) => f.startsWith(`${pattern}/`));
              if (isDir) {
                // A directory source copies its contents into the destination.
                for (const f of context.filter((c) => c.startsWith(`${pattern}/`))) {
                  const to = join(target, f.slice(pattern.length + 1));
                  mkdirSync(dirname(to), { recursive: true });
                  cpSync(join(o.contextRoot, f), to);
                }
              } else if (files.length > 0) {
                for (const f of files) {
                  const to = intoDir ? join(target, posix.basename(f)) : target;
                  mkdirSync(dirname(to), { recursive: true });
                  cpSync(join(o.contextRoot, f), to);
                }
              } else throw new Error(`${where}: COPY ${s}: not in the build context (left out by .dockerignore, or missing)`);
            }
          }
          break;
        }
        case 'RUN': {
          if (/(^|[\s=;&|])\/(?!dev\/null)/.test(args))
            throw new Error(`${where}: RUN with an absolute path is not replayed (write it relative to WORKDIR)`);
          await run(args, inStage('.'), { ...process.env, ...state.env, ...o.runEnv }, o.log);
          break;
        }
        case 'USER':
          state.user = args;
          break;
        case 'EXPOSE':
          state.exposed.push(...tokens(args));
          break;
        case 'CMD':
          state.cmd = JSON.parse(args) as string[];
          break;
        default:
          throw new Error(
            `${where}: ${keyword} is not replayed by test/support/dockerfile.ts; teach it, or keep the Dockerfile to what it knows`,
          );
      }
    }
    if (stage.name) done.set(stage.name, state);
    done.set(String(index), state);
    last = state;
  }
  if (!last) throw new Error('the Dockerfile has no stage');
  return last;
}

/** Whether any file under `dir` ends with `suffix` (e.g. a `.node` addon compiled on this machine). */
export function findFiles(dir: string, test: (path: string) => boolean, found: string[] = []): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) findFiles(path, test, found);
    else if (test(path)) found.push(path);
  }
  return found;
}

export const sizeOf = (path: string): number =>
  statSync(path).isDirectory() ? readdirSync(path).reduce((n, e) => n + sizeOf(join(path, e)), 0) : statSync(path).size;
