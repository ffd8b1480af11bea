import { DomainError } from '../common/errors.js';
import type { BindingContext, IdentityProvider } from './port/identity-provider.port.js';
import type { LoginOutcome, MetricsService } from '../metrics/metrics.service.js';

/** A user's failure (wrong password, rejected assertion) or the upstream's (unreachable, broken answer). */
export function classifyFailure(err: unknown): Exclude<LoginOutcome, 'success'> {
  if (err instanceof DomainError) return err.status < 500 ? 'rejected' : 'error';
  if (err instanceof Error && err.name === 'InvalidCredentialsError') return 'rejected';
  return 'error';
}

type Method = 'beginLogin' | 'completeLogin' | 'exchangeToken' | 'probe';
const OPERATIONS: Record<Method, string> = {
  beginLogin: 'begin_login',
  completeLogin: 'complete_login',
  exchangeToken: 'exchange_token',
  probe: 'probe',
};

/**
 * The adapter as the registry hands it out, timing every upstream call (latency and errors per
 * adapter) and counting completed logins and token exchanges per tenant — one place instead of a
 * line in each adapter. Everything else passes through to the adapter itself (methods bound to it,
 * optional methods stay absent), so callers cannot tell the difference.
 */
export function instrumentAdapter(adapter: IdentityProvider, metrics: MetricsService): IdentityProvider {
  const wrappers = new Map<PropertyKey, unknown>();
  for (const method of Object.keys(OPERATIONS) as Method[]) {
    const original = adapter[method] as ((binding: BindingContext, ...rest: unknown[]) => Promise<unknown>) | undefined;
    if (typeof original !== 'function') continue;
    const operation = OPERATIONS[method];
    wrappers.set(method, async (binding: BindingContext, ...rest: unknown[]) => {
      const started = performance.now();
      try {
        const result = await original.call(adapter, binding, ...rest);
        metrics.idpCall(adapter.kind, operation, 'success', (performance.now() - started) / 1000);
        if (method === 'completeLogin') metrics.login(binding.tenantId, adapter.kind, 'browser', 'success');
        if (method === 'exchangeToken') metrics.login(binding.tenantId, adapter.kind, 'token_exchange', 'success');
        return result;
      } catch (err) {
        const outcome = classifyFailure(err);
        metrics.idpCall(adapter.kind, operation, outcome, (performance.now() - started) / 1000);
        if (method === 'completeLogin') metrics.login(binding.tenantId, adapter.kind, 'browser', outcome);
        if (method === 'exchangeToken') metrics.login(binding.tenantId, adapter.kind, 'token_exchange', outcome);
        throw err;
      }
    });
  }
  return new Proxy(adapter, {
    get(target, prop) {
      if (wrappers.has(prop)) return wrappers.get(prop);
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
