import { HTTP_CODE_METADATA } from '@nestjs/common/constants.js';
import { Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import type { Request, Response } from 'express';
import { from, lastValueFrom, type Observable } from 'rxjs';
import { Database } from '../database/database.js';
import { SecretBox } from '../crypto/secret-box.js';
import { sha256 } from '../crypto/random.js';
import { ProblemError, problemType } from '../common/errors.js';
import { principalOf } from './admin-auth.js';

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
  if (!header)
    throw new ProblemError(428, 'Precondition required', 'Send If-Match with the ETag you read.', problemType('if-match-required'));
  const tags = header.split(',').map((t) => t.trim().replace(/^W\//, ''));
  if (!tags.includes('*') && !tags.includes(etag))
    throw new ProblemError(
      412,
      'Precondition failed',
      'The resource changed since you read it; read it again and retry.',
      problemType('stale-etag'),
      { currentEtag: etag },
    );
}

const IN_PROGRESS_SECONDS = 60;

/**
 * `Idempotency-Key` on admin creates: the first request's response is stored (encrypted: a create
 * may show a secret once) and replayed for a retry with the same key and body; the same key with
 * another body is a 422. Keys are scoped to the calling actor.
 */
@Injectable()
export class IdempotencyInterceptor implements NestInterceptor {
  constructor(
    private readonly db: Database,
    private readonly box: SecretBox,
  ) {}

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
      throw new ProblemError(400, 'Invalid Idempotency-Key', 'An Idempotency-Key is 1–200 characters.', problemType('idempotency-key'));
    const actor = principalOf(req).actor;
    const path = req.originalUrl.split('?')[0]!;
    const hash = sha256(`${req.method} ${path} ${JSON.stringify(req.body ?? null)}`);
    const context = `idempotency:${actor}:${key}`;
    await this.db.query(`DELETE FROM idempotency_keys WHERE status IS NULL AND created_at < now() - make_interval(secs => $1)`, [
      IN_PROGRESS_SECONDS,
    ]);
    const inserted = await this.db.query(
      `INSERT INTO idempotency_keys (actor, key, method, path, request_hash) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING key`,
      [actor, key, req.method, path, hash],
    );
    if (inserted.length === 0) {
      const [prior] = await this.db.query<{ request_hash: string; status: number | null; response: { sealed: string } | null }>(
        `SELECT request_hash, status, response FROM idempotency_keys WHERE actor = $1 AND key = $2`,
        [actor, key],
      );
      if (!prior || prior.request_hash !== hash)
        throw new ProblemError(
          422,
          'Idempotency-Key reused',
          'This Idempotency-Key was used with a different request.',
          problemType('idempotency-key-reused'),
        );
      if (prior.status === null || !prior.response)
        throw new ProblemError(
          409,
          'Request in progress',
          'A request with this Idempotency-Key is still being processed.',
          problemType('idempotency-in-progress'),
        );
      res.status(prior.status);
      res.setHeader('Idempotent-Replayed', 'true');
      return this.box.openJson(Buffer.from(prior.response.sealed, 'base64'), context);
    }
    try {
      const body = await lastValueFrom(next.handle(), { defaultValue: undefined });
      const sealed = this.box.sealJson(body ?? null, context).toString('base64');
      await this.db.query(`UPDATE idempotency_keys SET status = $3, response = $4 WHERE actor = $1 AND key = $2`, [
        actor,
        key,
        status,
        JSON.stringify({ sealed }),
      ]);
      return body;
    } catch (err) {
      // Nothing was created: the key may be used again.
      await this.db.query(`DELETE FROM idempotency_keys WHERE actor = $1 AND key = $2`, [actor, key]);
      throw err;
    }
  }
}
