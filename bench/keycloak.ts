/**
 * The service's client_credentials row beside Keycloak's: the same autocannon workload against the
 * Keycloak the test suite runs (test/peers/keycloak.ts, distribution cached by `npm run peers:prepare`),
 * with keycloak-realm.json's service-account client `platform-m2m`.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KEYCLOAK_VERSION, startKeycloak, type KeycloakInstance } from '../test/peers/keycloak.js';
import { PeerUnavailableError } from '../test/peers/peer-unavailable.js';
import { basic, createStack, envNumber, load, progress, refreshRequests, repoRoot, type LoadResult } from './harness.js';
import { TenantsService } from '../src/tenants/tenants.service.js';
import { ClientsService } from '../src/clients/clients.service.js';
import { KeycloakProvisioningService } from '../src/identity/keycloak/keycloak-provisioning.service.js';
import { ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT } from '../src/oauth/token.service.js';

// Development values from keycloak-realm.json (documented there as public dev-only secrets).
const REALM = 'platform';
const CLIENT_ID = 'platform-m2m';
const CLIENT_SECRET = 'dev-only-platform-m2m-secret';
const SERVICE_CLIENT_SECRET = 'dev-only-auth-service-secret';
const WARMUP_SLICE_SECONDS = 5;
const MIN_WARMUP_SECONDS = 15;
// Added to a copy of the realm for the refresh row only: a confidential client allowed the password
// grant (to mint the chains) and a user with a complete profile.
const REFRESH_CLIENT_ID = 'bench-refresh';
const REFRESH_CLIENT_SECRET = 'bench-only-refresh-secret';
const REFRESH_USER = 'bench-user';
const REFRESH_PASSWORD = 'bench-only-password-1';

/** keycloak-realm.json plus the refresh row's client and user, in a temporary directory. */
function benchRealmFile(): { file: string; remove: () => void } {
  const realm = JSON.parse(readFileSync(join(repoRoot(), 'keycloak-realm.json'), 'utf8')) as {
    clients?: unknown[];
    users?: unknown[];
  };
  realm.clients = [
    ...(realm.clients ?? []),
    {
      clientId: REFRESH_CLIENT_ID,
      enabled: true,
      publicClient: false,
      secret: REFRESH_CLIENT_SECRET,
      standardFlowEnabled: false,
      directAccessGrantsEnabled: true,
      serviceAccountsEnabled: false,
    },
  ];
  realm.users = [
    ...(realm.users ?? []),
    {
      username: REFRESH_USER,
      enabled: true,
      email: 'bench-user@bench.test',
      emailVerified: true,
      firstName: 'Bench',
      lastName: 'User',
      credentials: [{ type: 'password', value: REFRESH_PASSWORD, temporary: false }],
    },
  ];
  const dir = mkdtempSync(join(tmpdir(), 'kc-bench-realm-'));
  const file = join(dir, 'keycloak-realm.json');
  writeFileSync(file, JSON.stringify(realm));
  return { file, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Keycloak's refresh rotation under the same load as the service's row: one chain per connection
 * (minted with the password grant), each response's refresh token goes back into the pool.
 */
async function measureKeycloakRefresh(tokenUrl: string, connections: number, duration: number): Promise<LoadResult> {
  const mint = async () => {
    const r = await fetch(tokenUrl, {
      method: 'POST',
      headers: { authorization: basic(REFRESH_CLIENT_ID, REFRESH_CLIENT_SECRET), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'password', username: REFRESH_USER, password: REFRESH_PASSWORD, scope: 'openid' }),
    });
    const body = (await r.json().catch(() => ({}))) as { refresh_token?: string; error?: string };
    if (!body.refresh_token) throw new Error(`Keycloak's password grant answered ${r.status}: ${JSON.stringify(body).slice(0, 300)}`);
    return body.refresh_token;
  };
  // The same rotation pool as the service's row, with this client's credentials.
  const rotate = (chains: string[]) => refreshRequests({ id: REFRESH_CLIENT_ID, secret: REFRESH_CLIENT_SECRET, redirect: '' }, chains);
  // One at a time: concurrent password grants for one user fail now and then ("Invalid user credentials").
  const chains = async () => {
    const out: string[] = [];
    for (let i = 0; i < connections; i++) out.push(await mint());
    return out;
  };
  progress('Keycloak: warming up refresh_token');
  await load({ url: tokenUrl, connections, duration: WARMUP_SLICE_SECONDS * 2, requests: rotate(await chains()) });
  progress('Keycloak: measuring refresh_token');
  return load({ url: tokenUrl, connections, duration, requests: rotate(await chains()) });
}

export type KeycloakBenchResult =
  | {
      skipped: false;
      version: string;
      startSeconds: number;
      warmupSeconds: number;
      warmupRates: number[];
      jvmOptions: string;
      clientCredentials: LoadResult;
      /** Keycloak's refresh_token grant with rotation (the realm revokes each refresh token on use, as the service does). */
      refreshToken: LoadResult | { error: string };
      /** The service's RFC 8693 grant: a Keycloak service-account token for a platform token (verify, audit row, sign). */
      tokenExchange: LoadResult | { error: string };
    }
  | { skipped: true; version: string; reason: string };

export async function runKeycloakBench(connections: number, duration: number): Promise<KeycloakBenchResult> {
  const skipped = (reason: string): KeycloakBenchResult => ({ skipped: true, version: KEYCLOAK_VERSION, reason });
  const dist = join(repoRoot(), '.cache', 'keycloak', `keycloak-${KEYCLOAK_VERSION}`, 'bin', 'kc.sh');
  if (!existsSync(dist)) return skipped(`Keycloak ${KEYCLOAK_VERSION} is not in .cache/keycloak (npm run peers:prepare fetches it)`);

  // The test harness runs Keycloak C1-only (faster start); a throughput comparison needs the full JIT.
  const previousOpts = process.env.KEYCLOAK_JAVA_OPTS_APPEND;
  process.env.KEYCLOAK_JAVA_OPTS_APPEND ??= '';
  const jvmOptions = process.env.KEYCLOAK_JAVA_OPTS_APPEND;
  let kc: KeycloakInstance | undefined;
  const realm = benchRealmFile();
  try {
    progress(`starting Keycloak ${KEYCLOAK_VERSION} (the first start on a machine also re-augments it)`);
    const started = Date.now();
    try {
      kc = await startKeycloak({ realmFiles: [realm.file] });
    } catch (err) {
      if (err instanceof PeerUnavailableError) return skipped(err.message);
      return skipped(`Keycloak did not start: ${(err as Error).message.split('\n')[0]}`);
    }
    const startSeconds = Math.round((Date.now() - started) / 100) / 10;
    const tokenPath = `/realms/${REALM}/protocol/openid-connect/token`;
    const probe = await fetch(`${kc.baseUrl}${tokenPath}`, {
      method: 'POST',
      headers: { authorization: basic(CLIENT_ID, CLIENT_SECRET), 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
    });
    const probeBody = (await probe.json().catch(() => ({}))) as { access_token?: string };
    if (probe.status !== 200 || !probeBody.access_token)
      return skipped(`Keycloak's token endpoint answered ${probe.status} to client_credentials`);

    const workload = {
      url: `${kc.baseUrl}${tokenPath}`,
      method: 'POST' as const,
      connections,
      headers: { authorization: basic(CLIENT_ID, CLIENT_SECRET), 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
    };
    // The JVM compiles the hot paths during the first seconds under load; those are not measured.
    // Warm up in slices until the rate stops climbing (at least MIN, at most BENCH_KEYCLOAK_WARMUP_SECONDS).
    const maxWarmup = envNumber('BENCH_KEYCLOAK_WARMUP_SECONDS', 30);
    progress(`Keycloak up in ${startSeconds} s; warming up (up to ${maxWarmup} s)`);
    const warmupRates: number[] = [];
    let warmupSeconds = 0;
    while (warmupSeconds < maxWarmup) {
      const slice = Math.min(WARMUP_SLICE_SECONDS, maxWarmup - warmupSeconds);
      warmupRates.push((await load({ ...workload, duration: slice })).rps);
      warmupSeconds += slice;
      const [before, last] = warmupRates.slice(-2);
      if (warmupSeconds >= MIN_WARMUP_SECONDS && before !== undefined && last! < before * 1.05) break;
    }
    progress(`Keycloak warm-up rates (req/s per ${WARMUP_SLICE_SECONDS} s): ${warmupRates.join(', ')}`);
    progress('Keycloak: measuring client_credentials');
    const clientCredentials = await load({ ...workload, duration });
    const refreshToken = await measureKeycloakRefresh(workload.url, connections, duration).catch((err: unknown) => ({
      error: (err as Error).message,
    }));
    const tokenExchange = await measureTokenExchange(kc, probeBody.access_token, connections, duration).catch((err: unknown) => ({
      error: (err as Error).message,
    }));
    return {
      skipped: false,
      version: KEYCLOAK_VERSION,
      startSeconds,
      warmupSeconds,
      warmupRates,
      jvmOptions: jvmOptions || '(Keycloak defaults)',
      clientCredentials,
      refreshToken,
      tokenExchange,
    };
  } finally {
    if (previousOpts === undefined) delete process.env.KEYCLOAK_JAVA_OPTS_APPEND;
    else process.env.KEYCLOAK_JAVA_OPTS_APPEND = previousOpts;
    // stop() ends Keycloak's whole process group and deletes its run directory.
    await kc?.stop().catch((err: unknown) => progress(`stopping Keycloak failed: ${(err as Error).message}`));
    realm.remove();
  }
}

/**
 * Token exchange needs an upstream token, so it runs while Keycloak is up (idle: its own figure is
 * taken). A tenant bound to Keycloak lists `platform-m2m` as a machine client; a gateway client
 * exchanges that client's Keycloak token for platform tokens. Each exchange verifies the Keycloak
 * token against the realm's cached JWKS, writes an audit row and signs.
 */
async function measureTokenExchange(
  kc: KeycloakInstance,
  keycloakToken: string,
  connections: number,
  duration: number,
): Promise<LoadResult> {
  progress('service: token exchange of Keycloak machine tokens');
  const stack = await createStack('token-exchange', {
    // The loopback Keycloak speaks http, which production mode refuses; nothing on this path differs otherwise.
    NODE_ENV: 'development',
    KEYCLOAK_URL: kc.baseUrl,
    KEYCLOAK_CLIENT_SECRET: SERVICE_CLIENT_SECRET,
    KEYCLOAK_ADMIN_USERNAME: kc.adminUser,
    KEYCLOAK_ADMIN_PASSWORD: kc.adminPassword,
  });
  try {
    const gateway = await stack.seed(async (app) => {
      const tenant = await app.get(TenantsService).create('exchange-co', 'Exchange Co');
      await app
        .get(KeycloakProvisioningService)
        .bindTenant(tenant, { mode: 'organization', claimMapping: {}, config: { machineClients: [CLIENT_ID] } });
      return app
        .get(ClientsService)
        .create({ id: 'bench-gateway', name: 'Bench gateway', kind: 'machine', grantTypes: [TOKEN_EXCHANGE_GRANT], scopes: ['api'] });
    });
    await stack.start();
    const body = new URLSearchParams({
      grant_type: TOKEN_EXCHANGE_GRANT,
      subject_token: keycloakToken,
      subject_token_type: ACCESS_TOKEN_TYPE,
      org: 'exchange-co',
      scope: 'api',
    }).toString();
    const request = {
      url: `${stack.base}/oauth2/token`,
      method: 'POST' as const,
      headers: { authorization: basic('bench-gateway', gateway.secret), 'content-type': 'application/x-www-form-urlencoded' },
      body,
    };
    const probe = await fetch(request.url, { method: 'POST', headers: request.headers, body });
    if (probe.status !== 200) throw new Error(`token exchange answered ${probe.status}: ${await probe.text()}`);
    await load({ ...request, connections, duration: 2 }); // JWKS fetched, statements prepared
    return await stack.measure(() => load({ ...request, connections, duration }));
  } finally {
    await stack.close();
  }
}
