import { Inject, Injectable, Optional } from '@nestjs/common';
import { ProblemError, problemType } from '../common/errors.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { instrumentAdapter } from './instrument-adapter.js';
import { IDENTITY_PROVIDERS, type IdentityProvider, type IdpKind } from './port/identity-provider.port.js';

/** Picks the adapter for a binding's kind. Adapters register themselves through the IDENTITY_PROVIDERS token. */
@Injectable()
export class IdentityProviderRegistry {
  private readonly byKind = new Map<IdpKind, IdentityProvider>();

  constructor(@Inject(IDENTITY_PROVIDERS) providers: IdentityProvider[], @Optional() metrics?: MetricsService) {
    // Handed out instrumented: upstream latency/errors and login outcomes are measured in one place.
    for (const p of providers) this.byKind.set(p.kind, metrics ? instrumentAdapter(p, metrics) : p);
  }

  get(kind: IdpKind): IdentityProvider {
    const provider = this.byKind.get(kind);
    if (!provider)
      throw new ProblemError(
        501,
        'Identity provider kind not available',
        `No adapter is installed for kind "${kind}".`,
        problemType('adapter-missing'),
      );
    return provider;
  }

  kinds(): IdpKind[] {
    return [...this.byKind.keys()];
  }
}
