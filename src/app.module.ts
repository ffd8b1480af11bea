import { Module, type DynamicModule } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DestinationStream } from 'pino';
import { randomUUID } from 'node:crypto';
import { tenantOfRequest } from './common/request-context.js';
import { AppConfig } from './config/app-config.js';
import { Database } from './database/database.js';
import { SecretBox } from './crypto/secret-box.js';
import { SigningKeysService } from './tokens/signing-keys.service.js';
import { SigningKeysRepository } from './tokens/signing-keys.repository.js';
import { TokenIssuerService } from './tokens/token-issuer.service.js';
import { TenantsService } from './tenants/tenants.service.js';
import { BindingsService } from './tenants/bindings.service.js';
import { TenantsRepository } from './tenants/tenants.repository.js';
import { BindingsRepository } from './tenants/bindings.repository.js';
import { UsersService } from './users/users.service.js';
import { UsersRepository } from './users/users.repository.js';
import { NativeCredentialsRepository } from './users/native-credentials.repository.js';
import { UserFactorsRepository } from './users/user-factors.repository.js';
import { UserPasskeysRepository } from './users/user-passkeys.repository.js';
import { PasskeyService } from './identity/native/passkeys.service.js';
import { TotpService } from './identity/native/totp.service.js';
import { FirebaseHashConfigsRepository } from './identity/firebase/firebase-hash-configs.repository.js';
import { AuditService } from './audit/audit.service.js';
import { AuditRepository } from './audit/audit.repository.js';
import { RATE_LIMIT_PROVIDERS } from './rate-limit/rate-limit.module.js';
import { ClientsService } from './clients/clients.service.js';
import { ClientsRepository } from './clients/clients.repository.js';
import { LoginService } from './login/login.service.js';
import { PageContextService } from './login/page-context.service.js';
import { TokenService } from './oauth/token.service.js';
import { AccessTokenVerifier } from './oauth/access-token.verifier.js';
import { AccessTokenGuard, AccessTokenStrategy } from './oauth/access-token.guard.js';
import { OAuthController } from './oauth/oauth.controller.js';
import { LoginController } from './login/login.controller.js';
import { WellKnownController } from './well-known/well-known.controller.js';
import { HealthController } from './health/health.controller.js';
import { HealthService } from './health/health.service.js';
import { IdentityProviderRegistry } from './identity/identity-provider.registry.js';
import { IDENTITY_PROVIDERS, type IdentityProvider } from './identity/port/identity-provider.port.js';
import { NativeCredentialsService } from './identity/native/native-credentials.service.js';
import { ADAPTERS } from './identity/adapters.js';
import { SCIM_CONTROLLERS, SCIM_PROVIDERS } from './scim/scim.module.js';
import { ADMIN_CONTROLLERS, ADMIN_PROVIDERS } from './admin/admin.module.js';
import { SamlController } from './login/saml-acs.controller.js';
import { SamlIdpMetadataService } from './identity/saml/saml-idp-metadata.service.js';
import { SamlMessageIdStore } from './identity/saml/saml-message-ids.js';
import { LEGACY_PASSWORD_VERIFIERS } from './identity/native/legacy-password.port.js';
import { FirebaseCertificateCache } from './identity/firebase/firebase-certificates.js';
import { FirebaseAdminGateway } from './identity/firebase/firebase-admin.gateway.js';
import { FirebaseHashConfigStore } from './identity/firebase/firebase-hash-configs.js';
import { FirebasePasswordVerifier } from './identity/firebase/firebase-password.verifier.js';
import { FirebaseImportService } from './identity/firebase/firebase-import.service.js';
import { UpstreamLogoutService } from './login/upstream-logout.service.js';
import { SessionsRepository } from './sessions/sessions.repository.js';
import { SessionsService } from './sessions/sessions.service.js';
import { LoginTransactionsRepository } from './login/login-transactions.repository.js';
import { SamlMessageIdsRepository } from './identity/saml/saml-message-ids.repository.js';
import { SamlAcsService } from './login/saml-acs.service.js';
import { KeycloakRealms } from './identity/keycloak/keycloak-realms.js';
import { KeycloakHealthService } from './identity/keycloak/keycloak-health.service.js';
import { KeycloakProvisioningService } from './identity/keycloak/keycloak-provisioning.service.js';
import { GATEWAY_CONTROLLERS, GATEWAY_PROVIDERS } from './gateway/gateway.module.js';
import { METRICS_CONTROLLERS, METRICS_PROVIDERS } from './metrics/metrics.module.js';
import { MAIL_PROVIDERS } from './mail/mail.module.js';
import { AccountApiController, AccountPagesController } from './account/account.controller.js';
import { AccountService } from './account/account.service.js';
import { AccountTokensRepository } from './account/account-tokens.repository.js';
import { BrandingRepository } from './tenants/branding.repository.js';
import { BrandingService } from './tenants/branding.service.js';
import { BrandingLogoController } from './login/branding-logo.controller.js';

export interface AppDependencies {
  config: AppConfig;
  database: Database;
  secretBox: SecretBox;
  /** Where logs go (default stdout); tests pass a stream to read what the service logged. */
  logDestination?: DestinationStream;
}

/** Login transaction handles travel in paths (`/login/native/lt_…`): their secret part never reaches a log. */
const redactPath = (url: string): string =>
  (url.split('?')[0] ?? '').replace(/\b(lt|ac|rt|st|ak)_([0-9a-f]{32})_[A-Za-z0-9_-]+/g, '$1_$2_…');

