/**
 * An example backend-for-frontend (BFF) for auth-service: the SPA never sees a token.
 *
 * The BFF is a confidential OAuth client of auth-service (openid-client v6 as the relying party):
 *
 *   browser ──GET /login?org=acme──► BFF ──302 /oauth2/authorize?org=acme&code_challenge=…──► auth-service
 *   browser ◄──302 /callback?code=…&state=…&iss=…── auth-service (after the tenant's login)
 *   BFF ──POST /oauth2/token (client secret, code_verifier)──► auth-service: access, refresh and ID tokens
 *
 * The tokens stay here, in a server-side session; the browser holds only an opaque session id in
 * an httpOnly, SameSite=Lax cookie. The SPA calls `/api/*` on this origin with that cookie, and the
 * BFF calls APIs with the access token, refreshing it first when it is about to expire.
 *
 * Sessions are kept in memory (a Map): fine for an example and one process. A real BFF keeps them
 * in a shared store (Redis, its database) so several replicas and restarts see the same sessions.
 */
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import express, { type Request, type Response } from 'express';
import cookieParser from 'cookie-parser';
import * as oidc from 'openid-client';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';

export interface BffOptions {
  /** auth-service's issuer, e.g. `http://localhost:3000` (discovery is read from `<issuer>/.well-known/openid-configuration`). */
  issuer: string;
  /** The client registered for this BFF (`npm run admin -- clients create --kind bff …`). */
  clientId: string;
  clientSecret: string;
  /** This BFF's own public URL, e.g. `http://localhost:3001`: the redirect URI is `<publicUrl>/callback`, the post-logout one `<publicUrl>/`. */
  publicUrl: string;
  /** The `aud` of auth-service's access tokens (its ACCESS_TOKEN_AUDIENCE; default `platform-api`). */
  audience?: string;
  /** Refresh the access token when it expires within this many seconds (default 60). */
  refreshBeforeSeconds?: number;
}

/** What the BFF keeps per browser. Never sent to the browser. */
interface Session {
  /** Set between /login and /callback: the values the callback must match. */
  pending?: { state: string; nonce: string; codeVerifier: string; org: string; startedAt: number };
  tokens?: {
    accessToken: string;
    /** Epoch seconds. */
    expiresAt: number;
    refreshToken?: string;
    idToken: string;
    /** The ID token's claims, checked by openid-client (signature, iss, aud, exp, nonce). */
    claims: oidc.IDToken;
  };
  /** One refresh at a time per session: two tabs asking at once share it (a second use of a rotated refresh token is reuse). */
  refreshing?: Promise<Tokens>;
  lastSeen: number;
}

type Tokens = NonNullable<Session['tokens']>;

const SESSION_COOKIE = 'bff_session';
/** A login must come back within this time; a session unused this long is dropped. */
const LOGIN_TTL_MS = 10 * 60 * 1000;
const IDLE_TTL_MS = 8 * 60 * 60 * 1000;
/** Organisation slugs as auth-service accepts them: short, lower-case letters, digits and dashes. */
const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Errors auth-service sends back to the redirect URI that the user can do something about; anything else is "sign-in failed". */
const KNOWN_ERRORS = new Set(['unknown_organization', 'access_denied', 'temporarily_unavailable', 'login_required', 'unauthorized_client']);

/** Every response: a strict CSP (the SPA is one same-origin script and stylesheet), no framing, no referrer to other origins (a callback URL carries a code; the same-origin one keeps the Origin header of a form POST). */
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'x-frame-options': 'DENY',
};

