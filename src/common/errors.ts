import type { LocalText } from '../i18n/index.js';
import { PROBLEM_TYPES, problemType, type ProblemSlug } from './problem-types.js';

/**
 * One error style: services throw these; the global filter renders them by route family
 * (OAuth error JSON, SCIM error schema, RFC 9457 problem+json). `expose` is false for 5xx so
 * internals never reach a client; the original error travels as `cause` for the logs.
 */
export abstract class DomainError extends Error {
  abstract readonly status: number;
  /**
   * Where the error page's "Return to the application" link may point (an application origin the
   * service itself registered, never a value taken from this request); browser routes only.
   */
  returnTo?: string;
  /**
   * This occurrence's message as catalogue texts, for the hosted pages in other languages than
   * English (the message itself is the English rendering); without it, the page translates by type.
   */
  text?: readonly LocalText[];
  get expose(): boolean {
    return this.status < 500;
  }
}

export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'unsupported_response_type'
  | 'invalid_scope'
  | 'access_denied'
  | 'invalid_token'
  | 'insufficient_scope'
  | 'invalid_target'
  | 'login_required'
  | 'server_error'
  | 'temporarily_unavailable'
  | 'slow_down';

const OAUTH_STATUS: Record<OAuthErrorCode, number> = {
  invalid_request: 400,
  invalid_client: 401,
  invalid_grant: 400,
  unauthorized_client: 400,
  unsupported_grant_type: 400,
  unsupported_response_type: 400,
  invalid_scope: 400,
  access_denied: 403,
  invalid_token: 401,
  insufficient_scope: 403,
  invalid_target: 400,
  login_required: 401,
  server_error: 500,
  temporarily_unavailable: 503,
  slow_down: 429,
};

export class OAuthError extends DomainError {
  readonly status: number;
  /** Seconds, for 429/503 answers. */
  retryAfter?: number;
  constructor(
    readonly error: OAuthErrorCode,
    readonly description: string,
    options?: { status?: number; cause?: unknown; retryAfter?: number },
  ) {
    super(description, { cause: options?.cause });
    this.name = 'OAuthError';
    this.status = options?.status ?? OAUTH_STATUS[error];
    this.retryAfter = options?.retryAfter;
  }
}

export type ScimType =
  | 'invalidFilter'
  | 'tooMany'
  | 'uniqueness'
  | 'mutability'
  | 'invalidSyntax'
  | 'invalidPath'
  | 'noTarget'
  | 'invalidValue'
  | 'invalidVers'
  | 'sensitive';

export class ScimError extends DomainError {
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly scimType?: ScimType,
    options?: { cause?: unknown; retryAfter?: number },
  ) {
    super(detail, { cause: options?.cause });
    this.name = 'ScimError';
    this.retryAfter = options?.retryAfter;
  }
  retryAfter?: number;
}

/** What a problem says besides its type: the detail for this occurrence, members, and how it is sent. */
interface ProblemOptions {
  /** This occurrence, in words for the client (never a secret, never a value it did not send). */
  detail?: string;
  /** Extension members of the problem document (`problems`, `check`, `dependency`, …). */
  extensions?: Record<string, unknown>;
  cause?: unknown;
  /** Seconds, for 429/503 answers. */
  retryAfter?: number;
  /** Browser routes: where the error page's "Return to the application" link may point. */
  returnTo?: string;
  /** The detail as catalogue texts (see `DomainError.text`); the detail is their English rendering. */
  text?: readonly LocalText[];
}

/**
 * A catalogued problem (common/problem-types.ts): status and title come from the catalogue unless
 * this occurrence needs another status (the same type answered as 502 or 503) or a more specific title.
 */
export interface CataloguedProblem extends ProblemOptions {
  type: ProblemSlug;
  status?: number;
  title?: string;
}

/** A problem with no type of its own (`about:blank`: the status says it all, RFC 9457 §4.2.1). */
export interface UntypedProblem extends ProblemOptions {
  type?: undefined;
  status: number;
  title: string;
}

