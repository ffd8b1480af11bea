/**
 * The adapter contract (identity-provider.contract.ts) for FirebaseLegacyProvider: no browser
 * login, an ID token of the real Firebase Auth emulator (test/peers/firebase-test-peer.ts) exchanged
 * (RFC 8693) by a service in emulator mode. The emulator issues unsigned tokens (alg none, accepted
 * in emulator mode only), so the alterations are those the claim checks must catch.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, type TestContext } from 'vitest';
import { startTestApp, type TestApp } from '../support/app-harness.js';
import { freePort } from '../support/free-port.js';
import { useFirebaseEmulator } from '../peers/firebase-test-peer.js';
import { TenantsService } from '../../src/tenants/tenants.service.js';
import { BindingsService } from '../../src/tenants/bindings.service.js';
import { IdentityProviderRegistry } from '../../src/identity/identity-provider.registry.js';
import { FirebaseTokenRejected } from '../../src/identity/firebase/firebase-id-token.js';
import { identityProviderContract, type ContractSession } from './identity-provider.contract.js';

const PROJECT_ID = 'demo-auth-fb-contract';
const USERS = ['ada', 'grace'] as const;
const credentials = (user: string) => ({
  email: `${user}-${randomBytes(3).toString('hex')}@contract.test`,
  password: `${user} firebase-era password`,
});

const firebase = useFirebaseEmulator(PROJECT_ID);
let app: TestApp | undefined;
let session: ContractSession;

beforeAll(async () => {
  const emulator = firebase.emulator;
  if (!emulator) return;
  app = await startTestApp({ FIREBASE_AUTH_EMULATOR_HOST: emulator.host });
  const accounts = new Map<string, { email: string; password: string }>();
  for (const user of USERS) {
    const c = credentials(user);
    await firebase.auth.createUser({ ...c, emailVerified: true, displayName: user });
    accounts.set(user, c);
  }
  const tenants = app.app.get(TenantsService);
  const bindings = app.app.get(BindingsService);
  // Ops bringing an existing Firebase project over (ADR-0002): the only way to a new firebase_legacy binding.
  const binding = await bindings.create(await tenants.create('firebase-contract', 'Firebase contract'), {
    kind: 'firebase_legacy',
    config: { projectId: PROJECT_ID },
    migrationImport: true,
  });
  const down = await tenants.create('firebase-contract-down', 'Firebase contract (certificates down)');
  const started = app;
  session = {
    app: started,
    adapter: app.app.get(IdentityProviderRegistry).get('firebase_legacy'),
    binding,
    users: USERS,
    expectedIssuer: `https://securetoken.google.com/${PROJECT_ID}`,
    // Both advertised types (id_token, jwt) are the same Firebase ID token.
    async subjectToken(_tokenType, user = USERS[0]) {
      const c = accounts.get(user)!;
      return (await emulator.signInWithPassword(c.email, c.password)).idToken;
    },
    async unreachable() {
      const port = await freePort();
      return {
        binding: await bindings.create(down, {
          kind: 'firebase_legacy',
          config: { projectId: PROJECT_ID, certificateUrl: `http://127.0.0.1:${port}/certs` },
          migrationImport: true,
        }),
      };
    },
  };
}, 120_000);

afterAll(async () => {
  await app?.close();
}, 30_000);

/** The token with its payload claims changed (the emulator's tokens carry no signature to break). */
const withClaims = (token: string, change: (claims: Record<string, unknown>) => Record<string, unknown>): string => {
  const [header, payload, signature] = token.split('.');
  const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8')) as Record<string, unknown>;
  return [header, Buffer.from(JSON.stringify(change(claims))).toString('base64url'), signature].join('.');
};
const tokenRejected = (description: RegExp) => (err: unknown) => {
  expect(err).toBeInstanceOf(FirebaseTokenRejected);
  expect((err as FirebaseTokenRejected).error).toBe('invalid_grant');
  expect((err as FirebaseTokenRejected).description).toMatch(description);
};

identityProviderContract({
  kind: 'firebase_legacy',
  login: 'exchange',
  session(ctx: TestContext) {
    firebase.peer(ctx);
    return session;
  },
  tamperSubjectToken: {
    'the audience altered to another Firebase project': {
      alter: (t) => withClaims(t, (c) => ({ ...c, aud: 'demo-another-project' })),
      refused: tokenRejected(/another Firebase project/),
    },
    'the issuer altered': {
      alter: (t) => withClaims(t, (c) => ({ ...c, iss: 'https://securetoken.google.com/demo-another-project' })),
      refused: tokenRejected(/another Firebase project/),
    },
    'the expiry moved into the past': {
      alter: (t) =>
        withClaims(t, (c) => ({
          ...c,
          exp: (c['iat'] as number) - 3600,
          iat: (c['iat'] as number) - 7200,
          auth_time: (c['auth_time'] as number) - 7200,
        })),
      refused: tokenRejected(/expired/),
    },
    'the subject removed': {
      alter: (t) => withClaims(t, ({ sub: _sub, user_id: _uid, ...rest }) => rest),
      refused: tokenRejected(/subject/),
    },
    'not a JWT': { alter: (t) => t.replaceAll('.', ''), refused: tokenRejected(/not a Firebase ID token/) },
  },
  replay: {
    notApplicable: 'a Firebase ID token is a bearer token the client SDK re-sends until it expires; exchanging it again is its use',
  },
  crossTransaction: { notApplicable: 'no browser login: a token exchange has no transaction' },
  probe: 'supported',
});
