import { ProblemError } from '../../common/errors.js';

/** Google's published X.509 certificates for Firebase ID tokens (kid → PEM). */
export const GOOGLE_SECURETOKEN_CERTIFICATES_URL =
  'https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com';

/** `config` of a `firebase_legacy` binding. */
export interface FirebaseBindingConfig {
  /** The Firebase (Google Cloud) project id: the ID token's `aud`, and the suffix of its `iss`. */
  projectId: string;
  /** Firebase multi-tenancy (Identity Platform): the Firebase tenant whose users this binding accepts. */
  tenantId?: string;
  /** Ask Firebase (firebase-admin `getUser`) whether the user is disabled or its tokens revoked. Default true. */
  checkRevoked: boolean;
  /** Where the signing certificates are published. Default: Google's securetoken endpoint. */
  certificateUrl: string;
}

/** `secrets` of a `firebase_legacy` binding (encrypted at rest). */
export interface FirebaseBindingSecrets {
  /** A service-account key (the JSON Google issues) for firebase-admin; unset: application default credentials. */
  serviceAccount?: { project_id?: string; client_email: string; private_key: string };
}

// Project ids: 6–30 characters in production; the emulator's `demo-*` ids follow the same alphabet.
const PROJECT_ID = /^[a-z][a-z0-9-]{3,61}[a-z0-9]$/;
const FIREBASE_TENANT_ID = /^[A-Za-z0-9-]{1,128}$/;

const misconfigured = (detail: string) =>
  new ProblemError({ type: 'binding-misconfigured', title: 'Firebase binding misconfigured', detail: detail, cause: new Error(detail) });

/**
 * Validates a binding's config. Misconfiguration is the operator's problem, never the caller's: it
 * surfaces as a 500 (rendered as `server_error`), not as a rejected token.
 */
export function parseFirebaseBindingConfig(raw: Record<string, unknown>, opts: { production: boolean }): FirebaseBindingConfig {
  const projectId = raw['projectId'];
  if (typeof projectId !== 'string' || !PROJECT_ID.test(projectId))
    throw misconfigured('firebase_legacy config.projectId must be a Firebase project id.');
  const tenantId = raw['tenantId'];
  if (tenantId !== undefined && (typeof tenantId !== 'string' || !FIREBASE_TENANT_ID.test(tenantId)))
    throw misconfigured('firebase_legacy config.tenantId must be a Firebase tenant id.');
  const checkRevoked = raw['checkRevoked'];
  if (checkRevoked !== undefined && typeof checkRevoked !== 'boolean')
    throw misconfigured('firebase_legacy config.checkRevoked must be a boolean.');
  const certificateUrl = raw['certificateUrl'] ?? GOOGLE_SECURETOKEN_CERTIFICATES_URL;
  let url: URL;
  try {
    url = new URL(String(certificateUrl));
  } catch {
    throw misconfigured('firebase_legacy config.certificateUrl must be an absolute URL.');
  }
  const httpsOnly = opts.production;
  if (url.protocol !== 'https:' && (httpsOnly || url.protocol !== 'http:'))
    throw misconfigured(
      `firebase_legacy config.certificateUrl must be https${httpsOnly ? ' in production' : ' (or http outside production)'}.`,
    );
  return { projectId, tenantId: tenantId, checkRevoked: checkRevoked ?? true, certificateUrl: url.toString() };
}

export function parseFirebaseBindingSecrets(raw: Record<string, unknown>): FirebaseBindingSecrets {
  const sa = raw['serviceAccount'];
  if (sa === undefined) return {};
  if (typeof sa !== 'object' || sa === null)
    throw misconfigured('firebase_legacy secrets.serviceAccount must be a service-account key object.');
  const { client_email, private_key, project_id } = sa as Record<string, unknown>;
  if (typeof client_email !== 'string' || typeof private_key !== 'string')
    throw misconfigured('firebase_legacy secrets.serviceAccount needs client_email and private_key.');
  return { serviceAccount: { client_email, private_key, project_id: typeof project_id === 'string' ? project_id : undefined } };
}

/** The `iss` of the project's ID tokens (and the issuer recorded on the user's identity row). */
export const firebaseIssuer = (projectId: string): string => `https://securetoken.google.com/${projectId}`;
