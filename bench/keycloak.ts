/**
 * The service's client_credentials row beside Keycloak's: the same autocannon workload against the
 * Keycloak the test suite runs (test/peers/keycloak.ts, distribution cached by `npm run peers:prepare`),
 * with keycloak-realm.json's service-account client `platform-m2m`.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { KEYCLOAK_VERSION, startKeycloak, type KeycloakInstance } from '../test/peers/keycloak.js';
import { PeerUnavailableError } from '../test/peers/peer-unavailable.js';
import { basic, envNumber, load, progress, repoRoot, type LoadResult } from './harness.js';

// Development values from keycloak-realm.json (documented there as public dev-only secrets).
const REALM = 'platform';
const CLIENT_ID = 'platform-m2m';
const CLIENT_SECRET = 'dev-only-platform-m2m-secret';
const WARMUP_SLICE_SECONDS = 5;
const MIN_WARMUP_SECONDS = 15;

export type KeycloakBenchResult =
  | { skipped: false; version: string; startSeconds: number; warmupSeconds: number; warmupRates: number[]; jvmOptions: string; clientCredentials: LoadResult }
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
  try {
    progress(`starting Keycloak ${KEYCLOAK_VERSION} (the first start on a machine also re-augments it)`);
    const started = Date.now();
    try {
      kc = await startKeycloak({ realmFiles: [join(repoRoot(), 'keycloak-realm.json')] });
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
    if (probe.status !== 200 || !probeBody.access_token) return skipped(`Keycloak's token endpoint answered ${probe.status} to client_credentials`);

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
    return { skipped: false, version: KEYCLOAK_VERSION, startSeconds, warmupSeconds, warmupRates, jvmOptions: jvmOptions || '(Keycloak defaults)', clientCredentials };
  } finally {
    if (previousOpts === undefined) delete process.env.KEYCLOAK_JAVA_OPTS_APPEND;
    else process.env.KEYCLOAK_JAVA_OPTS_APPEND = previousOpts;
    // stop() ends Keycloak's whole process group and deletes its run directory.
    await kc?.stop().catch((err: unknown) => progress(`stopping Keycloak failed: ${(err as Error).message}`));
  }
}
