/**
 * Provisions every real peer the test suite runs against, one after the other, before the tests
 * start (the suite would do it itself, but in parallel workers and inside test time-outs):
 * Debian packages (SimpleSAMLphp, python3-jwt, redis-server, python3-aiosmtpd, chromium), the Keycloak distribution (Maven
 * Central, cached in .cache/keycloak) and firebase-tools (npm, cached in .cache/firebase-tools).
 * A peer that cannot be provisioned is reported here; its tests then skip, or fail under CI=true.
 */
import { ensureKeycloakDistribution } from '../test/peers/keycloak.js';
import { ensureFirebaseTools } from '../test/peers/firebase-emulator.js';
import { ensureSimpleSamlPhp } from '../test/peers/simplesamlphp.js';
import { ensurePyJwt } from '../test/support/gateway.js';
import { ensureRedisServer } from '../test/peers/redis.js';
import { ensureAiosmtpd } from '../test/peers/smtp.js';
import { ensureChromium } from '../test/peers/chromium.js';

const steps: Array<[string, () => Promise<unknown> | unknown]> = [
  ['SimpleSAMLphp (apt)', () => ensureSimpleSamlPhp()],
  ['python3-jwt (apt)', () => ensurePyJwt()],
  ['redis-server (apt)', () => ensureRedisServer()],
  ['python3-aiosmtpd (apt)', () => ensureAiosmtpd()],
  ['chromium (apt)', () => ensureChromium()],
  ['Keycloak distribution (Maven Central)', () => ensureKeycloakDistribution()],
  ['firebase-tools (npm)', () => ensureFirebaseTools()],
];

for (const [name, step] of steps) {
  const started = Date.now();
  try {
    await step();
    console.log(`peer ready: ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  } catch (err) {
    console.log(`peer NOT ready: ${name}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
// Never fails by itself: the tests of a missing peer skip with the reason, or fail under CI=true.