export async function createBff(opts: BffOptions): Promise<express.Express> {
  const publicUrl = opts.publicUrl.replace(/\/+$/, '');
  const redirectUri = `${publicUrl}/callback`;
  const postLogoutRedirectUri = `${publicUrl}/`;
  const secure = publicUrl.startsWith('https://');
  const refreshBefore = opts.refreshBeforeSeconds ?? 60;

  // Discovery: endpoints, JWKS and what the server supports (e.g. RFC 9207 `iss` on the redirect,
  // which makes openid-client require and check it on every callback).
  const config = await oidc.discovery(new URL(opts.issuer), opts.clientId, undefined, oidc.ClientSecretBasic(opts.clientSecret), {
    // Plain http only for a local issuer (the demo); never in production.
    // eslint-disable-next-line @typescript-eslint/no-deprecated -- openid-client marks it deprecated only to flag it
    execute: new URL(opts.issuer).protocol === 'http:' ? [oidc.allowInsecureRequests] : [],
  });
  // Verify the ID token's signature against the issuer's JWKS too, not only its claims.
  oidc.enableNonRepudiationChecks(config);
  const server = config.serverMetadata();
  if (!server.jwks_uri) throw new Error('auth-service publishes no jwks_uri');
  // The same check every API behind the gateway makes on an access token: signature (JWKS, cached,
  // refreshed on an unknown kid), issuer, audience, expiry, and RFC 9068's `typ: at+jwt`.
  const jwks = createRemoteJWKSet(new URL(server.jwks_uri));
  const verifyAccessToken = async (token: string): Promise<JWTPayload> =>
    (
      await jwtVerify(token, jwks, {
        issuer: server.issuer,
        audience: opts.audience ?? 'platform-api',
        typ: 'at+jwt',
        algorithms: ['RS256'],
      })
    ).payload;

  const sessions = new Map<string, Session>();
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const [id, s] of sessions) if (now - s.lastSeen > (s.tokens ? IDLE_TTL_MS : LOGIN_TTL_MS)) sessions.delete(id);
  }, 60_000);
  sweep.unref();

  const sessionOf = (req: Request): { id: string; session: Session } | undefined => {
    const id = (req.cookies as Record<string, string | undefined>)[SESSION_COOKIE];
    const session = id === undefined ? undefined : sessions.get(id);
    if (!id || !session) return undefined;
    session.lastSeen = Date.now();
    return { id, session };
  };
  /** A new session id for every change of privilege (login started, login finished): no fixation. */
  const startSession = (res: Response, session: Omit<Session, 'lastSeen'>, previous?: string): Session => {
    if (previous) sessions.delete(previous);
    const id = randomBytes(32).toString('base64url');
    const s = { ...session, lastSeen: Date.now() };
    sessions.set(id, s);
    res.cookie(SESSION_COOKIE, id, { httpOnly: true, sameSite: 'lax', secure, path: '/' });
    return s;
  };
  const endSession = (res: Response, id: string | undefined) => {
    if (id) sessions.delete(id);
    res.clearCookie(SESSION_COOKIE, { httpOnly: true, sameSite: 'lax', secure, path: '/' });
  };

  const keepTokens = (
    session: Session,
    r: oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers,
    claims: oidc.IDToken,
  ): Tokens => {
    return (session.tokens = {
      accessToken: r.access_token,
      expiresAt: Math.floor(Date.now() / 1000) + (r.expiresIn() ?? 0),
      // auth-service rotates the refresh token on every use: always keep the newest.
      refreshToken: r.refresh_token ?? session.tokens?.refreshToken,
      idToken: r.id_token ?? session.tokens?.idToken ?? '',
      claims,
    });
  };

  /** Silent refresh: a fresh access token when the current one expires within `refreshBefore` seconds. */
  const freshTokens = async (session: Session): Promise<Tokens> => {
    const tokens = session.tokens;
    if (!tokens) throw new Error('not signed in');
    if (tokens.expiresAt - Math.floor(Date.now() / 1000) > refreshBefore) return tokens;
    if (!tokens.refreshToken) throw new Error('the access token expired and there is no refresh token');
    const refreshToken = tokens.refreshToken;
    session.refreshing ??= oidc
      .refreshTokenGrant(config, refreshToken)
      .then((r) => keepTokens(session, r, r.claims() ?? tokens.claims))
      .finally(() => (session.refreshing = undefined));
    return session.refreshing;
  };

  const app = express();
  app.disable('x-powered-by');
  app.use(cookieParser());
  app.use((_req, res, next) => {
    res.set(SECURITY_HEADERS);
    next();
  });

  // The SPA: one HTML page, one script, one stylesheet. Nothing inline (see the CSP above).
  app.use(express.static(fileURLToPath(new URL('./public/', import.meta.url)), { index: 'index.html', maxAge: 0 }));

  /** Step 1: the SPA sends the browser here with the organisation the user typed. */
  app.get('/login', async (req, res) => {
    const org = typeof req.query['org'] === 'string' ? req.query['org'].trim().toLowerCase() : '';
    if (!SLUG.test(org)) {
      res.redirect(303, '/?error=invalid_organization');
      return;
    }
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const pending = { state: oidc.randomState(), nonce: oidc.randomNonce(), codeVerifier, org, startedAt: Date.now() };
    startSession(res, { pending }, sessionOf(req)?.id);
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: 'openid email profile',
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state: pending.state,
      nonce: pending.nonce,
      // auth-service's extension: which tenant's login to run. Never a list of organisations.
      org,
    });
    res.redirect(303, url.href);
  });

  /** Step 2: auth-service sends the browser back here with a code (or an error). */
  app.get('/callback', async (req, res) => {
    res.set('cache-control', 'no-store');
    const current = sessionOf(req);
    const pending = current?.session.pending;
    if (!current || !pending || Date.now() - pending.startedAt > LOGIN_TTL_MS) {
      endSession(res, current?.id);
      res.redirect(303, '/?error=login_expired');
      return;
    }
    try {
      // Checks `state`, the RFC 9207 `iss` (auth-service advertises it), any `error` on the redirect;
      // redeems the code with the PKCE verifier and the client secret; checks the ID token
      // (signature, iss, aud, exp, iat, and our nonce).
      const result = await oidc.authorizationCodeGrant(config, new URL(req.originalUrl, publicUrl), {
        pkceCodeVerifier: pending.codeVerifier,
        expectedState: pending.state,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
      });
      const claims = result.claims();
      if (!claims) throw new Error('no ID token');
      keepTokens(startSession(res, {}, current.id), result, claims);
      res.redirect(303, '/');
    } catch (err) {
      endSession(res, current.id);
      const code = err instanceof oidc.AuthorizationResponseError && KNOWN_ERRORS.has(err.error) ? err.error : 'login_failed';
      if (code === 'login_failed') console.warn('bff: login failed:', err instanceof Error ? err.message : err);
      res.redirect(303, `/?error=${code}`);
    }
  });

  /**
   * The SPA's API: who is signed in. It also calls an API with the access token, as the SPA's
   * other API calls through the BFF would: the token is verified here as a downstream service
   * verifies it (offline, JWKS), and auth-service's userinfo is called with it.
   */
  app.get('/api/me', async (req, res) => {
    res.set('cache-control', 'no-store');
    const current = sessionOf(req);
    if (!current?.session.tokens) {
      res.status(401).json({ error: 'not_signed_in' });
      return;
    }
    try {
      const tokens = await freshTokens(current.session);
      const access = await verifyAccessToken(tokens.accessToken);
      const userinfo = await oidc.fetchUserInfo(config, tokens.accessToken, tokens.claims.sub);
      res.json({
        org: access['org'],
        idToken: tokens.claims,
        accessToken: access,
        accessTokenExpiresAt: new Date(tokens.expiresAt * 1000).toISOString(),
        userinfo,
      });
    } catch (err) {
      // A refresh refused (session ended at auth-service, user disabled, token reused) or a token
      // that no longer verifies: the browser's session is over.
      console.warn('bff: /api/me:', err instanceof Error ? err.message : err);
      endSession(res, current.id);
      res.status(401).json({ error: 'session_ended' });
    }
  });

  /**
   * Sign-out: ends the BFF session at once, then sends the browser to auth-service's end-session
   * endpoint (RP-initiated logout), which ends the platform session and every refresh token of it,
   * and comes back to `<publicUrl>/` (a registered post-logout redirect URI).
   */
  app.post('/logout', (req, res) => {
    // SameSite=Lax keeps the cookie off cross-site POSTs already; the Origin check is a second lock.
    if (req.headers.origin !== undefined && req.headers.origin !== new URL(publicUrl).origin) {
      res.status(403).json({ error: 'cross_origin' });
      return;
    }
    const current = sessionOf(req);
    endSession(res, current?.id);
    const idToken = current?.session.tokens?.idToken;
    if (!idToken) {
      res.redirect(303, '/');
      return;
    }
    res.redirect(303, oidc.buildEndSessionUrl(config, { id_token_hint: idToken, post_logout_redirect_uri: postLogoutRedirectUri }).href);
  });

  return app;
}
