/**
 * Rotation under load: two gateway-style validators — one caches the JWKS and refetches it on an
 * unknown `kid` (what Kong's JWKS-aware plugins, Envoy's jwt_authn and jose's remote JWK set do), one
 * only re-reads it when its copy is old — validate a continuous stream of freshly issued access
 * tokens (refresh grants of live sessions, client_credentials grants) while the signing key rotates,
 * by the admin call and by the schedule, and never see a failed validation. Short and bounded
 * (seconds, a few thousand tokens, loopback only). A sample is validated once more by Debian's
 * python3-jwt.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRemoteJWKSet, customFetch, decodeProtectedHeader, jwtVerify } from 'jose';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { adminClient, type AdminClient } from './support/admin.js';
import { seedBff, seedNativeTenant } from './support/seed.js';
import { basic, nativeLogin, postForm, tokenRequest, type BffClient } from './support/bff.js';
import { ensurePyJwt, validateLikeGateway } from './support/gateway.js';
import { peersRequired, PeerUnavailableError } from './peers/peer-unavailable.js';
import { ClientsService } from '../src/clients/clients.service.js';
import { SigningKeysService } from '../src/tokens/signing-keys.service.js';

const PASSWORD = 'correct horse battery staple';
/** At least this long, until three keys have signed tokens; never longer than HARD_STOP_MS or MAX_TOKENS. */
const LOAD_MS = 8_000;
const HARD_STOP_MS = 25_000;
const MAX_TOKENS = 8_000;
const ROTATION_INTERVAL_S = 4;
/**
 * How long a new key is published before it signs. The polling gateway below refreshes every 500 ms,
 * but this process is also the service under load on 2 cores: its event loop can stall for a second
 * or more, so the margin is several times the poll interval.
 */
const PUBLISH_DELAY_S = 3;

interface Validated {
  kid: string;
  token: string;
  at: number;
}

let app: TestApp;
let admin: AdminClient;
let bff: BffClient;
let machine: { id: string; secret: string };
let pyJwt: string | undefined;
const validated: Validated[] = [];
const failures: string[] = [];
let issued = 0;
let jwksFetches = 0;

beforeAll(async () => {
  app = await startTestApp({
    KEY_PUBLISH_DELAY_SECONDS: String(PUBLISH_DELAY_S),
    KEY_ROTATION_INTERVAL_SECONDS: String(ROTATION_INTERVAL_S),
    RATE_LIMIT_AUTHORIZE_PER_MINUTE: '10000',
    RATE_LIMIT_LOGIN_PER_MINUTE: '10000',
  });
  admin = await adminClient(app);
  bff = await seedBff(app);
  const { tenant } = await seedNativeTenant(app, 'rotating', [
    { username: 'ann@rotating.test', password: PASSWORD },
    { username: 'ben@rotating.test', password: PASSWORD },
  ]);
  const { secret } = await app.app
    .get(ClientsService)
    .create({ id: 'orders-service', name: 'Orders', kind: 'machine', tenantId: tenant.id, scopes: ['orders:read'] });
  machine = { id: 'orders-service', secret };
  try {
    ensurePyJwt();
  } catch (err) {
    if (!(err instanceof PeerUnavailableError) || peersRequired()) throw err;
    pyJwt = err.message;
  }
}, 300_000);

afterAll(async () => app?.close());

