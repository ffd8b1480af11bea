/**
 * Support for test/tenant-oidc-attacks.test.ts: the service with its logs captured (the OIDC
 * adapter records why it refused a login only in its log: `reason`, and `step` when a library or
 * the OP refused), and for test/tenant-oidc.test.ts too: the crafted OP stand-in and the BFF-side
 * helpers.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { expect } from 'vitest';
import { startTestApp, type TestApp } from './app-harness.js';
import { authorizeUrl, get, pkcePair, type BffClient } from './bff.js';

// ---- the service, with its log lines kept ------------------------------------------------------

export type LogEntry = Record<string, unknown> & { msg?: string; binding?: string; reason?: string; step?: string };

/** Why the OIDC adapter refused (or could not finish) a login, as it logged it. */
export interface OidcRefusal {
  msg: string;
  reason: string;
  step?: string;
}

const OIDC_REFUSAL_MESSAGES = [
  'OIDC login refused',
  'OIDC provider refused the login',
  'OIDC login failed unexpectedly',
  'OIDC provider unavailable',
];

export interface LoggedTestApp extends TestApp {
  logs: LogEntry[];
  /** The adapter's refusals for this binding logged while `act` ran. */
  refusalsDuring(bindingId: string, act: () => Promise<unknown>): Promise<OidcRefusal[]>;
}

/** startTestApp with LOG_LEVEL=warn into memory instead of silence. */
export async function startLoggedTestApp(env: Record<string, string> = {}): Promise<LoggedTestApp> {
  const logs: LogEntry[] = [];
  const destination = {
    write: (line: string) => {
      try {
        logs.push(JSON.parse(line) as LogEntry);
      } catch {
        logs.push({ msg: line });
      }
    },
  };
  const running = await startTestApp({ LOG_LEVEL: 'warn', ...env }, undefined, destination);
  const refusalsDuring = async (bindingId: string, act: () => Promise<unknown>): Promise<OidcRefusal[]> => {
    const from = logs.length;
    await act();
    return logs
      .slice(from)
      .filter((l) => l.binding === bindingId && OIDC_REFUSAL_MESSAGES.includes(String(l.msg)))
      .map((l) => ({ msg: String(l.msg), reason: String(l.reason), ...(l.step !== undefined ? { step: String(l.step) } : {}) }));
  };
  return Object.assign(running, { logs, refusalsDuring });
}

// ---- crafted OP ------------------------------------------------------------------------------

export interface CraftContext {
  issuer: string;
  clientId: string;
  nonce: string;
  now: number;
}
export type CraftedAnswer = { status?: number; body?: unknown; destroy?: boolean };
export type Craft = (c: CraftContext) => Promise<CraftedAnswer>;

export interface CraftedOp {
  issuer: string;
  discoveryFetches: number;
  jwksFetches: number;
  tokenRequests: number;
  kid: string;
  privateKey: CryptoKey;
  /** The next token endpoint answer (reset to `valid` after each use). */
  craft: Craft;
  stop(): Promise<void>;
}

const b64u = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

