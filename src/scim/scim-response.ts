import type { Response } from 'express';

/**
 * Writes a SCIM answer. Controllers use `@Res()` because status and headers depend on the
 * outcome (201 + Location, 304 on If-None-Match, 204 for a bodiless group PATCH). The content
 * type was set by ScimResponseInterceptor.
 */
export function sendScim(res: Response, status: number, body?: unknown, headers: Record<string, string> = {}): void {
  res.status(status);
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  if (body === undefined || status === 204 || status === 304) {
    res.removeHeader('Content-Type');
    res.end();
    return;
  }
  res.send(JSON.stringify(body));
}
