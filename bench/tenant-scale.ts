/**
 * Does the number of tenants slow the hot paths? Login start (authorize → hosted form of a native
 * tenant), client_credentials (a tenant's machine client) and refresh_token, at a fixed moderate
 * rate, with 10 tenants and then with 100,000 tenants in the database; every request picks a random
 * tenant. One tenant is created through the services; the others are copies of its rows made in
 * SQL (tenant, native binding, a native user, a machine client), with ids derived from the index.
 */
import type pg from 'pg';
import type { Request } from 'autocannon';
import { TenantsService } from '../src/tenants/tenants.service.js';
import { BindingsService } from '../src/tenants/bindings.service.js';
import { ClientsService } from '../src/clients/clients.service.js';
import { NativeCredentialsService } from '../src/identity/native/native-credentials.service.js';
import {
  authorizeQuery,
  basic,
  createStack,
  envNumber,
  header,
  load,
  login,
  mapLimit,
  progress,
  refreshRequests,
  round,
  type BenchClient,
  type LoadResult,
} from './harness.js';

const PASSWORD = 'scale-password-1';
const USERNAME = 'user@scale.test';
const CHAINS = 64;

export interface TenantScalePhase {
  tenants: number;
  seedSeconds: number;
  authorize: LoadResult;
  clientCredentials: LoadResult;
  refreshToken: LoadResult;
}

export interface TenantScaleBenchResult {
  rate: number;
  connections: number;
  durationSeconds: number;
  phases: TenantScalePhase[];
}

const slug = (i: number) => `scale-${i}`;
const tenantIdSql = `md5('scale-tenant-' || i)::uuid`;

/**
 * Copies the template row of `table` once per i in [from, to): `overrides` are SQL expressions of
 * `i` for the columns that must differ; every other column is copied (new columns included).
 */
async function cloneRows(
  db: pg.Client,
  table: string,
  template: string,
  templateParam: string,
  overrides: Record<string, string>,
  from: number,
  to: number,
): Promise<void> {
  const { rows } = await db.query<{ column_name: string }>(
    `SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 AND is_generated = 'NEVER' AND is_identity = 'NO' ORDER BY ordinal_position`,
    [table],
  );
  const copied = rows.map((r) => r.column_name).filter((c) => !(c in overrides));
  const columns = [...Object.keys(overrides), ...copied].map((c) => `"${c}"`).join(', ');
  const values = [...Object.values(overrides), ...copied.map((c) => `tpl."${c}"`)].join(', ');
  const res = await db.query(
    `INSERT INTO ${table} (${columns}) SELECT ${values} FROM generate_series($1::int, $2::int - 1) AS i, (SELECT * FROM ${table} WHERE ${template} = $3 LIMIT 1) AS tpl`,
    [from, to, templateParam],
  );
  if (res.rowCount !== to - from) throw new Error(`seeding ${table}: ${res.rowCount} rows instead of ${to - from} (no template row?)`);
}

async function seedTenants(db: pg.Client, templateTenantId: string, from: number, to: number): Promise<void> {
  await db.query('BEGIN');
  await cloneRows(
    db,
    'tenants',
    'id',
    templateTenantId,
    { id: tenantIdSql, slug: `'scale-' || i`, display_name: `'Scale ' || i` },
    from,
    to,
  );
  await cloneRows(
    db,
    'tenant_identity_providers',
    'tenant_id',
    templateTenantId,
    { id: `md5('scale-binding-' || i)::uuid`, tenant_id: tenantIdSql },
    from,
    to,
  );
  await cloneRows(db, 'users', 'tenant_id', templateTenantId, { id: `md5('scale-user-' || i)::uuid`, tenant_id: tenantIdSql }, from, to);
  await cloneRows(
    db,
    'native_credentials',
    'tenant_id',
    templateTenantId,
    { user_id: `md5('scale-user-' || i)::uuid`, tenant_id: tenantIdSql },
    from,
    to,
  );
  await cloneRows(db, 'clients', 'id', 'scale-m2m-0', { id: `'scale-m2m-' || i`, tenant_id: tenantIdSql }, from, to);
  await db.query('COMMIT');
  // Statistics, visibility map and dirty pages settled now, not by autovacuum or a checkpoint mid-measurement.
  for (const table of ['tenants', 'tenant_identity_providers', 'users', 'native_credentials', 'clients'])
    await db.query(`VACUUM (ANALYZE) ${table}`);
  await db.query('CHECKPOINT');
}

