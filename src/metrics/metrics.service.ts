import { Inject, Injectable } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { AppConfig } from '../config/app-config.js';

export type LoginOutcome = 'success' | 'rejected' | 'error';
export type LoginFlow = 'browser' | 'token_exchange';
/** What the signing-key gauges read; the owner (tokens) registers it with `observeSigningKeys`. */
export interface SigningKeyGaugeSource {
  publishedKeys(): number;
  hasActiveKey(): boolean;
}

const GRANT_LABELS: Record<string, string> = {
  authorization_code: 'authorization_code',
  refresh_token: 'refresh_token',
  client_credentials: 'client_credentials',
  // RFC 8693 (not imported from the token service: this module must not depend on the OAuth layer).
  'urn:ietf:params:oauth:grant-type:token-exchange': 'token_exchange',
};

const FAST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const UPSTREAM_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Route family of a path: a fixed, small set (never the raw path, which carries ids). */
export function routeFamily(rawPath: string): string {
  const path = rawPath.toLowerCase(); // routes match case-insensitively
  if (path === '/oauth2/token') return 'token';
  if (path === '/oauth2/authorize') return 'authorize';
  if (path.startsWith('/oauth2/')) return 'oauth2';
  if (path.startsWith('/login/')) return 'login';
  if (path.startsWith('/saml/')) return 'saml';
  if (path.startsWith('/scim/')) return 'scim';
  if (path.startsWith('/admin/')) return 'admin';
  if (path.startsWith('/.well-known/')) return 'well_known';
  if (path.startsWith('/health/')) return 'health';
  if (path === '/metrics') return 'metrics';
  if (path === '/docs' || path.startsWith('/docs/')) return 'docs';
  return 'other';
}

const SCIM_RESOURCES: Record<string, string> = { users: 'Users', groups: 'Groups', bulk: 'Bulk' };
const SCIM_DISCOVERY = new Set(['serviceproviderconfig', 'resourcetypes', 'schemas']);

/** SCIM resource and operation of a request, from its method and path shape. */
export function scimOperation(method: string, path: string): { resource: string; operation: string } {
  const [, , , resourceSegment, rest] = path.split('/'); // '', 'scim', 'v2', resource, id | .search
  const segment = (resourceSegment ?? '').toLowerCase();
  const resource = SCIM_RESOURCES[segment] ?? (SCIM_DISCOVERY.has(segment) ? 'discovery' : 'other');
  const hasId = rest !== undefined && rest !== '';
  let operation: string;
  if (method === 'POST' && rest === '.search') operation = 'search';
  else if (method === 'GET') operation = hasId || resource === 'discovery' ? 'get' : 'list';
  else if (method === 'POST') operation = 'create';
  else if (method === 'PUT') operation = 'replace';
  else if (method === 'PATCH') operation = 'patch';
  else if (method === 'DELETE') operation = 'delete';
  else operation = 'other';
  return { resource, operation };
}

const statusOutcome = (status: number): string =>
  status === 429 ? 'rate_limited' : status >= 500 ? 'error' : status >= 400 ? 'client_error' : 'ok';

