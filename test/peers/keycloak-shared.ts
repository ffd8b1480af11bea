/**
 * The run's shared Keycloak, as a test file sees it (the server side, and why it is shared, is in
 * test/support/keycloak-global-setup.ts).
 *
 * - `acquireKeycloak(file)` (in `beforeAll`) waits for the run's one Keycloak (starting it when no
 *   file has yet) and holds a lease on it until `release()` (in `afterAll`). It throws a
 *   `PeerUnavailableError` when Keycloak cannot be provisioned on this machine: the file skips
 *   outside CI and fails under CI=true, as with a Keycloak of its own.
 * - The instance is shared with files running in parallel: a file works in realms of its own, made
 *   with `importRealm()` under a name from `uniqueRealmName()`, and deleted again on `release()`
 *   (with the realms it registered with `deleteOnRelease()`). The `master` realm and the
 *   `platform` realm imported at start-up from keycloak-realm.json are shared: read them only.
 * - Never stop the shared server to see Keycloak "down": put a `startTcpProxy()` between the
 *   service under test and Keycloak and `down()` it (refused connections, like a stopped server).
 *   Only `restartExclusive()` stops and starts the real server, once every other file has let go.
 */
import KcAdminClient from '@keycloak/keycloak-admin-client';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { inject } from 'vitest';
import { PeerUnavailableError } from './peer-unavailable.js';
import type { ControlReply } from '../support/keycloak-global-setup.js';

type RealmRepresentation = NonNullable<Parameters<KcAdminClient['realms']['create']>[0]>;

/** The realm imported from keycloak-realm.json when the shared instance starts (read only). */
export const STARTUP_REALM = 'platform';

export interface SharedKeycloak {
  /** `http://127.0.0.1:<port>`, no trailing slash. A realm's issuer is `${baseUrl}/realms/<realm>` (when reached at this URL). */
  readonly baseUrl: string;
  readonly port: number;
  readonly adminUser: string;
  readonly adminPassword: string;
  /** How long the shared instance's start took, in ms (paid once per run). */
  readonly startDurationMs: number;
  /** An admin client logged in to `master`, set to `realm` (default `master`); `baseUrl` overrides the URL (e.g. a proxy). */
  adminClient(realm?: string, baseUrl?: string): Promise<KcAdminClient>;
  /** Creates a realm from its representation (a full realm file's content) through the admin API; deleted on release. */
  importRealm(realm: RealmRepresentation): Promise<string>;
  /** `importRealm` of a realm file's content under another realm name. */
  importRealmFile(file: string, realmName: string): Promise<string>;
  /** Deletes this realm on release (one made by the service under test, say). */
  deleteOnRelease(realm: string): void;
  /** Server output up to the moment the shared instance was first ready. */
  startupLog(): Promise<string[]>;
  /**
   * Stops the shared server and starts it again (same port, same data) once no other file holds a
   * lease; other files wait for it meanwhile. For tests of the restart itself only.
   */
  restartExclusive(): Promise<{ refusedWhileStopped: boolean; startDurationsMs: number[] }>;
  /** Deletes the file's realms and gives the lease back. */
  release(): Promise<void>;
}

/** `<base>-<random>`: realm names that cannot collide with another file's (or a rerun's). */
export const uniqueRealmName = (base: string): string => `${base}-${randomBytes(3).toString('hex')}`;

function controlEndpoint(): { url: string; token: string } {
  const control = inject('keycloakControl');
  if (!control?.url) {
    throw new Error('no shared Keycloak: vitest.config.ts must list test/support/keycloak-global-setup.ts in test.globalSetup');
  }
  return control;
}

/** One control request; long polls (`pending`) are repeated until there is an answer. */
async function control(method: 'GET' | 'POST', path: string, body?: Record<string, unknown>): Promise<ControlReply | undefined> {
  const { url, token } = controlEndpoint();
  for (;;) {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.status === 204) return undefined;
    const reply = (await res.json()) as ControlReply;
    if (res.status !== 200) throw new Error(`shared Keycloak control ${path} answered ${res.status}: ${JSON.stringify(reply)}`);
    if ('pending' in reply) continue;
    if ('unavailable' in reply) throw new PeerUnavailableError('keycloak', reply.unavailable);
    if ('error' in reply) throw new Error(`shared Keycloak: ${reply.error}`);
    return reply;
  }
}