export async function runTenantScaleBench(): Promise<TenantScaleBenchResult> {
  const rate = envNumber('BENCH_TENANT_RATE', 200);
  const connections = envNumber('BENCH_TENANT_CONNECTIONS', 16);
  const duration = envNumber('BENCH_TENANT_SECONDS', 6);
  const sizes = (process.env.BENCH_TENANT_COUNTS ?? (process.env.BENCH_LARGE === 'true' ? '10,1000000' : '10,100000'))
    .split(',')
    .map(Number)
    .filter((n) => Number.isInteger(n) && n >= 1)
    .sort((a, b) => a - b);
  // Cheap hashing: password logins only set up the refresh-token chains here.
  const stack = await createStack('tenant-scale-bench', { ARGON2_TIME_COST: '1', ARGON2_MEMORY_KIB: '1024' });
  try {
    const seeded = await stack.seed(async (app) => {
      const tenant = await app.get(TenantsService).create(slug(0), 'Scale 0');
      await app.get(BindingsService).create(tenant, { kind: 'native', claimMapping: { defaultRoles: ['USER'] } });
      await app.get(NativeCredentialsService).createUser(tenant.id, { username: USERNAME, password: PASSWORD });
      const clients = app.get(ClientsService);
      const m2m = await clients.create({ id: 'scale-m2m-0', name: 'Scale M2M', kind: 'machine', tenantId: tenant.id, scopes: ['api'] });
      const bff = await clients.create({ id: 'scale-bff', name: 'Scale BFF', kind: 'bff', redirectUris: ['http://127.0.0.1:9/cb'] });
      return { tenantId: tenant.id, m2mSecret: m2m.secret, bffSecret: bff.secret };
    });
    const client: BenchClient = { id: 'scale-bff', secret: seeded.bffSecret, redirect: 'http://127.0.0.1:9/cb' };
    await stack.start();
    const db = await stack.superuser();
    const phases: TenantScalePhase[] = [];
    try {
      let have = 1;
      for (const size of sizes) {
        progress(`tenant scale: seeding ${size - have} tenants (to ${size})`);
        const started = Date.now();
        if (size > have) await seedTenants(db, seeded.tenantId, have, size);
        have = Math.max(have, size);
        const seedSeconds = round((Date.now() - started) / 1000, 1);
        const randomTenant = () => Math.floor(Math.random() * size);

        const chains = await mapLimit(Array.from({ length: CHAINS }, randomTenant), 8, (i) =>
          login(stack.base, client, slug(i), USERNAME, PASSWORD),
        );
        const base = { connections, overallRate: rate };
        // A 302 back to the client (an OAuth error) is not a login start.
        let notTheForm = 0;
        const authorize = (): Request[] => [
          {
            method: 'GET',
            setupRequest: (req) => ({ ...req, path: `/oauth2/authorize?${authorizeQuery(client, slug(randomTenant()))}` }),
            onResponse: (status, _body, _ctx, headers) => {
              if (status === 302 && !header(headers as Record<string, unknown>, 'location')?.includes('/login/native/')) notTheForm++;
            },
          },
        ];
        const clientCredentials = (): Request[] => [
          {
            method: 'POST',
            setupRequest: (req) => ({
              ...req,
              headers: {
                authorization: basic(`scale-m2m-${randomTenant()}`, seeded.m2mSecret),
                'content-type': 'application/x-www-form-urlencoded',
              },
              body: 'grant_type=client_credentials&scope=api',
            }),
          },
        ];
        const measure = async (name: string, path: string, requests: () => Request[], expect: number) => {
          progress(`tenant scale: ${size} tenants, ${name}`);
          const url = `${stack.base}${path}`;
          await load({ ...base, url, duration: 1, requests: requests() }, expect); // warm-up
          notTheForm = 0;
          return load({ ...base, url, duration, requests: requests() }, expect);
        };
        const pool = refreshRequests(client, chains);
        phases.push({
          tenants: size,
          seedSeconds,
          authorize: await measure('authorize', '/oauth2/authorize', authorize, 302).then((r) => ({
            ...r,
            unexpected: r.unexpected + notTheForm,
          })),
          clientCredentials: await measure('client_credentials', '/oauth2/token', clientCredentials, 200),
          refreshToken: await measure('refresh_token', '/oauth2/token', () => pool, 200),
        });
      }
    } finally {
      await db.end();
    }
    return { rate, connections, durationSeconds: duration, phases };
  } finally {
    await stack.close();
  }
}
