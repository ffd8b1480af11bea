import cluster, { type Worker } from 'node:cluster';
import { randomUUID } from 'node:crypto';
import { AggregatorRegistry, type Registry } from 'prom-client';
import pino from 'pino';
import type { AppConfig } from './config/app-config.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './database/embedded-postgres.js';
import { assertHttpPortFree } from './common/port-check.js';
import type { StartupNotice } from './admin/admin-bootstrap.js';

/**
 * WORKERS > 1: the primary process forks that many HTTP workers sharing PORT (node:cluster) and
 * serves nothing itself. It starts the embedded PostgreSQL when there is one (workers connect to
 * it), starts the first worker alone so that migrations and the first signing key are made once,
 * restarts a worker that dies, and answers the workers' requests for cluster-wide metrics.
 */
const LISTENING = 'auth-service:listening';
const METRICS_REQUEST = 'auth-service:metrics-request';
const METRICS_RESPONSE = 'auth-service:metrics-response';

interface MetricsRequest {
  type: typeof METRICS_REQUEST;
  id: string;
}
interface MetricsResponse {
  type: typeof METRICS_RESPONSE;
  id: string;
  body?: string;
  error?: string;
}

export async function runPrimary(config: AppConfig): Promise<void> {
  // minLength 1: flush(cb) waits for the writes in flight (the credentials block must come last).
  const stream = pino.destination({ dest: 1, minLength: 1, sync: false });
  const log = pino({ level: config.LOG_LEVEL, base: { component: 'cluster' } }, stream);
  let embedded: EmbeddedDatabase | undefined;
  const env: Record<string, string> = {};
  // The workers share PORT: checked here, before the embedded PostgreSQL starts and the first worker migrates.
  await assertHttpPortFree(config.PORT, config.HOST);
  if (!config.DATABASE_URL) {
    embedded = await startEmbeddedPostgres(config.DATA_DIR, config.EMBEDDED_POSTGRES_PORT, (m) => log.warn(m));
    log.warn(
      { port: embedded.port, dataDir: config.DATA_DIR },
      'DATABASE_URL is unset: started an embedded PostgreSQL under DATA_DIR (development only).',
    );
    env['DATABASE_URL'] = embedded.url;
  }
  const aggregator = new AggregatorRegistry();
  let stopping = false;

  const fork = (): Worker => {
    const worker = cluster.fork(env);
    worker.on('message', (message: MetricsRequest) => {
      if (message?.type !== METRICS_REQUEST) return;
      aggregator.clusterMetrics().then(
        (body) => worker.send({ type: METRICS_RESPONSE, id: message.id, body } satisfies MetricsResponse),
        (err: unknown) => worker.send({ type: METRICS_RESPONSE, id: message.id, error: String(err) } satisfies MetricsResponse),
      );
    });
    return worker;
  };
  let notice: StartupNotice | undefined;
  const listening = (worker: Worker) =>
    new Promise<void>((resolve, reject) => {
      worker.on('message', (m: { type?: string; notice?: StartupNotice }) => {
        if (m?.type !== LISTENING) return;
        notice ??= m.notice;
        resolve();
      });
      worker.once('exit', (code) => reject(new Error(`worker exited with code ${code} before it was ready`)));
    });

  try {
    await listening(fork());
  } catch (err) {
    await embedded?.stop();
    throw err;
  }
  await Promise.all(Array.from({ length: config.WORKERS - 1 }, () => listening(fork())));
  log.info({ workers: config.WORKERS }, 'all workers listening');
  // The first worker made the operator client if this was the first start: its notice ends the output.
  if (notice && 'credentials' in notice) {
    await new Promise<void>((resolve) => stream.flush(() => resolve()));
    process.stdout.write(`\n${notice.credentials}`);
  } else if (notice) log.info(notice.next);

  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    log.error({ pid: worker.process.pid, code, signal }, 'a worker died; starting another');
    setTimeout(() => fork(), 1_000);
  });

  const stop = () => {
    if (stopping) return;
    stopping = true;
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w);
    let left = workers.length;
    const done = async () => {
      await embedded?.stop();
      process.exit(0);
    };
    if (left === 0) void done();
    for (const w of workers) {
      w.once('exit', () => {
        left -= 1;
        if (left === 0) void done();
      });
      w.process.kill('SIGTERM');
    }
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  process.once('SIGHUP', stop);
}

/** In a worker: tells the primary this worker serves, and lets prom-client's aggregator read its registry. */
export function workerReady(registry: Registry, notice?: StartupNotice): void {
  if (!cluster.isWorker) return;
  new AggregatorRegistry(); // installs prom-client's worker-side listener for the primary's requests
  AggregatorRegistry.setRegistries([registry]);
  process.send?.({ type: LISTENING, notice });
}

const pending = new Map<string, { resolve: (body: string) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();
if (cluster.isWorker) {
  process.on('message', (m: MetricsResponse) => {
    if (m?.type !== METRICS_RESPONSE) return;
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    clearTimeout(p.timer);
    if (m.body !== undefined) p.resolve(m.body);
    else p.reject(new Error(m.error ?? 'no metrics'));
  });
}

/** Metrics of every worker, summed by the primary; a lone process answers with its own. */
export function clusterMetrics(own: Registry): Promise<string> {
  if (!cluster.isWorker) return own.metrics();
  return new Promise<string>((resolve, reject) => {
    const id = randomUUID();
    const timer = setTimeout(() => {
      pending.delete(id);
      reject(new Error('the primary did not answer with cluster metrics in time'));
    }, 5_000);
    pending.set(id, { resolve, reject, timer });
    process.send?.({ type: METRICS_REQUEST, id } satisfies MetricsRequest);
  });
}
