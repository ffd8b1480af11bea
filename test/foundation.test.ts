/**
 * Issue #2 requirements that were implemented but not asserted elsewhere:
 * - private signing keys and IdP binding secrets are encrypted at rest, as the database stores them;
 * - the key-encryption key can come from KEY_ENCRYPTION_KEY_FILE (and a wrong one is refused clearly);
 * - /health/live and /health/ready with their checks;
 * - request logs carry a request id (an incoming X-Request-Id is honoured and echoed).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { SecretBox } from '../src/crypto/secret-box.js';
import { Database } from '../src/database/database.js';
import { BindingsService } from '../src/tenants/bindings.service.js';
import { SigningKeysService } from '../src/tokens/signing-keys.service.js';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { adminClient, type AdminClient } from './support/admin.js';

const lines: string[] = [];
const destination = { write: (line: string) => void lines.push(line) };
const CLIENT_SECRET = `oidc-client-secret-${randomBytes(12).toString('hex')}`;
const PEM_HEADER = '-----BEGIN PRIVATE KEY-----';

let app: TestApp;
let admin: AdminClient;
let superuser: pg.Client;
let workDir: string;

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'auth-service-foundation-'));
  app = await startTestApp({}, undefined, destination);
  admin = await adminClient(app);
  const url = new URL(inject('pgAdminUrl'));
  url.pathname = `/${app.db.name}`;
  superuser = new pg.Client({ connectionString: url.toString() });
  await superuser.connect();
});

afterAll(async () => {
  await superuser?.end();
  await app?.close();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

const json = async <T = Record<string, unknown>>(res: Response) => (await res.json()) as T;
const kekBox = () => new SecretBox(Buffer.from(app.db.kek, 'base64'));

/** A binding created through the admin API with a client secret (write-only, sealed at rest). */
async function bindingWithSecret(slug: string): Promise<{ tenantId: string; bindingId: string }> {
  const tenant = await json<{ id: string }>(await admin.call('POST', '/admin/v1/tenants', { slug, displayName: slug }));
  const res = await admin.call('POST', `/admin/v1/tenants/${tenant.id}/bindings`, {
    kind: 'native',
    secrets: { clientSecret: CLIENT_SECRET },
  });
  expect(res.status, await res.clone().text()).toBe(201);
  return { tenantId: tenant.id, bindingId: (await json<{ id: string }>(res)).id };
}

/** Every row of every table of the public schema, as PostgreSQL prints it (bytea as \x hex). */
async function wholeDatabaseText(): Promise<string> {
  const { rows: tables } = await superuser.query<{ name: string }>(`SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'`);
  const out: string[] = [];
  for (const { name } of tables) {
    const { rows } = await superuser.query<{ row: string }>(`SELECT t::text AS row FROM public."${name}" t`);
    for (const r of rows) out.push(r.row);
  }
  return out.join('\n');
}

const hex = (b: Buffer | string) => Buffer.from(b).toString('hex');

