/**
 * docker-compose.yml and the Dockerfile, checked without a Docker engine: the services and ports,
 * that the service container gets only variables the service really reads (and a configuration
 * it accepts), that PostgreSQL hands it a non-superuser role owning its database, and that Keycloak
 * imports the project's realm file with the client and secret the service is given.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { configEnvNames, loadConfig } from '../src/config/app-config.js';
import { KEYCLOAK_VERSION } from './peers/keycloak.js';

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
}

const compose = parse(read('docker-compose.yml')) as { services: Record<string, ComposeService> };
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
    expect(service.ports).toContain(`${config.PORT}:${config.PORT}`);
    expect(new URL(config.issuer).port).toBe(String(config.PORT));
    const frontend = new URL(config.KEYCLOAK_FRONTEND_URL!);
    expect(keycloak.ports).toContain(`${frontend.port}:8080`);
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
