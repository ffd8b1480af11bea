/**
 * `oidc-provider` (an OpenID-certified OP) as a customer's OIDC IdP for tests, on loopback.
 *
 * - RS256 signing keys generated at start; rotateKeys() publishes a new key and signs with it
 *   from then on (keeping the previous one in the JWKS or not).
 * - PKCE (S256) required for every client; plain HTTP on 127.0.0.1.
 * - Its own minimal interactions instead of oidc-provider's devInteractions (which accept any
 *   login without a password): GET/POST `<issuer>/interaction/:uid` with the same form fields as
 *   devInteractions (`prompt=login&login=<sub or email>&password=…`, then `prompt=consent`), so
 *   the login driver works against both. Consent is given automatically unless autoConsent=false.
 */
import { randomBytes, randomUUID, generateKeyPairSync, type JsonWebKey } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import Provider, {
  type Adapter,
  type AdapterPayload,
  type ClientMetadata,
  type Configuration,
  type KoaContextWithOIDC,
} from 'oidc-provider';

export interface OidcAccount {
  /** The OP's subject (`sub`). */
  sub: string;
  /** When set, the login form checks it; when unset, any password is accepted. */
  password?: string;
  /** email, email_verified, name, groups, roles, or any other claim (released under `openid`). */
  claims: Record<string, unknown>;
}

export interface OidcProviderOptions {
  clients: ClientMetadata[];
  accounts: OidcAccount[];
  /** Path part of the issuer, e.g. `/tenants/acme` (default: none, issuer is the origin). */
  issuerPath?: string;
  /**
   * Scope → claims released. Default: openid → sub, groups, roles (+ every account claim not
   * listed elsewhere); email → email, email_verified; profile → name, given_name, family_name,
   * preferred_username, picture, locale.
   */
  claimsByScope?: Record<string, string[]>;
  /**
   * Put the scope's claims into the ID token also in the code flow (default true, as Entra and
   * Okta do). false = oidc-provider's conform mode (claims only from userinfo).
   */
  idTokenIncludesClaims?: boolean;
  /** Give consent without asking (default true). */
  autoConsent?: boolean;
  /** ID token lifetime in seconds (default 3600). */
  idTokenTtlSeconds?: number;
  /** Log oidc-provider's server errors to stderr (default false). */
  verbose?: boolean;
  /** Loopback port to listen on (default: a free one). A fixed port keeps the issuer stable across runs (`npm run demo`). */
  port?: number;
}

export interface RotateKeysOptions {
  /** Keep the previous signing key in the JWKS (default true, a graceful rollover). */
  keepPrevious?: boolean;
}

export interface OidcProviderPeer {
  issuer: string;
  discoveryUrl: string;
  jwksUri: string;
  /** http://127.0.0.1:PORT */
  origin: string;
  /** kid of the key that signs from now on. */
  readonly currentKid: string;
  /** Public JWKS as served. */
  publicJwks(): { keys: JsonWebKey[] };
  /** Generates a new RS256 key and signs with it from now on. */
  rotateKeys(options?: RotateKeysOptions): Promise<void>;
  /** Adds or replaces an account (claims changes apply to the next login). */
  upsertAccount(account: OidcAccount): void;
  /** The live oidc-provider instance (it is replaced by rotateKeys()). */
  readonly provider: Provider;
  stop(): Promise<void>;
}

type SigningJwk = JsonWebKey & { kid: string; alg: string; use: string };

function newSigningKey(): SigningJwk {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: `k-${randomUUID()}`, alg: 'RS256', use: 'sig' };
}

const publicPart = ({ kty, n, e, kid, alg, use }: SigningJwk): JsonWebKey => ({ kty, n, e, kid, alg, use });

const DEFAULT_SCOPES: Record<string, string[]> = {
  openid: ['sub', 'groups', 'roles'],
  email: ['email', 'email_verified'],
  profile: ['name', 'given_name', 'family_name', 'preferred_username', 'picture', 'locale'],
};

/**
 * A per-peer in-memory adapter: isolates peers that share a process, survives the Provider
 * rebuilds done by rotateKeys(), and avoids oidc-provider's "in-memory adapter" warning.
 */
