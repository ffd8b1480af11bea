/**
 * The catalogue of RFC 9457 problem types the service answers with: each `type` is the URN
 * `urn:auth-service:problem:<slug>`, stable, so clients can switch on it; `status` is the status it
 * is normally sent with and `title` its short, fixed summary. A new problem type is one line here
 * (and in docs/problem-types.md, which a test keeps equal to this table); `problemType()` accepts
 * only the slugs listed, so there are no free-text types.
 */
export const PROBLEM_TYPES = {
  // Requests
  validation: { status: 400, title: 'Invalid request' },
  'malformed-body': { status: 400, title: 'Malformed request body' },
  'body-too-large': { status: 413, title: 'Request body too large' },
  'unsupported-encoding': { status: 415, title: 'Unsupported encoding' },
  'invalid-characters': { status: 400, title: 'Invalid characters' },
  'rate-limited': { status: 429, title: 'Too many requests' },
  unauthenticated: { status: 401, title: 'Unauthorized' },
  forbidden: { status: 403, title: 'Forbidden' },
  csrf: { status: 403, title: 'Form expired' },
  'dependency-unavailable': { status: 503, title: 'Dependency unavailable' },
  // Admin API: preconditions and idempotency
  'if-match-required': { status: 428, title: 'Precondition required' },
  'stale-etag': { status: 412, title: 'Precondition failed' },
  'idempotency-key': { status: 400, title: 'Invalid Idempotency-Key' },
  'idempotency-key-reused': { status: 422, title: 'Idempotency-Key reused' },
  'idempotency-in-progress': { status: 409, title: 'Request in progress' },
  // Tenants
  'tenant-not-found': { status: 404, title: 'Tenant not found' },
  'invalid-slug': { status: 400, title: 'Invalid slug' },
  'slug-taken': { status: 409, title: 'Slug taken' },
  'slug-immutable': { status: 400, title: 'Slug is immutable' },
  // Bindings
  'binding-not-found': { status: 404, title: 'Binding not found' },
  'binding-invalid': { status: 422, title: 'Invalid binding' },
  'binding-misconfigured': { status: 500, title: 'Binding misconfigured' },
  'status-not-editable': { status: 400, title: 'Status is not editable' },
  'not-draft': { status: 409, title: 'Not a draft' },
  'not-active': { status: 409, title: 'Not active' },
  'nothing-to-roll-back': { status: 409, title: 'Nothing to roll back' },
  'test-login-required': { status: 409, title: 'Test login required' },
  'not-testable': { status: 409, title: 'No browser login' },
  'no-sample': { status: 400, title: 'No sample' },
  'adapter-missing': { status: 501, title: 'Identity provider kind not available' },
  'idp-misconfigured': { status: 502, title: 'Identity provider misconfigured' },
  'oidc-config': { status: 422, title: 'Invalid OIDC binding' },
  'oidc-discovery': { status: 422, title: 'OIDC discovery check failed' },
  'oidc-jwks': { status: 422, title: 'OIDC JWKS check failed' },
  'saml-config': { status: 422, title: 'Invalid SAML binding' },
  'saml-metadata': { status: 422, title: 'SAML metadata check failed' },
  'saml-certificate': { status: 422, title: 'SAML certificate check failed' },
  'firebase-config': { status: 422, title: 'Invalid Firebase binding' },
  'firebase-legacy-closed': { status: 409, title: 'Firebase is closed to new tenants' },
  'firebase-binding-missing': { status: 409, title: 'No Firebase binding' },
  'invalid-firebase-export': { status: 400, title: 'Invalid Firebase export' },
  'firebase-hash-config-missing': { status: 500, title: 'Imported password unusable' },
  // Keycloak provisioning
  'keycloak-not-configured': { status: 501, title: 'Keycloak not configured' },
  'keycloak-admin-missing': { status: 501, title: 'Keycloak provisioning not configured' },
  'keycloak-conflict': { status: 409, title: 'Keycloak conflict' },
  'keycloak-domain-invalid': { status: 400, title: 'Domain not of the organisation' },
  'keycloak-organization-missing': { status: 409, title: 'Organisation not provisioned' },
  'keycloak-realm-invalid': { status: 400, title: 'Invalid realm' },
  'keycloak-refused': { status: 422, title: 'Keycloak refused the change' },
  // Clients, users, SCIM tokens, gateway
  'client-not-found': { status: 404, title: 'Client not found' },
  'client-exists': { status: 409, title: 'Client exists' },
  'invalid-redirect-uri': { status: 400, title: 'Invalid redirect URI' },
  'username-taken': { status: 409, title: 'Username taken' },
  'invalid-password': { status: 400, title: 'Invalid password' },
  'user-not-found': { status: 404, title: 'User not found' },
  'scim-managed': { status: 409, title: 'Managed by the directory' },
  'no-local-password': { status: 409, title: 'No local password' },
  'user-disabled': { status: 409, title: 'User disabled' },
  'no-email': { status: 409, title: 'No email address' },
  'password-exists': { status: 409, title: 'Password exists' },
  'email-verified': { status: 409, title: 'Email verified already' },
  'factor-not-found': { status: 404, title: 'Second factor not found' },
  'scim-token-not-found': { status: 404, title: 'SCIM token not found' },
  'kong-not-configured': { status: 409, title: 'Kong push not configured' },
  'kong-sync-failed': { status: 502, title: 'Kong Admin API failed' },
  // Branding
  'branding-invalid': { status: 422, title: 'Invalid branding' },
  'branding-contrast': { status: 422, title: 'Insufficient contrast' },
  'logo-invalid': { status: 422, title: 'Invalid logo' },
  // Browser login
  'login-expired': { status: 400, title: 'Sign-in expired' },
  'link-invalid': { status: 400, title: 'Link invalid or expired' },
  'login-step': { status: 409, title: 'Sign-in step out of order' },
  'saml-not-configured': { status: 404, title: 'Not found' },
  'saml-response-missing': { status: 400, title: 'Missing SAML response' },
  'saml-response-rejected': { status: 400, title: 'Sign-in refused' },
  'saml-idp-initiated-disabled': { status: 403, title: 'Sign-in refused' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ProblemSlug = keyof typeof PROBLEM_TYPES;

export const PROBLEM_TYPE_PREFIX = 'urn:auth-service:problem:';

/** The type URI of a catalogued problem. */
export const problemType = (slug: ProblemSlug): string => `${PROBLEM_TYPE_PREFIX}${slug}`;
