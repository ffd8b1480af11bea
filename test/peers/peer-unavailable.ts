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

/**
 * Starts (or acquires) a peer for a test file: the peer, or, on a machine that cannot provision it
 * and outside CI, the reason its tests skip (printed once). Under CI=true the error is thrown.
 */
export async function peerOrSkip<T>(
  label: string,
  start: () => Promise<T>,
): Promise<{ peer: T; unavailable?: undefined } | { peer?: undefined; unavailable: string }> {
  try {
    return { peer: await start() };
  } catch (err) {
    if (err instanceof PeerUnavailableError && !peersRequired()) {
      console.warn(`[${label}] skipping: ${err.message}`);
      return { unavailable: err.message };
    }
    throw err;
  }
}
