/**
 * `npm run migration:run`: applies pending migrations from `migrations/` and exits, with the
 * service's own database configuration (DATABASE_URL, or the embedded PostgreSQL under DATA_DIR
 * when it is unset). The service also runs them on start; this is for deployments that migrate
 * in a release step before the new version takes traffic.
 */
import { ConfigError, loadConfig } from '../config/app-config.js';
import { assertUnprivilegedRole, createDataSource } from '../database/database.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../database/embedded-postgres.js';

async function main(): Promise<number> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`migration:run: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  let embedded: EmbeddedDatabase | undefined;
  let url = config.DATABASE_URL;
  if (!url) {
    process.stderr.write(`migration:run: DATABASE_URL is unset, migrating the embedded PostgreSQL under ${config.DATA_DIR}\n`);
    embedded = await startEmbeddedPostgres(config.DATA_DIR, config.EMBEDDED_POSTGRES_PORT, (m) => process.stderr.write(`${m}\n`));
    url = embedded.url;
  }
  const dataSource = createDataSource(url, 1);
  try {
    await dataSource.initialize();
    await assertUnprivilegedRole(dataSource);
    const applied = await dataSource.runMigrations({ transaction: 'all' });
    process.stdout.write(
      applied.length ? `applied ${applied.length} migration(s): ${applied.map((m) => m.name).join(', ')}\n` : 'no pending migrations\n',
    );
    return 0;
  } finally {
    if (dataSource.isInitialized) await dataSource.destroy();
    await embedded?.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`migration:run failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
