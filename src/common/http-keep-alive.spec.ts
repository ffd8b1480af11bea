import { createServer } from 'node:http';
import { describe, expect, it } from 'vitest';
import { applyKeepAliveTimeout } from './http-keep-alive.js';

describe('applyKeepAliveTimeout', () => {
  it('keeps idle connections for the configured time, and allows headers a second longer', () => {
    const server = createServer();
    applyKeepAliveTimeout(server, 75);
    expect(server.keepAliveTimeout).toBe(75_000);
    expect(server.headersTimeout).toBe(76_000);
    expect(server.requestTimeout).toBe(300_000); // Node's default, already the longer
  });

  it('raises the request timeout when it would be shorter than the headers timeout', () => {
    const server = createServer();
    applyKeepAliveTimeout(server, 620); // e.g. behind a load balancer that keeps connections for 600 s
    expect(server.headersTimeout).toBe(621_000);
    expect(server.requestTimeout).toBe(621_000);
  });
});
