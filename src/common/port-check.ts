import { createServer } from 'node:net';

/**
 * Whether host:port can be bound right now: listens once and closes again. Resolves false when
 * another process holds it (EADDRINUSE); other refusals (EACCES, an address not on this machine)
 * reject with their code.
 */
export function portTaken(port: number, host: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.unref();
    probe.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' ? resolve(true) : reject(err)));
    probe.listen({ port, host, exclusive: true }, () => probe.close(() => resolve(false)));
  });
}

/** A port the system considers free on host now (it may be taken again before it is used). */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.unref();
    probe.once('error', reject);
    probe.listen({ port: 0, host, exclusive: true }, () => {
      const address = probe.address();
      probe.close(() => (address && typeof address === 'object' ? resolve(address.port) : reject(new Error('no port was assigned'))));
    });
  });
}

/**
 * The HTTP port is checked before anything else starts (embedded PostgreSQL, migrations, keys):
 * a second `npm start` on a taken port says so at once, and leaves nothing behind.
 */
export async function assertHttpPortFree(port: number, host: string): Promise<void> {
  if (port === 0) return;
  let taken: boolean;
  try {
    taken = await portTaken(port, host);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new Error(`cannot listen on ${host}:${port} (${code}): set PORT (and HOST) to an address this process may use`, { cause: err });
  }
  if (taken)
    throw new Error(
      `PORT ${port} on ${host} is taken (EADDRINUSE): another process listens there (an auth-service already running?). Stop it, or set PORT to a free port.`,
    );
}
