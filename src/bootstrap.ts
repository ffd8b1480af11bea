import 'reflect-metadata';
import type { LoggerService } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { IncomingMessage } from 'node:http';
import cluster from 'node:cluster';
import { SwaggerModule } from '@nestjs/swagger';
import cookieParser from 'cookie-parser';
import { Logger as PinoNestLogger } from 'nestjs-pino';
import pino from 'pino';
import { AppConfig } from './config/app-config.js';
import { AppModule } from './app.module.js';
import { Database, assertUnprivilegedRole, createDataSource } from './database/database.js';
import { RowChangeFeed } from './database/row-cache.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './database/embedded-postgres.js';
import { loadKeyEncryptionKey } from './crypto/key-encryption-key.js';
import { SecretBox } from './crypto/secret-box.js';
import { DomainErrorFilter } from './common/error.filter.js';
import { openApiDocument } from './common/openapi.js';
import { MetricsService } from './metrics/metrics.service.js';
import { clusterMetrics } from './cluster.js';
import { requestContextMiddleware } from './common/request-context.js';
import { inputGuardMiddleware } from './common/input-guard.middleware.js';
import { installJwksFastPath } from './well-known/jwks-fast-path.js';
import { ACS_BODY_LIMIT_BYTES } from './identity/saml/tenant-saml.adapter.js';
import { applyKeepAliveTimeout } from './common/http-keep-alive.js';
import { SigningKeysService } from './tokens/signing-keys.service.js';
import { assertHttpPortFree } from './common/port-check.js';
import { LOGO_MAX_BYTES } from './tenants/logo-image.js';

/** The logo route's body limit: four times the logo's own, so the service (not the parser) refuses most oversized ones. */
const LOGO_BODY_LIMIT_BYTES = LOGO_MAX_BYTES * 4;

export interface RunningApp {
  app: NestExpressApplication;
  url: string;
  database: Database;
  /** The start-up logger (component "bootstrap"), on the same stream as every other log line. */
  logger: pino.Logger;
  /** Writes text as it is to the log stream, after every line logged so far. */
  print(text: string): void;
  /** Resolves when every line written so far has left the process (before another process writes). */
  flushLogs(): Promise<void>;
  close(): Promise<void>;
}

type LogStream = pino.DestinationStream & { flush?: (cb: (err?: Error) => void) => void };

/**
 * One stream for every log line of the process (start-up, Nest, requests), so they come out in
 * the order they were written: the start-up output ends with what to do next, and nothing logged
 * earlier can overtake it. Asynchronous, as pino's default; minLength 1 only makes flush(cb) wait
 * for the writes in flight. LOG_PRETTY keeps its own transport.
 */
const logStream = (config: AppConfig, given?: pino.DestinationStream): LogStream | undefined =>
  given ?? (config.LOG_PRETTY ? undefined : pino.destination({ dest: 1, minLength: 1, sync: false }));

/**
 * Builds the whole service: database (embedded when DATABASE_URL is unset), migrations, keys,
 * HTTP. Used by main.ts and by the end-to-end tests, so tests run exactly what production runs.
 */
