import { AsyncLocalStorage } from 'node:async_hooks';
import type { IncomingMessage } from 'node:http';

/** Per-request context: lets deep code (the database's tenant transaction) label the request log. */
interface RequestContext {
  req: IncomingMessage & { tenantId?: string };
}

const storage = new AsyncLocalStorage<RequestContext>();

export const requestContextMiddleware = (req: IncomingMessage, _res: unknown, next: () => void): void => {
  storage.run({ req }, next);
};

/** Records the tenant a request works on; the request's log line carries it (`tenant`). */
export function noteTenant(tenantId: string): void {
  const ctx = storage.getStore();
  if (ctx && !ctx.req.tenantId) ctx.req.tenantId = tenantId;
}

export const tenantOfRequest = (req: IncomingMessage): string | undefined => (req as RequestContext['req']).tenantId;

/** The id of the request being served (pino-http's, echoed as X-Request-Id), for audit events. */
export function currentRequestId(): string | undefined {
  const id = (storage.getStore()?.req as { id?: unknown } | undefined)?.id;
  return typeof id === 'string' ? id : undefined;
}
