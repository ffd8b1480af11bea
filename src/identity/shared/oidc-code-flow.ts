import * as oidc from 'openid-client';
import { constantEquals } from '../../crypto/random.js';
import type { CallbackInput, LoginContext } from '../port/identity-provider.port.js';
import type { Logger } from '@nestjs/common';
import { OAuthError } from '../../common/errors.js';
import { JwksUnavailableError } from './remote-jwks.js';
import { UpstreamTokenRejectedError } from './upstream-jwt.js';

/**
 * The authorization code flow with PKCE S256, state and nonce, as both OIDC-speaking adapters run
 * it (Keycloak and a tenant's own OP): openid-client does the protocol, this module the parts the
 * two adapters had each written out — the authorization request, the checks on the authorization
 * response, the code redemption — and the one reading of what went wrong. Each adapter adds its
 * own rules on top (Keycloak: the organisation claim, its access token; tenant OIDC: RFC 9207
 * `iss`, userinfo) and its own words for the user.
 */

/** What a login keeps between the redirect and the callback (inside the adapter's provider state). */
export interface CodeFlowState {
  state: string;
  nonce: string;
  codeVerifier: string;
  redirectUri: string;
}

export interface CodeFlowRequest {
  redirectUri: string;
  scopes: readonly string[];
  /** The login transaction's handle, echoed back as `state`. */
  state: string;
  /** Further authorization request parameters (`login_hint`, `domain_hint`, `kc_idp_hint`); unset ones are left out. */
  extraParams?: Record<string, string | undefined>;
}

/**
 * The client's `max_age` and `prompt=login` (OIDC Core §3.1.2.1) as upstream authorization request
 * parameters: `max_age` passed on as it is, `prompt=login` for a fresh authentication (`max_age=0`
 * asks for one too). What the upstream then reports as `auth_time` is checked by LoginService.
 */
export function freshnessParams(ctx: Pick<LoginContext, 'maxAge' | 'reauthenticate'>): Record<string, string | undefined> {
  return {
    max_age: ctx.maxAge !== undefined ? String(ctx.maxAge) : undefined,
    prompt: ctx.reauthenticate ? 'login' : undefined,
  };
}

/** Builds the authorization request: fresh PKCE verifier and nonce, S256 challenge. */
export async function startCodeFlow(
  configuration: oidc.Configuration,
  request: CodeFlowRequest,
): Promise<{ redirectUrl: string; flow: CodeFlowState }> {
  const codeVerifier = oidc.randomPKCECodeVerifier();
  const nonce = oidc.randomNonce();
  const params: Record<string, string> = {
    response_type: 'code',
    redirect_uri: request.redirectUri,
    scope: request.scopes.join(' '),
    state: request.state,
    nonce,
    code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
  };
  for (const [name, value] of Object.entries(request.extraParams ?? {})) if (value) params[name] = value;
  return {
    redirectUrl: oidc.buildAuthorizationUrl(configuration, params).href,
    flow: { state: request.state, nonce, codeVerifier, redirectUri: request.redirectUri },
  };
}

/** Checks `flow` read back from a provider state: every field a non-empty string. */
export function isCodeFlowState(s: Partial<CodeFlowState>): boolean {
  return [s.state, s.nonce, s.codeVerifier, s.redirectUri].every((v) => typeof v === 'string' && v.length > 0);
}

/** The authorization response's parameters: the query, and for form_post the body too. */
export function authorizationResponse(callback: CallbackInput): Record<string, string | undefined> {
  return callback.method === 'POST' ? { ...callback.query, ...callback.body } : callback.query;
}

/**
 * The authorization response is not an answer to this login (another state, no code, no ID token):
 * refused without asking the upstream anything. `reason` is a fixed text, safe to log.
 */
export class AuthorizationResponseRefused extends Error {
  constructor(readonly reason: string) {
    super(`authorization response refused: ${reason}`);
    this.name = 'AuthorizationResponseRefused';
  }
}

/** `state` matches this login (compared in constant time) and there is a code. */
export function checkAuthorizationResponse(params: Record<string, string | undefined>, flow: CodeFlowState): void {
  if (!constantEquals(params['state'] ?? '', flow.state)) throw new AuthorizationResponseRefused('state does not match the transaction');
  if (!params['code']) throw new AuthorizationResponseRefused('authorization response has no code');
}

/**
 * Redeems the code at the token endpoint. openid-client checks state, RFC 9207 `iss` where the
 * upstream advertises it, PKCE and the ID token's claims, but on the code flow not its signature:
 * the adapter verifies that with the shared upstream-JWT check. `responseParams` are the
 * parameters of the authorization response handed back to openid-client.
 */
export async function redeemCode(
  configuration: oidc.Configuration,
  params: Record<string, string | undefined>,
  flow: CodeFlowState,
  responseParams: readonly string[] = ['code', 'state', 'iss'],
): Promise<oidc.TokenEndpointResponse & { id_token: string }> {
  const currentUrl = new URL(flow.redirectUri);
  for (const name of responseParams) {
    const value = params[name];
    if (value !== undefined) currentUrl.searchParams.set(name, value);
  }
  const tokens = await oidc.authorizationCodeGrant(configuration, currentUrl, {
    pkceCodeVerifier: flow.codeVerifier,
    expectedState: flow.state,
    expectedNonce: flow.nonce,
    idTokenExpected: true,
  });
  if (!tokens.id_token) throw new AuthorizationResponseRefused('token response has no id_token');
  return tokens as oidc.TokenEndpointResponse & { id_token: string };
}

