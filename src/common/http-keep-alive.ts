import type { Server } from 'node:http';

/**
 * Keeps idle keep-alive connections open longer than the gateway in front keeps idle upstream
 * connections. With Node's default (5 s) the service closes a connection Kong still counts as
 * reusable (its upstream_keepalive_idle_timeout is 60 s): the next request Kong sends on it meets a
 * reset, and the client gets a 502, intermittently and mostly under light load.
 */
export function applyKeepAliveTimeout(server: Server, seconds: number): void {
  server.keepAliveTimeout = seconds * 1000;
  // headersTimeout above keepAliveTimeout: where the headers timer counts from the end of the
  // previous request on a connection, a shorter one closes an idle connection before the keep-alive
  // timer would. And requestTimeout (300 s by default) not below headersTimeout, as Node requires.
  server.headersTimeout = server.keepAliveTimeout + 1000;
  if (server.requestTimeout > 0 && server.requestTimeout < server.headersTimeout) server.requestTimeout = server.headersTimeout;
}
