import { Injectable } from '@nestjs/common';
import type {
  BeginLoginResult,
  BindingContext,
  BrowserLogin,
  CallbackInput,
  ExternalIdentity,
  ConfigCheck,
  LoginContext,
  ProviderCapabilities,
  ValidatedBindingConfig,
} from '../port/identity-provider.port.js';
import { ProblemError } from '../../common/errors.js';
import { NativeCredentialsService } from './native-credentials.service.js';
import { MFA_POLICIES } from './totp.service.js';
import { PASSKEY_POLICIES } from './passkeys.service.js';
import { translate, type LocalText } from '../../i18n/index.js';

/** Thrown for every failed password login; the hosted form shows one generic message for all of them. */
export class InvalidCredentialsError extends Error {
  /** The message for the hosted form, in any language (ADR 0021). */
  readonly text: readonly LocalText[] = [{ key: 'signIn.invalidCredentials' }];
  constructor() {
    super(translate('en', 'signIn.invalidCredentials'));
    this.name = 'InvalidCredentialsError';
  }
}

/** Local password fallback: the service's own hosted login form. */
@Injectable()
export class NativeProvider implements BrowserLogin, ConfigCheck {
  readonly kind = 'native' as const;
  readonly capabilities: ProviderCapabilities = { loginRedirect: true, tokenExchange: false, logout: false };

  constructor(private readonly credentials: NativeCredentialsService) {}

  async beginLogin(_binding: BindingContext, ctx: LoginContext): Promise<BeginLoginResult> {
    return { redirectUrl: ctx.hostedLoginUrl, providerState: {} };
  }

  /**
   * `mfa`: the tenant's two-step policy, `off` (default), `optional` or `required`; `passkeys`:
   * whether users may register and sign in with passkeys, `off` (default) or `allowed`.
   */
  async validateConfig(input: { config: Record<string, unknown> }): Promise<ValidatedBindingConfig> {
    const mfa = input.config['mfa'];
    if (mfa !== undefined && !(MFA_POLICIES as readonly unknown[]).includes(mfa))
      throw new ProblemError({ type: 'binding-invalid', detail: `config.mfa must be one of ${MFA_POLICIES.join(', ')}.` });
    const passkeys = input.config['passkeys'];
    if (passkeys !== undefined && !(PASSKEY_POLICIES as readonly unknown[]).includes(passkeys))
      throw new ProblemError({ type: 'binding-invalid', detail: `config.passkeys must be one of ${PASSKEY_POLICIES.join(', ')}.` });
    return { config: input.config, health: { ok: true, checks: { config: 'ok' } } };
  }

  async completeLogin(binding: BindingContext, callback: CallbackInput): Promise<ExternalIdentity> {
    const username = (callback.body['username'] ?? '').trim();
    const password = callback.body['password'] ?? '';
    const result = await this.credentials.verify(binding.tenantId, username, password);
    if (!result.ok) throw new InvalidCredentialsError();
    return {
      issuer: 'native',
      subject: result.userId,
      knownUserId: result.userId,
      claims: { preferred_username: result.username },
      authTime: new Date(),
    };
  }
}
