import type { AppConfig } from '../../config/app-config.js';

/** The service-wide Keycloak settings (from the environment), with defaults applied. */
export interface KeycloakSettings {
  /** Base URL the service calls (back channel), no trailing slash. */
  url: string;
  /** Base URL browsers use, and so the base of every realm's issuer, no trailing slash. */
  frontendUrl: string;
  /** The shared realm whose Organizations are tenants. */
  realm: string;
  clientId: string;
  clientSecret: string;
  /** `aud` an exchanged Keycloak access token must carry. */
  audience: string;
  admin?: KeycloakAdminCredentials;
  /** Plain-HTTP Keycloak (development and tests only). */
  allowHttp: boolean;
}

export type KeycloakAdminCredentials =
  | { realm: string; grantType: 'client_credentials'; clientId: string; clientSecret: string }
  | { realm: string; grantType: 'password'; clientId: 'admin-cli'; username: string; password: string };

const trim = (u: string) => u.replace(/\/+$/, '');

/** Undefined when KEYCLOAK_URL is unset: the service then runs without Keycloak. */
export function keycloakSettings(config: AppConfig): KeycloakSettings | undefined {
  if (!config.KEYCLOAK_URL || !config.KEYCLOAK_CLIENT_SECRET) return undefined;
  let admin: KeycloakAdminCredentials | undefined;
  if (config.KEYCLOAK_ADMIN_CLIENT_ID && config.KEYCLOAK_ADMIN_CLIENT_SECRET)
    admin = {
      realm: config.KEYCLOAK_ADMIN_REALM,
      grantType: 'client_credentials',
      clientId: config.KEYCLOAK_ADMIN_CLIENT_ID,
      clientSecret: config.KEYCLOAK_ADMIN_CLIENT_SECRET,
    };
  else if (config.KEYCLOAK_ADMIN_USERNAME && config.KEYCLOAK_ADMIN_PASSWORD)
    admin = {
      realm: config.KEYCLOAK_ADMIN_REALM,
      grantType: 'password',
      clientId: 'admin-cli',
      username: config.KEYCLOAK_ADMIN_USERNAME,
      password: config.KEYCLOAK_ADMIN_PASSWORD,
    };
  return {
    url: trim(config.KEYCLOAK_URL),
    frontendUrl: trim(config.KEYCLOAK_FRONTEND_URL ?? config.KEYCLOAK_URL),
    realm: config.KEYCLOAK_REALM,
    clientId: config.KEYCLOAK_CLIENT_ID,
    clientSecret: config.KEYCLOAK_CLIENT_SECRET,
    audience: config.KEYCLOAK_TOKEN_AUDIENCE ?? config.KEYCLOAK_CLIENT_ID,
    admin,
    allowHttp: config.NODE_ENV !== 'production',
  };
}

/** A realm's issuer identifier, as Keycloak writes it into tokens (frontend URL). */
export const realmIssuer = (s: KeycloakSettings, realm: string): string => `${s.frontendUrl}/realms/${encodeURIComponent(realm)}`;

/** A realm's discovery document, fetched over the back channel. */
export const realmDiscoveryUrl = (s: KeycloakSettings, realm: string): URL =>
  new URL(`${s.url}/realms/${encodeURIComponent(realm)}/.well-known/openid-configuration`);

/** A realm's signing keys, fetched over the back channel (Keycloak's fixed path). */
export const realmJwksUrl = (s: KeycloakSettings, realm: string): URL =>
  new URL(`${s.url}/realms/${encodeURIComponent(realm)}/protocol/openid-connect/certs`);
