import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A recorded fake of the few Kong Admin API endpoints the service calls (no Kong runs here):
 * `PUT /consumers/{username}`, `GET /consumers/{username}/jwt` (paginated with `next`),
 * `PUT|DELETE /consumers/{username}/jwt/{key}`. It keeps state in memory, validates what Kong's jwt
 * credential schema would (RS256 needs a PEM `rsa_public_key`), and records every call.
 */
export interface RecordedCall {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown> | undefined;
}

export interface FakeJwtCredential {
  key: string;
  algorithm: string;
  rsa_public_key: string;
  tags: string[] | null;
}

export interface FakeKongAdmin {
  url: string;
  calls: RecordedCall[];
  consumers: Map<string, Record<string, unknown>>;
  credentials: Map<string, Map<string, FakeJwtCredential>>;
  /** When set, every call answers this status. */
  failWith?: number;
  pageSize: number;
  close(): Promise<void>;
}

export async function startFakeKongAdmin(): Promise<FakeKongAdmin> {
  const fake: FakeKongAdmin = {
    url: '',
    calls: [],
    consumers: new Map(),
    credentials: new Map(),
    pageSize: 2,
    close: async () => undefined,
  };
  const send = (res: ServerResponse, status: number, body?: unknown) => {
    res.writeHead(status, body === undefined ? {} : { 'content-type': 'application/json' });
    res.end(body === undefined ? undefined : JSON.stringify(body));
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const raw = Buffer.concat(chunks).toString('utf8');
      const body = raw ? (JSON.parse(raw) as Record<string, unknown>) : undefined;
      fake.calls.push({ method: req.method ?? '', path: url.pathname + url.search, headers: req.headers, body });
      if (fake.failWith) {
        send(res, fake.failWith, { message: 'An unexpected error occurred' });
        return;
      }
      const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
      if (parts[0] !== 'consumers' || !parts[1]) {
        send(res, 404, { message: 'Not found' });
        return;
      }
      const consumer = parts[1];
      if (parts.length === 2 && req.method === 'PUT') {
        fake.consumers.set(consumer, { ...body, username: consumer });
        if (!fake.credentials.has(consumer)) fake.credentials.set(consumer, new Map());
        send(res, 200, fake.consumers.get(consumer));
        return;
      }
      const creds = fake.credentials.get(consumer);
      if (parts[2] !== 'jwt' || !creds) {
        send(res, 404, { message: 'Not found' });
        return;
      }
      if (parts.length === 3 && req.method === 'GET') {
        const all = [...creds.values()];
        const offset = Number(url.searchParams.get('offset') ?? '0');
        const page = all.slice(offset, offset + fake.pageSize);
        const next =
          offset + fake.pageSize < all.length ? `/consumers/${encodeURIComponent(consumer)}/jwt?offset=${offset + fake.pageSize}` : null;
        send(res, 200, { data: page, next });
        return;
      }
      const key = parts[3];
      if (parts.length === 4 && key && req.method === 'PUT') {
        const pem = body?.['rsa_public_key'];
        if (body?.['algorithm'] !== 'RS256' || typeof pem !== 'string' || !pem.startsWith('-----BEGIN PUBLIC KEY-----')) {
          send(res, 400, { message: 'schema violation (rsa_public_key: invalid key)' });
          return;
        }
        const cred: FakeJwtCredential = {
          key,
          algorithm: 'RS256',
          rsa_public_key: pem,
          tags: (body['tags'] as string[] | undefined) ?? null,
        };
        creds.set(key, cred);
        send(res, 200, cred);
        return;
      }
      if (parts.length === 4 && key && req.method === 'DELETE') {
        if (!creds.delete(key)) {
          send(res, 404, { message: 'Not found' });
          return;
        }
        send(res, 204);
        return;
      }
      send(res, 405, { message: 'Method not allowed' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fake.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return fake;
}
