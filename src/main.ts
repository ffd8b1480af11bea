import { ConfigError, loadConfig } from './config/app-config.js';
import { createApp } from './bootstrap.js';

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
  const running = await createApp(config);
  process.stdout.write(
    `${JSON.stringify({ level: 30, time: Date.now(), msg: 'auth-service listening', url: running.url, issuer: config.issuer, discovery: `${config.issuer}/.well-known/openid-configuration` })}\n`,
  );
  const stop = () => {
    running.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`auth-service failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
