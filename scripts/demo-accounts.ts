/** The demo's tenants, accounts and clients (`npm run demo`, test/demo.test.ts). */

/** Demo credentials: printed, and meant to be. Nothing here is a secret. */
export const DEMO = {
  native: {
    org: 'demo-native',
    name: 'Demo Native Ltd',
    username: 'ann',
    password: 'sunny-otter-ladder-42',
    email: 'ann@demo-native.example',
  },
  oidc: { org: 'demo-oidc', name: 'Demo OIDC Inc', login: 'olivia@demo-oidc.example', password: 'quiet-maple-river-17' },
  idpClient: { id: 'auth-service-demo', secret: 'demo-only-idp-client-secret' },
  bffClientId: 'demo-bff',
  adminClientId: 'demo-admin',
} as const;
