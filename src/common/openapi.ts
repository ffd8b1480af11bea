import type { INestApplication } from '@nestjs/common';
import { LOCALES } from '../i18n/index.js';
import {
  DocumentBuilder,
  SwaggerModule,
  type OpenAPIObject,
  type OperationObject,
  type ReferenceObject,
  type RequestBodyObject,
  type ResponseObject,
  type SchemaObject,
} from '@nestjs/swagger';

/**
 * The OpenAPI document at /docs/openapi.json: what Swagger UI shows and client generators read.
 *
 * Nest derives paths, parameters and DTO bodies from the controllers. What it cannot know is added
 * here: the security schemes (so Swagger UI has an Authorize button), the error formats of each
 * route family as components, and each operation's summary, description, success schema and, for
 * the form-encoded OAuth endpoints, request body. The texts are kept in one table keyed by
 * operationId (`Controller_method`) rather than in decorators, so that route work in the
 * controllers and documentation work here do not edit the same lines. test/openapi.test.ts fails
 * for an operation that has no entry, so a new route cannot go undocumented.
 */

const ref = (name: string): ReferenceObject => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: SchemaObject | ReferenceObject, type = 'application/json') => ({ [type]: { schema } });
const form = (schema: SchemaObject): RequestBodyObject => ({
  required: true,
  content: { 'application/x-www-form-urlencoded': { schema } },
});
const ok = (description: string, schema?: SchemaObject | ReferenceObject, type?: string): ResponseObject => ({
  description,
  ...(schema ? { content: json(schema, type) } : {}),
});
const listOf = (item: string): SchemaObject => ({
  type: 'object',
  required: ['items', 'nextCursor'],
  properties: {
    items: { type: 'array', items: ref(item) },
    nextCursor: { type: 'string', nullable: true, description: 'Pass as `cursor` for the next page; null on the last.' },
  },
});
const scimList: SchemaObject = {
  type: 'object',
  required: ['schemas', 'totalResults', 'Resources'],
  properties: {
    schemas: { type: 'array', items: { type: 'string' }, example: ['urn:ietf:params:scim:api:messages:2.0:ListResponse'] },
    totalResults: { type: 'integer' },
    startIndex: { type: 'integer' },
    itemsPerPage: { type: 'integer' },
    Resources: { type: 'array', items: ref('ScimResource') },
  },
};

