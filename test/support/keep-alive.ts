import { Agent, get } from 'node:http';

export interface Answer {
  status: number;
  /** The request went out on a connection an earlier request had used. */
  reused: boolean;
  localPort: number;
  /** The Keep-Alive header of the answer (e.g. `timeout=75`). */
  keepAlive: string | string[] | undefined;
}

/**
 * Two GETs of `url` on one keep-alive connection with `idleMs` of silence between them: what a
 * gateway does with its pool of upstream connections. If the server closed the idle connection,
 * the agent opens a new one for the second request, and `reused` says so.
 */
export async function twoRequestsOneConnection(url: string, idleMs: number): Promise<[Answer, Answer]> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const once = () =>
    new Promise<Answer>((resolve, reject) => {
      const req = get(url, { agent }, (res) => {
        res.resume();
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            reused: req.reusedSocket,
            localPort: req.socket!.localPort!,
            keepAlive: res.headers['keep-alive'],
          }),
        );
      });
      req.on('error', reject);
      req.setTimeout(15_000, () => req.destroy(new Error('no answer in 15 s')));
    });
  try {
    const first = await once();
    await new Promise((r) => setTimeout(r, idleMs));
    return [first, await once()];
  } finally {
    agent.destroy();
  }
}
