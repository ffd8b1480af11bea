/**
 * The adapter contract: what every IdentityProvider promises its callers, run unchanged against each
 * of the five adapters and its real peer (one `<adapter>.contract.test.ts` per adapter supplies the
 * driver). The model is Ory Polis's one test suite over every storage driver.
 *
 * The adapter under test is the one callers get, `IdentityProviderRegistry.get(kind)` of a running
 * service (instrumented proxy included), called directly so each refusal's error class is precise:
 *
 * - a login (begin → upstream → complete, or a token exchange for adapters without a browser login)
 *   yields a well-formed ExternalIdentity: the expected issuer, a non-empty subject that is the same
 *   for the same upstream user and different for another, claims the claim normaliser accepts;
 * - a tampered callback (or subject token) and a replayed or cross-wired one are refused with an
 *   adapter error a caller maps to a client error (a 4xx DomainError, or the hosted form's
 *   InvalidCredentialsError), never a plain Error/TypeError and never a 5xx;
 * - `probe` answers an unreachable upstream with ok=false and a reason, without throwing;
 * - capabilities are honest: every advertised flag has its method and the method works, every flag
 *   not advertised has no method.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it, type TestContext } from 'vitest';
import { DomainError } from '../../src/common/errors.js';
import type {
  BindingContext,
  CallbackInput,
  ExternalIdentity,
  IdentityProvider,
  IdpKind,
} from '../../src/identity/port/identity-provider.port.js';
import { InvalidCredentialsError } from '../../src/identity/native/native.adapter.js';
import { normaliseIdentity } from '../../src/users/claim-normaliser.js';
import { classifyFailure } from '../../src/identity/instrument-adapter.js';
import { LoginService } from '../../src/login/login.service.js';
import { TenantsService } from '../../src/tenants/tenants.service.js';
import type { TestApp } from '../support/app-harness.js';

/** What a test file has started: the service, its adapter for the kind, a live binding and upstream users. */
export interface ContractSession {
  app: TestApp;
  /** `IdentityProviderRegistry.get(kind)` of `app`: the adapter as every caller gets it. */
  adapter: IdentityProvider;
  /** An active binding whose upstream is the started peer. */
  binding: BindingContext;
  /** Two different users of the upstream, by the name `authenticate` / `subjectToken` understand. */
  users: readonly [string, string];
  /** The `issuer` a login through `binding` must report. */
  expectedIssuer: string;
  /** Browser logins: walks the upstream from the adapter's redirect to the callback it sends back (not requested). */
  authenticate?(redirectUrl: string, user: string): Promise<CallbackInput>;
  /** Token exchange: a subject token of `tokenType` the upstream issued, for `user` (undefined: the adapter's machine subject). */
  subjectToken?(tokenType: string, user?: string): Promise<string>;
  /**
   * A binding of this adapter whose upstream is a closed loopback port, and how to undo that
   * (when the upstream is the service's, e.g. Keycloak, the port is closed for this file's service only).
   */
  unreachable?(): Promise<{ binding: BindingContext; restore?(): Promise<void> }>;
  /** Logout: the upstream's origin, where endSessionUrl must send the browser. */
  upstreamOrigin?: string;
}

/** One altered callback (or subject token) and how its refusal must look beyond the shared rule. */
export interface Tampering<T> {
  alter(original: T): T;
  refused(err: unknown): void;
}

type NotApplicable = { notApplicable: string };

export interface AdapterContract {
  kind: IdpKind;
  /** How a user signs in through this adapter: a browser redirect, or a token exchange only. */
  login: 'browser' | 'exchange';
  /** The started session; skips the test (fails under CI=true) when the peer could not be started. */
  session(ctx: TestContext): ContractSession;
  /** Browser adapters: alterations of the callback the upstream sent. */
  tamperCallback?: Record<string, Tampering<CallbackInput>>;
  /** Token-exchange adapters: alterations of the subject token the upstream issued. */
  tamperSubjectToken?: Record<string, Tampering<string>>;
  /** The same callback completed twice: the second must be refused. */
  replay: { refused(err: unknown): void } | NotApplicable;
  /** The callback of one login completed with another login's provider state. */
  crossTransaction: { refused(err: unknown): void } | NotApplicable;
  /** `probe`: the live upstream is healthy, an unreachable one is reported. */
  probe: 'supported' | NotApplicable;
}

const notApplicable = (x: unknown): x is NotApplicable => typeof x === 'object' && x !== null && 'notApplicable' in x;

