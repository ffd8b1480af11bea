import argon2 from 'argon2';

export interface Argon2Params {
  timeCost: number;
  memoryKib: number;
}

/** argon2id, parallelism 1 (the parameters Keycloak uses by default: 5 passes, 7 MiB). */
export class PasswordHasher {
  private dummy?: Promise<string>;

  constructor(private readonly params: Argon2Params) {}

  hash(password: string): Promise<string> {
    return argon2.hash(password, {
      type: argon2.argon2id,
      timeCost: this.params.timeCost,
      memoryCost: this.params.memoryKib,
      parallelism: 1,
    });
  }

  async verify(hash: string, password: string): Promise<boolean> {
    try {
      return await argon2.verify(hash, password);
    } catch {
      return false;
    }
  }

  needsRehash(hash: string): boolean {
    return argon2.needsRehash(hash, { timeCost: this.params.timeCost, memoryCost: this.params.memoryKib, parallelism: 1 });
  }

  /** Spends the same time as a real verification, for unknown or locked accounts. */
  async burn(password: string): Promise<void> {
    this.dummy ??= this.hash('dummy-password-for-timing-equalisation');
    await this.verify(await this.dummy, password);
  }
}
