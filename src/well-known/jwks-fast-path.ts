import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AppConfig } from '../config/app-config.js';
import type { SigningKeysService } from '../tokens/signing-keys.service.js';

const JWKS_PATH = '/.well-known/jwks.json';

/**
 * Every gateway replica fetches the JWKS, so it is the most requested document of the service. It
 * is already in memory with its ETag; answering it before the Express/Nest pipeline (body parsers,
 * cookie parsing, request logging, routing) roughly triples the rate one core can serve. Same
 * headers and 304 behaviour as the WellKnownController route it shadows.
 */
/** Writes the JWKS (or a 304 for a matching If-None-Match) from the in-memory document. */
export function sendJwks(req: IncomingMessage, res: ServerResponse, keys: SigningKeysService, config: AppConfig): void {
  const { body, etag } = keys.jwksDocument();
  res.setHeader('Cache-Control', `public, max-age=${config.JWKS_MAX_AGE_SECONDS}, must-revalidate`);
  res.setHeader('ETag', etag);
  const inm = req.headers['if-none-match'];
  if (inm && inm.split(',').some((t) => t.trim() === etag)) {
    res.statusCode = 304;
    res.end();
    return;
  }
  res.statusCode = 200;
  res.setHeader('Content-Type', 'application/jwk-set+json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.end(req.method === 'HEAD' ? undefined : body);
}

export function installJwksFastPath(server: Server, keys: SigningKeysService, config: AppConfig): void {
  const handlers = server.listeners('request') as Array<(req: IncomingMessage, res: ServerResponse) => void>;
  server.removeAllListeners('request');
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if ((req.method === 'GET' || req.method === 'HEAD') && req.url === JWKS_PATH) {
      sendJwks(req, res, keys, config);
      return;
    }
    for (const h of handlers) h(req, res);
  });
}