function memoryAdapterFactory(): (model: string) => Adapter {
  const rows = new Map<string, { payload: AdapterPayload; expiresAt: number }>();
  const uidIndex = new Map<string, string>();
  const userCodeIndex = new Map<string, string>();
  const live = (key: string): AdapterPayload | undefined => {
    const row = rows.get(key);
    if (!row) return undefined;
    if (row.expiresAt <= Date.now()) {
      rows.delete(key);
      return undefined;
    }
    return row.payload;
  };
  return (model: string): Adapter => {
    const k = (id: string) => `${model}:${id}`;
    return {
      async upsert(id, payload, expiresIn) {
        rows.set(k(id), { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
        if (payload.uid) uidIndex.set(payload.uid, id);
        if (payload.userCode) userCodeIndex.set(payload.userCode, id);
      },
      async find(id) {
        return live(k(id));
      },
      async findByUid(uid) {
        const id = uidIndex.get(uid);
        return id === undefined ? undefined : live(k(id));
      },
      async findByUserCode(userCode) {
        const id = userCodeIndex.get(userCode);
        return id === undefined ? undefined : live(k(id));
      },
      async consume(id) {
        const payload = live(k(id));
        if (payload) payload.consumed = Math.floor(Date.now() / 1000);
      },
      async destroy(id) {
        rows.delete(k(id));
      },
      async revokeByGrantId(grantId) {
        for (const [key, row] of rows) if (row.payload.grantId === grantId) rows.delete(key);
      },
    };
  };
}

const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function loginPage(action: string, error?: string): string {
  return `<!doctype html><html><head><title>Sign-in</title></head><body>
<h1>Sign-in</h1>${error ? `<p class="error">${escapeHtml(error)}</p>` : ''}
<form autocomplete="off" action="${escapeHtml(action)}" method="post">
<input type="hidden" name="prompt" value="login"/>
<input required type="text" name="login" placeholder="sub or email"/>
<input required type="password" name="password"/>
<button type="submit">Sign-in</button>
</form></body></html>`;
}

function consentPage(action: string, clientId: string): string {
  return `<!doctype html><html><head><title>Authorize</title></head><body>
<h1>Authorize ${escapeHtml(clientId)}</h1>
<form autocomplete="off" action="${escapeHtml(action)}" method="post">
<input type="hidden" name="prompt" value="consent"/>
<button type="submit">Continue</button>
</form></body></html>`;
}

export async function startOidcProvider(opts: OidcProviderOptions): Promise<OidcProviderPeer> {
  const issuerPath = (opts.issuerPath ?? '').replace(/\/+$/, '');
  if (issuerPath && !issuerPath.startsWith('/')) throw new TypeError('issuerPath must start with /');
  const accounts = new Map(opts.accounts.map((a) => [a.sub, a]));
  const cookieKeys = [randomBytes(32).toString('base64url')];
  let keys: SigningJwk[] = [newSigningKey()];
  const adapter = memoryAdapterFactory();

  const server: Server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  const issuer = `${origin}${issuerPath}`;

  const findAccountByLogin = (login: string): OidcAccount | undefined =>
    accounts.get(login) ?? [...accounts.values()].find((a) => a.claims.email === login);

  const claimsConfig = (): Record<string, string[]> => {
    const scopes = structuredClone(opts.claimsByScope ?? DEFAULT_SCOPES);
    scopes.openid ??= ['sub'];
    const listed = new Set(Object.values(scopes).flat());
    for (const a of accounts.values()) {
      for (const name of Object.keys(a.claims)) {
        if (!listed.has(name)) {
          scopes.openid.push(name);
          listed.add(name);
        }
      }
    }
    return scopes;
  };

  const build = (): Provider => {
    const claims = claimsConfig();
    const configuration: Configuration = {
      clients: opts.clients,
      adapter,
      jwks: { keys: keys.map((k) => ({ ...k })) },
      cookies: { keys: cookieKeys },
      claims,
      scopes: Object.keys(claims).concat('offline_access'),
      conformIdTokenClaims: opts.idTokenIncludesClaims === false,
      pkce: { required: () => true },
      features: {
        devInteractions: { enabled: false },
        revocation: { enabled: true },
        userinfo: { enabled: true },
      },
      interactions: {
        url: (_ctx: KoaContextWithOIDC, interaction) => `${issuerPath}/interaction/${interaction.uid}`,
      },
      ttl: {
        IdToken: opts.idTokenTtlSeconds ?? 3600,
        AccessToken: 3600,
        AuthorizationCode: 60,
        ClientCredentials: 600,
        RefreshToken: 86_400,
        Interaction: 600,
        Session: 3600,
        Grant: 3600,
      },
      async findAccount(_ctx, sub) {
        const account = accounts.get(sub);
        if (!account) return undefined;
        return {
          accountId: sub,
          async claims() {
            return { ...account.claims, sub };
          },
        };
      },
      async renderError(ctx, out) {
        ctx.type = 'json';
        ctx.body = out;
      },
    };
    const p = new Provider(issuer, configuration);
    if (opts.verbose) {
      p.on('server_error', (_ctx: unknown, err: Error) => console.error('[oidc-provider] server_error', err));
    }
    return p;
  };

  let provider = build();
  let handler = provider.callback();
  const rebuild = (): void => {
    provider = build();
    handler = provider.callback();
  };

  const handleInteraction = async (req: IncomingMessage, res: ServerResponse, uid: string, abort: boolean): Promise<void> => {
    const action = `${issuerPath}/interaction/${uid}`;
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('interaction mismatch');
      return;
    }
    if (abort) {
      await provider.interactionFinished(
        req,
        res,
        { error: 'access_denied', error_description: 'End-User aborted interaction' },
        { mergeWithLastSubmission: false },
      );
      return;
    }
    const { prompt, params } = details;
    const form = req.method === 'POST' ? await readForm(req) : undefined;

    if (prompt.name === 'login') {
      if (!form || form.get('prompt') !== 'login') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(loginPage(action));
        return;
      }
      const account = findAccountByLogin(form.get('login') ?? '');
      if (!account || (account.password !== undefined && account.password !== form.get('password'))) {
        res
          .writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
          .end(loginPage(action, 'Invalid login or password.'));
        return;
      }
      await provider.interactionFinished(req, res, { login: { accountId: account.sub } }, { mergeWithLastSubmission: false });
      return;
    }

    if (prompt.name === 'consent') {
      if (opts.autoConsent === false && (!form || form.get('prompt') !== 'consent')) {
        res
          .writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
          .end(consentPage(action, String(params.client_id)));
        return;
      }
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: details.session?.accountId, clientId: String(params.client_id) });
      if (!grant) throw new Error('grant not found');
      const d = prompt.details as {
        missingOIDCScope?: string[];
        missingOIDCClaims?: string[];
        missingResourceScopes?: Record<string, string[]>;
      };
      if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
      if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
      for (const [indicator, scope] of Object.entries(d.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scope.join(' '));
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
      return;
    }

    res.writeHead(501, { 'content-type': 'text/plain' }).end(`prompt ${prompt.name} not implemented`);
  };

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', origin);
    const rel = issuerPath && url.pathname.startsWith(`${issuerPath}/`) ? url.pathname.slice(issuerPath.length) : url.pathname;
    const m = /^\/interaction\/([^/]+)(\/abort)?$/.exec(rel);
    if (m && (!issuerPath || url.pathname.startsWith(`${issuerPath}/`))) {
      handleInteraction(req, res, m[1]!, Boolean(m[2])).catch((err: Error) => {
        if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/plain' });
        res.end(`interaction failed: ${err.name}: ${err.message}`);
      });
      return;
    }
    if (issuerPath) {
      if (!url.pathname.startsWith(`${issuerPath}/`) && url.pathname !== issuerPath) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
        return;
      }
      // Mounted under issuerPath, as express's app.use(path, provider.callback()) would do.
      (req as IncomingMessage & { originalUrl?: string }).originalUrl = req.url;
      req.url = `${rel}${url.search}` || '/';
    }
    void handler(req, res);
  });

  let stopped = false;
  return {
    issuer,
    discoveryUrl: `${issuer}/.well-known/openid-configuration`,
    jwksUri: `${issuer}/jwks`,
    origin,
    get currentKid() {
      return keys[0]!.kid;
    },
    get provider() {
      return provider;
    },
    publicJwks: () => ({ keys: keys.map(publicPart) }),
    async rotateKeys(options: RotateKeysOptions = {}): Promise<void> {
      const next = newSigningKey();
      // oidc-provider signs with the first key matching the alg: the new one goes first.
      keys = options.keepPrevious === false ? [next] : [next, ...keys];
      // The keystore is fixed at construction: build a new Provider around the same issuer,
      // cookie keys and (process-wide) in-memory adapter, so sessions and codes survive.
      rebuild();
    },
    upsertAccount(account: OidcAccount): void {
      const isNewClaim = Object.keys(account.claims).some((c) => !Object.values(claimsConfig()).flat().includes(c));
      accounts.set(account.sub, account);
      if (isNewClaim) rebuild();
    },
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
