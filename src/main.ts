import { ConfigError, loadConfig } from './config/app-config.js';
import cluster from 'node:cluster';
import { inspect } from 'node:util';
import { createApp } from './bootstrap.js';
import { runPrimary, workerReady } from './cluster.js';
import { MetricsService } from './metrics/metrics.service.js';
import { firstStartBootstrap, type StartupNotice } from './admin/admin-bootstrap.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`auth-service: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  if (config.WORKERS > 1 && cluster.isPrimary) return runPrimary(config);
  const running = await createApp(config);
  let notice: StartupNotice;
  try {
    notice = await firstStartBootstrap(running.app);
  } catch (err) {
    await running.close().catch(() => undefined);
    throw err;
  }
  // Printed whatever LOG_LEVEL (scripts and tests wait for it), on the log stream so it keeps its place.
  running.print(
    `${JSON.stringify({ level: 30, time: Date.now(), msg: 'auth-service listening', pid: process.pid, url: running.url, issuer: config.issuer, discovery: `${config.issuer}/.well-known/openid-configuration` })}\n`,
  );
  // The end of the start-up output: the one-time credentials alone, or the next step. Under
  // WORKERS > 1 the primary prints it once every worker listens (see cluster.ts).
  if (!cluster.isWorker) {
    if ('credentials' in notice) running.print(`\n${notice.credentials}`);
    else running.logger.info(notice.next);
  }
  await running.flushLogs();
  workerReady(running.app.get(MetricsService).registry, notice);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    running.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  process.once('SIGHUP', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`auth-service failed to start: ${err instanceof Error ? err.message : inspect(err)}\n`);
  process.exit(1);
});
