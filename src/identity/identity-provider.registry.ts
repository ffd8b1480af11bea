import { Inject, Injectable, Optional } from '@nestjs/common';
import { ProblemError } from '../common/errors.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { instrumentAdapter } from './instrument-adapter.js';
import {
  IDENTITY_PROVIDERS,
  type BrowserLogin,
  type ConfigCheck,
  type HealthProbe,
  type IdentityProvider,
  type IdpKind,
  type TokenExchange,
  type UpstreamLogout,
} from './port/identity-provider.port.js';

/** A capability is there when its methods are (the contract suite checks the advertised flags match). */
const hasBrowserLogin = (p: IdentityProvider): p is IdentityProvider & BrowserLogin =>
  typeof p.beginLogin === 'function' && typeof p.completeLogin === 'function';
const hasTokenExchange = (p: IdentityProvider): p is IdentityProvider & TokenExchange =>
  typeof p.exchangeToken === 'function' && Array.isArray(p.exchangeTokenTypes);
const hasUpstreamLogout = (p: IdentityProvider): p is IdentityProvider & UpstreamLogout => typeof p.endSessionUrl === 'function';
const hasConfigCheck = (p: IdentityProvider): p is IdentityProvider & ConfigCheck => typeof p.validateConfig === 'function';
const hasHealthProbe = (p: IdentityProvider): p is IdentityProvider & HealthProbe => typeof p.probe === 'function';

/**
 * Picks the adapter for a binding's kind, by capability: a caller asks for what it needs (a browser
 * login, a token exchange of a given token type, an upstream logout, a config check, a probe) and
 * gets an adapter typed with that capability, or undefined when the kind has none. Adapters
 * register themselves through the IDENTITY_PROVIDERS token.
 */
@Injectable()
export class IdentityProviderRegistry {
  private readonly byKind = new Map<IdpKind, IdentityProvider>();

  constructor(@Inject(IDENTITY_PROVIDERS) providers: IdentityProvider[], @Optional() metrics?: MetricsService) {
    // Handed out instrumented: upstream latency/errors and login outcomes are measured in one place.
    for (const p of providers) this.byKind.set(p.kind, metrics ? instrumentAdapter(p, metrics) : p);
  }

  /** The adapter of a kind, whatever it can do (capability flags, the kind itself). 501 when none is installed. */
  get(kind: IdpKind): IdentityProvider {
    const provider = this.byKind.get(kind);
    if (!provider) throw new ProblemError({ type: 'adapter-missing', detail: `No adapter is installed for kind "${kind}".` });
    return provider;
  }

  browserLogin(kind: IdpKind): BrowserLogin | undefined {
    const p = this.get(kind);
    return hasBrowserLogin(p) ? p : undefined;
  }

  /** The adapter that exchanges `tokenType` tokens for this kind, if any. */
  tokenExchange(kind: IdpKind, tokenType: string): TokenExchange | undefined {
    const p = this.get(kind);
    return hasTokenExchange(p) && p.capabilities.tokenExchange && p.exchangeTokenTypes.includes(tokenType) ? p : undefined;
  }

  upstreamLogout(kind: IdpKind): UpstreamLogout | undefined {
    const p = this.get(kind);
    return hasUpstreamLogout(p) ? p : undefined;
  }

  configCheck(kind: IdpKind): ConfigCheck | undefined {
    const p = this.get(kind);
    return hasConfigCheck(p) ? p : undefined;
  }

  healthProbe(kind: IdpKind): HealthProbe | undefined {
    const p = this.get(kind);
    return hasHealthProbe(p) ? p : undefined;
  }

  kinds(): IdpKind[] {
    return [...this.byKind.keys()];
  }
}