export async function createApp(
  config: AppConfig,
  opts: { listen?: boolean; logDestination?: pino.DestinationStream } = {},
): Promise<RunningApp> {
  const stream = logStream(config, opts.logDestination);
  const boot = stream
    ? pino({ level: config.LOG_LEVEL, base: { component: 'bootstrap' } }, stream)
    : pino({ level: config.LOG_LEVEL, base: { component: 'bootstrap' } });
  // First: a taken port fails the start before anything is created (a WORKERS>1 primary checked it for its workers).
  if (opts.listen !== false && !cluster.isWorker) await assertHttpPortFree(config.PORT, config.HOST);
  const kek = loadKeyEncryptionKey(config);
  if (kek.source === 'generated')
    boot.warn(
      { dataDir: config.DATA_DIR },
      'KEY_ENCRYPTION_KEY is unset: using a generated development key under DATA_DIR. Never do this in production.',
    );

  let embedded: EmbeddedDatabase | undefined;
  let url = config.DATABASE_URL;
  if (!url) {
    embedded = await startEmbeddedPostgres(config.DATA_DIR, config.EMBEDDED_POSTGRES_PORT, (m) => boot.warn(m));
    boot.warn(
      { port: embedded.port, dataDir: config.DATA_DIR },
      'DATABASE_URL is unset: started an embedded PostgreSQL under DATA_DIR (development only).',
    );
    url = embedded.url;
  }
  const dataSource = createDataSource(url);
  try {
    await dataSource.initialize();
    await assertUnprivilegedRole(dataSource);
    const applied = await dataSource.runMigrations({ transaction: 'all' });
    if (applied.length) boot.info({ migrations: applied.map((m) => m.name) }, 'applied migrations');
  } catch (err) {
    if (dataSource.isInitialized) await dataSource.destroy();
    await embedded?.stop();
    throw err;
  }
  const rowChanges = new RowChangeFeed(url, (message, err) => boot.warn({ err }, message));
  const database = new Database(dataSource, rowChanges);

  // From here on a failure (the port taken, a module that cannot start) must not leave the
  // database connections or the embedded PostgreSQL behind: the next start would find them.
  let started: { app: NestExpressApplication; listenUrl: string } | undefined;
  try {
    await rowChanges.start();
    started = await startHttp(config, database, kek.key, { listen: opts.listen, logDestination: stream });
  } catch (err) {
    await rowChanges.stop().catch(() => undefined);
    if (dataSource.isInitialized) await dataSource.destroy().catch(() => undefined);
    await embedded?.stop().catch(() => undefined);
    throw err;
  }
  const { app, listenUrl } = started;
  return {
    app,
    url: listenUrl,
    database,
    logger: boot,
    print: (text) => void (stream ?? process.stdout).write(text),
    flushLogs: () =>
      new Promise<void>((resolve) => {
        if (typeof stream?.flush !== 'function') {
          resolve();
          return;
        }
        stream.flush(() => resolve());
      }),
    close: async () => {
      // Requests in flight get SHUTDOWN_DRAIN_SECONDS; then whatever is still open is cut.
      const server = app.getHttpServer();
      const cut = setTimeout(() => server.closeAllConnections(), config.SHUTDOWN_DRAIN_SECONDS * 1000);
      cut.unref();
      await app.close().finally(() => clearTimeout(cut));
      await rowChanges.stop();
      if (dataSource.isInitialized) await dataSource.destroy();
      await embedded?.stop();
    },
  };
}

/** Nest's own start-up lines (one per module, controller and route): debug, so `info` shows what an operator needs. */
const NEST_STARTUP_CONTEXTS = new Set(['NestFactory', 'InstanceLoader', 'RoutesResolver', 'RouterExplorer', 'NestApplication']);

function quietStartup(logger: PinoNestLogger): LoggerService {
  return {
    log: (message: unknown, ...rest: unknown[]) =>
      NEST_STARTUP_CONTEXTS.has(rest.at(-1) as string) ? logger.debug(message, ...rest) : logger.log(message, ...rest),
    error: (message: unknown, ...rest: unknown[]) => logger.error(message, ...rest),
    warn: (message: unknown, ...rest: unknown[]) => logger.warn(message, ...rest),
    debug: (message: unknown, ...rest: unknown[]) => logger.debug(message, ...rest),
    verbose: (message: unknown, ...rest: unknown[]) => logger.verbose(message, ...rest),
    fatal: (message: unknown, ...rest: unknown[]) => logger.fatal(message, ...rest),
  };
}

