/**
 * Small admin-API helpers for the realms a test file makes in the shared Keycloak
 * (test/peers/keycloak-shared.ts): users with passwords, organisation memberships and roles, and
 * client-credentials tokens of a realm's machine clients.
 */
import type KcAdminClient from '@keycloak/keycloak-admin-client';

export interface NewKeycloakUser {
  /** Aliases of organisations of the realm the user becomes a member of. */
  orgs?: string[];
  realmRoles?: string[];
  /** Roles of the realm's `auth-service` client. */
  clientRoles?: string[];
}

/** The id of the realm's organisation with this alias. */
export async function organizationId(admin: KcAdminClient, realm: string, alias: string): Promise<string> {
  const [org] = (await admin.organizations.find({ realm, q: `alias:${alias}` })).filter((o) => o.alias === alias);
  if (!org?.id) throw new Error(`organisation ${alias} missing in realm ${realm}`);
  return org.id;
}

/** Creates an enabled user with a permanent password and a verified email (`<username>@users.example.test`); returns its id (the `sub`). */
export async function createKeycloakUser(
  admin: KcAdminClient,
  realm: string,
  username: string,
  password: string,
  opts: NewKeycloakUser = {},
): Promise<string> {
  const { id } = await admin.users.create({
    realm,
    username,
    // Not an organisation's domain: identity-first login must not route these users to a broker.
    email: `${username}@users.example.test`,
    firstName: username[0]!.toUpperCase() + username.slice(1),
    lastName: 'Tester',
    enabled: true,
    emailVerified: true,
    credentials: [{ type: 'password', value: password, temporary: false }],
  });
  for (const alias of opts.orgs ?? [])
    await admin.organizations.addMember({ realm, orgId: await organizationId(admin, realm, alias), userId: id });
  if (opts.realmRoles?.length) {
    const roles = await Promise.all(opts.realmRoles.map((name) => admin.roles.findOneByName({ realm, name })));
    await admin.users.addRealmRoleMappings({ realm, id, roles: roles.map((r) => ({ id: r!.id!, name: r!.name! })) });
  }
  if (opts.clientRoles?.length) {
    const [client] = await admin.clients.find({ realm, clientId: 'auth-service' });
    const roles = await Promise.all(opts.clientRoles.map((roleName) => admin.clients.findRole({ realm, id: client!.id!, roleName })));
    await admin.users.addClientRoleMappings({
      realm,
      id,
      clientUniqueId: client!.id!,
      roles: roles.map((r) => ({ id: r!.id!, name: r!.name! })),
    });
  }
  return id;
}

/** A client-credentials access token of one of the realm's clients (`keycloakUrl` as the service reaches Keycloak, so the issuer matches). */
export async function clientCredentialsToken(keycloakUrl: string, realm: string, clientId: string, secret: string): Promise<string> {
  const res = await fetch(`${keycloakUrl}/realms/${realm}/protocol/openid-connect/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'client_credentials' }),
  });
  const body = (await res.json()) as { access_token?: string };
  if (res.status !== 200 || !body.access_token)
    throw new Error(`client credentials for ${clientId} in ${realm} answered ${res.status}: ${JSON.stringify(body)}`);
  return body.access_token;
}