/**
 * The shared rule for every refusal: an adapter error a caller can map to a client error.
 * DomainErrors with a 4xx status (rendered by the error filter as OAuth/problem JSON, exposed), or
 * the hosted login form's InvalidCredentialsError (LoginController re-shows the form); both counted
 * as `rejected` (the user's failure), not `error` (ours), by the metrics.
 */
export function expectClientRefusal(err: unknown): void {
  expect(err, 'a refusal is an Error').toBeInstanceOf(Error);
  const e = err as Error;
  expect(Object.getPrototypeOf(e), `a plain Error escaped: ${e.message}`).not.toBe(Error.prototype);
  for (const builtin of [TypeError, RangeError, SyntaxError, ReferenceError])
    expect(e, `a ${builtin.name} escaped: ${e.message}`).not.toBeInstanceOf(builtin);
  if (e instanceof DomainError) {
    expect(e.status, `${e.name} ${e.message}`).toBeGreaterThanOrEqual(400);
    expect(e.status, `${e.name} ${e.message}`).toBeLessThan(500);
    expect(e.expose).toBe(true);
  } else {
    expect(e, `${e.name} is not an adapter error class a caller maps: ${e.message}`).toBeInstanceOf(InvalidCredentialsError);
  }
  expect(classifyFailure(e)).toBe('rejected');
}

