/**
 * The raw argon2id rate with the service's binding (`@node-rs/argon2`), measured in a child process whose libuv
 * thread pool runs exactly `parallel` computations at once (the pool size is fixed when a process
 * first uses it, so this process's own pool cannot be resized).
 */
import { fork } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Algorithm, hash as argon2Hash, verify as argon2Verify } from '@node-rs/argon2';

export interface RawArgon2Options {
  timeCost: number;
  memoryKib: number;
  parallelism: number;
  password: string;
  /** Computations in flight (and the child's UV_THREADPOOL_SIZE). */
  parallel: number;
}

export interface RawArgon2Rates {
  hashPerSecond: number;
  verifyPerSecond: number;
}

const ARG = '--raw-argon2';

/** Completed calls per second with `parallel` calls always in flight. */
async function rate(fn: () => Promise<unknown>, parallel: number, seconds: number): Promise<number> {
  const started = performance.now();
  const end = started + seconds * 1000;
  let n = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (performance.now() < end) {
        await fn();
        n++;
      }
    }),
  );
  return n / ((performance.now() - started) / 1000);
}

async function measure(o: RawArgon2Options): Promise<RawArgon2Rates> {
  const options = { algorithm: Algorithm.Argon2id, timeCost: o.timeCost, memoryCost: o.memoryKib, parallelism: o.parallelism };
  const hash = await argon2Hash(o.password, options);
  await rate(() => argon2Verify(hash, o.password), o.parallel, 1); // warm-up
  return {
    hashPerSecond: await rate(() => argon2Hash(o.password, options), o.parallel, 3),
    verifyPerSecond: await rate(() => argon2Verify(hash, o.password), o.parallel, 5),
  };
}

export function measureRawArgon2(o: RawArgon2Options): Promise<RawArgon2Rates> {
  const fromSource = import.meta.url.endsWith('.ts');
  const child = fork(fileURLToPath(import.meta.url), [ARG, JSON.stringify(o)], {
    env: { ...process.env, UV_THREADPOOL_SIZE: String(o.parallel) },
    execArgv: fromSource ? ['--disable-warning=DEP0205', '--import', '@swc-node/register/esm-register'] : [],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    child.once('message', (m) => resolve(m as RawArgon2Rates));
    child.once('exit', (code) => reject(new Error(`argon2 rate process exited with ${code} without a result`)));
  });
}

if (process.argv[2] === ARG && process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  measure(JSON.parse(process.argv[3]!) as RawArgon2Options).then(
    (r) => process.send!(r, () => process.exit(0)),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
