/**
 * docker-compose.yml and the Dockerfile, checked without a Docker engine: the file against the
 * Compose Specification schema and docker-compose-linter, the services and ports, that the service
 * container gets only variables the service really reads (and a configuration it accepts), that
 * PostgreSQL hands it a non-superuser role owning its database and is healthy only once that role
 * can log in over TCP, that the service's own healthcheck probes its readiness, and that Keycloak
 * imports the project's realm file with the client and secret the service is given. The two
 * healthcheck commands are run for real: the service's against a running service, PostgreSQL's
 * against the suite's PostgreSQL.
 */
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { DCLinter } from 'dclint';
import pg from 'pg';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { configEnvNames, loadConfig } from '../src/config/app-config.js';
import { KEYCLOAK_VERSION } from './peers/keycloak.js';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { freePort } from './support/free-port.js';

const root = fileURLToPath(new URL('../', import.meta.url));
const read = (path: string) => readFileSync(`${root}${path}`, 'utf8');

interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[] | string;
  environment?: Record<string, string | number | boolean | null> | string[];
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }> | string[];
  healthcheck?: { test: string[] | string };
  restart?: string;
}

const composeSource = read('docker-compose.yml');
const compose = parse(composeSource) as { services: Record<string, ComposeService> };
const services = compose.services;

/** The environment as the container sees it: `${VAR:-default}` resolved with an empty shell environment. */
function environmentOf(service: ComposeService): Record<string, string> {
  const raw = service.environment ?? {};
  const entries: Array<[string, string]> = Array.isArray(raw)
    ? raw.map((line) => {
        const i = line.indexOf('=');
        return [line.slice(0, i), line.slice(i + 1)];
      })
    : Object.entries(raw).map(([k, v]) => [k, v === null ? '' : String(v)]);
  return Object.fromEntries(
    entries.map(([k, v]) => [
      k,
      v.replace(/\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}/g, (_, _name: string, fallback: string | undefined) => fallback ?? ''),
    ]),
  );
}

const realm = JSON.parse(read('keycloak-realm.json')) as {
  realm: string;
  clients: Array<{ clientId: string; secret?: string; redirectUris?: string[]; attributes?: Record<string, string> }>;
};

/** Keycloak's redirect URI match for the realm's patterns (a trailing `*` wildcard; loopback ports ignored). */
function keycloakAccepts(patterns: string[], uri: string): boolean {
  const u = new URL(uri);
  const loopbackNoPort = ['localhost', '127.0.0.1'].includes(u.hostname) ? `${u.protocol}//${u.hostname}${u.pathname}` : uri;
  return patterns.some((p) =>
    p.endsWith('*') ? loopbackNoPort.startsWith(p.slice(0, -1)) || uri.startsWith(p.slice(0, -1)) : p === uri || p === loopbackNoPort,
  );
}

