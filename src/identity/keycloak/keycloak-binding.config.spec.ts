import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../config/app-config.js';
import { InvalidKeycloakBindingError, resolveKeycloakBinding } from './keycloak-binding.config.js';
import { keycloakSettings, realmIssuer, type KeycloakSettings } from './keycloak-settings.js';
import { organizationAliases } from './keycloak-tokens.js';

const settings: KeycloakSettings = {
  url: 'http://keycloak:8080',
  frontendUrl: 'http://localhost:8080',
  realm: 'platform',
  clientId: 'auth-service',
  clientSecret: 'service-secret',
  audience: 'auth-service',
  allowHttp: true,
};

const problems = (config: unknown, secrets: unknown = {}): string[] => {
  try {
    resolveKeycloakBinding(config, secrets, 'acme', settings);
  } catch (err) {
    if (err instanceof InvalidKeycloakBindingError) return err.problems;
    throw err;
  }
  return [];
};

describe('resolveKeycloakBinding', () => {
  it('defaults an organisation binding to the tenant slug, the shared realm and the service client', () => {
    const b = resolveKeycloakBinding({ mode: 'organization' }, {}, 'acme', settings);
    expect(b).toMatchObject({
      realm: 'platform',
      clientId: 'auth-service',
      clientSecret: 'service-secret',
      organizationAlias: 'acme',
      machineClients: [],
      audience: 'auth-service',
    });
    expect(b.scopes).toEqual(['openid', 'profile', 'email', 'organization:acme']);
  });

  it('requests a configured organisation alias instead of the slug', () => {
    expect(resolveKeycloakBinding({ mode: 'organization', organizationAlias: 'acme-corp' }, {}, 'acme', settings).scopes).toContain(
      'organization:acme-corp',
    );
  });

  it('refuses a dedicated realm that is the shared realm (it would skip the organisation check)', () => {
    expect(problems({ mode: 'dedicated_realm', realm: 'platform' }, { clientSecret: 'x' })).toEqual([
      'config: a dedicated realm cannot be the shared realm',
    ]);
  });

  it('uses the dedicated realm, its client and its secret, and requests no organisation', () => {
    const b = resolveKeycloakBinding(
      { mode: 'dedicated_realm', realm: 'initech', clientId: 'broker' },
      { clientSecret: 'realm-secret' },
      'initech',
      settings,
    );
    expect(b).toMatchObject({ realm: 'initech', clientId: 'broker', clientSecret: 'realm-secret', organizationAlias: undefined });
    expect(b.scopes.some((s) => s.startsWith('organization'))).toBe(false);
  });

  it('refuses mixed or incomplete modes', () => {
    expect(problems({ mode: 'dedicated_realm', realm: 'initech' })).toContain(
      'secrets: dedicated_realm mode needs the realm client’s clientSecret',
    );
    expect(problems({ mode: 'dedicated_realm' }, { clientSecret: 'x' })).toContain('config: dedicated_realm mode needs realm');
    expect(problems({ mode: 'dedicated_realm', realm: 'initech', organizationAlias: 'acme' }, { clientSecret: 'x' })).toContain(
      'config: organizationAlias applies to organization mode only',
    );
    expect(problems({ mode: 'organization', realm: 'other' })).toContain(
      'config: organization mode uses the shared realm; realm must be unset',
    );
    expect(problems({ mode: 'organization', clientId: 'other' })).toContain(
      'config: organization mode uses the service’s own client; clientId must be unset',
    );
    expect(problems({ mode: 'organization' }, { clientSecret: 'x' })).toContain(
      'secrets: organization mode uses KEYCLOAK_CLIENT_SECRET; clientSecret must be unset',
    );
    expect(problems({ mode: 'sideways' })).toHaveLength(1);
    expect(problems({ mode: 'organization', surprise: true })).toHaveLength(1);
  });

  it('refuses extra scopes that would name organisations', () => {
    expect(problems({ mode: 'organization', extraScopes: ['organization:*'] })).toHaveLength(1);
    expect(problems({ mode: 'organization', extraScopes: ['organization'] })).toHaveLength(1);
    expect(problems({ mode: 'organization', extraScopes: ['phone'] })).toEqual([]);
  });

  it('plans the organisation and a brokered IdP (its secret from the secrets) for organization mode', () => {
    const b = resolveKeycloakBinding(
      {
        mode: 'organization',
        organizationName: 'Acme Corp',
        organizationDomains: ['Acme.example', 'acme.example'],
        identityProvider: {
          alias: 'acme-entra',
          providerId: 'oidc',
          config: { clientId: 'kc-broker', tokenUrl: 'https://login.acme.example/token' },
          domain: 'acme.example',
          redirectWhenEmailMatches: true,
        },
      },
      { identityProviderClientSecret: 'broker-secret' },
      'acme',
      settings,
    );
    expect(b.provisioning).toEqual({
      organization: { alias: 'acme', name: 'Acme Corp', domains: ['acme.example'] },
      identityProvider: {
        alias: 'acme-entra',
        displayName: undefined,
        providerId: 'oidc',
        config: { clientId: 'kc-broker', tokenUrl: 'https://login.acme.example/token', clientSecret: 'broker-secret' },
        domain: 'acme.example',
        redirectWhenEmailMatches: true,
      },
    });
    expect(
      resolveKeycloakBinding({ mode: 'dedicated_realm', realm: 'initech' }, { clientSecret: 'realm-secret' }, 'initech', settings)
        .provisioning,
    ).toEqual({
      realm: { realm: 'initech', clientId: 'auth-service', clientSecret: 'realm-secret' },
    });
  });

  it('refuses brokered IdP settings that are incomplete, misplaced or carry the secret in config', () => {
    const idp = { alias: 'acme-entra', providerId: 'oidc', config: { clientId: 'kc-broker' } };
    expect(problems({ mode: 'organization', identityProvider: { ...idp, providerId: 'ldap' } })).toHaveLength(1);
    expect(problems({ mode: 'organization', identityProvider: { ...idp, alias: 'no spaces' } })).toHaveLength(1);
    expect(problems({ mode: 'organization', identityProvider: { ...idp, surprise: 1 } })).toHaveLength(1);
    expect(problems({ mode: 'organization', identityProvider: { ...idp, config: { clientSecret: 'super-secret-value' } } })).toEqual([
      'config: identityProvider.config.clientSecret is not allowed; put it in secrets.identityProviderClientSecret',
    ]);
    expect(problems({ mode: 'organization', identityProvider: { ...idp, config: { 'kc.org.domain': 'acme.example' } } })).toHaveLength(1);
    expect(problems({ mode: 'organization', identityProvider: { ...idp, config: { clientId: 7 } } })).toHaveLength(1);
    expect(
      problems({ mode: 'organization', organizationDomains: ['acme.example'], identityProvider: { ...idp, domain: 'globex.example' } }),
    ).toEqual(['config: identityProvider.domain must be one of organizationDomains']);
    expect(problems({ mode: 'organization', identityProvider: { ...idp, redirectWhenEmailMatches: true } })).toHaveLength(1);
    expect(problems({ mode: 'organization', organizationDomains: ['not a domain'] })).toHaveLength(1);
    expect(problems({ mode: 'organization' }, { identityProviderClientSecret: 'x' })).toEqual([
      'secrets: identityProviderClientSecret needs config.identityProvider',
    ]);
    expect(
      problems(
        { mode: 'dedicated_realm', realm: 'initech', identityProvider: idp, organizationDomains: ['initech.example'] },
        { clientSecret: 'x' },
      ),
    ).toEqual([
      'config: organizationDomains applies to organization mode only',
      'config: identityProvider applies to organization mode only',
    ]);
  });

  it('never puts a secret into a problem', () => {
    const all = problems({ mode: 'organization' }, { clientSecret: 'super-secret-value' }).join(' ');
    expect(all).not.toContain('super-secret-value');
  });
});

