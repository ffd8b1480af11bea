import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { PeerUnavailableError } from '../peers/peer-unavailable.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('./gateway-validator.py', import.meta.url));

const hasPyJwt = () => {
  try {
    execFileSync(PYTHON, ['-c', 'import jwt, cryptography'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

/** Debian's python3-jwt (PyJWT) as an independent gateway-style validator; installed with apt when missing. */
export function ensurePyJwt(): void {
  if (hasPyJwt()) return;
  if (process.getuid?.() !== 0)
    throw new PeerUnavailableError('python3-jwt', 'not installed and not root (apt-get install python3-jwt python3-cryptography)');
  try {
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'python3-jwt', 'python3-cryptography'], {
      stdio: 'ignore',
      timeout: 300_000,
    });
  } catch {
    execFileSync('apt-get', ['update'], { stdio: 'ignore', timeout: 300_000 });
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'python3-jwt', 'python3-cryptography'], {
      stdio: 'ignore',
      timeout: 300_000,
    });
  }
  if (!hasPyJwt()) throw new PeerUnavailableError('python3-jwt', 'installation did not provide the jwt module');
}

export interface GatewayVerdict {
  ok: boolean;
  kid?: string;
  sub?: string;
  tid?: string;
  error?: string;
}

/** Async on purpose: the service under test runs in this process and must keep answering the JWKS fetch. */
export async function validateLikeGateway(jwksUrl: string, issuer: string, audience: string, tokens: string[]): Promise<GatewayVerdict[]> {
  const { stdout: out } = await promisify(execFile)(PYTHON, [SCRIPT, jwksUrl, issuer, audience, ...tokens], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  return out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as GatewayVerdict);
}