/** The promise's rejection; fails the test if it resolved (the tampered input was accepted). */
async function refusal(promise: Promise<unknown>, what: string): Promise<unknown> {
  return promise.then(
    (value) => expect.fail(`${what} was accepted: ${JSON.stringify(value)?.slice(0, 300)}`),
    (err: unknown) => err,
  );
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && [Object.prototype, null].includes(Object.getPrototypeOf(v) as object | null);

/** What every ExternalIdentity looks like, whatever the adapter. */
export function expectWellFormedIdentity(s: ContractSession, identity: ExternalIdentity, opts: { machine?: boolean } = {}): void {
  expect(isPlainObject(identity), 'an ExternalIdentity is a plain object').toBe(true);
  expect(identity.issuer).toBe(s.expectedIssuer);
  expect(typeof identity.subject).toBe('string');
  expect(identity.subject.trim().length, 'a non-empty subject').toBeGreaterThan(0);
  expect(isPlainObject(identity.claims), 'claims are a plain object').toBe(true);
  // Stored and compared as JSON (identity rows, audit): nothing that does not survive it.
  expect(JSON.parse(JSON.stringify(identity.claims))).toEqual(identity.claims);
  if (identity.authTime !== undefined) {
    expect(identity.authTime).toBeInstanceOf(Date);
    expect(Number.isFinite(identity.authTime.getTime())).toBe(true);
  }
  if (identity.upstreamSession !== undefined) expect(isPlainObject(identity.upstreamSession)).toBe(true);
  // Only the hosted form knows the platform user; only a token exchange of a machine names a client.
  if (s.adapter.kind === 'native') expect(identity.knownUserId).toBe(identity.subject);
  else expect(identity.knownUserId).toBeUndefined();
  if (opts.machine) expect(identity.machineClientId).toEqual(expect.any(String));
  else expect(identity.machineClientId).toBeUndefined();
  // The one consumer of an ExternalIdentity accepts it.
  expect(() => normaliseIdentity(s.binding.claimMapping, identity)).not.toThrow();
}

/** A transaction handle shaped like LoginService's (79 characters, inside SAML's RelayState limit). */
const transactionHandle = (): string => `lt_${randomBytes(57).toString('base64url')}`;

interface Begun {
  providerState: Record<string, unknown>;
  redirectUrl: string;
}

async function begin(s: ContractSession, binding = s.binding): Promise<Begun> {
  const handle = transactionHandle();
  const base = s.app.config.issuer;
  const started = await s.adapter.beginLogin!(binding, {
    transactionHandle: handle,
    callbackUrl: `${base}/login/callback/${binding.kind}`,
    hostedLoginUrl: `${base}/login/native/${encodeURIComponent(handle)}`,
  });
  expect(typeof started.redirectUrl).toBe('string');
  expect(() => new URL(started.redirectUrl)).not.toThrow();
  expect(isPlainObject(started.providerState)).toBe(true);
  // The provider state is stored encrypted as JSON with the transaction.
  expect(JSON.parse(JSON.stringify(started.providerState))).toEqual(started.providerState);
  return started;
}

interface BrowserLogin {
  begun: Begun;
  callback: CallbackInput;
}

/** begin → the real upstream login of `user` → the callback it sends (not yet completed). */
async function upstreamLogin(s: ContractSession, user: string): Promise<BrowserLogin> {
  const begun = await begin(s);
  const callback = await s.authenticate!(begun.redirectUrl, user);
  return { begun, callback };
}

const complete = (
  s: ContractSession,
  l: BrowserLogin,
  callback = l.callback,
  providerState = l.begun.providerState,
): Promise<ExternalIdentity> => s.adapter.completeLogin!(s.binding, structuredClone(callback), structuredClone(providerState));

async function exchange(s: ContractSession, token: string, tokenType = s.adapter.exchangeTokenTypes![0]!): Promise<ExternalIdentity> {
  return s.adapter.exchangeToken!(s.binding, { token, tokenType });
}

/** One whole login of `user` through the adapter's own flow. */
async function login(c: AdapterContract, s: ContractSession, user: string): Promise<ExternalIdentity> {
  if (c.login === 'browser') return complete(s, await upstreamLogin(s, user));
  return exchange(s, await s.subjectToken!(s.adapter.exchangeTokenTypes![0]!, user));
}

export function identityProviderContract(c: AdapterContract): void {
  describe(`IdentityProvider contract: ${c.kind}`, () => {
    describe('a login yields a well-formed ExternalIdentity', () => {
      it(`${c.login === 'browser' ? 'begin → upstream login → complete' : 'an upstream token exchanged'} gives the expected issuer, a subject and claims`, async (ctx) => {
        const s = c.session(ctx);
        expect(s.adapter.kind).toBe(c.kind);
        expect(s.binding.kind).toBe(c.kind);
        expectWellFormedIdentity(s, await login(c, s, s.users[0]));
      });

      it('the same upstream user logging in twice has the same subject; another user another subject', async (ctx) => {
        const s = c.session(ctx);
        const first = await login(c, s, s.users[0]);
        const again = await login(c, s, s.users[0]);
        const other = await login(c, s, s.users[1]);
        for (const identity of [first, again, other]) expectWellFormedIdentity(s, identity);
        expect(again.subject).toBe(first.subject);
        expect(other.subject).not.toBe(first.subject);
      });
    });

    describe('a tampered, replayed or cross-wired answer is refused with a client error', () => {
      for (const [name, t] of Object.entries(c.tamperCallback ?? {})) {
        it(`callback: ${name}`, async (ctx) => {
          const s = c.session(ctx);
          const l = await upstreamLogin(s, s.users[0]);
          const err = await refusal(complete(s, l, t.alter(structuredClone(l.callback))), `a callback with ${name}`);
          expectClientRefusal(err);
          t.refused(err);
        });
      }

      for (const [name, t] of Object.entries(c.tamperSubjectToken ?? {})) {
        it(`subject token: ${name}`, async (ctx) => {
          const s = c.session(ctx);
          const tokenType = s.adapter.exchangeTokenTypes![0]!;
          const token = await s.subjectToken!(tokenType, c.login === 'exchange' ? s.users[0] : undefined);
          // The untouched token is accepted, so the refusal is the alteration's.
          await exchange(s, token, tokenType);
          const err = await refusal(exchange(s, t.alter(token), tokenType), `a subject token with ${name}`);
          expectClientRefusal(err);
          t.refused(err);
        });
      }

      const replay = c.replay;
      // A case that does not apply to an adapter is not registered (its driver says why): under
      // CI=true the run has no skipped test.
      if (!notApplicable(replay))
        it('replayed callback: completing the same answer twice', async (ctx) => {
          const s = c.session(ctx);
          const l = await upstreamLogin(s, s.users[0]);
          expectWellFormedIdentity(s, await complete(s, l));
          const err = await refusal(complete(s, l), 'a replayed callback');
          expectClientRefusal(err);
          replay.refused(err);
        });

      const cross = c.crossTransaction;
      if (!notApplicable(cross))
        it("answer to another login: one login's callback completed with another login's provider state", async (ctx) => {
          const s = c.session(ctx);
          const other = await begin(s);
          const l = await upstreamLogin(s, s.users[0]);
          const err = await refusal(complete(s, l, l.callback, other.providerState), 'a callback for another login');
          expectClientRefusal(err);
          cross.refused(err);
          // Not consumed by the refusal: the right transaction still completes.
          expectWellFormedIdentity(s, await complete(s, l));
        });
    });

    const probe = c.probe;
    if (!notApplicable(probe))
      describe('probe', () => {
        const reportsUnreachable = async (ctx: TestContext): Promise<void> => {
          const s = c.session(ctx);
          expect(typeof s.adapter.probe, `${c.kind} has no probe`).toBe('function');
          const { binding, restore } = await s.unreachable!();
          let health;
          try {
            health = await s.adapter.probe!(binding);
          } finally {
            await restore?.();
          }
          expect(health.ok).toBe(false);
          const failing = Object.entries(health.checks).filter(([, v]) => !/^ok\b/.test(v));
          expect(failing.length, JSON.stringify(health.checks)).toBeGreaterThan(0);
          for (const [name, reason] of failing) expect(reason.trim().length, `check ${name} gives a reason`).toBeGreaterThan(0);
        };
        it('reports the live upstream as healthy', async (ctx) => {
          const s = c.session(ctx);
          const health = await s.adapter.probe!(s.binding);
          expect(health.ok, JSON.stringify(health.checks)).toBe(true);
        });
        it('reports an unreachable upstream (a closed loopback port) as unhealthy, with a reason, without throwing', reportsUnreachable);
      });

    describe('capabilities are honest', () => {
      it('every advertised capability has its methods, every other one has none (as the registry hands the adapter out)', (ctx) => {
        const s = c.session(ctx);
        const a = s.adapter;
        const has = (m: keyof IdentityProvider) => typeof a[m] === 'function';
        expect({ beginLogin: has('beginLogin'), completeLogin: has('completeLogin') }).toEqual({
          beginLogin: a.capabilities.loginRedirect,
          completeLogin: a.capabilities.loginRedirect,
        });
        expect(has('exchangeToken')).toBe(a.capabilities.tokenExchange);
        expect((a.exchangeTokenTypes ?? []).length > 0, 'exchangeTokenTypes non-empty exactly when tokenExchange').toBe(
          a.capabilities.tokenExchange,
        );
        expect(has('endSessionUrl')).toBe(a.capabilities.logout);
        // The flow this driver uses is the one the adapter advertises.
        expect(a.capabilities.loginRedirect).toBe(c.login === 'browser');
      });

      it('loginRedirect: a browser login works when advertised; otherwise a test login through the binding is refused', async (ctx) => {
        const s = c.session(ctx);
        if (s.adapter.capabilities.loginRedirect) {
          expectWellFormedIdentity(s, await complete(s, await upstreamLogin(s, s.users[1])));
          return;
        }
        const tenant = await s.app.app.get(TenantsService).findActiveBySlug(s.binding.tenantSlug);
        const err = await refusal(
          s.app.app.get(LoginService).beginTest(tenant!, s.binding),
          'a test login through a binding without browser login',
        );
        expectClientRefusal(err);
        expect(err).toMatchObject({ status: 409 });
      });

      it('tokenExchange: every advertised subject_token_type is exchanged', async (ctx) => {
        const s = c.session(ctx);
        const types = s.adapter.exchangeTokenTypes ?? [];
        if (!s.adapter.capabilities.tokenExchange) {
          expect(types).toEqual([]);
          return;
        }
        for (const tokenType of types) {
          const machine = c.login !== 'exchange';
          const identity = await exchange(s, await s.subjectToken!(tokenType, machine ? undefined : s.users[0]), tokenType);
          expectWellFormedIdentity(s, identity, { machine });
        }
      });

      it('logout: when advertised, a login keeps an upstream session that endSessionUrl turns into a working upstream logout URL', async (ctx) => {
        const s = c.session(ctx);
        if (!s.adapter.capabilities.logout) {
          expect(s.adapter.endSessionUrl).toBeUndefined();
          return;
        }
        const identity = await login(c, s, s.users[0]);
        expect(isPlainObject(identity.upstreamSession), 'a logout-capable login keeps an upstream session').toBe(true);
        const url = await s.adapter.endSessionUrl!(s.binding, identity.upstreamSession!, {
          postLogoutRedirectUri: `${s.app.config.issuer}/oauth2/logout/return`,
          state: 'contract',
        });
        expect(url, 'endSessionUrl gives a URL').toEqual(expect.any(String));
        expect(new URL(url!).origin).toBe(s.upstreamOrigin);
        const res = await fetch(url!, { redirect: 'manual' });
        await res.body?.cancel();
        expect(res.status, 'the upstream accepts its logout URL').toBeLessThan(400);
      });

      it('validateConfig, when present, accepts the live binding’s configuration', async (ctx) => {
        const s = c.session(ctx);
        if (typeof s.adapter.validateConfig !== 'function') return;
        const validated = await s.adapter.validateConfig({
          tenantSlug: s.binding.tenantSlug,
          config: s.binding.config,
          secrets: s.binding.secrets,
        });
        expect(isPlainObject(validated.config)).toBe(true);
        expect(validated.health.ok, JSON.stringify(validated.health.checks)).toBe(true);
      });
    });
  });
}