/** RFC 9457 problem; `type` is a stable URN from the catalogue so clients can switch on it. */
export class ProblemError extends DomainError {
  readonly status: number;
  readonly title: string;
  readonly detail?: string;
  readonly type: string;
  readonly extensions: Record<string, unknown>;
  retryAfter?: number;
  constructor(problem: CataloguedProblem | UntypedProblem) {
    const p =
      problem.type === undefined
        ? { ...problem, typeUri: 'about:blank' }
        : {
            ...problem,
            status: problem.status ?? PROBLEM_TYPES[problem.type].status,
            title: problem.title ?? PROBLEM_TYPES[problem.type].title,
            typeUri: problemType(problem.type),
          };
    super(p.detail ?? p.title, { cause: p.cause });
    this.name = 'ProblemError';
    this.status = p.status;
    this.title = p.title;
    this.detail = p.detail;
    this.type = p.typeUri;
    this.extensions = p.extensions ?? {};
    this.retryAfter = p.retryAfter;
    this.returnTo = p.returnTo;
    this.text = p.text;
  }
}

export { problemType };

/**
 * Text no route accepts: U+0000 (PostgreSQL cannot store it), invalid UTF-8, an unpaired UTF-16
 * surrogate. Refused once, at the edge (common/input-guard.middleware.ts); SCIM renders it as
 * `invalidValue`, OAuth as `invalid_request`.
 */
export class InvalidCharactersError extends ProblemError {
  constructor(where: string, flaw: string) {
    super({ type: 'invalid-characters', detail: `The ${where} contains ${flaw}.` });
    this.name = 'InvalidCharactersError';
  }
}

/**
 * Why a dependency was unavailable, for the log line of its 503/502: the first error code along the
 * cause chain (ECONNREFUSED, 57P01, OAUTH_TIMEOUT, …), `timeout` for a wait that ran out without
 * one (a pool that could not hand out or open a connection in time, a read that timed out),
 * `connection terminated` for a connection lost without a code, or the error's name. Never a
 * message, which could carry values.
 */
export function unavailableReason(err: unknown): string {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth += 1) {
    const code = (e as { code?: unknown }).code ?? (e as { driverError?: { code?: unknown } }).driverError?.code;
    if (typeof code === 'string' && code !== '') return code;
    if (e.name === 'TimeoutError' || /\btimeout\b/i.test(e.message)) return 'timeout';
    if (/^Connection terminated/i.test(e.message)) return 'connection terminated';
  }
  return err instanceof Error ? err.name : 'unknown';
}

/** Thrown when a dependency (database, upstream IdP) is unavailable; rendered as 503/502. */
export class DependencyUnavailableError extends ProblemError {
  /** The detail is written by us and names only the dependency: safe to show even though it is a 5xx. */
  override get expose(): boolean {
    return true;
  }
  constructor(dependency: string, detail: string, options?: { cause?: unknown; status?: number }) {
    super({
      type: 'dependency-unavailable',
      status: options?.status,
      title: `${dependency} unavailable`,
      detail,
      extensions: { dependency },
      cause: options?.cause,
      retryAfter: 5,
    });
  }
}

export class RateLimitedError extends ProblemError {
  constructor(retryAfter: number, what: string) {
    super({ type: 'rate-limited', detail: `Too many ${what}; retry after ${retryAfter} s.`, retryAfter });
  }
}

/**
 * A Bearer-protected resource refused the request (RFC 6750 §3): no token (no error code), a token
 * that is invalid, expired or no longer live (`invalid_token`, 401), or one without the right to
 * this resource (`insufficient_scope`, 403). The filter sends the `WWW-Authenticate` challenge on
 * every route family and renders the body in the family's own format.
 */
export class BearerTokenError extends DomainError {
  readonly status: number;
  constructor(
    readonly error: 'invalid_token' | 'insufficient_scope' | undefined,
    readonly description: string,
    options?: { cause?: unknown },
  ) {
    super(description, { cause: options?.cause });
    this.name = 'BearerTokenError';
    this.status = error === 'insufficient_scope' ? 403 : 401;
  }

  get challenge(): string {
    const params = ['realm="auth-service"'];
    if (this.error) params.push(`error="${this.error}"`, `error_description="${this.description.replace(/["\\]/g, '')}"`);
    return `Bearer ${params.join(', ')}`;
  }
}