/**
 * Prometheus metrics (prom-client), one registry per service instance. Every label has a fixed set
 * of values except `tenant` on login metrics, which is the tenant id (a UUID): one series per tenant
 * × adapter × flow × outcome that has occurred since the process started (typically 1–4 per tenant);
 * METRICS_TENANT_LABEL=false folds them into `_all` for very large tenant counts.
 */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();

  private readonly logins = new Counter({
    name: 'auth_logins_total',
    help: 'Logins through an identity-provider adapter, by tenant, adapter (binding kind), flow and outcome (rejected: bad credentials or assertion; error: upstream failure).',
    labelNames: ['tenant', 'adapter', 'flow', 'outcome'] as const,
    registers: [this.registry],
  });

  private readonly idpDuration = new Histogram({
    name: 'auth_idp_request_duration_seconds',
    help: 'Time spent in an identity-provider adapter call (upstream IdP round trips; password hashing for native), by adapter, operation and outcome.',
    labelNames: ['adapter', 'operation', 'outcome'] as const,
    buckets: UPSTREAM_BUCKETS,
    registers: [this.registry],
  });

  private readonly idpErrors = new Counter({
    name: 'auth_idp_errors_total',
    help: 'Identity-provider adapter calls that failed for a reason other than the user (upstream unreachable, timeout, invalid response).',
    labelNames: ['adapter', 'operation'] as const,
    registers: [this.registry],
  });

  private readonly tokensIssued = new Counter({
    name: 'auth_tokens_issued_total',
    help: 'Successful token endpoint responses, by grant type.',
    labelNames: ['grant_type'] as const,
    registers: [this.registry],
  });

  private readonly tokenDuration = new Histogram({
    name: 'auth_token_request_duration_seconds',
    help: 'Token endpoint latency (request received to response sent), by grant type and outcome (ok, client_error, rate_limited, error).',
    labelNames: ['grant_type', 'outcome'] as const,
    buckets: FAST_BUCKETS,
    registers: [this.registry],
  });

  private readonly scimOps = new Counter({
    name: 'auth_scim_operations_total',
    help: 'SCIM requests, by resource, operation and outcome (ok, client_error, rate_limited, error).',
    labelNames: ['resource', 'operation', 'outcome'] as const,
    registers: [this.registry],
  });

  private readonly scimDuration = new Histogram({
    name: 'auth_scim_request_duration_seconds',
    help: 'SCIM request latency, by resource and operation.',
    labelNames: ['resource', 'operation'] as const,
    buckets: FAST_BUCKETS,
    registers: [this.registry],
  });

  private readonly scimCreateBatch = new Histogram({
    name: 'auth_scim_user_create_batch_size',
    help: 'SCIM user creates written together in one transaction (concurrent POST /Users of one tenant, per process).',
    buckets: [1, 2, 4, 8, 16, 32, 64, 100],
    registers: [this.registry],
  });

  private readonly rateLimited = new Counter({
    name: 'auth_rate_limited_total',
    help: 'Requests refused by a rate limit (HTTP 429), by endpoint family.',
    labelNames: ['endpoint'] as const,
    registers: [this.registry],
  });

  private readonly httpDuration = new Histogram({
    name: 'auth_http_request_duration_seconds',
    help: 'Every HTTP request, by route family and status class.',
    labelNames: ['family', 'status_class'] as const,
    buckets: FAST_BUCKETS,
    registers: [this.registry],
  });

  private readonly kongSyncs = new Counter({
    name: 'auth_kong_sync_total',
    help: 'Pushes of the signing keys to the Kong Admin API, by outcome.',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  private readonly kongLastSuccess = new Gauge({
    name: 'auth_kong_last_sync_success_timestamp_seconds',
    help: 'Unix time of the last successful push of the signing keys to Kong (0: never).',
    registers: [this.registry],
    aggregator: 'max',
  });

  /** What the signing-key gauges read at scrape time; registered by tokens (`SigningKeysService`). */
  private signingKeys?: SigningKeyGaugeSource;
  /** How a scrape reads the registry; composition swaps in the cluster-wide read (cluster.ts). */
  private scrapeSource: (registry: Registry) => Promise<string> = (registry) => registry.metrics();

  constructor(@Inject(AppConfig) private readonly config: AppConfig) {
    collectDefaultMetrics({ register: this.registry, prefix: 'auth_' });
    const keys = () => this.signingKeys;
    new Gauge({
      name: 'auth_signing_keys_published',
      help: 'Keys in this replica’s JWKS (pending + active + retired).',
      registers: [this.registry],
      aggregator: 'max', // WORKERS > 1: the processes of one replica publish the same JWKS
      collect() {
        const source = keys();
        if (source) this.set(source.publishedKeys());
      },
    });
    new Gauge({
      name: 'auth_signing_key_active',
      help: '1 when this replica has an active signing key (it cannot issue tokens otherwise).',
      registers: [this.registry],
      aggregator: 'min', // WORKERS > 1: 0 if any process of the replica lacks one
      collect() {
        const source = keys();
        if (source) this.set(source.hasActiveKey() ? 1 : 0);
      },
    });
  }

  /** tokens registers its signing keys here, so metrics (layer 1) imports nothing above it. */
  observeSigningKeys(source: SigningKeyGaugeSource): void {
    this.signingKeys = source;
  }

  /** Composition registers the cluster-wide read (under WORKERS > 1 the primary sums every worker). */
  scrapeWith(source: (registry: Registry) => Promise<string>): void {
    this.scrapeSource = source;
  }

  /** The Prometheus text of one scrape. */
  scrape(): Promise<string> {
    return this.scrapeSource(this.registry);
  }

  private tenantLabel(tenantId: string): string {
    return this.config.METRICS_TENANT_LABEL ? tenantId : '_all';
  }

  login(tenantId: string, adapter: string, flow: LoginFlow, outcome: LoginOutcome): void {
    this.logins.inc({ tenant: this.tenantLabel(tenantId), adapter, flow, outcome });
  }

  idpCall(adapter: string, operation: string, outcome: LoginOutcome, seconds: number): void {
    this.idpDuration.observe({ adapter, operation, outcome: outcome === 'success' ? 'ok' : outcome }, seconds);
    if (outcome === 'error') this.idpErrors.inc({ adapter, operation });
  }

  /**
   * For a limit that does not answer 429 (the authorization endpoint redirects back to the client
   * with error=temporarily_unavailable): 429 answers are already counted by the middleware.
   */
  rateLimitHit(endpoint: 'authorize'): void {
    this.rateLimited.inc({ endpoint });
  }

  scimCreateBatchWritten(size: number): void {
    this.scimCreateBatch.observe(size);
  }

  kongSync(outcome: 'success' | 'error'): void {
    this.kongSyncs.inc({ outcome });
    if (outcome === 'success') this.kongLastSuccess.set(Date.now() / 1000);
  }

  /** Express middleware (installed before every route): HTTP, token-endpoint, SCIM and rate-limit metrics from the finished response. */
  readonly httpMiddleware = (req: Request, res: Response, next: NextFunction): void => {
    const started = performance.now();
    res.once('finish', () => {
      const seconds = (performance.now() - started) / 1000;
      const path = (req.originalUrl ?? req.url).split('?')[0]!;
      const family = routeFamily(path);
      const status = res.statusCode;
      this.httpDuration.observe({ family, status_class: `${Math.floor(status / 100)}xx` }, seconds);
      if (status === 429) this.rateLimited.inc({ endpoint: family });
      if (family === 'token' && req.method === 'POST') {
        const raw = (req.body as Record<string, unknown> | undefined)?.['grant_type'];
        const grant = typeof raw === 'string' ? (GRANT_LABELS[raw] ?? 'other') : 'missing';
        this.tokenDuration.observe({ grant_type: grant, outcome: statusOutcome(status) }, seconds);
        if (status === 200) this.tokensIssued.inc({ grant_type: grant });
      } else if (family === 'scim') {
        const { resource, operation } = scimOperation(req.method, path);
        this.scimOps.inc({ resource, operation, outcome: statusOutcome(status) });
        this.scimDuration.observe({ resource, operation }, seconds);
      }
    });
    next();
  };
}
