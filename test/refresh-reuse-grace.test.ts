/**
 * The refresh-token reuse grace (REFRESH_TOKEN_REUSE_GRACE_SECONDS, ADR 0012): a BFF refreshing one
 * session from two tabs at once presents the same refresh token twice. Within the grace, the client
 * it belongs to gets the same successor again instead of losing the session; after it, or once the
 * family has moved on, a rotated token is reuse and ends the family as before.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import { parseOpaqueToken } from '../src/crypto/opaque-token.js';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { ageRefreshRotation, seedBff, seedNativeTenant } from './support/seed.js';
import { basic, nativeLogin, postForm, tokenRequest, type BffClient } from './support/bff.js';

const PASSWORD = 'correct horse battery staple';
const LIMITS = { RATE_LIMIT_LOGIN_PER_MINUTE: '1000', RATE_LIMIT_AUTHORIZE_PER_MINUTE: '1000' };
// Wider than the default so that 20 requests queued on one session lock on a busy machine never
// reach its end; the bound itself is tested by ageing the rotation in the database.
const GRACE = 30;

let app: TestApp;
let off: TestApp;
let bff: BffClient;
let offBff: BffClient;

interface Tokens {
  access_token: string;
  refresh_token: string;
}

beforeAll(async () => {
  [app, off] = await Promise.all([
    startTestApp({ ...LIMITS, REFRESH_TOKEN_REUSE_GRACE_SECONDS: String(GRACE) }),
    startTestApp({ ...LIMITS, REFRESH_TOKEN_REUSE_GRACE_SECONDS: '0' }),
  ]);
  [bff, offBff] = await Promise.all([seedBff(app), seedBff(off)]);
  const users = [{ username: 'ann@grace.test', password: PASSWORD }];
  await Promise.all([seedNativeTenant(app, 'grace', users), seedNativeTenant(off, 'grace', users)]);
});

afterAll(async () => {
  await Promise.allSettled([app?.close(), off?.close()]);
});

const login = async (on: TestApp, client: BffClient) => (await nativeLogin(on.url, client, 'grace', 'ann@grace.test', PASSWORD)).tokens;
const refresh = (on: TestApp, client: BffClient, token: string) =>
  tokenRequest(on.url, client, { grant_type: 'refresh_token', refresh_token: token });
const userinfo = (on: TestApp, accessToken: string) =>
  fetch(`${on.url}/oauth2/userinfo`, { headers: { authorization: `Bearer ${accessToken}` } });

/** The session behind an access token: how many refresh tokens it ever had, and whether it ended. */
async function family(on: TestApp, accessToken: string): Promise<{ tokens: number; revokedReason: string | null }> {
  const { tid, sid } = decodeJwt(accessToken) as { tid: string; sid: string };
  const { rows } = await on.database.transaction({ tenant: tid }, (tx) =>
    tx.query<{ tokens: number; revoked_reason: string | null }>(
      `SELECT (SELECT count(*)::int FROM refresh_tokens WHERE session_id = s.id) AS tokens, s.revoked_reason FROM sessions s WHERE s.id = $1`,
      [sid],
    ),
  );
  return { tokens: rows[0]!.tokens, revokedReason: rows[0]!.revoked_reason };
}

async function rotate(on: TestApp, client: BffClient, token: string): Promise<Tokens> {
  const res = await refresh(on, client, token);
  expect(res.status).toBe(200);
  return (await res.json()) as Tokens;
}

async function expectRefused(res: Response): Promise<void> {
  expect(res.status).toBe(400);
  const body = (await res.json()) as Record<string, unknown>;
  expect(body).toMatchObject({ error: 'invalid_grant' });
  expect(body['refresh_token']).toBeUndefined();
}