/** The Nest application on its database: middleware, OpenAPI, the JWKS fast path, and listening unless told not to. */
async function startHttp(
  config: AppConfig,
  database: Database,
  kek: Buffer,
  opts: { listen?: boolean; logDestination?: pino.DestinationStream },
): Promise<{ app: NestExpressApplication; listenUrl: string }> {
  const app = await NestFactory.create<NestExpressApplication>(
    AppModule.forRoot({ config, database, secretBox: new SecretBox(kek), logDestination: opts.logDestination }),
    {
      bufferLogs: true,
      bodyParser: false,
      // The input guard checks the bytes the parsers decoded (they replace invalid UTF-8 silently).
      rawBody: true,
    },
  );
  app.useLogger(quietStartup(app.get(PinoNestLogger)));
  // First middleware: sees every response, including those ended by guards and body parsers (429s, 401s).
  app.use(app.get(MetricsService).httpMiddleware);
  // Under WORKERS > 1 a scrape reports the whole process group (cluster.ts asks the primary).
  app.get(MetricsService).scrapeWith(clusterMetrics);
  app.set('trust proxy', config.TRUST_PROXY_HOPS);
  app.disable('x-powered-by');
  // SCIM group PATCHes carry thousands of members: /scim/* gets a larger JSON limit than the rest.
  const isJson = (req: IncomingMessage) => /^application\/(?:[\w.-]+\+)?json\s*(?:;|$)/i.test(req.headers['content-type'] ?? '');
  // SCIM batches and Firebase user exports are legitimately large: 8 MB there, 256 kB everywhere else.
  const isScim = (req: IncomingMessage) => /^\/scim\/|^\/admin\/v1\/tenants\/[^/]+\/firebase-import(\?|$)/i.test(req.url ?? '');
  const isLogoUpload = (req: IncomingMessage) =>
    req.method === 'PUT' && /^\/admin\/v1\/tenants\/[^/?]+\/branding\/logo\/?(?:\?|$)/i.test(req.url ?? '');
  // A logo upload is the image itself, as bytes, for any image/* type (the branding service compares
  // the type with the bytes, and refuses SVG, with a 422). The limit is above the logo's own (256 KiB),
  // so an oversized logo gets that 422 naming the field rather than a 413. Other types on that route
  // (JSON, forms) go through their parsers and the input guard as everywhere.
  const isImage = (req: IncomingMessage) => /^image\/[\w.+-]+\s*(?:;|$)/i.test(req.headers['content-type'] ?? '');
  app.useBodyParser('raw', { limit: LOGO_BODY_LIMIT_BYTES, type: (req: IncomingMessage) => isLogoUpload(req) && isImage(req) });
  app.useBodyParser('json', { limit: '256kb', type: (req: IncomingMessage) => isJson(req) && !isScim(req) });
  app.useBodyParser('json', { limit: '8mb', type: (req: IncomingMessage) => isJson(req) && isScim(req) });
  // A SAML ACS receives whole responses (Entra/ADFS with hundreds of group claims): its limit follows
  // the adapter's own cap on a SAMLResponse, so the adapter (not a 413) decides; 64 kB elsewhere.
  const isForm = (req: IncomingMessage) => /^application\/x-www-form-urlencoded\s*(?:;|$)/i.test(req.headers['content-type'] ?? '');
  const isSamlAcs = (req: IncomingMessage) => req.method === 'POST' && /^\/saml\/[^/?]+\/acs\/?(?:\?|$)/.test(req.url ?? '');
  app.useBodyParser('urlencoded', {
    limit: '64kb',
    extended: false,
    parameterLimit: 100,
    type: (req: IncomingMessage) => isForm(req) && !isSamlAcs(req),
  });
  app.useBodyParser('urlencoded', {
    limit: ACS_BODY_LIMIT_BYTES,
    extended: false,
    parameterLimit: 100,
    type: (req: IncomingMessage) => isForm(req) && isSamlAcs(req),
  });
  // U+0000, invalid UTF-8 and lone surrogates in the URL, Basic credentials or body: refused here, for every route.
  app.use(inputGuardMiddleware);
  app.use(requestContextMiddleware);
  app.use(cookieParser());
  app.useGlobalFilters(new DomainErrorFilter());
  // No enableShutdownHooks(): Nest's signal handlers re-raise the signal after closing the app, which
  // ended the process before main.ts could stop the embedded PostgreSQL. main.ts handles the signals
  // and calls close(), which runs the same Nest shutdown hooks.

  SwaggerModule.setup('docs', app, openApiDocument(app), { jsonDocumentUrl: 'docs/openapi.json' });

  await app.init();
  installJwksFastPath(app.getHttpServer(), app.get(SigningKeysService), config);
  applyKeepAliveTimeout(app.getHttpServer(), config.HTTP_KEEP_ALIVE_TIMEOUT_SECONDS); // every process that listens: a lone one or each WORKERS worker
  let listenUrl = config.issuer;
  if (opts.listen !== false) {
    try {
      await app.listen(config.PORT, config.HOST);
    } catch (err) {
      await app.close().catch(() => undefined);
      throw err;
    }
    const address = app.getHttpServer().address();
    if (address && typeof address === 'object') listenUrl = `http://${config.HOST}:${address.port}`;
  }
  return { app, listenUrl };
}