const SCHEMAS: Record<string, SchemaObject> = {
  OAuthError: {
    type: 'object',
    description: 'RFC 6749 §5.2 error, on /oauth2/*.',
    required: ['error'],
    properties: { error: { type: 'string', example: 'invalid_request' }, error_description: { type: 'string' } },
  },
  Problem: {
    type: 'object',
    description: 'RFC 9457 problem details (application/problem+json), on the admin API, health and metrics.',
    required: ['type', 'title', 'status'],
    properties: {
      type: { type: 'string', example: 'urn:auth-service:problem:validation' },
      title: { type: 'string' },
      status: { type: 'integer' },
      detail: { type: 'string' },
      instance: { type: 'string' },
    },
    additionalProperties: true,
  },
  ScimError: {
    type: 'object',
    description: 'RFC 7644 §3.12 error (application/scim+json), on /scim/v2/*.',
    required: ['schemas', 'status'],
    properties: {
      schemas: { type: 'array', items: { type: 'string' }, example: ['urn:ietf:params:scim:api:messages:2.0:Error'] },
      status: { type: 'string', example: '400' },
      scimType: { type: 'string' },
      detail: { type: 'string' },
    },
  },
  TokenRequest: {
    type: 'object',
    description:
      'Form parameters of the grants (RFC 6749 §4.1.3, §6, §4.4; RFC 8693). A confidential client authenticates with HTTP Basic, or with client_id and client_secret here (client_secret_post).',
    required: ['grant_type'],
    properties: {
      grant_type: {
        type: 'string',
        enum: ['authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:token-exchange'],
      },
      code: { type: 'string', description: 'authorization_code: the code from the redirect.' },
      redirect_uri: { type: 'string', description: 'authorization_code: the redirect_uri of the authorization request.' },
      code_verifier: { type: 'string', description: 'authorization_code: the PKCE verifier (S256).' },
      refresh_token: { type: 'string', description: 'refresh_token: the current refresh token (rotated on use).' },
      scope: { type: 'string', description: 'Space-separated scopes (client_credentials, refresh_token narrowing).' },
      subject_token: { type: 'string', description: 'token-exchange: the token to exchange.' },
      subject_token_type: { type: 'string', description: "token-exchange: the subject token's type URN." },
      client_id: { type: 'string' },
      client_secret: { type: 'string', format: 'password' },
    },
  },
  TokenResponse: {
    type: 'object',
    required: ['access_token', 'token_type', 'expires_in'],
    properties: {
      access_token: { type: 'string', description: 'A platform JWT (RS256).' },
      token_type: { type: 'string', example: 'Bearer' },
      expires_in: { type: 'integer' },
      refresh_token: { type: 'string' },
      id_token: { type: 'string' },
      scope: { type: 'string' },
      issued_token_type: { type: 'string' },
    },
  },
  RevokeRequest: {
    type: 'object',
    required: ['token'],
    properties: {
      token: { type: 'string' },
      token_type_hint: { type: 'string', enum: ['refresh_token', 'access_token'] },
      client_id: { type: 'string' },
      client_secret: { type: 'string', format: 'password' },
    },
  },
  LogoutRequest: {
    type: 'object',
    properties: {
      id_token_hint: { type: 'string' },
      post_logout_redirect_uri: { type: 'string' },
      client_id: { type: 'string' },
      state: { type: 'string' },
    },
  },
  UserInfo: {
    type: 'object',
    required: ['sub', 'tid', 'org'],
    properties: {
      sub: { type: 'string' },
      tid: { type: 'string', format: 'uuid' },
      org: { type: 'string' },
      email: { type: 'string' },
      email_verified: { type: 'boolean' },
      name: { type: 'string' },
      roles: { type: 'array', items: { type: 'string' } },
    },
  },
  Jwks: {
    type: 'object',
    required: ['keys'],
    properties: {
      keys: {
        type: 'array',
        items: {
          type: 'object',
          additionalProperties: true,
          properties: { kid: { type: 'string' }, kty: { type: 'string' }, alg: { type: 'string' }, use: { type: 'string' } },
        },
      },
    },
  },
  OpenIdConfiguration: {
    type: 'object',
    description: 'OpenID Connect Discovery 1.0 metadata.',
    required: ['issuer', 'jwks_uri'],
    additionalProperties: true,
    properties: {
      issuer: { type: 'string' },
      authorization_endpoint: { type: 'string' },
      token_endpoint: { type: 'string' },
      jwks_uri: { type: 'string' },
      userinfo_endpoint: { type: 'string' },
    },
  },
  Health: {
    type: 'object',
    required: ['status'],
    properties: { status: { type: 'string', example: 'ok' }, checks: { type: 'object', additionalProperties: { type: 'string' } } },
  },
  RevocationPage: {
    type: 'object',
    required: ['revocations', 'next_cursor', 'has_more'],
    properties: {
      revocations: {
        type: 'array',
        items: {
          type: 'object',
          required: ['sid', 'tid', 'revoked_at', 'not_after'],
          properties: {
            sid: { type: 'string' },
            tid: { type: 'string' },
            revoked_at: { type: 'string', format: 'date-time' },
            reason: { type: 'string', nullable: true },
            not_after: { type: 'string', format: 'date-time' },
          },
        },
      },
      next_cursor: { type: 'string', description: 'Pass as `since` on the next poll (also when the page is empty).' },
      has_more: { type: 'boolean', description: 'More entries are ready now: poll again at once.' },
    },
  },
  Tenant: {
    type: 'object',
    required: ['id', 'slug', 'displayName', 'status', 'version'],
    properties: {
      id: { type: 'string', format: 'uuid' },
      slug: { type: 'string' },
      displayName: { type: 'string' },
      status: { type: 'string', enum: ['active', 'suspended', 'deleted'] },
      defaultLocale: {
        type: 'string',
        enum: [...LOCALES],
        nullable: true,
        description: 'The language of the hosted pages and mails when the request names none of the shipped ones (null: English).',
      },
      version: { type: 'integer', description: 'Also the ETag ("v<version>"); send it as If-Match to update.' },
      createdAt: { type: 'string', format: 'date-time' },
      updatedAt: { type: 'string', format: 'date-time' },
    },
  },
  TenantList: listOf('Tenant'),
  ScimResource: {
    type: 'object',
    description: 'A SCIM User (RFC 7643 §4.1) or Group (§4.2).',
    required: ['schemas', 'id'],
    additionalProperties: true,
    properties: {
      schemas: { type: 'array', items: { type: 'string' } },
      id: { type: 'string' },
      externalId: { type: 'string' },
      meta: { type: 'object', additionalProperties: true },
    },
  },
  ScimListResponse: scimList,
};

