/**
 * The application end of a browser login in tests: a tiny redirect target on loopback that shows
 * the authorization code it received in `#code`, for the test to redeem as the BFF would.
 */
import { createServer } from 'node:http';
import { freePort } from './free-port.js';

export interface CodeCatcher {
  redirectUri: string;
  close(): Promise<void>;
}

export async function startCodeCatcher(): Promise<CodeCatcher> {
  const port = await freePort();
  const server = createServer((req, res) => {
    const code = new URL(req.url ?? '/', 'http://x').searchParams.get('code') ?? '';
    res
      .writeHead(200, { 'content-type': 'text/html' })
      .end(`<!doctype html><title>App</title><p id="code">${code.replace(/[^A-Za-z0-9_-]/g, '')}</p>`);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    redirectUri: `http://127.0.0.1:${port}/cb`,
    close: async () => {
      // A browser keeps its connection to the application open: end it, or close() waits for it.
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
