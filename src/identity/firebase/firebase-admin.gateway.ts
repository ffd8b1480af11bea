import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import { createHash, randomBytes } from 'node:crypto';
import { cert, deleteApp, initializeApp, type App } from 'firebase-admin/app';
import { getAuth, type UserRecord } from 'firebase-admin/auth';
import { AppConfig } from '../../config/app-config.js';
import { DependencyUnavailableError, ProblemError } from '../../common/errors.js';
import type { FirebaseBindingConfig, FirebaseBindingSecrets } from './firebase-binding-config.js';

export interface FirebaseAccountStatus {
  disabled: boolean;
  /** Tokens authenticated before this instant (ms) are revoked (`revokeRefreshTokens`). */
  tokensValidAfter?: number;
}

const LOOKUP_TIMEOUT_MS = 10_000;

/**
 * firebase-admin, used only to ask Firebase about an account (disabled, tokens revoked). Token
 * signatures are verified by this service itself (firebase-admin cannot be pointed at another
 * certificate endpoint, and in emulator mode it accepts unsigned tokens). One firebase-admin app
 * per binding and credentials, created on first use.
 */
@Injectable()
export class FirebaseAdminGateway implements OnModuleDestroy {
  private readonly apps = new Map<string, { fingerprint: string; app: App }>();

  constructor(@Inject(AppConfig) private readonly config: AppConfig) {}

  /** The account's status, or undefined when Firebase does not know the uid. */
  async accountStatus(
    bindingId: string,
    config: FirebaseBindingConfig,
    secrets: FirebaseBindingSecrets,
    uid: string,
  ): Promise<FirebaseAccountStatus | undefined> {
    this.assertEmulatorConsistent();
    const auth = getAuth(await this.appFor(bindingId, config, secrets));
    const scoped = config.tenantId ? auth.tenantManager().authForTenant(config.tenantId) : auth;
    let user: UserRecord;
    let timer: NodeJS.Timeout | undefined;
    try {
      user = await Promise.race([
        scoped.getUser(uid),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('Firebase user lookup timed out')), LOOKUP_TIMEOUT_MS);
        }),
      ]);
    } catch (err) {
      if ((err as { code?: string }).code === 'auth/user-not-found') return undefined;
      throw new DependencyUnavailableError('Firebase', 'Firebase could not be asked whether the account is still active.', { cause: err });
    } finally {
      clearTimeout(timer);
    }
    const validAfter = user.tokensValidAfterTime ? Date.parse(user.tokensValidAfterTime) : NaN;
    return { disabled: user.disabled, tokensValidAfter: Number.isNaN(validAfter) ? undefined : validAfter };
  }

  async onModuleDestroy(): Promise<void> {
    const apps = [...this.apps.values()];
    this.apps.clear();
    await Promise.allSettled(apps.map((a) => deleteApp(a.app)));
  }

  private async appFor(bindingId: string, config: FirebaseBindingConfig, secrets: FirebaseBindingSecrets): Promise<App> {
    const sa = secrets.serviceAccount;
    const fingerprint = createHash('sha256')
      .update(JSON.stringify([config.projectId, sa?.client_email ?? null, sa?.private_key ?? null]))
      .digest('base64url');
    const existing = this.apps.get(bindingId);
    if (existing?.fingerprint === fingerprint) return existing.app;
    if (existing) {
      this.apps.delete(bindingId);
      await deleteApp(existing.app).catch(() => undefined);
    }
    const app = initializeApp(
      {
        projectId: config.projectId,
        // Without a service-account key: Google's application default credentials (workload identity).
        ...(sa
          ? { credential: cert({ projectId: sa.project_id ?? config.projectId, clientEmail: sa.client_email, privateKey: sa.private_key }) }
          : {}),
      },
      `firebase-legacy-${bindingId}-${randomBytes(4).toString('hex')}`,
    );
    this.apps.set(bindingId, { fingerprint, app });
    return app;
  }

  /**
   * firebase-admin reads FIREBASE_AUTH_EMULATOR_HOST from the process environment on every call.
   * The service's own emulator decision comes from its validated configuration; when the two
   * disagree, firebase-admin would ask a different Firebase than the one the service believes in.
   */
  private assertEmulatorConsistent(): void {
    const processHost = process.env['FIREBASE_AUTH_EMULATOR_HOST'] || undefined;
    const configured = this.config.firebaseEmulatorHost;
    if (processHost !== configured)
      throw new ProblemError({
        type: 'binding-misconfigured',
        title: 'Firebase emulator misconfigured',
        detail: 'FIREBASE_AUTH_EMULATOR_HOST differs between the configuration and the process environment.',
      });
  }
}