/** Request logs carry a request id, method, path and status: never query strings, bodies, cookies or tokens. */
const loggerModule = (config: AppConfig, destination?: DestinationStream) =>
  LoggerModule.forRoot({
    pinoHttp: withDestination(destination, {
      level: config.LOG_LEVEL,
      genReqId: (req: IncomingMessage, res: ServerResponse) => {
        const incoming = req.headers['x-request-id'];
        const id = typeof incoming === 'string' && /^[A-Za-z0-9._-]{1,100}$/.test(incoming) ? incoming : randomUUID();
        res.setHeader('X-Request-Id', id);
        return id;
      },
      serializers: {
        req: (req: { id: string; method: string; url: string }) => ({ id: req.id, method: req.method, path: redactPath(req.url) }),
        res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      },
      redact: {
        paths: ['req.headers', 'res.headers', '*.password', '*.client_secret', '*.token', '*.refresh_token', '*.code'],
        remove: true,
      },
      customLogLevel: (_req: IncomingMessage, res: ServerResponse, err?: Error) => (err || res.statusCode >= 500 ? 'error' : 'info'),
      customProps: (req: IncomingMessage) => {
        const tenant = tenantOfRequest(req);
        return tenant ? { tenant } : {};
      },
      autoLogging: {
        ignore: (req: IncomingMessage) => req.url === '/health/live' || req.url === '/health/ready' || req.url === '/metrics',
      },
      ...(config.LOG_PRETTY && !destination ? { transport: { target: 'pino-pretty' } } : {}),
    }),
  });

const withDestination = <T>(destination: DestinationStream | undefined, options: T): T | [T, DestinationStream] =>
  destination ? [options, destination] : options;

@Module({})
export class AppModule {
  static forRoot(deps: AppDependencies): DynamicModule {
    return {
      module: AppModule,
      imports: [loggerModule(deps.config, deps.logDestination)],
      controllers: [
        OAuthController,
        LoginController,
        WellKnownController,
        HealthController,
        SamlController,
        ...SCIM_CONTROLLERS,
        AccountPagesController,
        AccountApiController,
        BrandingLogoController,
        ...ADMIN_CONTROLLERS,
        ...GATEWAY_CONTROLLERS,
        ...METRICS_CONTROLLERS,
      ],
      providers: [
        { provide: AppConfig, useValue: deps.config },
        { provide: Database, useValue: deps.database },
        { provide: SecretBox, useValue: deps.secretBox },
        SigningKeysService,
        TokenIssuerService,
        TenantsService,
        BindingsService,
        UsersService,
        AuditService,
        AuditRepository,
        // Repositories of #15, one marker per work package (keeps parallel branches' edits apart):
        // repositories: tenancy (tenants, bindings, clients, signing keys, idempotency, rate limits)
        TenantsRepository,
        BindingsRepository,
        ...RATE_LIMIT_PROVIDERS,
        ClientsService,
        ClientsRepository,
        SigningKeysRepository,
        HealthService,
        LoginService,
        PageContextService,
        TokenService,
        AccessTokenVerifier,
        AccessTokenStrategy,
        AccessTokenGuard,
        NativeCredentialsService,
        SamlIdpMetadataService,
        SamlMessageIdStore,
        FirebaseCertificateCache,
        FirebaseAdminGateway,
        FirebaseHashConfigStore,
        FirebasePasswordVerifier,
        FirebaseImportService,
        UpstreamLogoutService,
        // repositories: users (users, identities, native credentials, Firebase hash configs)
        UsersRepository,
        NativeCredentialsRepository,
        FirebaseHashConfigsRepository,
        // two-step verification (#17): TOTP and recovery codes
        UserFactorsRepository,
        TotpService,
        // passkeys (#17): WebAuthn credentials of native users
        UserPasskeysRepository,
        PasskeyService,
        KeycloakRealms,
        KeycloakHealthService,
        KeycloakProvisioningService,
        // repositories: sessions (sessions, refresh tokens, login transactions, codes, SAML message ids)
        SessionsRepository,
        SessionsService,
        LoginTransactionsRepository,
        SamlMessageIdsRepository,
        SamlAcsService,
        { provide: LEGACY_PASSWORD_VERIFIERS, useFactory: (...verifiers: unknown[]) => verifiers, inject: [FirebasePasswordVerifier] },
        ...ADAPTERS,
        { provide: IDENTITY_PROVIDERS, useFactory: (...adapters: IdentityProvider[]) => adapters, inject: ADAPTERS },
        IdentityProviderRegistry,
        // repositories: scim (SCIM users, groups, tokens, settings, held operations)
        ...SCIM_PROVIDERS,
        ...ADMIN_PROVIDERS,
        ...GATEWAY_PROVIDERS,
        ...METRICS_PROVIDERS,
        ...MAIL_PROVIDERS,
        AccountService,
        AccountTokensRepository,
        // per-tenant branding of the hosted pages (#18)
        BrandingRepository,
        BrandingService,
      ],
      exports: [
        TenantsService,
        BindingsService,
        BrandingService,
        ClientsService,
        NativeCredentialsService,
        SigningKeysService,
        TokenIssuerService,
        Database,
      ],
    };
  }
}
