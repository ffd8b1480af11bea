/**
 * `npm run kong:config`: prints Kong's declarative configuration (decK) for the platform JWT — a
 * consumer with one jwt credential per signing key in the JWKS — from a running service.
 *
 *   ADMIN_URL=https://auth.example.com ADMIN_CLIENT_ID=ops-admin ADMIN_CLIENT_SECRET=… npm run kong:config > kong.yml
 *   npm run kong:config -- --format json
 *   npm run kong:config -- --dbless        (a plain Kong declarative file for KONG_DECLARATIVE_CONFIG)
 *
 * Same credentials as `npm run admin` (an operator machine client with the `admin` scope). Run it
 * after every rotation (or let the service push to KONG_ADMIN_URL itself), then
 * `deck gateway sync kong.yml` (it only touches entities tagged `auth-service`).
 */
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    format: { type: 'string', default: 'yaml' },
    dbless: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' },
  },
});

const fail = (message: string, code = 1): never => {
  process.stderr.write(`kong:config: ${message}\n`);
  process.exit(code);
};

if (values.help) {
  process.stdout.write(
    'Usage: npm run kong:config [-- --format yaml|json] [--dbless] [--url <url>] [--client-id <id>] [--client-secret <secret>]\n' +
      'Default: a decK file (deck gateway sync; only entities tagged auth-service). --dbless: a plain Kong declarative file.\n' +
      'Env: ADMIN_URL (default http://localhost:3000), ADMIN_CLIENT_ID, ADMIN_CLIENT_SECRET.\n',
  );
  process.exit(0);
}

const base = (values.url ?? process.env['ADMIN_URL'] ?? 'http://localhost:3000').replace(/\/+$/, '');
const clientId = values['client-id'] ?? process.env['ADMIN_CLIENT_ID'];
const clientSecret = values['client-secret'] ?? process.env['ADMIN_CLIENT_SECRET'];
if (!clientId || !clientSecret) fail('set ADMIN_CLIENT_ID and ADMIN_CLIENT_SECRET (an operator machine client with the "admin" scope)', 2);
if (values.format !== 'yaml' && values.format !== 'json') fail('--format is yaml or json', 2);

const basic = `Basic ${Buffer.from(`${encodeURIComponent(clientId!)}:${encodeURIComponent(clientSecret!)}`).toString('base64')}`;
const tokenRes = await fetch(`${base}/oauth2/token`, {
  method: 'POST',
  headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'admin' }).toString(),
  signal: AbortSignal.timeout(15_000),
}).catch((err: unknown) => fail(`cannot reach ${base}: ${(err as Error).message}`));
const tokenBody = (await tokenRes.json().catch(() => ({}))) as { access_token?: string; error?: string; error_description?: string };
if (!tokenRes.ok || !tokenBody.access_token)
  fail(`token request answered ${tokenRes.status}: ${tokenBody.error ?? ''} ${tokenBody.error_description ?? ''}`.trim(), 2);

const query = new URLSearchParams({ format: values.format, flavor: values.dbless ? 'dbless' : 'deck' });
const res = await fetch(`${base}/admin/v1/gateway/kong?${query.toString()}`, {
  headers: { authorization: `Bearer ${tokenBody.access_token}` },
  signal: AbortSignal.timeout(15_000),
});
const text = await res.text();
if (!res.ok) fail(`GET /admin/v1/gateway/kong answered ${res.status}: ${text}`, 2);
process.stdout.write(values.format === 'json' ? `${JSON.stringify(JSON.parse(text), null, 2)}\n` : text);
