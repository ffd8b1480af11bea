import { Algorithm, hash as argon2Hash, verify as argon2Verify } from '@node-rs/argon2';

export interface Argon2Params {
  timeCost: number;
  memoryKib: number;
}

/**
 * argon2id, parallelism 1 (the parameters Keycloak uses by default: 5 passes, 7 MiB), stored as a
 * PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
 *
 * The binding is `@node-rs/argon2`: prebuilt N-API binaries for every platform the image runs on,
 * so `npm ci` never compiles (the slim image has no compiler) and one install serves every Node
 * line. It verifies the PHC strings the earlier binding (`argon2`) wrote, whose parameter order
 * is `m,p,t`; see password-hasher.spec.ts.
 */
export class PasswordHasher {
  private dummy?: Promise<string>;

  constructor(private readonly params: Argon2Params) {}

  hash(password: string): Promise<string> {
    return argon2Hash(password, {
      algorithm: Algorithm.Argon2id,
      timeCost: this.params.timeCost,
      memoryCost: this.params.memoryKib,
      parallelism: 1,
    });
  }

  async verify(hash: string, password: string): Promise<boolean> {
    try {
      return await argon2Verify(hash, password);
    } catch {
      // A malformed or unsupported stored hash is a failed login, never a 500.
      return false;
    }
  }

  /** True when the stored hash is not argon2id v1.3 with exactly the configured parameters. */
  needsRehash(hash: string): boolean {
    const phc = parsePhc(hash);
    if (!phc || phc.algorithm !== 'argon2id' || phc.version !== 19) return true;
    return phc.params['m'] !== this.params.memoryKib || phc.params['t'] !== this.params.timeCost || phc.params['p'] !== 1;
  }

  /** Spends the same time as a real verification, for unknown or locked accounts. */
  async burn(password: string): Promise<void> {
    this.dummy ??= this.hash('dummy-password-for-timing-equalisation');
    await this.verify(await this.dummy, password);
  }
}

interface Phc {
  algorithm: string;
  version: number;
  params: Record<string, number>;
}

/** `$<id>$v=<n>$<k>=<n>,…$<salt>$<hash>`, parameters in any order; undefined when malformed. */
export function parsePhc(hash: string): Phc | undefined {
  const m =
    /^\$(?<algorithm>argon2(?:id|i|d))\$v=(?<version>\d+)\$(?<params>[a-z]=\d+(?:,[a-z]=\d+)*)\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/.exec(
      hash,
    )?.groups;
  if (!m?.['algorithm'] || !m['version'] || !m['params']) return undefined;
  const params: Record<string, number> = {};
  for (const [, k = '', v = ''] of m['params'].matchAll(/([a-z])=(\d+)/g)) params[k] = Number(v);
  return { algorithm: m['algorithm'], version: Number(m['version']), params };
}