/**
 * fetch() failures (refused, reset, DNS) and timeouts: the upstream is unreachable, not wrong. A
 * response that stalls or is cut off mid-body reaches us wrapped in openid-client's parse errors,
 * so the causes are followed.
 */
export function networkCause(err: unknown): Error | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth += 1) {
    if (e.name === 'TimeoutError' || e.name === 'AbortError') return e;
    if (e instanceof TypeError && (e.message === 'fetch failed' || e.message === 'terminated')) return e;
  }
  return undefined;
}

/** The upstream answered with a server error (5xx, or OAuth `temporarily_unavailable`). */
function upstream5xx(err: unknown): boolean {
  if (err instanceof oidc.ResponseBodyError) return err.status >= 500 || err.error === 'temporarily_unavailable';
  const cause = (err as { cause?: unknown }).cause;
  return (
    err instanceof oidc.ClientError && err.code === 'OAUTH_RESPONSE_IS_NOT_CONFORM' && cause instanceof Response && cause.status >= 500
  );
}

/**
 * What a failure of the flow means:
 * - `unavailable`: the upstream could not be asked (network, 5xx, keys or discovery unavailable);
 * - `refused`: the upstream said no (an OAuth error response);
 * - `rejected`: its answer failed a check (a verdict on a token, openid-client's protocol checks);
 * - `unexpected`: anything else (a bug: logged as an error).
 * `isUnavailable` adds the adapter's own unavailability errors (its discovery error).
 */
export type FlowFailure = 'unavailable' | 'refused' | 'rejected' | 'unexpected';

export function classifyFlowFailure(err: unknown, isUnavailable: (err: unknown) => boolean): FlowFailure {
  if (err instanceof JwksUnavailableError || isUnavailable(err) || networkCause(err) !== undefined || upstream5xx(err))
    return 'unavailable';
  if (err instanceof oidc.ResponseBodyError || err instanceof oidc.AuthorizationResponseError) return 'refused';
  if (
    err instanceof AuthorizationResponseRefused ||
    err instanceof UpstreamTokenRejectedError ||
    err instanceof oidc.ClientError ||
    err instanceof oidc.WWWAuthenticateChallengeError
  )
    return 'rejected';
  return 'unexpected';
}

/** How an adapter words a failed flow: its log lines per kind of failure and what the user is told. */
export interface FlowFailureWords {
  /** The other side in reasons: `OP`, `Keycloak`. */
  upstream: string;
  log: Record<FlowFailure, string>;
  /** For the user: unreachable (temporarily_unavailable), refused and unverified (access_denied). */
  unreachable: string;
  refused: string;
  unverified: string;
  /** The adapter's own errors that mean the upstream is unavailable (its discovery error). */
  isUnavailable: (err: unknown) => boolean;
}

/**
 * A failed step of the flow as the OAuth error the BFF gets (LoginController redirects it there):
 * unavailable → temporarily_unavailable; refused or failed verification → access_denied. One log
 * line with the step and the reason only, never tokens, codes or claims; an OAuthError an adapter
 * check already chose passes through unchanged.
 */
export function flowFailureError(err: unknown, words: FlowFailureWords, logger: Logger, context: Record<string, unknown>): OAuthError {
  if (err instanceof OAuthError) return err;
  const kind = classifyFlowFailure(err, words.isUnavailable);
  const line = { ...context, reason: flowFailureReason(err, words.upstream) };
  if (kind === 'unexpected') logger.error(line, words.log[kind]);
  else logger.warn(line, words.log[kind]);
  if (kind === 'unavailable') return new OAuthError('temporarily_unavailable', words.unreachable, { cause: err });
  return new OAuthError('access_denied', kind === 'refused' ? words.refused : words.unverified, { cause: err });
}

/**
 * Why the flow failed (`upstream` names the other side in the text: `OP`, `Keycloak`), in fixed texts an operator can act on (never a token, code or claim):
 * our errors' `reason`, the upstream's OAuth error code, openid-client's check with the check that
 * failed underneath, and where the network failed underneath it, that cause.
 */
export function flowFailureReason(err: unknown, upstream: string): string {
  const reason = directReason(err, upstream);
  const network = networkCause(err);
  return network && network !== err ? `${reason} (caused by ${network.name}: ${network.message})` : reason;
}

function directReason(err: unknown, upstream: string): string {
  if (err instanceof oidc.ResponseBodyError || err instanceof oidc.AuthorizationResponseError) return `${upstream} error ${err.error}`;
  if (err instanceof oidc.ClientError) {
    // openid-client's message is generic ("unexpected JWT claim value encountered"); the check that
    // failed (which claim, which attribute) is in its cause's message. Those are fixed texts, no values.
    const inner = err.cause instanceof Error && err.cause.message !== err.message ? ` (${err.cause.message})` : '';
    return `${err.code ?? 'client error'}: ${err.message}${inner}`;
  }
  const reason = (err as { reason?: unknown } | undefined)?.reason;
  if (err instanceof Error && typeof reason === 'string') return reason;
  if (err instanceof JwksUnavailableError) return `keys unavailable: ${err.message}`;
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return 'unknown';
}
