import type { INestApplicationContext } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { Database } from '../database/database.js';
import { AuditService } from '../audit/audit.service.js';
import { TenantsService } from '../tenants/tenants.service.js';
import { ClientsService } from '../clients/clients.service.js';
import { ProblemError } from '../common/errors.js';
import { randomToken } from '../crypto/random.js';
import { ADMIN_SCOPE } from './admin-auth.js';

export interface BootstrapResult {
  tenantId: string;
  clientId: string;
  clientSecret: string;
}

/** Bootstrap refused (the client exists already, or is not one to rotate): the message says what to run instead. */
export class BootstrapRefused extends Error {
  override name = 'BootstrapRefused';
}

const BOOTSTRAPPED = 'admin.bootstrapped';

/** The lost-secret way out, in every message that mentions an existing operator client. */
export const rotateHint = (clientId: string) =>
  `npm run admin -- bootstrap --rotate${clientId === 'ops-admin' ? '' : ` --id ${clientId}`} issues a new secret (the old one stops working)`;

/**
 * First start of a deployment: creates the operator tenant (OPERATOR_TENANT) if missing and a
 * machine client with the `admin` scope, whose secret is returned once (or the given one is set,
 * and nothing secret is returned that the caller did not already have). Run by the first start of
 * the service (firstStartBootstrap) or by `npm run admin -- bootstrap`; everything after that goes
 * through the admin API. A client of that id that exists already is refused, never replaced.
 */
export async function bootstrapAdmin(
  app: INestApplicationContext,
  clientId = 'ops-admin',
  opts: { secret?: string; source?: string } = {},
): Promise<BootstrapResult> {
  const config = app.get(AppConfig);
  const db = app.get(Database);
  const clients = app.get(ClientsService);
  const audit = app.get(AuditService);
  const exists = () =>
    new BootstrapRefused(`client "${clientId}" exists already: bootstrap runs once. Lost its secret? ${rotateHint(clientId)}.`);
  if (await clients.get(clientId)) throw exists();
  const tenants = app.get(TenantsService);
  const operator =
    (await tenants.findActiveBySlug(config.OPERATOR_TENANT)) ?? (await tenants.create(config.OPERATOR_TENANT, 'Platform operators'));
  let secret: string;
  try {
    // The client (with the given secret, else a generated one) and its audit event commit together.
    ({ secret } = await db.transaction('platform', async (tx) => {
      const made = await clients.createIn(
        tx,
        { id: clientId, name: 'Operator admin client', kind: 'machine', tenantId: operator.id, scopes: [ADMIN_SCOPE] },
        opts.secret,
      );
      await audit.record(tx, {
        tenantId: null,
        actor: 'bootstrap',
        action: BOOTSTRAPPED,
        target: clientId,
        data: { source: opts.source ?? 'cli' },
      });
      return made;
    }));
  } catch (err) {
    // Another process (a replica, the CLI) made it in between: the primary key decided.
    if (err instanceof ProblemError && err.status === 409) throw exists();
    throw err;
  }
  return { tenantId: operator.id, clientId, clientSecret: secret };
}

/**
 * A new secret for an operator client whose secret was lost (`bootstrap --rotate`): only an
 * enabled `admin` machine client of the operator tenant; audited. The old secret stops working at
 * once on every replica (the clients row-change notification drops their caches).
 */
export async function rotateAdminSecret(app: INestApplicationContext, clientId = 'ops-admin'): Promise<BootstrapResult> {
  const config = app.get(AppConfig);
  const db = app.get(Database);
  const clients = app.get(ClientsService);
  const row = await clients.get(clientId);
  if (!row) throw new BootstrapRefused(`no client "${clientId}" to rotate: \`npm run admin -- bootstrap\` creates it.`);
  const operator = await app.get(TenantsService).findActiveBySlug(config.OPERATOR_TENANT);
  if (row.kind !== 'machine' || !row.scopes.includes(ADMIN_SCOPE) || !operator || row.tenantId !== operator.id)
    throw new BootstrapRefused(
      `client "${clientId}" is not an operator admin client (a machine client with the "${ADMIN_SCOPE}" scope of the operator tenant): rotate other clients through the admin API.`,
    );
  if (!row.enabled) throw new BootstrapRefused(`client "${clientId}" is disabled: a new secret would not sign it in.`);
  const secret = randomToken();
  await db.transaction('platform', async (tx) => {
    await clients.replaceSecretIn(tx, clientId, secret);
    await app.get(AuditService).record(tx, { tenantId: null, actor: 'bootstrap', action: 'admin.secret_rotated', target: clientId });
  });
  db.rowsChanged('clients');
  return { tenantId: operator.id, clientId, clientSecret: secret };
}

