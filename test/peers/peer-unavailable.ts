/**
 * Thrown by a peer harness when the real peer (Keycloak, SimpleSAMLphp, the Firebase emulator, ...)
 * cannot be provisioned on this machine (no JDK, no root for apt, ...). Test files turn it into a
 * skip with this message on a developer machine, and into a failure under CI=true, where every
 * peer must run.
 */
export class PeerUnavailableError extends Error {
  constructor(
    readonly peer: string,
    reason: string,
  ) {
    super(`${peer} unavailable: ${reason}`);
    this.name = 'PeerUnavailableError';
  }
}

export const peersRequired = (): boolean => process.env.CI === 'true' || process.env.CI === '1';