describe('encryption at rest (database level)', () => {
  it('signing_keys.private_key holds AES-GCM sealed bytes: no PEM, no DER, no private JWK members in clear', async () => {
    const { rows } = await superuser.query<{
      kid: string;
      private_key: Buffer | null;
      public_jwk: Record<string, unknown>;
      status: string;
    }>(`SELECT kid, private_key, public_jwk, status FROM signing_keys`);
    const withKey = rows.filter((r) => r.private_key !== null);
    expect(withKey.some((r) => r.status === 'active')).toBe(true);
    for (const r of withKey) {
      const raw = r.private_key!;
      // What the column holds is the sealed form: version 1 | iv | tag | ciphertext, and it opens (only) under the KEK.
      const pem = kekBox().open(raw, `signing_key:${r.kid}`).toString('utf8');
      expect(pem.startsWith(PEM_HEADER)).toBe(true);
      const der = Buffer.from(pem.replace(/-----(BEGIN|END) PRIVATE KEY-----|\s+/g, ''), 'base64');
      expect(der.length).toBeGreaterThan(1000);
      expect(raw.includes(Buffer.from('PRIVATE KEY')), `${r.kid}: PEM armour in clear`).toBe(false);
      expect(raw.includes(der.subarray(0, 64)), `${r.kid}: DER bytes in clear`).toBe(false);
      expect(raw.toString('latin1').includes(pem.split('\n')[1]!), `${r.kid}: PEM body in clear`).toBe(false);
      expect(() => new SecretBox(randomBytes(32)).open(raw, `signing_key:${r.kid}`)).toThrow();
      // The published JWK is public only.
      for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi']) expect(r.public_jwk, `${r.kid}.${member}`).not.toHaveProperty(member);
    }
    // Nowhere in the database is a private key in clear (bytea prints as hex).
    const everything = await wholeDatabaseText();
    expect(everything).not.toContain('PRIVATE KEY');
    expect(everything).not.toContain(hex('PRIVATE KEY'));
  });

  it('tenant_identity_providers.secrets of a binding created with a client secret does not contain the secret', async () => {
    const { bindingId } = await bindingWithSecret('sealed-secrets');
    const { rows } = await superuser.query<{ secrets: Buffer | null; config: unknown }>(
      `SELECT secrets, config FROM tenant_identity_providers WHERE id = $1`,
      [bindingId],
    );
    const sealed = rows[0]!.secrets!;
    expect(Buffer.isBuffer(sealed)).toBe(true);
    // The column holds exactly this secret, sealed for this row...
    expect(kekBox().openJson(sealed, `binding_secrets:${bindingId}`)).toEqual({ clientSecret: CLIENT_SECRET });
    // ...and none of its bytes in clear, in any usual encoding (nor the field name: the whole JSON is sealed).
    for (const form of [CLIENT_SECRET, Buffer.from(CLIENT_SECRET).toString('base64'), hex(CLIENT_SECRET), 'clientSecret'])
      expect(sealed.includes(Buffer.from(form)), `sealed secrets contain ${form}`).toBe(false);
    expect(JSON.stringify(rows[0]!.config)).not.toContain(CLIENT_SECRET);
    // No other table (audit trail, idempotency records, ...) keeps it either.
    const everything = await wholeDatabaseText();
    expect(everything).not.toContain(CLIENT_SECRET);
    expect(everything).not.toContain(hex(CLIENT_SECRET));
    expect(everything).not.toContain(Buffer.from(CLIENT_SECRET).toString('base64'));
  });
});

describe('key-encryption key from KEY_ENCRYPTION_KEY_FILE', () => {
  it('a replica started with the key in a file signs with the key sealed earlier and opens binding secrets', async () => {
    const { tenantId, bindingId } = await bindingWithSecret('kek-file');
    const [{ kid }] = (await superuser.query<{ kid: string }>(`SELECT kid FROM signing_keys WHERE status = 'active'`)).rows as [
      { kid: string },
    ];
    const file = join(workDir, 'kek.b64');
    writeFileSync(file, `${app.db.kek}\n`, { mode: 0o600 }); // as `openssl rand -base64 32 > file` writes it
    // Another replica of the same deployment: same database, same issuer, the key from the file only.
    const other = await startTestApp({ KEY_ENCRYPTION_KEY: '', KEY_ENCRYPTION_KEY_FILE: file, PUBLIC_URL: app.config.issuer }, app.db);
    try {
      expect(other.config.KEY_ENCRYPTION_KEY).toBeUndefined();
      // No key of its own was made: it opened the sealed private key and signs with it.
      const keys = other.app.get(SigningKeysService);
      expect(keys.hasActiveKey()).toBe(true);
      expect(keys.currentSigner().kid).toBe(kid);
      expect((await superuser.query(`SELECT 1 FROM signing_keys`)).rowCount).toBe(1);
      const res = await fetch(`${other.url}/admin/v1/tenants/${tenantId}/bindings/${bindingId}`, {
        headers: { authorization: `Bearer ${admin.token}` },
      });
      expect(res.status, await res.clone().text()).toBe(200);
      expect((await json<{ secretFields: string[] }>(res)).secretFields).toEqual(['clientSecret']);
      const [{ secrets }] = (
        await superuser.query<{ secrets: Buffer }>(`SELECT secrets FROM tenant_identity_providers WHERE id = $1`, [bindingId])
      ).rows as [{ secrets: Buffer }];
      expect(other.app.get(BindingsService).openSecrets(bindingId, secrets)).toEqual({ clientSecret: CLIENT_SECRET });
      const ready = await fetch(`${other.url}/health/ready`);
      expect(ready.status).toBe(200);
    } finally {
      await other.close();
    }
  });

  it('refuses to start with a wrong key in the file, with a message naming the key-encryption key', async () => {
    const file = join(workDir, 'wrong-kek.b64');
    writeFileSync(file, randomBytes(32).toString('base64'), { mode: 0o600 });
    const started = startTestApp({ KEY_ENCRYPTION_KEY: '', KEY_ENCRYPTION_KEY_FILE: file }, app.db);
    const err = await started.then(
      async (a) => {
        await a.close();
        return undefined;
      },
      (e: unknown) => e as Error,
    );
    expect(err, 'a service with the wrong key-encryption key started').toBeInstanceOf(Error);
    expect(err!.message).toMatch(/KEY_ENCRYPTION_KEY/);
    // Nothing was replaced: the sealed keys still open under the right key.
    const { rows } = await superuser.query<{ kid: string; private_key: Buffer }>(
      `SELECT kid, private_key FROM signing_keys WHERE status = 'active'`,
    );
    expect(rows).toHaveLength(1);
    expect(kekBox().open(rows[0]!.private_key, `signing_key:${rows[0]!.kid}`).toString('utf8').startsWith(PEM_HEADER)).toBe(true);
  });

  it('refuses a file that is missing or not 32 base64 bytes, naming the variable', async () => {
    const short = join(workDir, 'short-kek.b64');
    writeFileSync(short, randomBytes(16).toString('base64'));
    await expect(startTestApp({ KEY_ENCRYPTION_KEY: '', KEY_ENCRYPTION_KEY_FILE: short }, app.db)).rejects.toThrow(
      'KEY_ENCRYPTION_KEY_FILE must be 32 random bytes, base64-encoded (got 16 bytes)',
    );
    await expect(startTestApp({ KEY_ENCRYPTION_KEY: '', KEY_ENCRYPTION_KEY_FILE: join(workDir, 'absent') }, app.db)).rejects.toThrow(
      `KEY_ENCRYPTION_KEY_FILE: no file at ${join(workDir, 'absent')}`,
    );
  });
});

