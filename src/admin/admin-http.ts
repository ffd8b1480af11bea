import { HTTP_CODE_METADATA } from '@nestjs/common/constants.js';
import { Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import type { Request, Response } from 'express';
import { from, lastValueFrom, type Observable } from 'rxjs';
import { sha256 } from '../crypto/random.js';
import { ProblemError } from '../common/errors.js';
import { principalOf } from './admin-auth.js';
import { IdempotencyService } from './idempotency.service.js';

/** Strong ETag of a versioned resource. */
export const etagOf = (version: number): string => `"v${version}"`;

/**
 * Optimistic concurrency: updates must say which version they change (If-Match), so two
 * operators editing the same binding cannot silently overwrite each other.
 */
export function requireIfMatch(req: Request, version: number): void {
  requireEtag(req, etagOf(version));
}

/** requireIfMatch for a resource whose ETag is not a version number (a client's is a digest). */
export function requireEtag(req: Request, etag: string): void {
  const header = req.headers['if-match'];
  if (!header) throw new ProblemError({ type: 'if-match-required', detail: 'Send If-Match with the ETag you read.' });
  const tags = header.split(',').map((t) => t.trim().replace(/^W\//, ''));
  if (!tags.includes('*') && !tags.includes(etag))
    throw new ProblemError({
      type: 'stale-etag',
      detail: 'The resource changed since you read it; read it again and retry.',
      extensions: { currentEtag: etag },
    });
}

/**
 * `Idempotency-Key` on admin creates: the first request's response is stored and replayed for a
 * retry with the same key and body; the same key with another body is a 422. Keys are scoped to
 * the calling actor. The records and their rules live in IdempotencyService.
 */
@Injectable()
export class IdempotencyInterceptor implements NestInterceptor {
  constructor(private readonly idempotency: IdempotencyService) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const req = context.switchToHttp().getRequest<Request>();
    const res = context.switchToHttp().getResponse<Response>();
    const key = req.headers['idempotency-key'];
    if (req.method !== 'POST' || typeof key !== 'string') return next.handle();
    const status = (Reflect.getMetadata(HTTP_CODE_METADATA, context.getHandler()) as number | undefined) ?? 201;
    return from(this.handle(req, res, key, next, status));
  }

  private async handle(req: Request, res: Response, key: string, next: CallHandler, status: number): Promise<unknown> {
    if (key.length < 1 || key.length > 200)
      throw new ProblemError({ type: 'idempotency-key', detail: 'An Idempotency-Key is 1–200 characters.' });
    const actor = principalOf(req).actor;
    const path = req.originalUrl.split('?')[0]!;
    const requestHash = sha256(`${req.method} ${path} ${JSON.stringify(req.body ?? null)}`);
    const start = await this.idempotency.start({ actor, key, method: req.method, path, requestHash });
    if (!start.run) {
      res.status(start.status);
      res.setHeader('Idempotent-Replayed', 'true');
      return start.body;
    }
    try {
      const body = await lastValueFrom(next.handle(), { defaultValue: undefined });
      await this.idempotency.finish({ actor, key }, status, body);
      return body;
    } catch (err) {
      // Nothing was created: the key may be used again.
      await this.idempotency.release({ actor, key });
      throw err;
    }
  }
}