/** The run's shared Keycloak, leased to the calling file until `release()`. */
export async function acquireKeycloak(file: string): Promise<SharedKeycloak> {
  const reply = await control('POST', '/acquire', { pid: process.pid, file });
  if (!reply || !('lease' in reply)) throw new Error(`shared Keycloak: unexpected acquire reply ${JSON.stringify(reply)}`);
  const { lease, baseUrl, port, adminUser, adminPassword, startDurationMs } = reply;
  const ownRealms = new Set<string>();
  let released = false;

  const adminClient = async (realm = 'master', url = baseUrl): Promise<KcAdminClient> => {
    const client = new KcAdminClient({ baseUrl: url, realmName: 'master' });
    await client.auth({ grantType: 'password', clientId: 'admin-cli', username: adminUser, password: adminPassword });
    client.setConfig({ realmName: realm });
    return client;
  };

  const importRealm = async (realm: RealmRepresentation): Promise<string> => {
    const name = realm.realm;
    if (!name || name === 'master' || name === STARTUP_REALM)
      throw new Error(`importRealm: give the realm a name of its own (got ${name ?? 'none'})`);
    ownRealms.add(name);
    await (await adminClient()).realms.create(realm);
    return name;
  };

  return {
    baseUrl,
    port,
    adminUser,
    adminPassword,
    startDurationMs,
    adminClient,
    importRealm,
    async importRealmFile(file, realmName) {
      const doc = JSON.parse(await readFile(file, 'utf8')) as RealmRepresentation;
      return importRealm({ ...doc, realm: realmName });
    },
    deleteOnRelease(realm) {
      if (realm === 'master' || realm === STARTUP_REALM) throw new Error(`deleteOnRelease: ${realm} is shared`);
      ownRealms.add(realm);
    },
    async startupLog() {
      const reply = await control('GET', '/startup-log');
      if (!reply || !('lines' in reply)) throw new Error(`shared Keycloak: unexpected startup-log reply ${JSON.stringify(reply)}`);
      return reply.lines;
    },
    async restartExclusive() {
      const reply = await control('POST', '/restart', { lease, requestId: randomBytes(8).toString('hex') });
      if (!reply || !('restarted' in reply)) throw new Error(`shared Keycloak: unexpected restart reply ${JSON.stringify(reply)}`);
      return { refusedWhileStopped: reply.refusedWhileStopped, startDurationsMs: reply.startDurationsMs };
    },
    async release() {
      if (released) return;
      released = true;
      try {
        if (ownRealms.size > 0 && process.env.KEYCLOAK_KEEP_DATA !== '1') {
          const admin = await adminClient();
          for (const realm of ownRealms) await admin.realms.del({ realm }).catch(() => undefined);
        }
      } finally {
        await control('POST', '/release', { lease });
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// A TCP proxy in front of Keycloak, to take Keycloak "down" for one service only.

export interface TcpProxy {
  /** `http://127.0.0.1:<port>`: use it for everything this file does with Keycloak, so issuers match. */
  readonly url: string;
  readonly port: number;
  /** Closes the listener and every open connection: new connections are refused until `up()`. */
  down(): Promise<void>;
  /** Listens again on the same port. */
  up(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Forwards 127.0.0.1:<own port> to 127.0.0.1:`targetPort` byte for byte (the Host header, and so
 * Keycloak's issuer, is the proxy's). Keycloak derives its URLs from the request in dev mode, so a
 * service configured with the proxy's URL sees a complete Keycloak at that URL.
 */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;

  const listen = async (): Promise<void> => {
    for (let attempt = 0; ; attempt += 1) {
      const s = createServer((client) => {
        const upstream = connect(targetPort, '127.0.0.1');
        for (const socket of [client, upstream]) {
          sockets.add(socket);
          socket.once('close', () => sockets.delete(socket));
        }
        client.on('error', () => upstream.destroy());
        upstream.on('error', () => client.destroy());
        client.pipe(upstream).pipe(client);
      });
      try {
        await new Promise<void>((resolve, reject) => {
          s.once('error', reject);
          s.listen(port, '127.0.0.1', () => resolve());
        });
        server = s;
        port = (s.address() as { port: number }).port;
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 50) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };

  const down = async (): Promise<void> => {
    const s = server;
    server = undefined;
    if (!s) return;
    const closed = new Promise<void>((resolve) => s.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    await closed;
  };

  await listen();
  return {
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    down,
    async up() {
      if (!server) await listen();
    },
    close: down,
  };
}
