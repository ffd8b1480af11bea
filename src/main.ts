import { ConfigError, loadConfig } from './config/app-config.js';
import cluster from 'node:cluster';
import { inspect } from 'node:util';
import { createApp } from './bootstrap.js';
import { runPrimary, workerReady } from './cluster.js';
import { MetricsService } from './metrics/metrics.service.js';

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
  workerReady(running.app.get(MetricsService).registry);
  process.stdout.write(
    `${JSON.stringify({ level: 30, time: Date.now(), msg: 'auth-service listening', pid: process.pid, url: running.url, issuer: config.issuer, discovery: `${config.issuer}/.well-known/openid-configuration` })}\n`,
  );
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
