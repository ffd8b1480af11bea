/**
 * Runs a local Keycloak for development with the project's keycloak-realm.json, until Ctrl-C.
 *
 *   node --import @swc-node/register/esm-register scripts/keycloak.ts [--port 8080] [--keep-data] [--quiet]
 *   node --import @swc-node/register/esm-register scripts/keycloak.ts --prepare-only   (fetch + unpack, e.g. in CI)
 *
 * The first run fetches the Keycloak distribution through Maven (into .cache/keycloak, git-ignored)
 * and needs a JDK 17+. By default every run starts from an empty database and imports the realm
 * file afresh; with --keep-data the data lives in .cache/keycloak/dev-home and survives restarts
 * (Keycloak then skips importing a realm that already exists: delete that directory to re-import).
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureKeycloakDistribution, startKeycloak, type KeycloakInstance } from '../test/peers/keycloak.js';
import { PeerUnavailableError } from '../test/peers/peer-unavailable.js';

const repoRoot = fileURLToPath(new URL('../', import.meta.url));

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.KEYCLOAK_PORT ?? '8080' },
    'keep-data': { type: 'boolean', default: false },
    quiet: { type: 'boolean', default: false },
    'prepare-only': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});

if (values.help) {
  console.log('usage: scripts/keycloak.ts [--port 8080] [--keep-data] [--quiet] | --prepare-only');
  process.exit(0);
}

if (values['prepare-only']) {
  try {
    console.log(`Keycloak distribution ready in ${await ensureKeycloakDistribution()}`);
    process.exit(0);
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  }
}

const port = Number(values.port);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error(`invalid --port ${values.port}`);
  process.exit(2);
}

let kc: KeycloakInstance | undefined;
let stopping = false;

async function shutdown(code: number): Promise<void> {
  if (stopping) {
    // Second Ctrl-C: leave now; the harness's exit hook kills the server's process group.
    process.exit(code);
  }
  stopping = true;
  console.log('\nstopping Keycloak...');
  try {
    await kc?.stop();
  } finally {
    process.exit(code);
  }
}

process.on('SIGINT', () => void shutdown(130));
process.on('SIGTERM', () => void shutdown(143));

console.log(`starting Keycloak on 127.0.0.1:${port} (the first run downloads and prepares it; that takes a minute or two)...`);
try {
  kc = await startKeycloak({
    port,
    realmFiles: [join(repoRoot, 'keycloak-realm.json')],
    adminUser: 'admin',
    adminPassword: 'admin',
    runDir: values['keep-data'] ? join(repoRoot, '.cache', 'keycloak', 'dev-home') : undefined,
    onLog: values.quiet ? undefined : (line) => console.log(`[keycloak] ${line}`),
  });
} catch (err) {
  if (err instanceof PeerUnavailableError) {
    console.error(err.message);
    process.exit(1);
  }
  throw err;
}

console.log(
  [
    '',
    `Keycloak is ready (${kc.startDurationsMs[0]} ms).`,
    `  admin console : ${kc.baseUrl}/admin/  (user "${kc.adminUser}", password "${kc.adminPassword}"; dev only)`,
    `  realm issuer  : ${kc.baseUrl}/realms/platform`,
    `  discovery     : ${kc.baseUrl}/realms/platform/.well-known/openid-configuration`,
    '  clients       : auth-service (code + PKCE S256), platform-m2m (client_credentials);',
    '                  their dev-only secrets are in keycloak-realm.json',
    `  data          : ${values['keep-data'] ? 'kept in .cache/keycloak/dev-home' : 'fresh, deleted on exit'}`,
    'Press Ctrl-C to stop.',
  ].join('\n'),
);
