import { compactVerify, decodeProtectedHeader, importSPKI } from 'jose';

/**
 * What Kong's open-source `jwt` plugin does with a bearer token, step for step (its handler and
 * parser, as published in the Kong repository: credential looked up by `claims[key_claim_name]`,
 * falling back to the JOSE header; `alg` must equal the credential's algorithm; RS256 signature
 * against the credential's `rsa_public_key`; `exp`/`nbf` from `claims_to_verify`;
 * `maximum_expiration`). No Kong runs here, so the contract tests drive this emulation with the
 * declarative file the service renders. It checks nothing Kong does not check (no `iss`, `aud`, `typ`).
 */
export interface KongCredential {
  key: string;
  algorithm: string;
  rsa_public_key: string;
}

export interface KongPluginConfig {
  key_claim_name: string;
  claims_to_verify?: string[];
  maximum_expiration?: number;
}

export type KongVerdict = { ok: true; key: string } | { ok: false; message: string };

const decodePart = (part: string | undefined): Record<string, unknown> | undefined => {
  try {
    return JSON.parse(Buffer.from(part ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
};

export async function verifyLikeKong(
  token: string,
  credentials: KongCredential[],
  conf: KongPluginConfig,
  now = Date.now(),
): Promise<KongVerdict> {
  const [h, c] = token.split('.');
  const header = decodePart(h);
  const claims = decodePart(c);
  if (!header || !claims) return { ok: false, message: 'Bad token; invalid JSON' };
  if (typeof header['alg'] !== 'string' || !['HS256', 'HS384', 'HS512', 'RS256', 'RS512', 'ES256'].includes(header['alg']))
    return { ok: false, message: 'Bad token; invalid alg' };
  const key = claims[conf.key_claim_name] ?? header[conf.key_claim_name];
  if (key === undefined || key === null) return { ok: false, message: `No mandatory '${conf.key_claim_name}' in claims` };
  if (key === '') return { ok: false, message: `Invalid '${conf.key_claim_name}' in claims` };
  const credential = credentials.find((cr) => cr.key === key);
  if (!credential) return { ok: false, message: `No credentials found for given '${conf.key_claim_name}'` };
  if (decodeProtectedHeader(token).alg !== credential.algorithm) return { ok: false, message: 'Invalid algorithm' };
  try {
    await compactVerify(token, await importSPKI(credential.rsa_public_key, credential.algorithm));
  } catch {
    return { ok: false, message: 'Invalid signature' };
  }
  const seconds = Math.floor(now / 1000);
  for (const name of conf.claims_to_verify ?? []) {
    const value = claims[name];
    if (typeof value !== 'number') return { ok: false, message: `${name} must be a number` };
    if (name === 'exp' && value <= seconds) return { ok: false, message: 'token expired' };
    if (name === 'nbf' && value > seconds) return { ok: false, message: 'token not valid yet' };
  }
  if ((conf.maximum_expiration ?? 0) > 0) {
    const exp = claims['exp'];
    if (typeof exp !== 'number' || exp - seconds > conf.maximum_expiration!)
      return { ok: false, message: 'exceeds maximum allowed expiration' };
  }
  return { ok: true, key: String(key) };
}
