import { exportSPKI, importJWK, type JWK } from 'jose';
import type { KeyStatus } from '../tokens/signing-keys.service.js';
import { GATEWAY_KEY_CLAIM } from '../tokens/token-issuer.service.js';

/**
 * Kong's open-source `jwt` plugin holds one static public key per credential and finds the
 * credential by the value of one claim (`key_claim_name`). So the platform gives Kong one credential
 * per published signing key, keyed by the `kid`, and repeats the `kid` in the access-token payload
 * as `at_kid` (see docs/adr/0006-kong-jwt-credentials.md). Pure functions: the admin endpoint, the
 * Admin API push and the checked-in example all render through here.
 */

/** Tag on every Kong entity the service owns (decK `select_tags`; the push only deletes tagged credentials). */
export const KONG_TAG = 'auth-service';

export interface PublishedKey {
  kid: string;
  status: Exclude<KeyStatus, 'expired'>;
  jwk: JWK;
}

export interface KongJwtCredential {
  key: string;
  algorithm: 'RS256';
  rsa_public_key: string;
  tags: string[];
}

export interface KongConfigOptions {
  consumer: string;
  /** The issuer, kept as the consumer's custom_id so an operator sees whose keys these are. */
  issuer: string;
  /** Longest lifetime Kong accepts (`maximum_expiration`): access-token TTL plus clock skew. */
  maximumExpiration: number;
  /**
   * `deck` (default): for `deck gateway sync` against a Kong with a database; `_info.select_tags`
   * keeps decK to the entities tagged `auth-service`. `dbless`: a plain Kong declarative file
   * (KONG_DECLARATIVE_CONFIG), which has no `_info` section.
   */
  flavor?: 'deck' | 'dbless';
  /** The checked-in example adds a sample service, route and the plugin; the live document does not. */
  exampleService?: { name: string; url: string; paths: string[] };
}

/** The jwt credential for one published key: its RSA public key as PEM (SPKI). */
export async function kongCredential(key: PublishedKey): Promise<KongJwtCredential> {
  const publicKey = await importJWK({ kty: key.jwk.kty, n: key.jwk.n, e: key.jwk.e }, 'RS256', { extractable: true });
  if (publicKey instanceof Uint8Array) throw new Error(`signing key ${key.kid} is not an RSA key`);
  return {
    key: key.kid,
    algorithm: 'RS256',
    rsa_public_key: `${(await exportSPKI(publicKey)).trimEnd()}\n`,
    tags: [KONG_TAG, `key-${key.status}`],
  };
}

export const kongCredentials = (keys: PublishedKey[]): Promise<KongJwtCredential[]> => Promise.all(keys.map(kongCredential));

/** The jwt plugin configuration the credentials are meant for. */
export function kongJwtPluginConfig(opts: Pick<KongConfigOptions, 'maximumExpiration'>): Record<string, unknown> {
  return {
    key_claim_name: GATEWAY_KEY_CLAIM,
    claims_to_verify: ['exp'],
    maximum_expiration: opts.maximumExpiration,
    // Tokens only in the Authorization header: never in URLs (logs) or cookies (CSRF).
    header_names: ['authorization'],
    uri_param_names: [],
    cookie_names: [],
    run_on_preflight: false,
  };
}

/** A declarative (`_format_version` 3.0) document: the consumer and one credential per published key. */
export function kongDeclarativeConfig(credentials: KongJwtCredential[], opts: KongConfigOptions): Record<string, unknown> {
  const doc: Record<string, unknown> = { _format_version: '3.0' };
  if (opts.flavor !== 'dbless') doc['_info'] = { select_tags: [KONG_TAG] };
  if (opts.exampleService) {
    doc['services'] = [
      {
        name: opts.exampleService.name,
        url: opts.exampleService.url,
        tags: [KONG_TAG],
        routes: [{ name: `${opts.exampleService.name}-route`, paths: opts.exampleService.paths, tags: [KONG_TAG] }],
        plugins: [{ name: 'jwt', tags: [KONG_TAG], config: kongJwtPluginConfig(opts) }],
      },
    ];
  }
  doc['consumers'] = [{ username: opts.consumer, custom_id: opts.issuer, tags: [KONG_TAG], jwt_secrets: credentials }];
  return doc;
}

const HEADER = (opts: KongConfigOptions) =>
  [
    opts.flavor === 'dbless'
      ? '# Kong declarative configuration (DB-less), rendered by auth-service: regenerate it, do not edit it.'
      : '# decK configuration (`deck gateway sync`), rendered by auth-service: regenerate it, do not edit it.',
    ...(opts.exampleService ? ['# EXAMPLE: the keys below are throwaway test keys and the service is a placeholder.'] : []),
    '# One jwt credential per signing key in the JWKS (pending, active, retired), keyed by its kid.',
    `# Access tokens repeat the kid in the payload claim "${GATEWAY_KEY_CLAIM}"; enable the jwt plugin with:`,
    ...yamlLines(kongJwtPluginConfig(opts), 0).map((l) => `#   ${l}`),
  ].join('\n');

/**
 * YAML for the fixed shape above, without a YAML library in production: every scalar is written
 * as a JSON string or number (valid YAML), PEM keys as literal blocks.
 */
export function kongConfigYaml(doc: Record<string, unknown>, opts: KongConfigOptions): string {
  return `${HEADER(opts)}\n${yamlLines(doc, 0).join('\n')}\n`;
}

function scalar(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(String(v));
}

function yamlLines(value: unknown, indent: number): string[] {
  const pad = ' '.repeat(indent);
  const out: string[] = [];
  if (Array.isArray(value)) {
    for (const item of value) {
      if (item !== null && typeof item === 'object') {
        const inner = yamlLines(item, indent + 2);
        out.push(`${pad}- ${inner[0]!.trimStart()}`, ...inner.slice(1));
      } else out.push(`${pad}- ${scalar(item)}`);
    }
    return out;
  }
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (Array.isArray(v) && v.length === 0) out.push(`${pad}${k}: []`);
    else if (Array.isArray(v) || (v !== null && typeof v === 'object')) out.push(`${pad}${k}:`, ...yamlLines(v, indent + 2));
    else if (typeof v === 'string' && v.includes('\n'))
      out.push(
        `${pad}${k}: |`,
        ...v
          .trimEnd()
          .split('\n')
          .map((l) => `${pad}  ${l}`),
      );
    else out.push(`${pad}${k}: ${scalar(v)}`);
  }
  return out;
}
