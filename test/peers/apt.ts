/**
 * Installs the Debian packages of a real peer when it is missing (root only), the one way every
 * peer does it: wait for dpkg's lock (parallel test workers may all get here), refresh the package
 * lists once when the install fails, and turn a failure into the peer's PeerUnavailableError.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { PeerUnavailableError } from './peer-unavailable.js';

const run = promisify(execFile);

export async function aptInstall(peer: string, packages: string[], opts: { recommends?: boolean; missing: string }): Promise<void> {
  const args = ['install', '-y', ...(opts.recommends ? [] : ['--no-install-recommends']), ...packages];
  if (process.platform !== 'linux' || process.getuid?.() !== 0)
    throw new PeerUnavailableError(peer, `${opts.missing} and not root; run: apt-get ${args.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const lock = ['-o', 'DPkg::Lock::Timeout=300'];
  const install = () => run('apt-get', [...lock, ...args], { env, maxBuffer: 64 * 1024 * 1024 });
  try {
    try {
      await install();
    } catch {
      await run('apt-get', [...lock, 'update'], { env, maxBuffer: 64 * 1024 * 1024 });
      await install();
    }
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new PeerUnavailableError(peer, `apt-get install failed: ${(e.stderr ?? e.message).trim().split('\n').slice(-3).join(' | ')}`);
  }
}
