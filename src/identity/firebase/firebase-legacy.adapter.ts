import { Inject, Injectable } from '@nestjs/common';
import { AppConfig } from '../../config/app-config.js';
import { ProblemError } from '../../common/errors.js';
import { randomUUID } from 'node:crypto';
import type {
  BindingContext,
  BindingHealth,
  ConfigCheck,
  ExternalIdentity,
  ExternalTokenInput,
  HealthProbe,
  ProviderCapabilities,
  TokenExchange,
  ValidatedBindingConfig,
} from '../port/identity-provider.port.js';
import {
  firebaseIssuer,
  parseFirebaseBindingConfig,
  parseFirebaseBindingSecrets,
  type FirebaseBindingConfig,
  type FirebaseBindingSecrets,
} from './firebase-binding-config.js';
import { FirebaseCertificateCache } from './firebase-certificates.js';
import { FirebaseAdminGateway } from './firebase-admin.gateway.js';
import { FirebaseTokenRejected, verifyFirebaseIdToken } from './firebase-id-token.js';

export const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token';
export const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';

/**
 * Firebase Authentication, kept for the tenants that already use it (ADR-0002): the application
 * signs in with the Firebase client SDK as before and exchanges the Firebase ID token at the token
 * endpoint (RFC 8693) for a platform token. No redirect login: new tenants are not onboarded here.
 */
@Injectable()
export class FirebaseLegacyProvider implements TokenExchange, ConfigCheck, HealthProbe {
  readonly kind = 'firebase_legacy' as const;
  readonly capabilities: ProviderCapabilities = { loginRedirect: false, tokenExchange: true, logout: false };
  readonly exchangeTokenTypes = [ID_TOKEN_TYPE, JWT_TOKEN_TYPE] as const;

  constructor(
    @Inject(AppConfig) private readonly config: AppConfig,
    private readonly certificates: FirebaseCertificateCache,
    private readonly admin: FirebaseAdminGateway,
  ) {}

  /** Before a binding is saved: the config and secrets have the right shape (nothing is fetched). */
  async validateConfig(input: {
    tenantSlug: string;
    config: Record<string, unknown>;
    secrets: Record<string, unknown>;
  }): Promise<ValidatedBindingConfig> {
    try {
      parseFirebaseBindingConfig(input.config, { production: this.config.isProduction });
      parseFirebaseBindingSecrets(input.secrets);
    } catch (err) {
      // At use these are the operator's problem (500); at the door they are the request's (422).
      if (!(err instanceof ProblemError)) throw err;
      throw new ProblemError({ type: 'firebase-config', detail: err.detail });
    }
    return { config: input.config, health: { ok: true, checks: { config: 'ok' } } };
  }

  /**
   * Connection health of a saved binding: the configuration parses, the signing certificates can
   * be fetched (in emulator mode only when the binding names its own certificate URL: the emulator
   * signs nothing), and, when the binding asks Firebase about revoked accounts, Firebase answers a
   * lookup with the binding's credentials (an unknown uid, so no user is read).
   */
  async probe(binding: BindingContext): Promise<BindingHealth> {
    let config: FirebaseBindingConfig;
    let secrets: FirebaseBindingSecrets;
    try {
      config = parseFirebaseBindingConfig(binding.config, { production: this.config.isProduction });
      secrets = parseFirebaseBindingSecrets(binding.secrets);
    } catch (err) {
      if (!(err instanceof ProblemError)) throw err;
      return { ok: false, checks: { config: `invalid: ${err.detail ?? err.title}` } };
    }
    const checks: Record<string, string> = { config: 'ok' };
    const emulated = this.config.firebaseEmulatorHost !== undefined;
    checks['certificates'] =
      emulated && binding.config['certificateUrl'] === undefined
        ? 'skipped: emulator mode, whose tokens are unsigned'
        : await this.certificates.check(config.certificateUrl);
    if (config.checkRevoked) {
      try {
        await this.admin.accountStatus(binding.id, config, secrets, `health-probe-${randomUUID()}`);
        checks['accounts'] = 'ok';
      } catch (err) {
        const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
        checks['accounts'] = `unreachable: ${cause instanceof Error ? cause.message : 'unknown'}`;
      }
    }
    return { ok: Object.values(checks).every((v) => v === 'ok' || v.startsWith('skipped')), checks };
  }

  async exchangeToken(binding: BindingContext, input: ExternalTokenInput): Promise<ExternalIdentity> {
    const config = parseFirebaseBindingConfig(binding.config, { production: this.config.isProduction });
    const claims = await verifyFirebaseIdToken(input.token, {
      projectId: config.projectId,
      tenantId: config.tenantId,
      clockSkewSeconds: this.config.CLOCK_SKEW_SECONDS,
      acceptUnsigned: this.config.firebaseEmulatorHost !== undefined,
      keyFor: (kid) => this.certificates.key(config.certificateUrl, kid),
    });
    if (config.checkRevoked) {
      const status = await this.admin.accountStatus(binding.id, config, parseFirebaseBindingSecrets(binding.secrets), claims.sub);
      if (!status) throw new FirebaseTokenRejected('The Firebase account no longer exists.');
      if (status.disabled) throw new FirebaseTokenRejected('The Firebase account is disabled.');
      // Firebase's rule: a token authenticated before the account's tokensValidAfterTime is revoked.
      if (status.tokensValidAfter !== undefined && claims.auth_time * 1000 < status.tokensValidAfter)
        throw new FirebaseTokenRejected('The Firebase ID token has been revoked.');
    }
    return {
      issuer: firebaseIssuer(config.projectId),
      subject: claims.sub,
      claims,
      authTime: new Date(claims.auth_time * 1000),
    };
  }
}