/** What the start-up output ends with: the one-time credential block, or one line saying what to do next. */
export type StartupNotice = { credentials: string } | { next: string };

/** The commands that use an operator client, as printed after bootstrap (ADMIN_URL included). */
export const adminEnvLine = (adminUrl: string, clientId: string, secret: string) =>
  `export ADMIN_URL=${adminUrl} ADMIN_CLIENT_ID=${clientId} ADMIN_CLIENT_SECRET=${secret}`;

/**
 * On a start of the service: when no operator client was ever made on this database (no
 * `admin.bootstrapped` audit event), makes one if BOOTSTRAP_ADMIN_ON_START allows it, like
 * Keycloak's bootstrap admin. A generated secret is returned for printing once (never outside
 * development: production only accepts BOOTSTRAP_ADMIN_CLIENT_SECRET). Under WORKERS > 1 the first
 * worker starts alone and does it; a concurrent replica loses on the client's primary key.
 */
export async function firstStartBootstrap(app: INestApplicationContext): Promise<StartupNotice> {
  const config = app.get(AppConfig);
  const adminUrl = config.issuer;
  // The configured client when it was made, else the latest one bootstrap made.
  const done = await app.get(AuditService).latestPlatformTarget(BOOTSTRAPPED, config.BOOTSTRAP_ADMIN_CLIENT_ID);
  const usage = (clientId: string) =>
    `next: ${adminEnvLine(adminUrl, clientId, '…')} and run \`npm run admin -- tenants list\` (see README "Onboard a tenant"); lost the secret? ${rotateHint(clientId)}`;
  if (done !== undefined) return { next: usage(done) };
  const id = config.BOOTSTRAP_ADMIN_CLIENT_ID;
  const fromEnv = config.BOOTSTRAP_ADMIN_CLIENT_SECRET;
  // A generated secret is printed, so never in production (loadConfig refuses that combination too).
  if (!config.bootstrapAdminOnStart || (config.isProduction && !fromEnv))
    return {
      next: `next: no operator client yet: run \`npm run admin -- bootstrap\` with this service's environment (it prints one once), or set BOOTSTRAP_ADMIN_CLIENT_SECRET`,
    };
  let made: BootstrapResult;
  try {
    made = await bootstrapAdmin(app, id, {
      secret: fromEnv,
      source: fromEnv ? 'first-start, BOOTSTRAP_ADMIN_CLIENT_SECRET' : 'first-start',
    });
  } catch (err) {
    if (err instanceof BootstrapRefused) return { next: usage(id) };
    throw err;
  }
  if (fromEnv)
    return {
      next: `next: created the operator client "${id}" with BOOTSTRAP_ADMIN_CLIENT_SECRET: ${adminEnvLine(adminUrl, id, '<that secret>')}`,
    };
  const rule = '='.repeat(78);
  return {
    credentials: [
      rule,
      'auth-service: first start. An operator client was created; its secret is shown ONCE, here:',
      '',
      `  ADMIN_CLIENT_ID=${made.clientId}`,
      `  ADMIN_CLIENT_SECRET=${made.clientSecret}`,
      '',
      'Next, in another terminal:',
      `  ${adminEnvLine(adminUrl, made.clientId, made.clientSecret)}`,
      '  npm run admin -- tenants list',
      `Lost it? ${rotateHint(made.clientId)}.`,
      rule,
      '',
    ].join('\n'),
  };
}
