/**
 * The adapter contract (identity-provider.contract.ts) for NativeProvider: the hosted login form
 * against the service's own credential store (users made with NativeCredentialsService, argon2id
 * in the real database).
 */
import { afterAll, beforeAll, expect } from 'vitest';
import { startTestApp, type TestApp } from '../support/app-harness.js';
import { seedNativeTenant } from '../support/seed.js';
import { BindingsService } from '../../src/tenants/bindings.service.js';
import { IdentityProviderRegistry } from '../../src/identity/identity-provider.registry.js';
import { InvalidCredentialsError } from '../../src/identity/native/native.adapter.js';
import type { CallbackInput } from '../../src/identity/port/identity-provider.port.js';
import { identityProviderContract, type ContractSession } from './identity-provider.contract.js';

const PASSWORD = 'contract-native-password-1';
const USERS = ['ada@contract.test', 'grace@contract.test'] as const;

let app: TestApp;
let session: ContractSession;

beforeAll(async () => {
  app = await startTestApp();
  const { tenant } = await seedNativeTenant(
    app,
    'native-contract',
    USERS.map((username) => ({ username, password: PASSWORD })),
  );
  const binding = (await app.app.get(BindingsService).activeOfKind(tenant, 'native'))!;
  session = {
    app,
    adapter: app.app.get(IdentityProviderRegistry).get('native'),
    binding,
    users: USERS,
    expectedIssuer: 'native',
    // The hosted form is the upstream: its POST is the callback.
    async authenticate(redirectUrl, user): Promise<CallbackInput> {
      expect(redirectUrl.startsWith(`${app.config.issuer}/login/native/`)).toBe(true);
      return { method: 'POST', query: {}, body: { username: user, password: PASSWORD }, clientIp: '127.0.0.1' };
    },
  };
}, 120_000);

afterAll(async () => {
  await app?.close();
});

const invalidCredentials = (err: unknown) => expect(err).toBeInstanceOf(InvalidCredentialsError);

identityProviderContract({
  kind: 'native',
  login: 'browser',
  session: () => session,
  tamperCallback: {
    'the password altered': {
      alter: (cb) => ({ ...cb, body: { ...cb.body, password: `${cb.body['password']}x` } }),
      refused: invalidCredentials,
    },
    'the username altered to an unknown user': {
      alter: (cb) => ({ ...cb, body: { ...cb.body, username: `nobody-${cb.body['username']}` } }),
      refused: invalidCredentials,
    },
    'the password missing': { alter: (cb) => ({ ...cb, body: { username: cb.body['username'] } }), refused: invalidCredentials },
  },
  replay: { notApplicable: 'a password is not a one-time answer; the login transaction it is posted to is consumed once by LoginService' },
  crossTransaction: { notApplicable: 'the hosted form keeps no provider state' },
  probe: { notApplicable: 'no upstream: the credentials are in the service’s own database' },
});