interface OperationDoc {
  summary: string;
  description?: string;
  /** The success response, replacing Nest's bare one (same status code). */
  success?: ResponseObject;
  requestBody?: RequestBodyObject;
  /** Replaces the security requirement the decorators gave (or did not give). */
  security?: Array<Record<string, string[]>>;
}

const CLIENT_AUTH: Array<Record<string, string[]>> = [{ clientBasic: [] }, {}];
const BINDING_EXAMPLES = {
  oidc: {
    summary: 'A customer OIDC IdP',
    value: {
      kind: 'oidc',
      config: {
        issuer: 'https://login.example.com',
        clientId: 'auth-service',
        scopes: 'openid email profile',
        tokenEndpointAuthMethod: 'client_secret_basic',
      },
      secrets: { clientSecret: 'the-client-secret' },
      claimMapping: { roles: [{ claim: 'roles', value: 'PROJECT_ADMIN', role: 'SUPER_ADMIN' }] },
    },
  },
  native: { summary: 'Hosted username/password login', value: { kind: 'native' } },
  firebaseMigration: {
    summary: 'Ops: import an existing Firebase project (ADR-0002)',
    value: { kind: 'firebase_legacy', config: { projectId: 'my-firebase-project' }, migrationImport: true },
  },
};

const OPERATIONS: Record<string, OperationDoc> = {
  OAuthController_authorize: {
    summary: 'Start a sign-in (authorization code + PKCE)',
    description:
      "Browser route. Redirects to the organisation's IdP or the hosted login form. Errors with a trusted client and redirect URI go back to it (RFC 6749 §4.1.2.1); otherwise an error page, or the OAuth error JSON with Accept: application/json.",
    success: { description: 'Not used: the answer is a 302 redirect.' },
  },
  OAuthController_token: {
    summary: 'Issue tokens',
    description:
      'authorization_code, refresh_token, client_credentials and token exchange (RFC 8693). Rate-limited per IP and per client (429 slow_down).',
    requestBody: form(SCHEMAS['TokenRequest']!),
    success: ok('Tokens', ref('TokenResponse')),
    security: CLIENT_AUTH,
  },
  OAuthController_revoke: {
    summary: 'Revoke a refresh token (RFC 7009)',
    description: "Ends the token's session: every refresh token of its family stops working.",
    requestBody: form(SCHEMAS['RevokeRequest']!),
    success: ok('Revoked (also for an unknown token)', { type: 'object' }),
    security: CLIENT_AUTH,
  },
  OAuthController_userinfo: {
    summary: 'Describe the signed-in user (OIDC UserInfo)',
    success: ok('The user', ref('UserInfo')),
    security: [{ bearer: [] }],
  },
  OAuthController_logoutGet: {
    summary: 'RP-initiated logout',
    description:
      'Browser route: ends the session of id_token_hint, then redirects to a registered post_logout_redirect_uri, or shows a signed-out page.',
    success: ok(
      'Signed out (an HTML page); with a registered post_logout_redirect_uri the answer is a 302',
      { type: 'string' },
      'text/html',
    ),
  },
  OAuthController_logoutPost: {
    summary: 'Back-channel logout (the BFF)',
    description: 'With the access token as Bearer: ends its session (204). Without: the RP-initiated logout with form parameters.',
    requestBody: { required: false, content: { 'application/x-www-form-urlencoded': { schema: ref('LogoutRequest') } } },
    success: { description: 'Signed out' },
    security: [{ bearer: [] }, {}],
  },
  OAuthController_logoutReturn: {
    summary: "Return from the upstream IdP's logout",
    description: "Browser route: redirects on to the client's post-logout redirect URI.",
    success: { description: 'Not used: the answer is a 302 redirect.' },
  },
  RevocationsController_list: {
    summary: 'Poll the revoked-session feed (gateways)',
    description: 'A machine client with the revocations:read scope, HTTP Basic. Operator-tenant clients read every tenant.',
    success: ok('A page of revoked sessions', ref('RevocationPage')),
    security: [{ clientBasic: [] }],
  },
  WellKnownController_jwks: { summary: 'The signing keys (JWKS)', success: ok('Published keys', ref('Jwks')) },
  WellKnownController_openidConfiguration: {
    summary: 'OpenID Connect discovery',
    success: ok('Provider metadata', ref('OpenIdConfiguration')),
  },
  HealthController_live: { summary: 'Liveness', success: ok('The process answers', ref('Health')) },
  HealthController_ready: {
    summary: 'Readiness',
    description: '503 while the database is unreachable or no signing key is active.',
    success: ok('Ready', ref('Health')),
  },
  MetricsController_scrape: {
    summary: 'Prometheus metrics',
    description: 'Exists only when METRICS_TOKEN is set; Bearer <METRICS_TOKEN>.',
    success: ok('Prometheus text format', { type: 'string' }, 'text/plain'),
  },

  ScimDiscoveryController_serviceProviderConfig: {
    summary: 'SCIM service provider configuration',
    success: ok('Configuration', ref('ScimResource'), 'application/scim+json'),
  },
  ScimDiscoveryController_resourceTypes: {
    summary: 'List SCIM resource types',
    success: ok('Resource types', ref('ScimListResponse'), 'application/scim+json'),
  },
  ScimDiscoveryController_resourceType: {
    summary: 'Get a SCIM resource type',
    success: ok('Resource type', ref('ScimResource'), 'application/scim+json'),
  },
  ScimDiscoveryController_schemas: {
    summary: 'List SCIM schemas',
    success: ok('Schemas', ref('ScimListResponse'), 'application/scim+json'),
  },
  ScimDiscoveryController_schema: { summary: 'Get a SCIM schema', success: ok('Schema', ref('ScimResource'), 'application/scim+json') },
  ScimDiscoveryController_bulk: {
    summary: 'SCIM bulk (not supported)',
    description: 'Always 501: ServiceProviderConfig says bulk is not supported. Other methods answer the same.',
  },
  ScimDiscoveryController_me: {
    summary: 'SCIM /Me (not supported)',
    description: 'Always 501: SCIM tokens belong to a tenant, not to a user. Other methods answer the same.',
  },
  ScimUsersController_list: { summary: 'List or filter users', success: ok('Users', ref('ScimListResponse'), 'application/scim+json') },
  ScimUsersController_search: {
    summary: 'Search users (POST .search)',
    success: ok('Users', ref('ScimListResponse'), 'application/scim+json'),
  },
  ScimUsersController_get: { summary: 'Get a user', success: ok('User', ref('ScimResource'), 'application/scim+json') },
  ScimUsersController_create: { summary: 'Provision a user', success: ok('Created', ref('ScimResource'), 'application/scim+json') },
  ScimUsersController_replace: { summary: 'Replace a user', success: ok('Replaced', ref('ScimResource'), 'application/scim+json') },
  ScimUsersController_patch: {
    summary: 'Modify a user (PATCH operations)',
    success: ok('Modified', ref('ScimResource'), 'application/scim+json'),
  },
  ScimUsersController_remove: {
    summary: 'Deprovision a user',
    description: "May be held for review by the tenant's deprovisioning guard (503 + Retry-After).",
  },
  ScimGroupsController_list: { summary: 'List or filter groups', success: ok('Groups', ref('ScimListResponse'), 'application/scim+json') },
  ScimGroupsController_search: {
    summary: 'Search groups (POST .search)',
    success: ok('Groups', ref('ScimListResponse'), 'application/scim+json'),
  },
  ScimGroupsController_get: { summary: 'Get a group', success: ok('Group', ref('ScimResource'), 'application/scim+json') },
  ScimGroupsController_create: { summary: 'Create a group', success: ok('Created', ref('ScimResource'), 'application/scim+json') },
  ScimGroupsController_replace: { summary: 'Replace a group', success: ok('Replaced', ref('ScimResource'), 'application/scim+json') },
  ScimGroupsController_patch: {
    summary: 'Modify a group (PATCH operations)',
    success: ok('Modified', ref('ScimResource'), 'application/scim+json'),
  },
  ScimGroupsController_remove: { summary: 'Delete a group' },

  TenantsAdminController_create: { summary: 'Create a tenant', success: ok('Created', ref('Tenant')) },
  TenantsAdminController_list: { summary: 'List tenants', success: ok('A page of tenants', ref('TenantList')) },
  TenantsAdminController_get: { summary: 'Get a tenant', success: ok('The tenant (ETag: its version)', ref('Tenant')) },
  TenantsAdminController_update: {
    summary: 'Rename, suspend or reactivate a tenant, or set its password policy or default language',
    description:
      'Send If-Match with the ETag of the version you read. `defaultLocale` is one of the shipped languages (en, de, fr, es), or null to clear it.',
    success: ok('Updated', ref('Tenant')),
  },
  TenantsAdminController_remove: { summary: 'Delete a tenant', description: 'Ends every session of the tenant.' },
  BindingsAdminController_create: {
    summary: 'Add an identity-provider binding (draft)',
    description: 'A binding starts as a draft: test it (test-login, mapping preview), then activate it.',
    requestBody: { required: true, content: { 'application/json': { schema: ref('CreateBindingDto'), examples: BINDING_EXAMPLES } } },
  },
  BindingsAdminController_list: { summary: "List a tenant's bindings" },
  BindingsAdminController_rollback: { summary: 'Roll back to the previously active binding' },
  BindingsAdminController_get: { summary: 'Get a binding' },
  BindingsAdminController_update: { summary: 'Edit a binding', description: 'Send If-Match with the ETag of the version you read.' },
  BindingsAdminController_testLogin: {
    summary: 'Start a test login through a binding',
    description: "Returns a URL for the customer's IT admin; nothing is issued.",
  },
  BindingsAdminController_activate: {
    summary: 'Activate a binding',
    description: 'Send If-Match; the previously active binding is retired.',
  },
  BindingsAdminController_retire: { summary: 'Retire a binding' },
  BindingsAdminController_preview: { summary: 'Preview the claim mapping on a sample identity' },
  BindingsAdminController_health: { summary: "Check a binding's IdP (discovery, metadata, keys)" },
  ScimTokensAdminController_create: { summary: 'Issue a SCIM token', description: 'The token is shown once.' },
  ScimTokensAdminController_list: { summary: "List a tenant's SCIM tokens" },
  ScimTokensAdminController_revoke: { summary: 'Revoke a SCIM token' },
  ScimSafetyAdminController_list: { summary: 'List held SCIM deprovisioning operations' },
  ScimSafetyAdminController_release: { summary: 'Release held SCIM operations' },
  ScimSafetyAdminController_discard: { summary: 'Discard held SCIM operations' },
  ScimSafetyAdminController_updateSettings: { summary: "Change a tenant's SCIM settings (rate limit, deprovisioning guard)" },
  FirebaseImportAdminController_import: { summary: 'Import users from a Firebase Auth export' },
  ClientsAdminController_create: { summary: 'Register an OAuth client', description: 'The client secret is shown once.' },
  ClientsAdminController_list: { summary: 'List OAuth clients' },
  ClientsAdminController_get: { summary: 'Get an OAuth client' },
  ClientsAdminController_disable: { summary: 'Disable an OAuth client' },
  ClientsAdminController_update: {
    summary: 'Update an OAuth client',
    description: 'Name, redirect URIs, post-logout redirect URIs, scopes; each list given replaces the stored one. Needs If-Match.',
  },
  UsersAdminController_create: {
    summary: 'Create a native (password) user',
    description: 'The first user of a native binding, with an initial password (never returned). Audited with the user.',
  },
  SigningKeysAdminController_list: { summary: 'List signing keys' },
  SigningKeysAdminController_rotate: {
    summary: 'Rotate the signing key',
    description: 'The new key is published before it signs (publishDelaySeconds).',
  },
  AuditAdminController_list: { summary: 'List audit events' },
  GatewayAdminController_declarativeConfig: { summary: 'Kong declarative configuration for the gateway' },
  GatewayAdminController_sync: { summary: 'Push consumers and keys to the Kong Admin API' },
};

