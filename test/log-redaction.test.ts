/**
 * What the service logs at LOG_LEVEL=info during a login, token grants, a revocation and SCIM
 * provisioning: request lines and events, but never a password, an authorization code, a PKCE
 * verifier, an access/ID/refresh token, a client secret, a SCIM token, or the user's email.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootstrapAdmin } from '../src/admin/admin-bootstrap.js';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { seedBff, seedNativeTenant } from './support/seed.js';
import { authorizeUrl, basic, get, nativeLogin, pkcePair, postForm, submitNativeLogin, tokenRequest } from './support/bff.js';
import { PATCH_OP, entraUser, scimClient } from './support/scim.js';

const PASSWORD = 'Tr0ub4dor&3-never-logged';
const WRONG_PASSWORD = 'wrong-horse-never-logged';
const EMAIL = 'grace.hopper@logs-co.test';

const lines: string[] = [];
const destination = { write: (line: string) => void lines.push(line) };
let app: TestApp;

beforeAll(async () => {
  app = await startTestApp({}, undefined, destination);
});

afterAll(async () => app?.close());

describe('structured logs', () => {
  it('carry no password, code, token, client secret, SCIM token or email through a login, grants and SCIM', async () => {
    const secrets: Record<string, string> = { password: PASSWORD, wrongPassword: WRONG_PASSWORD, email: EMAIL };
    const bff = await seedBff(app);
    secrets['bffSecret'] = bff.clientSecret;
    const { tenant } = await seedNativeTenant(app, 'logs-co', [{ username: EMAIL, password: PASSWORD }]);

    // A failed password first, then a full login with login_hint (query strings must not be logged either).
    const { challenge } = pkcePair();
    const start = await get(
      authorizeUrl(app.url, bff, {
        org: 'logs-co',
        state: 'st',
        code_challenge: challenge,
        code_challenge_method: 'S256',
        login_hint: EMAIL,
      }),
    );
    expect((await submitNativeLogin(app.url, start.headers.get('location')!, EMAIL, WRONG_PASSWORD)).status).toBe(401);
    // The login transaction handle in the form's path is a bearer secret of that login.
    secrets['loginHandleSecret'] = decodeURIComponent(new URL(start.headers.get('location')!).pathname.split('/').pop()!)
      .split('_')
      .slice(2)
      .join('_'); // base64url: may itself hold '_'
    const { tokens, code, verifier } = await nativeLogin(app.url, bff, 'logs-co', EMAIL, PASSWORD, { login_hint: EMAIL });
    Object.assign(secrets, {
      code,
      verifier,
      accessToken: tokens.access_token,
      idToken: tokens.id_token,
      refreshToken: tokens.refresh_token,
    });

    const refreshed = (await (
      await tokenRequest(app.url, bff, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token })
    ).json()) as { access_token: string; refresh_token: string };
    Object.assign(secrets, { refreshedAccess: refreshed.access_token, refreshedRefresh: refreshed.refresh_token });
    expect((await fetch(`${app.url}/oauth2/userinfo`, { headers: { authorization: `Bearer ${refreshed.access_token}` } })).status).toBe(
      200,
    );
    // A wrong client secret and a replayed code (which ends the session): error paths log too.
    expect(
      (await tokenRequest(app.url, bff, { grant_type: 'authorization_code', code, redirect_uri: bff.redirectUri, code_verifier: verifier }))
        .status,
    ).toBe(400);
    expect(
      (
        await postForm(
          `${app.url}/oauth2/token`,
          { grant_type: 'refresh_token', refresh_token: tokens.refresh_token },
          { headers: { authorization: basic(bff.clientId, 'not-the-secret') } },
        )
      ).status,
    ).toBe(401);

    const ops = await bootstrapAdmin(app.app, 'logs-ops');
    secrets['adminSecret'] = ops.clientSecret;
    const cc = (await (
      await postForm(
        `${app.url}/oauth2/token`,
        { grant_type: 'client_credentials', scope: 'admin' },
        { headers: { authorization: basic(ops.clientId, ops.clientSecret) } },
      )
    ).json()) as { access_token: string };
    secrets['clientCredentialsToken'] = cc.access_token;

    const scim = await scimClient(app, tenant.id);
    secrets['scimToken'] = scim.token;
    const adopted = await scim.post('/Users', entraUser(EMAIL, randomUUID()));
    expect(adopted.status).toBe(201);
    expect(
      (
        await scim.patch(`/Users/${adopted.body['id'] as string}`, {
          schemas: [PATCH_OP],
          Operations: [{ op: 'replace', path: 'active', value: false }],
        })
      ).status,
    ).toBe(200);
    expect((await fetch(`${app.url}/scim/v2/Users`, { headers: { authorization: 'Bearer scim-token-that-does-not-exist' } })).status).toBe(
      401,
    );

    await new Promise((r) => setTimeout(r, 200)); // pino writes asynchronously to the destination
    const log = lines.join('');
    // The capture works: request lines for the token endpoint and SCIM were written, at info level.
    const entries = lines.map((l) => JSON.parse(l) as { level: number; req?: { path: string }; res?: { statusCode: number } });
    expect(entries.some((e) => e.req?.path === '/oauth2/token' && e.res?.statusCode === 200)).toBe(true);
    expect(entries.some((e) => e.req?.path === '/scim/v2/Users' && e.res?.statusCode === 201)).toBe(true);
    expect(entries.some((e) => e.req?.path.startsWith('/login/native/'))).toBe(true);
    // Request lines name the tenant they worked on (tenant id: an identifier, not PII).
    const tenantLines = entries as Array<{ tenant?: string; req?: { path: string } }>;
    expect(tenantLines.some((e) => e.req?.path === '/oauth2/token' && e.tenant === tenant.id)).toBe(true);

    for (const [what, value] of Object.entries(secrets)) {
      expect(value.length, what).toBeGreaterThan(8);
      expect(log.includes(value), `${what} appears in the logs`).toBe(false);
      // Tokens are also checked by their signature part alone.
      const parts = value.split('.');
      const signature = parts.length === 3 && parts[2]!.length > 40 ? parts[2] : undefined;
      if (signature) expect(log.includes(signature), `${what} signature appears in the logs`).toBe(false);
    }
    expect(log).not.toContain('scim-token-that-does-not-exist');
    expect(log).not.toMatch(/authorization/i);
    expect(log).not.toMatch(/cookie/i);
  });

  it('keep the values out of a constraint violation that leaves the database layer', async () => {
    // Under row-level security PostgreSQL leaves key values out of DETAIL by itself; the global
    // tables (tenants, clients) have no RLS, so the database layer removes them.
    const { tenant } = await seedNativeTenant(app, 'detail-co', []);
    const slug = `dup-${randomUUID()}`;
    const insert = `INSERT INTO tenants (slug, display_name) VALUES ($1, $1)`;
    await app.database.query(insert, [slug]);
    const viaOrm = await app.database.query(insert, [slug]).catch((e: unknown) => e);
    const viaPool = await app.database.transaction({ tenant: tenant.id }, (tx) => tx.query(insert, [slug])).catch((e: unknown) => e);
    for (const err of [viaOrm, viaPool]) {
      expect((err as { code?: string; driverError?: { code?: string } }).driverError?.code ?? (err as { code?: string }).code).toBe(
        '23505',
      );
      expect(JSON.stringify(err, Object.getOwnPropertyNames(err))).not.toContain(slug);
      expect(JSON.stringify((err as { driverError?: object }).driverError ?? {})).not.toContain(slug);
    }
  });
});
