import { InitialSchema1764000000000 } from './1764000000000-initial-schema.js';
import { FirebasePasswordHashConfigs1764600000000 } from './1764600000000-firebase-password-hash-configs.js';
import { SamlMessageIds1764710000000 } from './1764710000000-saml-message-ids.js';
import { Scim1764800000000 } from './1764800000000-scim.js';
import { Admin1765000000000 } from './1765000000000-admin.js';
import { SessionUpstreamState1765100000000 } from './1765100000000-session-upstream-state.js';
import { SessionRevocationFeed1765300000000 } from './1765300000000-session-revocation-feed.js';
import { NativeUsernameCi1765400000000 } from './1765400000000-native-username-ci.js';
import { RowChangeNotifications1765500000000 } from './1765500000000-row-change-notifications.js';
import { ScimTokenChangeNotifications1765600000000 } from './1765600000000-scim-token-change-notifications.js';
import { UserManagement1765700000000 } from './1765700000000-user-management.js';
import { MailOutbox1765800000000 } from './1765800000000-mail-outbox.js';
import { Totp1765900000000 } from './1765900000000-totp.js';
import { Passkeys1765950000000 } from './1765950000000-passkeys.js';
import { LoginFreshness1766000000000 } from './1766000000000-login-freshness.js';
import { HostedPageLanguages1766100000000 } from './1766100000000-hosted-page-languages.js';
import { TenantBranding1766200000000 } from './1766200000000-tenant-branding.js';
import { ClientOrganizationPrompt1766300000000 } from './1766300000000-client-organization-prompt.js';

/** Every migration, in order. Listed explicitly so the same list works from src (tests) and dist. */
export const MIGRATIONS = [
  InitialSchema1764000000000,
  FirebasePasswordHashConfigs1764600000000,
  SamlMessageIds1764710000000,
  Scim1764800000000,
  Admin1765000000000,
  SessionUpstreamState1765100000000,
  SessionRevocationFeed1765300000000,
  NativeUsernameCi1765400000000,
  RowChangeNotifications1765500000000,
  ScimTokenChangeNotifications1765600000000,
  UserManagement1765700000000,
  MailOutbox1765800000000,
  Totp1765900000000,
  Passkeys1765950000000,
  LoginFreshness1766000000000,
  HostedPageLanguages1766100000000,
  TenantBranding1766200000000,
  ClientOrganizationPrompt1766300000000,
];