describe('docker-compose.yml', () => {
  const service = services['auth-service']!;
  const env = environmentOf(service);
  const keycloak = services['keycloak']!;
  const postgres = services['postgres']!;

  it('runs PostgreSQL, Redis, Keycloak and the service, the service built from the Dockerfile', () => {
    expect(Object.keys(services).sort()).toEqual(['auth-service', 'keycloak', 'postgres', 'redis']);
    expect(services['redis']!.image).toMatch(/^redis:\d+/);
    expect(env['REDIS_URL']).toBe('redis://redis:6379');
    expect(service.build).toBe('.');
    expect(postgres.image).toMatch(/^postgres:\d+/);
    expect(keycloak.image).toBe(`keycloak/keycloak:${KEYCLOAK_VERSION}`);
    expect(service.depends_on).toMatchObject({ postgres: { condition: 'service_healthy' } });
  });

  it('gives the service only variables it reads, and a configuration it accepts', () => {
    const known = new Set(configEnvNames());
    const unknown = Object.keys(env).filter((k) => !known.has(k));
    expect(unknown).toEqual([]);
    const config = loadConfig(env);
    expect(config.HOST).toBe('0.0.0.0');
    expect(config.KEYCLOAK_URL).toBe('http://keycloak:8080');
  });

  it('publishes the ports the service and Keycloak are reached on from the browser', () => {
    const config = loadConfig(env);
    // On the host's loopback only: the browser-facing URLs are localhost ones.
    expect(service.ports).toContain(`127.0.0.1:${config.PORT}:${config.PORT}`);
    expect(new URL(config.issuer).port).toBe(String(config.PORT));
    expect(new URL(config.issuer).hostname).toBe('localhost');
    const frontend = new URL(config.KEYCLOAK_FRONTEND_URL!);
    expect(frontend.hostname).toBe('localhost');
    expect(keycloak.ports).toContain(`127.0.0.1:${frontend.port}:8080`);
    // Keycloak's issuer is the browser-facing URL; its back channel answers the service on the service name.
    const kcEnv = environmentOf(keycloak);
    expect(kcEnv['KC_HOSTNAME']).toBe(config.KEYCLOAK_FRONTEND_URL);
    expect(kcEnv['KC_HOSTNAME_BACKCHANNEL_DYNAMIC']).toBe('true');
    expect(new URL(config.KEYCLOAK_URL!).hostname).toBe('keycloak');
  });

  it('connects the service to PostgreSQL as the non-superuser role the init script creates, owning its database', () => {
    const db = new URL(loadConfig(env).DATABASE_URL!);
    expect(db.hostname).toBe('postgres');
    const pgEnv = environmentOf(postgres);
    expect(db.username).not.toBe(pgEnv['POSTGRES_USER']);
    expect(db.username).toBe(pgEnv['AUTH_SERVICE_DB_USER']);
    expect(decodeURIComponent(db.password)).toBe(pgEnv['AUTH_SERVICE_DB_PASSWORD']);
    expect(db.pathname).toBe(`/${pgEnv['AUTH_SERVICE_DB_NAME']}`);

    const mount = postgres.volumes!.find((v) => v.includes('/docker-entrypoint-initdb.d/'));
    expect(mount).toBeDefined();
    const script = read(mount!.split(':')[0]!.replace(/^\.\//, ''));
    expect(script).toMatch(/CREATE ROLE :"role" LOGIN NOSUPERUSER NOBYPASSRLS/);
    expect(script).toMatch(/CREATE DATABASE :"db" OWNER :"role"/);
    expect(postgres.healthcheck).toBeDefined();
  });

  it('imports the project realm file into Keycloak, with the client and secret the service is given', () => {
    expect(keycloak.command).toEqual(expect.arrayContaining(['start-dev', '--import-realm']));
    const mount = keycloak.volumes!.find((v) => v.startsWith('./keycloak-realm.json:'));
    expect(mount).toMatch(new RegExp(`^\\./keycloak-realm\\.json:/opt/keycloak/data/import/${realm.realm}-realm\\.json(:ro)?$`));
    const config = loadConfig(env);
    expect(config.KEYCLOAK_REALM).toBe(realm.realm);
    const client = realm.clients.find((c) => c.clientId === config.KEYCLOAK_CLIENT_ID);
    expect(client?.secret).toBe(config.KEYCLOAK_CLIENT_SECRET);
    // The service's callback and logout return must be registered redirect URIs of that client.
    expect(keycloakAccepts(client!.redirectUris!, `${config.issuer}/login/callback/keycloak`)).toBe(true);
    expect(keycloakAccepts(client!.attributes!['post.logout.redirect.uris']!.split('##'), `${config.issuer}/oauth2/logout/return`)).toBe(
      true,
    );
    expect(environmentOf(keycloak)['KC_BOOTSTRAP_ADMIN_USERNAME']).toBe(config.KEYCLOAK_ADMIN_USERNAME);
  });
});

// ---------------------------------------------------------------------------------------------
// The Compose Specification (v2) schema and docker-compose-linter. dclint ships the schema it
// validates with; the same schema is applied here with ajv, so a file Compose v2 would reject
// fails here with the offending path.
// ---------------------------------------------------------------------------------------------
const dclintDir = dirname(createRequire(import.meta.url).resolve('dclint/package.json'));
const composeSchema = JSON.parse(readFileSync(join(dclintDir, 'schemas/compose.schema.json'), 'utf8')) as Record<string, unknown>;
// The schema names its draft by the https URL; ajv knows draft-07 by its canonical http id.
const validateCompose = new Ajv({ allErrors: true, strict: false, allowUnionTypes: true }).compile({
  ...composeSchema,
  $schema: 'http://json-schema.org/draft-07/schema#',
});

const schemaErrors = (doc: unknown): string[] =>
  validateCompose(doc) ? [] : (validateCompose.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? e.keyword}`);

/** dclint with its default rules (what `npx dclint docker-compose.yml` applies), on a file. */
function lint(path: string): { errors: string[]; warnings: string[] } {
  const [result] = new DCLinter({ rules: {}, quiet: false, debug: false, exclude: [] }).lintFiles([path], false);
  const messages = result!.messages as Array<{ type: string; rule: string; message: string }>;
  const of = (type: string) => messages.filter((m) => m.type === type).map((m) => `${m.rule}: ${m.message}`);
  return { errors: of('error'), warnings: of('warning') };
}

describe('docker-compose.yml against the Compose v2 specification', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'auth-service-compose-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A copy of the compose file with one change, as a file dclint can read. */
  const variant = (change: (doc: Record<string, any>) => void): { doc: Record<string, any>; path: string } => {
    const doc = parse(composeSource) as Record<string, any>;
    change(doc);
    const path = join(dir, `compose-${randomBytes(4).toString('hex')}.yml`);
    writeFileSync(path, stringify(doc));
    return { doc, path };
  };

  it('is valid under the Compose Specification schema, and docker-compose-linter finds no error in it', () => {
    expect(composeSchema['title']).toBe('Compose Specification');
    expect(schemaErrors(compose)).toEqual([]);
    // The top-level `name` is Compose v2 only (v1 refuses it); the file says so in its header.
    expect(compose).toHaveProperty('name', 'auth-service');
    expect(composeSource.slice(0, composeSource.indexOf('\nname:'))).toMatch(/Compose v2/);
    expect(lint(fileURLToPath(new URL('../docker-compose.yml', import.meta.url))).errors).toEqual([]);
  });

  it.each([
    [
      'an unknown service key',
      (d: Record<string, any>) => (d['services']['auth-service']['restart_policy'] = 'always'),
      /\/services\/auth-service must NOT have additional properties/,
    ],
    [
      'a port list given as a number',
      (d: Record<string, any>) => (d['services']['auth-service']['ports'] = 3000),
      /\/services\/auth-service\/ports must be array/,
    ],
    [
      'a healthcheck with a misspelt key',
      (d: Record<string, any>) => (d['services']['postgres']['healthcheck']['tests'] = d['services']['postgres']['healthcheck']['test']),
      /\/services\/postgres\/healthcheck must NOT have additional properties/,
    ],
    [
      'a depends_on condition Compose does not know',
      (d: Record<string, any>) => (d['services']['auth-service']['depends_on']['postgres']['condition'] = 'service_ready'),
      /\/services\/auth-service\/depends_on\/postgres\/condition must be equal to one of the allowed values/,
    ],
  ])('rejects a copy of it with %s, in the schema check and in dclint', (_what, change, expected) => {
    const { doc, path } = variant(change);
    const errors = schemaErrors(doc);
    expect(
      errors.some((e) => expected.test(e)),
      errors.join('\n'),
    ).toBe(true);
    expect(lint(path).errors.filter((e) => e.startsWith('invalid-schema:'))).toHaveLength(1);
  });
});

// ---------------------------------------------------------------------------------------------
// Healthchecks and restart policies; the two healthcheck commands run for real.
// ---------------------------------------------------------------------------------------------
interface Run {
  code: number | null;
  output: string;
}
const run = (file: string, args: string[], env: Record<string, string>): Promise<Run> =>
  new Promise((resolve) => {
    execFile(file, args, { env, timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, output: `${stdout}${stderr}` }),
    );
  });

/** Compose's `$$` is a literal `$` for the container's shell. */
const unescape = (command: string) => command.replace(/\$\$/g, '$');

describe('docker-compose.yml healthchecks and restarts', () => {
  const service = services['auth-service']!;
  const postgres = services['postgres']!;

  it('restarts every service unless it was stopped', () => {
    for (const [name, s] of Object.entries(services)) expect({ name, restart: s.restart }).toEqual({ name, restart: 'unless-stopped' });
  });

  it('does not publish PostgreSQL on the host (the service reaches it on the compose network)', () => {
    expect(postgres.ports ?? []).toEqual([]);
    expect(new URL(loadConfig(environmentOf(service)).DATABASE_URL!).host).toBe('postgres:5432');
    expect(composeSource).toMatch(/#\s+- "127\.0\.0\.1:5432:5432"/); // how to publish it for a local psql
  });

  describe("the service's healthcheck", () => {
    const test = service.healthcheck?.test;
    let app: TestApp;
    beforeAll(async () => {
      app = await startTestApp();
    });
    afterAll(async () => {
      await app?.close();
    });

    /** The probe as the container runs it (exec form: no shell, no curl in node:*-slim), with the container's environment. */
    const probe = (env: Record<string, string>) => {
      expect(Array.isArray(test)).toBe(true);
      const [form, file, ...args] = test as string[];
      expect(form).toBe('CMD');
      expect(file).toBe('node');
      return run(process.execPath, args, { ...environmentOf(service), ...env });
    };

    it('passes against a ready service listening on the PORT it is given', async () => {
      expect((await fetch(`${app.url}/health/ready`)).status).toBe(200);
      const result = await probe({ PORT: String(app.config.PORT) });
      expect(result, result.output).toMatchObject({ code: 0 });
      // In the container, that PORT is the one the service listens on.
      expect(environmentOf(service)['PORT']).toBe(String(loadConfig(environmentOf(service)).PORT));
    });

    it('fails when the readiness answer is not 200, or nothing listens on PORT', async () => {
      const paths: string[] = [];
      const notReady = createServer((req, res) => {
        paths.push(req.url ?? '');
        res.writeHead(503, { 'content-type': 'application/json' }).end('{"status":"unavailable"}');
      });
      await new Promise<void>((resolve) => notReady.listen(0, '127.0.0.1', resolve));
      try {
        const answered503 = await probe({ PORT: String((notReady.address() as AddressInfo).port) });
        expect(answered503.code).not.toBe(0);
        expect(paths).toEqual(['/health/ready']);
      } finally {
        await new Promise<void>((resolve) => notReady.close(() => resolve()));
      }
      const refused = await probe({ PORT: String(await freePort()) });
      expect(refused.code).not.toBe(0);
    });
  });

  describe("PostgreSQL's healthcheck", () => {
    const test = postgres.healthcheck?.test;
    const pgEnv = environmentOf(postgres);
    const db = new URL(loadConfig(environmentOf(service)).DATABASE_URL!);
    const command = () => {
      expect(Array.isArray(test) && test[0] === 'CMD-SHELL').toBe(true);
      return unescape((test as string[])[1]!);
    };

    it('logs in over TCP as the role and to the database the service uses (not pg_isready on the socket)', () => {
      const c = command();
      expect(c).toMatch(/^PGPASSWORD="\$AUTH_SERVICE_DB_PASSWORD" psql /);
      expect(c).toMatch(/ -h 127\.0\.0\.1 /);
      expect(c).toMatch(/ -U "\$AUTH_SERVICE_DB_USER" /);
      expect(c).toMatch(/ -d "\$AUTH_SERVICE_DB_NAME" /);
      expect(c).not.toMatch(/pg_isready/);
      // Those variables are the ones the init script creates the role and database from, and the service connects with.
      expect(pgEnv['AUTH_SERVICE_DB_USER']).toBe(db.username);
      expect(`/${pgEnv['AUTH_SERVICE_DB_NAME']}`).toBe(db.pathname);
      expect(decodeURIComponent(db.password)).toBe(pgEnv['AUTH_SERVICE_DB_PASSWORD']);
    });

    // Needs the PostgreSQL client (psql), as the postgres image has it. Required under CI.
    const psql = spawnSync('psql', ['--version']).status === 0 || process.env['CI'] === 'true';
    it.runIf(psql)('passes once the role can log in to its database, fails while the role or the database is missing', async () => {
      const admin = new pg.Client({ connectionString: inject('pgAdminUrl') });
      await admin.connect();
      const name = `hc_${randomBytes(5).toString('hex')}`;
      const missing = `hc_missing_${randomBytes(5).toString('hex')}`;
      try {
        // The suite's server plays the container's: the service role (the suite's own auth_service,
        // with its password) owning a database of its own, reached on 127.0.0.1 at the suite's port.
        await admin.query(`CREATE DATABASE ${name} OWNER auth_service`);
        await admin.query(`REVOKE ALL ON DATABASE ${name} FROM PUBLIC`);
        const suite = new URL(inject('pgAdminUrl'));
        const check = (env: Record<string, string>) =>
          run('/bin/sh', ['-c', command()], {
            PATH: process.env['PATH'] ?? '/usr/bin:/bin',
            PGPORT: suite.port,
            PGCONNECT_TIMEOUT: '5',
            ...pgEnv,
            AUTH_SERVICE_DB_PASSWORD: 'auth_service',
            AUTH_SERVICE_DB_NAME: name,
            ...env,
          });
        const ready = await check({});
        expect(ready, ready.output).toMatchObject({ code: 0 });
        expect(pgEnv['AUTH_SERVICE_DB_USER']).toBe('auth_service');
        expect((await check({ AUTH_SERVICE_DB_USER: missing })).code).not.toBe(0); // the role is not created yet
        expect((await check({ AUTH_SERVICE_DB_NAME: missing })).code).not.toBe(0); // the database is not created yet
        expect((await check({ AUTH_SERVICE_DB_PASSWORD: 'wrong' })).code).not.toBe(0);
      } finally {
        await admin.query(`DROP DATABASE IF EXISTS ${name}`);
        await admin.end();
      }
    });
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');

  it('builds on the newest Node LTS with npm ci and npm run build, and runs the compiled entry point', () => {
    expect(dockerfile).toMatch(/^FROM node:26[\w.-]* AS build$/m);
    expect(dockerfile).toMatch(/^RUN npm ci\b/m);
    expect(dockerfile).toMatch(/^RUN npm run build\b/m);
    expect(dockerfile).toMatch(/^CMD \["node", "dist\/src\/main\.js"\]$/m);
    expect(existsSync(`${root}src/main.ts`)).toBe(true);
    expect(JSON.parse(read('tsconfig.build.json')).include).toContain('src');
  });

  it('runs as an unprivileged user and sets only variables the service reads', () => {
    expect(dockerfile).toMatch(/^USER node$/m);
    const known = new Set(configEnvNames());
    const set = [...dockerfile.matchAll(/^ENV (.+)$/gm)].flatMap((m) => [...m[1]!.matchAll(/([A-Z_]+)=/g)].map((x) => x[1]!));
    expect(set.length).toBeGreaterThan(0);
    expect(set.filter((k) => !known.has(k))).toEqual([]);
  });
});
