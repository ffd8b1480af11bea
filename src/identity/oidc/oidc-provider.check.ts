import type { BindingHealth } from '../port/identity-provider.port.js';
import { HMAC_ALGORITHMS, type ResolvedOidcBinding } from './tenant-oidc.config.js';

export const WELL_KNOWN = '/.well-known/openid-configuration';

export interface OpCheckOptions {
  /** Per request (discovery, JWKS). */
  timeoutMs: number;
  /** Plain-HTTP OPs (development and tests only). */
  allowHttp: boolean;
  /** Largest discovery or JWKS document accepted, in bytes. */
  maxBytes?: number;
}

/** What is wrong, as the admin API reports it: `type` becomes the problem's URN, `check` names the failed check. */
export interface OpCheckFailure {
  type: 'oidc-config' | 'oidc-discovery' | 'oidc-jwks';
  check: string;
  detail: string;
}

export interface OpCheckResult {
  health: BindingHealth;
  failure?: OpCheckFailure;
}

/** The discovery URL the adapter uses: the configured one, or the issuer's well-known URL (as openid-client derives it). */
export function discoveryUrlOf(r: Pick<ResolvedOidcBinding, 'issuer' | 'discoveryUrl'>): string {
  if (r.discoveryUrl) return r.discoveryUrl;
  const u = new URL(r.issuer!);
  u.pathname = `${u.pathname}${WELL_KNOWN}`.replace('//', '/');
  return u.href;
}

class FetchFailed extends Error {}

/** Why a fetch failed, in words an operator can act on (no bodies, no headers). */
function unreachable(err: unknown, timeoutMs: number): string {
  if (err instanceof FetchFailed) return err.message;
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return `is unreachable (no answer within ${Math.round(timeoutMs / 1000)} s)`;
  const code = e?.cause?.code;
  if (code === 'ECONNREFUSED') return 'is unreachable (connection refused)';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'is unreachable (host not found)';
  if (code) return `is unreachable (${code})`;
  return `is unreachable (${e?.cause?.message ?? e?.message ?? 'network error'})`;
}