describe('refresh-token reuse grace', () => {
  it('answers 20 concurrent refreshes of one token with one and the same successor, and the family lives on', async () => {
    const tokens = await login(app, bff);
    const answers = await Promise.all(Array.from({ length: 20 }, () => refresh(app, bff, tokens.refresh_token)));
    expect(answers.map((r) => r.status)).toEqual(Array(20).fill(200));
    const bodies = (await Promise.all(answers.map((r) => r.json()))) as Tokens[];
    const successors = new Set(bodies.map((b) => b.refresh_token));
    expect(successors.size).toBe(1);
    const [successor] = [...successors];
    expect(successor).not.toBe(tokens.refresh_token);
    // One successor family: the original and one successor, nothing revoked.
    expect(await family(app, tokens.access_token)).toEqual({ tokens: 2, revokedReason: null });
    for (const b of bodies.slice(0, 3)) expect((await userinfo(app, b.access_token)).status).toBe(200);

    // The successor rotates normally afterwards.
    const next = await rotate(app, bff, successor!);
    expect(next.refresh_token).not.toBe(successor);
    expect((await userinfo(app, next.access_token)).status).toBe(200);
    expect(await family(app, tokens.access_token)).toEqual({ tokens: 3, revokedReason: null });
  });

  it('answers a second presentation within the grace with the same successor and a fresh access token', async () => {
    const tokens = await login(app, bff);
    const first = await rotate(app, bff, tokens.refresh_token);
    const second = await rotate(app, bff, tokens.refresh_token);
    expect(second.refresh_token).toBe(first.refresh_token);
    expect(decodeJwt(second.access_token).jti).not.toBe(decodeJwt(first.access_token).jti);
    expect((await userinfo(app, second.access_token)).status).toBe(200);
  });

  it('revokes the family when the rotated token comes back after the grace', async () => {
    const tokens = await login(app, bff);
    const first = await rotate(app, bff, tokens.refresh_token);
    await ageRefreshRotation(app, tokens.refresh_token, GRACE + 1);
    await expectRefused(await refresh(app, bff, tokens.refresh_token));
    await expectRefused(await refresh(app, bff, first.refresh_token));
    expect((await family(app, tokens.access_token)).revokedReason).toBe('refresh_token_reused');
    expect((await userinfo(app, first.access_token)).status).toBe(401);
  });

  it('counts a re-presentation as reuse once the successor has itself been rotated, even within the grace', async () => {
    const tokens = await login(app, bff);
    const first = await rotate(app, bff, tokens.refresh_token);
    const second = await rotate(app, bff, first.refresh_token);
    await expectRefused(await refresh(app, bff, tokens.refresh_token));
    await expectRefused(await refresh(app, bff, second.refresh_token));
    expect((await family(app, tokens.access_token)).revokedReason).toBe('refresh_token_reused');
  });

  it('counts a re-presentation as reuse once the successor has expired', async () => {
    const tokens = await login(app, bff);
    const first = await rotate(app, bff, tokens.refresh_token);
    const successor = parseOpaqueToken('rt', first.refresh_token)!;
    await app.database.transaction({ tenant: successor.tenantId }, (tx) =>
      tx.query(`UPDATE refresh_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = $1`, [successor.hash]),
    );
    await expectRefused(await refresh(app, bff, tokens.refresh_token));
    expect((await family(app, tokens.access_token)).revokedReason).toBe('refresh_token_reused');
  });

  it('does not answer the successor to another client within the grace, and leaves the family to its own client', async () => {
    const other = await seedBff(app);
    const tokens = await login(app, bff);
    const first = await rotate(app, bff, tokens.refresh_token);
    await expectRefused(await refresh(app, other, tokens.refresh_token));
    expect((await family(app, tokens.access_token)).revokedReason).toBeNull();
    await rotate(app, bff, first.refresh_token);
  });

  it('refuses a just-rotated token within the grace once the session has ended', async () => {
    const tokens = await login(app, bff);
    const first = await rotate(app, bff, tokens.refresh_token);
    const revoked = await postForm(
      `${app.url}/oauth2/revoke`,
      { token: first.refresh_token },
      { headers: { authorization: basic(bff.clientId, bff.clientSecret) } },
    );
    expect(revoked.status).toBe(200);
    await expectRefused(await refresh(app, bff, tokens.refresh_token));
    expect((await family(app, tokens.access_token)).revokedReason).toBe('revoked_by_client');
  });
});

describe('refresh-token reuse grace off (0)', () => {
  it('lets one of 20 concurrent refreshes win; the others are reuse and end the family, the winner included', async () => {
    const tokens = await login(off, offBff);
    const answers = await Promise.all(Array.from({ length: 20 }, () => refresh(off, offBff, tokens.refresh_token)));
    const statuses = answers.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 400)).toHaveLength(19);
    const winner = (await answers[statuses.indexOf(200)]!.json()) as Tokens;
    await expectRefused(await refresh(off, offBff, winner.refresh_token));
    expect(await family(off, tokens.access_token)).toEqual({ tokens: 2, revokedReason: 'refresh_token_reused' });
  });
});

describe('refresh with a scope', () => {
  it('narrows to a subset of the granted scope, and refuses a wider one without rotating the token', async () => {
    const tokens = await login(off, offBff);
    const wider = await tokenRequest(off.url, offBff, {
      grant_type: 'refresh_token',
      refresh_token: tokens.refresh_token,
      scope: 'openid email admin',
    });
    expect(wider.status).toBe(400);
    expect(await wider.json()).toMatchObject({ error: 'invalid_scope' });
    // Not rotated (grace is off here, so a rotated token presented again would end the family).
    expect(await family(off, tokens.access_token)).toEqual({ tokens: 1, revokedReason: null });
    const narrowed = await tokenRequest(off.url, offBff, {
      grant_type: 'refresh_token',
      refresh_token: tokens.refresh_token,
      scope: 'openid email',
    });
    expect(narrowed.status).toBe(200);
    const body = (await narrowed.json()) as Tokens & { scope: string };
    expect(body.scope).toBe('openid email');
    expect(decodeJwt(body.access_token)['scope']).toBe('openid email');
    expect(await family(off, tokens.access_token)).toEqual({ tokens: 2, revokedReason: null });
  });
});