describe('key rotation under continuous load', () => {
  it('JWKS-caching gateways validate every freshly issued token across manual and scheduled rotations', async () => {
    const keys = app.app.get(SigningKeysService);
    const jwksUrl = new URL('/.well-known/jwks.json', app.url);
    // Cached for 10 minutes: only an unknown kid makes it refetch (at most every 250 ms).
    const gatewayJwks = createRemoteJWKSet(jwksUrl, {
      cacheMaxAge: 600_000,
      cooldownDuration: 250,
      [customFetch]: (url, init) => {
        jwksFetches++;
        return fetch(url, init);
      },
    });
    // A gateway that never refetches on an unknown kid, only when its copy is older than 500 ms
    // (cooldown = max age): it relies on the publish delay (PUBLISH_DELAY_S) alone to know a key before it signs.
    const pollingJwks = createRemoteJWKSet(jwksUrl, { cacheMaxAge: 500, cooldownDuration: 500 });
    const kidsAtStart = new Set((await keys.list()).map((k) => k.kid));
    const started = Date.now();
    const signers = new Set<string>();
    const running = () =>
      issued < MAX_TOKENS && Date.now() - started < HARD_STOP_MS && (Date.now() - started < LOAD_MS || signers.size < 3);

    const gatewayCheck = async (token: string) => {
      issued++;
      try {
        const options = { issuer: app.config.issuer, audience: app.config.ACCESS_TOKEN_AUDIENCE, typ: 'at+jwt', algorithms: ['RS256'] };
        await jwtVerify(token, gatewayJwks, options);
        await jwtVerify(token, pollingJwks, options);
        const kid = decodeProtectedHeader(token).kid!;
        signers.add(kid);
        validated.push({ kid, token, at: Date.now() });
      } catch (err) {
        failures.push(`${(err as Error).name}: ${(err as Error).message} (kid ${decodeProtectedHeader(token).kid})`);
      }
    };

    const refreshWorker = async (username: string) => {
      const { tokens } = await nativeLogin(app.url, bff, 'rotating', username, PASSWORD);
      let refresh = tokens.refresh_token;
      while (running()) {
        const res = await tokenRequest(app.url, bff, { grant_type: 'refresh_token', refresh_token: refresh });
        if (res.status !== 200) throw new Error(`refresh answered ${res.status}: ${await res.text()}`);
        const body = (await res.json()) as { access_token: string; refresh_token: string };
        refresh = body.refresh_token;
        await gatewayCheck(body.access_token);
      }
    };

    const machineWorker = async () => {
      while (running()) {
        const res = await postForm(
          `${app.url}/oauth2/token`,
          { grant_type: 'client_credentials' },
          { headers: { authorization: basic(machine.id, machine.secret) } },
        );
        if (res.status !== 200) throw new Error(`client_credentials answered ${res.status}: ${await res.text()}`);
        await gatewayCheck(((await res.json()) as { access_token: string }).access_token);
      }
    };

    // Rotations: the admin call once, the schedule (KEY_ROTATION_INTERVAL_SECONDS) the rest of the
    // time; maintain() every 200 ms plays the key-maintenance timer of a replica.
    const rotator = async () => {
      let manual = false;
      while (running()) {
        await new Promise((r) => setTimeout(r, 200));
        if (!manual && Date.now() - started > 1_500) {
          manual = true;
          const res = await admin.call('POST', '/admin/v1/signing-keys/rotate', { publishDelaySeconds: PUBLISH_DELAY_S });
          if (res.status !== 201) throw new Error(`rotate answered ${res.status}`);
        }
        await keys.maintain();
      }
    };

    await Promise.all([
      refreshWorker('ann@rotating.test'),
      refreshWorker('ben@rotating.test'),
      machineWorker(),
      machineWorker(),
      rotator(),
    ]);

    expect(failures).toEqual([]);
    expect(validated.length).toBe(issued);
    expect(validated.length).toBeGreaterThan(100);
    const kids = [...new Set(validated.map((v) => v.kid))];
    const newKids = kids.filter((k) => !kidsAtStart.has(k));
    // The starting key, the manually rotated one and at least one scheduled rotation all signed tokens.
    expect(kids.length).toBeGreaterThanOrEqual(3);
    expect(newKids.length).toBeGreaterThanOrEqual(2);
    // The gateway refetched on the new kids only, not per token.
    expect(jwksFetches).toBeGreaterThanOrEqual(newKids.length);
    expect(jwksFetches).toBeLessThanOrEqual(kids.length + 2);
  });

  it('python3-jwt (Debian), fetching the JWKS itself, accepts the first and last token of every key', async (ctx) => {
    if (pyJwt) ctx.skip(pyJwt);
    expect(validated.length).toBeGreaterThan(0);
    const sample: Validated[] = [];
    for (const kid of new Set(validated.map((v) => v.kid))) {
      const signed = validated.filter((v) => v.kid === kid);
      sample.push(signed[0]!, signed[signed.length - 1]!);
    }
    const verdicts = await validateLikeGateway(
      `${app.url}/.well-known/jwks.json`,
      app.config.issuer,
      app.config.ACCESS_TOKEN_AUDIENCE,
      sample.map((s) => s.token),
    );
    expect(verdicts.filter((v) => !v.ok)).toEqual([]);
    expect(verdicts.map((v) => v.kid)).toEqual(sample.map((s) => s.kid));
  });
});