async function fetchJson(url: string, accept: string, opts: OpCheckOptions): Promise<Record<string, unknown>> {
  // Redirects are not followed, as openid-client does not follow them at login.
  const res = await fetch(url, { headers: { accept }, redirect: 'manual', signal: AbortSignal.timeout(opts.timeoutMs) });
  if (res.status !== 200) {
    await res.body?.cancel();
    throw new FetchFailed(`answered HTTP ${res.status}${res.status >= 300 && res.status < 400 ? ' (redirects are not followed)' : ''}`);
  }
  const max = opts.maxBytes ?? 512 * 1024;
  if (Number(res.headers.get('content-length') ?? '0') > max) {
    await res.body?.cancel();
    throw new FetchFailed('is too large');
  }
  const text = await res.text();
  if (text.length > max) throw new FetchFailed('is too large');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new FetchFailed('is not JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new FetchFailed('is not a JSON object');
  return body as Record<string, unknown>;
}

const isEndpoint = (v: unknown, allowHttp: boolean): boolean => {
  if (typeof v !== 'string') return false;
  try {
    const u = new URL(v);
    return u.protocol === 'https:' || (allowHttp && u.protocol === 'http:');
  } catch {
    return false;
  }
};

const list = (v: unknown): string => (Array.isArray(v) ? v.map(String).join(', ') : 'none');

/**
 * Checks an OP the way a login will use it, before ops depend on it: the discovery document is
 * reachable and names the expected issuer, has the endpoints, supports the authorization code
 * flow, PKCE S256, the client's authentication method and one of the allowed ID token algorithms;
 * the JWKS is reachable and holds at least one public signing key. Never throws: the first
 * failure ends the check and is returned with the checks passed so far.
 */
export async function checkOpenIdProvider(r: ResolvedOidcBinding, opts: OpCheckOptions): Promise<OpCheckResult> {
  const checks: Record<string, string> = {};
  const fail = (type: OpCheckFailure['type'], check: string, detail: string): OpCheckResult => {
    checks[check] = `failed: ${detail}`;
    return { health: { ok: false, checks }, failure: { type, check, detail } };
  };

  const discoveryUrl = discoveryUrlOf(r);
  if (!r.issuer && !discoveryUrl.endsWith(WELL_KNOWN))
    return fail(
      'oidc-config',
      'discovery',
      `discoveryUrl ${discoveryUrl} is not an issuer's ${WELL_KNOWN} URL: also set issuer, so the OP's issuer can be checked`,
    );

  let doc: Record<string, unknown>;
  try {
    doc = await fetchJson(discoveryUrl, 'application/json', opts);
  } catch (err) {
    return fail('oidc-discovery', 'discovery', `the discovery document at ${discoveryUrl} ${unreachable(err, opts.timeoutMs)}`);
  }
  checks['discovery'] = 'ok';

  // The same rule as the adapter at login: the configured issuer exactly, or the discovery URL's prefix.
  const issuer = doc['issuer'];
  const expected = r.issuer ?? discoveryUrl.slice(0, -WELL_KNOWN.length);
  if (typeof issuer !== 'string' || issuer.length === 0)
    return fail('oidc-discovery', 'issuer', `the discovery document at ${discoveryUrl} has no issuer`);
  const matches = r.issuer ? issuer === r.issuer : `${issuer.replace(/\/+$/, '')}${WELL_KNOWN}` === discoveryUrl;
  if (!matches) return fail('oidc-discovery', 'issuer', `issuer mismatch: expected ${expected}, discovery says ${issuer}`);
  checks['issuer'] = 'ok';

  const required = ['authorization_endpoint', 'token_endpoint', 'jwks_uri', ...(r.useUserinfo ? ['userinfo_endpoint'] : [])];
  const missing = required.filter((k) => !isEndpoint(doc[k], opts.allowHttp));
  if (missing.length > 0)
    return fail(
      'oidc-discovery',
      'endpoints',
      `the discovery document lacks ${missing.join(', ')} (or ${missing.length > 1 ? 'they are not' : 'it is not'} ${opts.allowHttp ? 'an http(s)' : 'an https'} URL)`,
    );
  checks['endpoints'] = 'ok';

  const responseTypes = doc['response_types_supported'];
  if (!Array.isArray(responseTypes) || !responseTypes.includes('code'))
    return fail(
      'oidc-discovery',
      'responseTypes',
      `the OP does not support the authorization code flow (response_types_supported: ${list(responseTypes)})`,
    );
  checks['responseTypes'] = 'ok';

  const pkce = doc['code_challenge_methods_supported'];
  if (Array.isArray(pkce) && !pkce.includes('S256'))
    return fail('oidc-discovery', 'pkce', `the OP does not support PKCE S256 (code_challenge_methods_supported: ${list(pkce)})`);
  checks['pkce'] = Array.isArray(pkce) ? 'ok' : 'ok (not advertised)';

  // Absent means client_secret_basic (OpenID Connect Discovery 1.0, §3).
  const authMethods = doc['token_endpoint_auth_methods_supported'] ?? ['client_secret_basic'];
  if (Array.isArray(authMethods) && !authMethods.includes(r.tokenEndpointAuthMethod))
    return fail(
      'oidc-discovery',
      'clientAuthentication',
      `the OP does not accept ${r.tokenEndpointAuthMethod} (token_endpoint_auth_methods_supported: ${list(authMethods)})`,
    );
  checks['clientAuthentication'] = 'ok';

  const algorithms = doc['id_token_signing_alg_values_supported'];
  if (Array.isArray(algorithms) && !algorithms.some((a) => r.allowedAlgorithms.includes(String(a))))
    return fail(
      'oidc-discovery',
      'algorithms',
      `the OP signs ID tokens with ${list(algorithms)}; none of them is in allowedAlgorithms (${r.allowedAlgorithms.join(', ')})`,
    );
  checks['algorithms'] = 'ok';

  const jwksUri = doc['jwks_uri'] as string;
  let jwks: Record<string, unknown>;
  try {
    jwks = await fetchJson(jwksUri, 'application/jwk-set+json, application/json', opts);
  } catch (err) {
    return fail('oidc-jwks', 'jwks', `the JWKS at ${jwksUri} ${unreachable(err, opts.timeoutMs)}`);
  }
  const keys = jwks['keys'];
  if (!Array.isArray(keys)) return fail('oidc-jwks', 'jwks', `the JWKS at ${jwksUri} has no "keys" array`);
  // What RemoteJwks keeps: public keys only, no symmetric or private material; here also not encryption-only keys.
  const signing = keys.filter(
    (k): k is Record<string, unknown> =>
      typeof k === 'object' &&
      k !== null &&
      typeof (k as Record<string, unknown>)['kty'] === 'string' &&
      (k as Record<string, unknown>)['kty'] !== 'oct' &&
      !('d' in k) &&
      ((k as Record<string, unknown>)['use'] ?? 'sig') === 'sig',
  );
  const hmacOnly = r.allowedAlgorithms.every((a) => (HMAC_ALGORITHMS as readonly string[]).includes(a));
  if (signing.length === 0 && !hmacOnly) return fail('oidc-jwks', 'jwks', `the JWKS at ${jwksUri} holds no public signing key`);
  checks['jwks'] = `ok (${signing.length} signing key${signing.length === 1 ? '' : 's'})`;
  return { health: { ok: true, checks } };
}