/** Discovery, authorization and JWKS like a real OP; the token endpoint answers what the test crafts. */
export async function startCraftedOp(clientSecret: string): Promise<CraftedOp> {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const kid = `crafted-${randomBytes(4).toString('hex')}`;
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  const codes = new Map<string, { nonce: string; challenge: string; clientId: string; redirectUri: string }>();
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}/crafted`;
  const op: CraftedOp = {
    issuer,
    discoveryFetches: 0,
    jwksFetches: 0,
    tokenRequests: 0,
    kid,
    privateKey,
    craft: async (c) => ({ body: tokenBody(await signRs(op, idClaims(c))) }),
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const valid = op.craft;
  const json = (res: ServerResponse, status: number, body: unknown) =>
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
  const readBody = async (req: IncomingMessage) => {
    let s = '';
    for await (const chunk of req) s += chunk;
    return new URLSearchParams(s);
  };
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const url = new URL(req.url ?? '/', issuer);
      if (url.pathname === '/crafted/.well-known/openid-configuration') {
        op.discoveryFetches += 1;
        return json(res, 200, {
          issuer,
          authorization_endpoint: `${issuer}/authorize`,
          token_endpoint: `${issuer}/token`,
          jwks_uri: `${issuer}/jwks`,
          userinfo_endpoint: `${issuer}/userinfo`,
          response_types_supported: ['code'],
          subject_types_supported: ['public'],
          // What a careless (or hostile) OP might advertise; the RP's allow-list must not follow it.
          id_token_signing_alg_values_supported: ['RS256', 'HS256', 'none'],
          code_challenge_methods_supported: ['S256'],
          token_endpoint_auth_methods_supported: ['client_secret_basic'],
          authorization_response_iss_parameter_supported: true,
        });
      }
      if (url.pathname === '/crafted/jwks') {
        op.jwksFetches += 1;
        return json(res, 200, { keys: [publicJwk] });
      }
      if (url.pathname === '/crafted/authorize') {
        const p = url.searchParams;
        const code = randomBytes(16).toString('base64url');
        codes.set(code, {
          nonce: p.get('nonce') ?? '',
          challenge: p.get('code_challenge') ?? '',
          clientId: p.get('client_id') ?? '',
          redirectUri: p.get('redirect_uri') ?? '',
        });
        const back = new URL(p.get('redirect_uri')!);
        back.searchParams.set('code', code);
        back.searchParams.set('state', p.get('state') ?? '');
        back.searchParams.set('iss', issuer);
        res.writeHead(302, { location: back.toString() }).end();
        return;
      }
      if (url.pathname === '/crafted/token' && req.method === 'POST') {
        op.tokenRequests += 1;
        const form = await readBody(req);
        const [id, secret] = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64')
          .toString()
          .split(':')
          .map(decodeURIComponent);
        const grant = codes.get(form.get('code') ?? '');
        codes.delete(form.get('code') ?? '');
        const verifier = form.get('code_verifier') ?? '';
        if (
          secret !== clientSecret ||
          !grant ||
          grant.clientId !== id ||
          grant.redirectUri !== form.get('redirect_uri') ||
          createHash('sha256').update(verifier).digest('base64url') !== grant.challenge
        )
          return json(res, 400, { error: 'invalid_grant' });
        const craft = op.craft;
        op.craft = valid;
        const answer = await craft({ issuer, clientId: id, nonce: grant.nonce, now: Math.floor(Date.now() / 1000) });
        if (answer.destroy) return void req.socket.destroy();
        if (typeof answer.body === 'string')
          return void res.writeHead(answer.status ?? 200, { 'content-type': 'text/plain' }).end(answer.body);
        return json(res, answer.status ?? 200, answer.body);
      }
      json(res, 404, { error: 'not_found' });
    })().catch(() => res.destroy());
  });
  return op;
}

export const idClaims = (c: CraftContext, overrides: Record<string, unknown> = {}): JWTPayload => {
  const claims: Record<string, unknown> = {
    iss: c.issuer,
    sub: 'crafted-user-1',
    aud: c.clientId,
    iat: c.now,
    exp: c.now + 300,
    nonce: c.nonce,
    email: 'crafted@crafted.example',
    email_verified: true,
    ...overrides,
  };
  for (const [k, v] of Object.entries(claims)) if (v === undefined) delete claims[k];
  return claims;
};
export const signRs = (op: { kid: string; privateKey: CryptoKey }, claims: JWTPayload, kid = op.kid) =>
  new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' }).sign(op.privateKey);
export const signHs = (claims: JWTPayload, secret: string) =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(secret));
export const unsigned = (claims: JWTPayload) => `${b64u({ alg: 'none', typ: 'JWT' })}.${b64u(claims)}.`;
export const tokenBody = (id_token: string) => ({
  access_token: randomBytes(16).toString('hex'),
  token_type: 'Bearer',
  expires_in: 300,
  id_token,
});

// ---- BFF side --------------------------------------------------------------------------------

export interface Started {
  opUrl: string;
  state: string;
  verifier: string;
}

export function bffHelpers(app: () => TestApp, bff: () => BffClient) {
  /** authorize at the service for `org` (with `extra` authorization request parameters); returns where it sends the browser (the OP). */
  const startLogin = async (org: string, extra: Record<string, string> = {}): Promise<Started> => {
    const { verifier, challenge } = pkcePair();
    const state = randomBytes(8).toString('hex');
    const res = await get(
      authorizeUrl(app().url, bff(), {
        org,
        state,
        code_challenge: challenge,
        code_challenge_method: 'S256',
        nonce: `n-${state}`,
        ...extra,
      }),
    );
    if (res.status !== 302) throw new Error(`authorize answered ${res.status}: ${await res.text()}`);
    return { opUrl: res.headers.get('location')!, state, verifier };
  };

  /** Requests our callback as the browser would; returns where it sends the browser (the BFF). */
  const callback = async (url: string): Promise<{ res: Response; bff?: URL }> => {
    const res = await get(url);
    const location = res.headers.get('location');
    return { res, bff: location ? new URL(location) : undefined };
  };

  /** Asserts the BFF got an OAuth error (with its own state) and no code. */
  const expectOAuthErrorAtBff = (started: Started, back: URL | undefined, error: string): string => {
    expect(back, 'redirected back to the BFF').toBeDefined();
    expect(`${back!.origin}${back!.pathname}`).toBe(bff().redirectUri);
    expect(back!.searchParams.get('error')).toBe(error);
    expect(back!.searchParams.get('state')).toBe(started.state);
    expect(back!.searchParams.get('code')).toBeNull();
    expect(back!.searchParams.get('iss')).toBe(app().url);
    const description = back!.searchParams.get('error_description') ?? '';
    expect(description).not.toMatch(/eyJ[\w-]*\.|\n\s*at |Error:/); // no token, no stack trace
    return description;
  };

  /** The BFF got a code for its own state (the login went through). */
  const expectCodeAtBff = (started: Started, back: URL | undefined): string => {
    expect(back, 'redirected back to the BFF').toBeDefined();
    expect(`${back!.origin}${back!.pathname}`).toBe(bff().redirectUri);
    expect(back!.searchParams.get('error'), back!.searchParams.get('error_description') ?? '').toBeNull();
    expect(back!.searchParams.get('state')).toBe(started.state);
    return back!.searchParams.get('code')!;
  };

  return { startLogin, callback, expectOAuthErrorAtBff, expectCodeAtBff };
}
