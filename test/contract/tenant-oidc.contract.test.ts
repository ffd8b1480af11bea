/**
 * The adapter contract (identity-provider.contract.ts) for TenantOidcProvider: a tenant bound to
 * a customer's OpenID Provider, the real `oidc-provider` peer (test/peers/oidc-provider.ts), whose
 * login pages are walked headlessly (test/peers/oidc-provider-login.ts).
 */
import { afterAll, beforeAll, expect } from 'vitest';
import { startTestApp, type TestApp } from '../support/app-harness.js';
import { freePort } from '../support/free-port.js';
import { startOidcProvider, type OidcProviderPeer } from '../peers/oidc-provider.js';
import { oidcProviderLogin } from '../peers/oidc-provider-login.js';
import { TenantsService } from '../../src/tenants/tenants.service.js';
import { BindingsService } from '../../src/tenants/bindings.service.js';
import { IdentityProviderRegistry } from '../../src/identity/identity-provider.registry.js';
import { OAuthError } from '../../src/common/errors.js';
import type { CallbackInput } from '../../src/identity/port/identity-provider.port.js';
import { identityProviderContract, type ContractSession } from './identity-provider.contract.js';

const CLIENT_ID = 'auth-service';
const CLIENT_SECRET = 'contract-op-client-secret-0123456789';
const USERS = ['okta-ada', 'okta-grace'] as const;

let app: TestApp;
let op: OidcProviderPeer;
let session: ContractSession;

const callbackInput = (url: string): CallbackInput => ({
  method: 'GET',
  query: Object.fromEntries(new URL(url).searchParams),
  body: {},
  clientIp: '127.0.0.1',
});

beforeAll(async () => {
  app = await startTestApp();
  const callbackUrl = `${app.config.issuer}/login/callback/oidc`;
  op = await startOidcProvider({
    issuerPath: '/contract-op',
    clients: [{ client_id: CLIENT_ID, client_secret: CLIENT_SECRET, redirect_uris: [callbackUrl] }],
    accounts: USERS.map((sub) => ({ sub, password: `${sub}-pw`, claims: { email: `${sub}@contract.example`, email_verified: true } })),
  });
  const tenants = app.app.get(TenantsService);
  const bindings = app.app.get(BindingsService);
  const binding = await bindings.create(await tenants.create('oidc-contract', 'OIDC contract'), {
    kind: 'oidc',
    config: { issuer: op.issuer, clientId: CLIENT_ID },
    secrets: { clientSecret: CLIENT_SECRET },
  });
  const down = await tenants.create('oidc-contract-down', 'OIDC contract (OP down)');
  session = {
    app,
    adapter: app.app.get(IdentityProviderRegistry).get('oidc'),
    binding,
    users: USERS,
    expectedIssuer: op.issuer,
    async authenticate(redirectUrl, user) {
      return callbackInput(await oidcProviderLogin(redirectUrl, { login: user, password: `${user}-pw`, callbackPrefix: callbackUrl }));
    },
    async unreachable() {
      // Nothing listens there.
      const port = await freePort();
      return {
        binding: await bindings.create(down, {
          kind: 'oidc',
          config: { issuer: `http://127.0.0.1:${port}/op`, clientId: CLIENT_ID },
          secrets: { clientSecret: CLIENT_SECRET },
        }),
      };
    },
  };
}, 120_000);

afterAll(async () => {
  await op?.stop();
  await app?.close();
});

const accessDenied = (err: unknown) => {
  expect(err).toBeInstanceOf(OAuthError);
  expect((err as OAuthError).error).toBe('access_denied');
};
const query = (cb: CallbackInput, name: string, value: string | undefined): CallbackInput => ({
  ...cb,
  query: { ...cb.query, [name]: value },
});

identityProviderContract({
  kind: 'oidc',
  login: 'browser',
  session: () => session,
  tamperCallback: {
    'the state altered': { alter: (cb) => query(cb, 'state', `${cb.query['state']}x`), refused: accessDenied },
    'the code altered': { alter: (cb) => query(cb, 'code', `${cb.query['code']}x`), refused: accessDenied },
    'the code removed': { alter: (cb) => query(cb, 'code', undefined), refused: accessDenied },
    'the iss altered (mix-up)': { alter: (cb) => query(cb, 'iss', 'https://op.evil.example'), refused: accessDenied },
  },
  replay: { refused: accessDenied },
  crossTransaction: { refused: accessDenied },
  probe: 'supported',
});
