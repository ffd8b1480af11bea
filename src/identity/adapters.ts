import type { Type } from '@nestjs/common';
import type { IdentityProvider } from './port/identity-provider.port.js';
import { NativeProvider } from './native/native.adapter.js';
import { FirebaseLegacyProvider } from './firebase/firebase-legacy.adapter.js';
import { TenantOidcProvider } from './oidc/tenant-oidc.adapter.js';
import { TenantSamlProvider } from './saml/tenant-saml.adapter.js';
import { KeycloakProvider } from './keycloak/keycloak.adapter.js';

/**
 * Every IdentityProvider adapter the service ships. Each is a Nest provider; the registry picks
 * one per binding by `kind`. Adding an adapter is one line here plus its own folder.
 */
export const ADAPTERS: Array<Type<IdentityProvider>> = [
  NativeProvider,
  FirebaseLegacyProvider,
  TenantOidcProvider,
  TenantSamlProvider,
  KeycloakProvider,
];