describe('health', () => {
  it('GET /health/live answers 200', async () => {
    const res = await fetch(`${app.url}/health/live`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('GET /health/ready answers 200 with the database and signing-key checks, uncached', async () => {
    const res = await fetch(`${app.url}/health/ready`);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.json()).toMatchObject({ status: 'ok', checks: { database: 'up', signing_key: 'active' } });
  });

  it('GET /health/ready answers 503 naming the failed check when the database or the signing key is missing', async () => {
    const keys = vi.spyOn(app.app.get(SigningKeysService), 'hasActiveKey').mockReturnValue(false);
    try {
      const res = await fetch(`${app.url}/health/ready`);
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ status: 'unavailable', checks: { database: 'up', signing_key: 'missing' } });
    } finally {
      keys.mockRestore();
    }
    const ping = vi.spyOn(app.app.get(Database), 'ping').mockResolvedValue(false);
    try {
      const res = await fetch(`${app.url}/health/ready`);
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ status: 'unavailable', checks: { database: 'down', signing_key: 'active' } });
    } finally {
      ping.mockRestore();
    }
    expect((await fetch(`${app.url}/health/ready`)).status).toBe(200);
  });
});

describe('request id in logs', () => {
  type Entry = { req?: { id?: string; path?: string }; res?: { statusCode: number } };
  const entries = () => lines.map((l) => JSON.parse(l) as Entry);
  const lineFor = async (id: string) => {
    await vi.waitFor(() => expect(entries().some((e) => e.req?.id === id)).toBe(true), { timeout: 3_000, interval: 20 });
    return entries().find((e) => e.req?.id === id)!;
  };
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
  const PATH = '/.well-known/openid-configuration';

  it('gives every request an id, returned in X-Request-Id and carried by its log line', async () => {
    const a = await fetch(`${app.url}${PATH}`);
    const b = await fetch(`${app.url}${PATH}`);
    const ids = [a.headers.get('x-request-id'), b.headers.get('x-request-id')];
    for (const id of ids) expect(id).toMatch(UUID);
    expect(ids[0]).not.toBe(ids[1]);
    for (const id of ids) expect(await lineFor(id!)).toMatchObject({ req: { id, path: PATH }, res: { statusCode: 200 } });
  });

  it('honours and echoes an incoming X-Request-Id, and replaces one that is not a plain token', async () => {
    const incoming = `gw-${randomBytes(8).toString('hex')}`;
    const res = await fetch(`${app.url}${PATH}`, { headers: { 'x-request-id': incoming } });
    expect(res.headers.get('x-request-id')).toBe(incoming);
    expect(await lineFor(incoming)).toMatchObject({ req: { id: incoming, path: PATH } });

    const forged = `evil id ${randomBytes(4).toString('hex')} "injected":1`;
    const replaced = await fetch(`${app.url}${PATH}`, { headers: { 'x-request-id': forged } });
    const id = replaced.headers.get('x-request-id')!;
    expect(id).toMatch(UUID);
    await lineFor(id);
    expect(lines.join('')).not.toContain(forged);
  });
});