/** The error body of each route family, as the global filter (error.filter.ts) writes it. */
function errorResponse(path: string): ResponseObject {
  if (path.startsWith('/oauth2/')) return { description: 'OAuth error', content: json(ref('OAuthError')) };
  if (path.startsWith('/scim/')) return { description: 'SCIM error', content: json(ref('ScimError'), 'application/scim+json') };
  return { description: 'Problem details', content: json(ref('Problem'), 'application/problem+json') };
}

function document(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('auth-service')
    .setDescription('Multi-tenant identity broker: platform JWTs from Keycloak, tenant OIDC/SAML, Firebase legacy and native logins.')
    .setVersion('0.1.0')
    .addBearerAuth(
      {
        type: 'http',
        scheme: 'bearer',
        bearerFormat: 'JWT',
        description: 'A platform access token (admin API: client_credentials with scope admin).',
      },
      'bearer',
    )
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'A per-tenant SCIM token (admin API: scim-tokens).' }, 'scimToken')
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'METRICS_TOKEN.' }, 'metricsToken')
    .addBasicAuth({ type: 'http', scheme: 'basic', description: 'client_id and client_secret (client_secret_basic).' }, 'clientBasic')
    .build();
  const doc = SwaggerModule.createDocument(app, config);
  doc.components = { ...doc.components, schemas: { ...doc.components?.schemas, ...SCHEMAS } };
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of ['get', 'put', 'post', 'delete', 'patch'] as const) {
      const op: OperationObject | undefined = item[method];
      if (!op) continue;
      const spec = op.operationId ? OPERATIONS[op.operationId] : undefined;
      if (spec) {
        op.summary = spec.summary;
        if (spec.description) op.description = spec.description;
        if (spec.requestBody) op.requestBody = spec.requestBody;
        if (spec.security) op.security = spec.security;
        if (spec.success) {
          const code = Object.keys(op.responses).find((c) => c.startsWith('2')) ?? '200';
          op.responses[code] = spec.success;
        }
      }
      if (op.security?.some((s) => Object.keys(s).length > 0))
        op.responses['401'] ??= { ...errorResponse(path), description: 'Missing or invalid credentials' };
      op.responses['default'] = errorResponse(path);
    }
  }
  return doc;
}

/** For SwaggerModule.setup: the document is built on first request, once the app is initialised. */
export const openApiDocument = (app: INestApplication) => (): OpenAPIObject => document(app);
