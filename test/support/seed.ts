import { randomBytes } from 'node:crypto';
import { TenantsService, type Tenant } from '../../src/tenants/tenants.service.js';
import { BindingsService } from '../../src/tenants/bindings.service.js';
import { ClientsService } from '../../src/clients/clients.service.js';
import { NativeCredentialsService } from '../../src/identity/native/native-credentials.service.js';
import { parseOpaqueToken } from '../../src/crypto/opaque-token.js';
import type { ClaimMappingRules } from '../../src/identity/port/identity-provider.port.js';
import type { TestApp } from './app-harness.js';
import type { BffClient } from './bff.js';

export async function seedBff(app: TestApp, id = `bff-${randomBytes(3).toString('hex')}`): Promise<BffClient> {
  const redirectUri = 'http://127.0.0.1:9/bff/callback';
  const { secret } = await app.app.get(ClientsService).create({
    id,
    name: 'Test BFF',
    kind: 'bff',
    redirectUris: [redirectUri],
    postLogoutRedirectUris: ['http://127.0.0.1:9/bff/signed-out'],
  });
  return { clientId: id, clientSecret: secret, redirectUri };
}

export async function seedNativeTenant(
  app: TestApp,
  slug: string,
  users: Array<{ username: string; password: string; email?: string; roles?: string[] }>,
  claimMapping: ClaimMappingRules = {},
): Promise<{ tenant: Tenant; userIds: string[] }> {
  const tenant = await app.app.get(TenantsService).create(slug, `${slug} Inc.`);
  await app.app.get(BindingsService).create(tenant, { kind: 'native', claimMapping });
  const creds = app.app.get(NativeCredentialsService);
  const userIds: string[] = [];
  for (const u of users) userIds.push(await creds.createUser(tenant.id, { ...u, email: u.email ?? u.username, emailVerified: true }));
  return { tenant, userIds };
}

/**
 * Moves a rotated refresh token's rotation `seconds` into the past, as if it had been rotated that
 * long ago: the reuse grace is measured in database time, so tests age the row instead of sleeping.
 */
export async function ageRefreshRotation(app: TestApp, refreshToken: string, seconds: number): Promise<void> {
  const token = parseOpaqueToken('rt', refreshToken);
  if (!token) throw new Error('not a refresh token');
  const aged = await app.database.transaction({ tenant: token.tenantId }, (tx) =>
    tx.query(
      `UPDATE refresh_tokens SET rotated_at = rotated_at - make_interval(secs => $2) WHERE token_hash = $1 AND rotated_at IS NOT NULL`,
      [token.hash, seconds],
    ),
  );
  if (aged.rowCount !== 1) throw new Error('no rotated refresh token to age');
}