describe('organizationAliases', () => {
  it('reads every shape the membership mapper writes', () => {
    expect(organizationAliases(['acme', 'globex'])).toEqual(['acme', 'globex']);
    expect(organizationAliases({ acme: { id: '1' } })).toEqual(['acme']);
    expect(organizationAliases('acme')).toEqual(['acme']);
    expect(organizationAliases(undefined)).toEqual([]);
    expect(organizationAliases([1, 'acme'])).toEqual(['acme']);
  });
});

describe('Keycloak environment', () => {
  it('runs without Keycloak when KEYCLOAK_URL is unset', () => {
    expect(keycloakSettings(loadConfig({}))).toBeUndefined();
  });

  it('derives the issuer from the frontend URL and talks to the back-channel URL', () => {
    const s = keycloakSettings(
      loadConfig({
        KEYCLOAK_URL: 'http://keycloak:8080/',
        KEYCLOAK_FRONTEND_URL: 'http://localhost:8080',
        KEYCLOAK_CLIENT_SECRET: 's',
        KEYCLOAK_ADMIN_USERNAME: 'admin',
        KEYCLOAK_ADMIN_PASSWORD: 'pw',
      }),
    )!;
    expect(s.url).toBe('http://keycloak:8080');
    expect(realmIssuer(s, 'platform')).toBe('http://localhost:8080/realms/platform');
    expect(s.admin).toEqual({ realm: 'master', grantType: 'password', clientId: 'admin-cli', username: 'admin', password: 'pw' });
  });

  it('refuses incomplete or contradictory Keycloak settings', () => {
    expect(() => loadConfig({ KEYCLOAK_URL: 'http://keycloak:8080' })).toThrow(/KEYCLOAK_CLIENT_SECRET is required/);
    expect(() => loadConfig({ KEYCLOAK_CLIENT_SECRET: 's' })).toThrow(/without KEYCLOAK_URL/);
    expect(() => loadConfig({ KEYCLOAK_URL: 'http://k:8080', KEYCLOAK_CLIENT_SECRET: 's', KEYCLOAK_ADMIN_USERNAME: 'admin' })).toThrow(
      /go together/,
    );
    expect(() =>
      loadConfig({
        KEYCLOAK_URL: 'http://k:8080',
        KEYCLOAK_CLIENT_SECRET: 's',
        KEYCLOAK_ADMIN_USERNAME: 'a',
        KEYCLOAK_ADMIN_PASSWORD: 'b',
        KEYCLOAK_ADMIN_CLIENT_ID: 'c',
        KEYCLOAK_ADMIN_CLIENT_SECRET: 'd',
      }),
    ).toThrow(/not both/);
    expect(() => loadConfig({ KEYCLOAK_URL: 'not a url', KEYCLOAK_CLIENT_SECRET: 's' })).toThrow(ConfigError);
  });

  it('refuses plain-HTTP Keycloak URLs in production', () => {
    const prod = {
      NODE_ENV: 'production',
      PUBLIC_URL: 'https://auth.example.com',
      DATABASE_URL: 'postgres://x@db/auth',
      KEY_ENCRYPTION_KEY: 'a'.repeat(44),
      SMTP_URL: 'smtp://mail.example.com:587',
      KEYCLOAK_CLIENT_SECRET: 's',
    };
    expect(() => loadConfig({ ...prod, KEYCLOAK_URL: 'http://keycloak:8080' })).toThrow(
      /KEYCLOAK_FRONTEND_URL \(or KEYCLOAK_URL\) must be https/,
    );
    expect(() => loadConfig({ ...prod, KEYCLOAK_URL: 'http://keycloak:8080', KEYCLOAK_FRONTEND_URL: 'https://login.example.com' })).toThrow(
      /KEYCLOAK_URL must be https/,
    );
    expect(
      keycloakSettings(
        loadConfig({ ...prod, KEYCLOAK_URL: 'https://keycloak.internal', KEYCLOAK_FRONTEND_URL: 'https://login.example.com' }),
      )!.allowHttp,
    ).toBe(false);
  });
});
