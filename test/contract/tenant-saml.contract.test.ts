/**
 * The adapter contract (identity-provider.contract.ts) for TenantSamlProvider: a tenant bound to a
 * customer's SAML IdP, the real SimpleSAMLphp (test/peers/simplesamlphp.ts), whose login pages are
 * walked headlessly up to the auto-POST form it would send to the ACS (test/peers/simplesamlphp-login.ts).
 */
import { afterAll, beforeAll, expect, type TestContext } from 'vitest';
import { startTestApp, type TestApp } from '../support/app-harness.js';
import { freePort } from '../support/free-port.js';
import { peerOrSkip } from '../peers/peer-unavailable.js';
import { startSimpleSamlIdp, type SimpleSamlIdp } from '../peers/simplesamlphp.js';
import { simpleSamlLogin } from '../peers/simplesamlphp-login.js';
import { TenantsService } from '../../src/tenants/tenants.service.js';
import { BindingsService } from '../../src/tenants/bindings.service.js';
import { IdentityProviderRegistry } from '../../src/identity/identity-provider.registry.js';
import { SamlResponseRejectedError, type SamlRejectReason } from '../../src/identity/saml/saml-errors.js';
import type { CallbackInput } from '../../src/identity/port/identity-provider.port.js';
import { identityProviderContract, type ContractSession } from './identity-provider.contract.js';

const EMAIL = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress';
const SLUG = 'saml-contract';
const USERS = ['ada', 'grace'] as const;
const emailOf = (user: string) => `${user}@contract.example`;

let app: TestApp;
let idp: SimpleSamlIdp | undefined;
let unavailable: string | undefined;
let session: ContractSession;

beforeAll(async () => {
  app = await startTestApp();
  const got = await peerOrSkip('saml contract', () =>
    startSimpleSamlIdp({
      sps: [{ entityId: `${app.config.issuer}/saml/${SLUG}`, acsUrl: `${app.config.issuer}/saml/${SLUG}/acs` }],
      users: USERS.map((username) => ({ username, password: `${username}-pw`, attributes: { [EMAIL]: [emailOf(username)] } })),
    }),
  );
  if (got.unavailable !== undefined) {
    unavailable = got.unavailable;
    return;
  }
  const peer = (idp = got.peer);
  const tenants = app.app.get(TenantsService);
  const bindings = app.app.get(BindingsService);
  const binding = await bindings.create(await tenants.create(SLUG, 'SAML contract'), {
    kind: 'saml',
    config: { idpMetadataXml: peer.metadataXml },
    claimMapping: { email: EMAIL },
  });
  const down = await tenants.create(`${SLUG}-down`, 'SAML contract (IdP down)');
  session = {
    app,
    adapter: app.app.get(IdentityProviderRegistry).get('saml'),
    binding,
    users: USERS,
    expectedIssuer: peer.entityId,
    async authenticate(redirectUrl, user): Promise<CallbackInput> {
      const form = await simpleSamlLogin(redirectUrl, user, `${user}-pw`);
      expect(form.acsUrl).toBe(`${app.config.issuer}/saml/${SLUG}/acs`);
      return { method: 'POST', query: {}, body: { SAMLResponse: form.SAMLResponse, RelayState: form.RelayState }, clientIp: '127.0.0.1' };
    },
    async unreachable() {
      // The binding's metadata URL: nothing listens there.
      const port = await freePort();
      return {
        binding: await bindings.create(down, { kind: 'saml', config: { idpMetadataUrl: `http://127.0.0.1:${port}/simplesaml/metadata` } }),
      };
    },
  };
}, 240_000);

afterAll(async () => {
  await idp?.stop();
  await app?.close();
});

const rejected = (reason: SamlRejectReason) => (err: unknown) => {
  expect(err).toBeInstanceOf(SamlResponseRejectedError);
  expect((err as SamlResponseRejectedError).reason).toBe(reason);
};
const xmlOf = (cb: CallbackInput) => Buffer.from(cb.body['SAMLResponse']!, 'base64').toString('utf8');
const withXml = (cb: CallbackInput, xml: string): CallbackInput => ({
  ...cb,
  body: { ...cb.body, SAMLResponse: Buffer.from(xml, 'utf8').toString('base64') },
});

identityProviderContract({
  kind: 'saml',
  login: 'browser',
  session(ctx: TestContext) {
    if (unavailable) ctx.skip(unavailable);
    return session;
  },
  tamperCallback: {
    'the signed assertion altered (another user’s email and NameID)': {
      alter: (cb) => {
        const xml = xmlOf(cb);
        const victim = emailOf(USERS[1]);
        const altered = xml.replaceAll(emailOf(USERS[0]), victim);
        expect(altered).not.toBe(xml);
        return withXml(cb, altered);
      },
      refused: rejected('signature'),
    },
    'the assertion signature removed': {
      alter: (cb) => {
        const xml = xmlOf(cb);
        const stripped = xml.replace(/<ds:Signature[\s\S]*?<\/ds:Signature>/g, '');
        expect(stripped).not.toBe(xml);
        return withXml(cb, stripped);
      },
      refused: rejected('signature'),
    },
    'the SAMLResponse not base64': {
      alter: (cb) => ({ ...cb, body: { ...cb.body, SAMLResponse: '<samlp:Response/>' } }),
      refused: rejected('malformed'),
    },
  },
  replay: { refused: rejected('replay') },
  crossTransaction: { refused: rejected('in_response_to') },
  probe: 'supported',
});
