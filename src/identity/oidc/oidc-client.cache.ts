import * as oidc from 'openid-client';
import { importJWK } from 'jose';
import type { BindingContext } from '../port/identity-provider.port.js';
import type { ResolvedOidcBinding } from './tenant-oidc.config.js';
import { RemoteJwks, type RemoteJwksOptions } from '../shared/remote-jwks.js';

/** Everything the adapter needs to talk to one binding's OP. */
export interface OidcClient {
  configuration: oidc.Configuration;
  /** The OP's issuer identifier, as its discovery document states (and as configured, if it was). */
  issuer: string;
  jwks: RemoteJwks;
}

export interface OidcClientCacheOptions {
  /** How long a discovery document is used before it is fetched again. */
  discoveryTtlMs: number;
  /** After a failed re-discovery, how long the previous document is used before trying again. */
  discoveryRetryMs: number;
  /** HTTP timeout for discovery, token and userinfo requests. */
  timeoutSeconds: number;
  clockSkewSeconds: number;
  /** Plain-HTTP OPs (development and tests only). */
  allowHttp: boolean;
  jwks: RemoteJwksOptions;
}

/** Discovery failed or the document is unusable; `reason` is safe to log. */
export class OidcDiscoveryError extends Error {
  constructor(
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`OIDC discovery failed: ${reason}`, options);
    this.name = 'OidcDiscoveryError';
  }
}

interface Entry {
  bindingId: string;
  client?: OidcClient;
  refreshAt: number;
  pending?: Promise<OidcClient>;
}

const WELL_KNOWN = '/.well-known/openid-configuration';

/**
 * Discovery documents and JWKS, cached per binding and binding version (an edited binding gets a
 * fresh client; the old version's entry is dropped). Each replica keeps its own cache: nothing
 * here is login state, only what can be fetched again from the OP.
 */
export class OidcClientCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly opts: OidcClientCacheOptions) {}

  async get(binding: BindingContext, r: ResolvedOidcBinding): Promise<OidcClient> {
    const key = `${binding.id}:${binding.version}`;
    let entry = this.entries.get(key);
    if (!entry) {
      for (const [k, e] of this.entries) if (e.bindingId === binding.id) this.entries.delete(k);
      entry = { bindingId: binding.id, refreshAt: 0 };
      this.entries.set(key, entry);
    }
    if (entry.client && Date.now() < entry.refreshAt) return entry.client;
    const e = entry;
    e.pending ??= this.discover(r, e.client?.jwks)
      .then((client) => {
        e.client = client;
        e.refreshAt = Date.now() + this.opts.discoveryTtlMs;
        return client;
      })
      .catch((err: unknown) => {
        // Keep serving the last good document while the OP's discovery endpoint is down.
        if (!e.client) throw err;
        e.refreshAt = Date.now() + this.opts.discoveryRetryMs;
        return e.client;
      })
      .finally(() => {
        e.pending = undefined;
      });
    return e.pending;
  }

  private async discover(r: ResolvedOidcBinding, previousJwks?: RemoteJwks): Promise<OidcClient> {
    const server = new URL(r.discoveryUrl ?? r.issuer!);
    const metadata: Partial<oidc.ClientMetadata> = {
      client_id: r.clientId,
      token_endpoint_auth_method: r.tokenEndpointAuthMethod,
      [oidc.clockTolerance]: this.opts.clockSkewSeconds,
    };
    let configuration: oidc.Configuration;
    try {
      configuration = await oidc.discovery(server, r.clientId, metadata, await this.clientAuth(r), {
        // eslint-disable-next-line @typescript-eslint/no-deprecated -- openid-client marks it deprecated only to flag it; used for plain-HTTP local peers only
        execute: this.opts.allowHttp ? [oidc.allowInsecureRequests] : [],
        timeout: this.opts.timeoutSeconds,
      });
    } catch (cause) {
      throw new OidcDiscoveryError(
        cause instanceof Error
          ? `${cause.name}${(cause as { code?: string }).code ? ` ${(cause as { code?: string }).code}` : ''}`
          : 'unknown',
        { cause },
      );
    }
    configuration.timeout = this.opts.timeoutSeconds;
    const meta = configuration.serverMetadata();
    // openid-client checks the issuer only when it derived the discovery URL from it: with an
    // explicit discovery URL, the document's issuer must be the configured one, or the URL's prefix.
    if (r.issuer && meta.issuer !== r.issuer) throw new OidcDiscoveryError('issuer in the discovery document is not the configured issuer');
    if (!r.issuer && r.discoveryUrl && `${meta.issuer.replace(/\/+$/, '')}${WELL_KNOWN}` !== r.discoveryUrl)
      throw new OidcDiscoveryError('issuer in the discovery document does not match the discovery URL');
    if (!meta.authorization_endpoint || !meta.token_endpoint || !meta.jwks_uri)
      throw new OidcDiscoveryError('discovery document lacks an endpoint');
    if (r.useUserinfo && !meta.userinfo_endpoint) throw new OidcDiscoveryError('useUserinfo is set but the OP has no userinfo endpoint');
    const jwksUrl = new URL(meta.jwks_uri);
    if (!this.opts.allowHttp && jwksUrl.protocol !== 'https:') throw new OidcDiscoveryError('jwks_uri is not https');
    // Keep the keys already fetched when re-discovery finds the same JWKS URL.
    const jwks = previousJwks && previousJwks.url.href === jwksUrl.href ? previousJwks : new RemoteJwks(jwksUrl, this.opts.jwks);
    return { configuration, issuer: meta.issuer, jwks };
  }

  private async clientAuth(r: ResolvedOidcBinding): Promise<oidc.ClientAuth> {
    switch (r.tokenEndpointAuthMethod) {
      case 'client_secret_basic':
        return oidc.ClientSecretBasic(r.clientSecret);
      case 'client_secret_post':
        return oidc.ClientSecretPost(r.clientSecret);
      case 'private_key_jwt': {
        const jwk = r.privateJwk!;
        const key = await importJWK(jwk, jwk['alg'] as string);
        if (key instanceof Uint8Array) throw new OidcDiscoveryError('privateJwk must be an asymmetric private key');
        return oidc.PrivateKeyJwt({ key, kid: typeof jwk['kid'] === 'string' ? jwk['kid'] : undefined });
      }
    }
  }
}
