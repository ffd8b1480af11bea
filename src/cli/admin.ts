/**
 * `npm run admin -- <command>`: the admin API for ops, from a terminal.
 *
 * Every command but `bootstrap` calls the HTTP API with a client_credentials token of an
 * operator machine client (ADMIN_CLIENT_ID / ADMIN_CLIENT_SECRET, or --client-id/--client-secret)
 * at ADMIN_URL (or --url; default http://localhost:3000). `bootstrap` runs against the service's
 * own database configuration (the same environment as the service) and prints that client once.
 */
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';

const HELP = `auth-service admin CLI

Usage: npm run admin -- <command> [arguments] [options]

First start:
  bootstrap [--id <clientId>]                 create the operator tenant and an admin machine client
                                              (uses DATABASE_URL / KEY_ENCRYPTION_KEY like the service;
                                              works while the service runs on the embedded PostgreSQL)
  bootstrap --rotate [--id <clientId>]        a new secret for that client when its secret was lost
Tenants:
  tenants list
  tenants create <slug> <display name>
  tenants get <tenantId>
  tenants update <tenantId> [--display-name <name>] [--default-locale <en|de|fr|es|none>]
                                              the default language of the hosted pages and mails
  tenants suspend|resume <tenantId>
  tenants delete <tenantId>                   soft delete: logins and SCIM stop at once
Branding (the tenant's hosted pages):
  tenants branding get <tenantId>
  tenants branding set <tenantId> [--primary #rrggbb] [--background #rrggbb] [--text #rrggbb]
                  [--display-name <name>] [--support <email or https URL>] [--heading <text>]
                  [--footer <text>] [--legal-link <label>=<https URL>]...
                                              changes only what is given ('' unsets a value; the links
                                              given replace the list); text on background and the button
                                              label on primary need WCAG AA contrast (4.5:1)
  tenants logo set <tenantId> <file>          PNG, JPEG or WebP, at most 256 KiB and 2048×2048 (no SVG)
  tenants logo remove <tenantId>
Identity-provider bindings:
  bindings list <tenantId>
  bindings create <tenantId> --kind <keycloak|oidc|saml|native|firebase_legacy> [--file binding.json]
                  [--config JSON] [--secrets JSON] [--claim-mapping JSON] [--priority <n>]
  bindings update <tenantId> <bindingId> [--file patch.json] [--config JSON] [--secrets JSON]
                  [--claim-mapping JSON] [--priority <n>]
                                              a change to an active binding becomes a new draft
  bindings test-login <tenantId> <bindingId>  prints the link for the customer's IT admin
  bindings preview <tenantId> <bindingId> [--claims JSON]
  bindings activate <tenantId> <bindingId>    needs a completed test login
  bindings retire <tenantId> <bindingId>      take an active binding out of service (kept; rollback undoes it)
  bindings rollback <tenantId>                undo the last activate, retire or rollback (across login styles)
  bindings health <tenantId> <bindingId>
Users (local passwords, for native bindings):
  users create <tenantId> <username> [--email <email>] [--email-verified] [--display-name <name>]
               [--role <role>]... [--invite]  asks for the initial password (or reads it from stdin);
                                              --invite (needs --email): mails a link to set it instead
  users invite <tenantId> <userId> [--username <name>]   invite a user without a local password (e.g. SCIM)
  users reset-password <tenantId> <userId>    the password stops working, sessions end, a reset link is mailed
  users verify-email <tenantId> <userId>      mail a link that verifies the user's email address
  users list <tenantId> [--search <prefix>] [--status <active|disabled>] [--limit <n>] [--cursor <c>]
  users get <tenantId> <userId>
  users update <tenantId> <userId> [--email <email>] [--email-verified] [--display-name <name>]
               [--role <role>]...             the roles given replace the hand-given ones
  users disable|enable <tenantId> <userId>    disabling ends every session of the user
  users unlock <tenantId> <userId>            end a lockout after failed password attempts
  users factors <tenantId> <userId>           the user's TOTP (set up or not) and passkeys
  users remove-totp <tenantId> <userId>       remove a lost authenticator app and its recovery codes
  users remove-passkey <tenantId> <userId> <passkeyId>   remove one passkey (a lost or shared device)
  users delete <tenantId> <userId>            sessions end, the profile is erased
Clients:
  clients list
  clients create --id <id> --name <name> --kind <bff|machine> [--tenant <tenantId>]
                 [--redirect-uri <uri>]... [--post-logout-redirect-uri <uri>]... [--scope <scope>]...
                 [--organization-prompt on|off]   the client secret is printed once
  clients update <clientId> [--name <name>] [--redirect-uri <uri>]... [--post-logout-redirect-uri <uri>]...
                 [--scope <scope>]... [--organization-prompt on|off]
                                              each list given replaces the registered one; on: /oauth2/authorize
                                              without org shows the hosted "enter your organisation" page
  clients disable <clientId>
SCIM tokens:
  scim-tokens create <tenantId> <name>        the token is printed once
  scim-tokens list <tenantId>
  scim-tokens revoke <tenantId> <tokenId>
  scim-held list|release|discard <tenantId>   deprovisionings held by the mass-deprovisioning guard
Firebase migration:
  firebase-import <tenantId> --file users.json --hash-config hash.json
                                              import a \`firebase auth:export\` file (safe to re-run)
Signing keys and audit:
  keys list
  keys rotate [--delay <seconds>]
  audit [--tenant <tenantId>] [--action <action>] [--limit <n>]

Options:
  --url <url>             admin API base URL (env ADMIN_URL, default http://localhost:3000)
  --client-id <id>        operator machine client (env ADMIN_CLIENT_ID)
  --client-secret <s>     its secret (env ADMIN_CLIENT_SECRET)
  --id <id>               clients create: the new client's id; bootstrap: the operator client's id
                          (default ops-admin)
  -h, --help              this text
`;

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    help: { type: 'boolean', short: 'h' },
    rotate: { type: 'boolean' },
    url: { type: 'string' },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    kind: { type: 'string' },
    file: { type: 'string' },
    config: { type: 'string' },
    secrets: { type: 'string' },
    'claim-mapping': { type: 'string' },
    priority: { type: 'string' },
    claims: { type: 'string' },
    id: { type: 'string' },
    name: { type: 'string' },
    tenant: { type: 'string' },
    'redirect-uri': { type: 'string', multiple: true },
    'post-logout-redirect-uri': { type: 'string', multiple: true },
    'organization-prompt': { type: 'string' },
    email: { type: 'string' },
    'email-verified': { type: 'boolean' },
    'display-name': { type: 'string' },
    'default-locale': { type: 'string' },
    role: { type: 'string', multiple: true },
    scope: { type: 'string', multiple: true },
    delay: { type: 'string' },
    'hash-config': { type: 'string' },
    action: { type: 'string' },
    limit: { type: 'string' },
    search: { type: 'string' },
    status: { type: 'string' },
    cursor: { type: 'string' },
    invite: { type: 'boolean' },
    username: { type: 'string' },
    primary: { type: 'string' },
    background: { type: 'string' },
    text: { type: 'string' },
    support: { type: 'string' },
    heading: { type: 'string' },
    footer: { type: 'string' },
    'legal-link': { type: 'string', multiple: true },
  },
});

class CliError extends Error {}

const json = (text: string | undefined, what: string): Record<string, unknown> | undefined => {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new CliError(`${what} is not valid JSON`);
  }
};

/** --priority: the active binding with the highest priority serves browser logins. */
const priority = (): { priority?: number } => {
  if (opts.priority === undefined) return {};
  if (!/^-?\d+$/.test(opts.priority)) throw new CliError('--priority must be an integer');
  return { priority: Number(opts.priority) };
};

/**
 * The admin API's base URL, checked before the first call: an empty or malformed ADMIN_URL would
 * otherwise surface as fetch's "Failed to parse URL from /oauth2/token".
 */
function baseUrl(): string {
  const [value, name] =
    opts.url !== undefined
      ? [opts.url, '--url']
      : process.env['ADMIN_URL'] !== undefined
        ? [process.env['ADMIN_URL'], 'ADMIN_URL']
        : ['http://localhost:3000', 'the default URL'];
  if (value.trim() === '')
    throw new CliError(`${name} is empty: set it to the service's base URL (e.g. http://localhost:3000), or unset it for that default.`);
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    throw new CliError(`${name} "${value}" is not a URL: use the service's base URL, e.g. http://localhost:3000.`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new CliError(`${name} "${value}" is not an http(s) URL: use the service's base URL, e.g. http://localhost:3000.`);
  return url.href.replace(/\/+$/, '');
}
let base: string | undefined;

const UNREACHABLE: Record<string, string> = {
  ECONNREFUSED: 'connection refused (is the service running there?)',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  ECONNRESET: 'connection reset',
  ETIMEDOUT: 'timed out',
  UND_ERR_CONNECT_TIMEOUT: 'timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
};

/** fetch, with a refused connection or an unknown host told as such and naming the URL ("fetch failed" says neither). */
async function call(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const reason = (cause?.code && UNREACHABLE[cause.code]) ?? cause?.code ?? cause?.message ?? (err as Error).message;
    throw new CliError(`cannot reach ${new URL(url).origin}: ${reason}`);
  }
}

async function token(): Promise<string> {
  base ??= baseUrl();
  const id = opts['client-id'] ?? process.env['ADMIN_CLIENT_ID'];
  const secret = opts['client-secret'] ?? process.env['ADMIN_CLIENT_SECRET'];
  if (!id || !secret)
    throw new CliError('Set ADMIN_CLIENT_ID and ADMIN_CLIENT_SECRET (or --client-id/--client-secret); `bootstrap` creates them.');
  const res = await call(`${base}/oauth2/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`,
    },
    body: 'grant_type=client_credentials&scope=admin',
  });
  const body = (await res.json().catch(() => ({}))) as { access_token?: string; error_description?: string };
  if (!res.ok || !body.access_token) throw new CliError(`Could not get an admin token: ${body.error_description ?? res.status}`);
  return body.access_token;
}

let cachedToken: string | undefined;
async function api(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; etag: string | null; data: unknown }> {
  cachedToken ??= await token();
  const res = await call(`${base}/admin/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${cachedToken}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  return answer(method, path, res);
}

/** A file as the request body, with its media type (the logo upload). */
async function upload(path: string, bytes: Buffer, contentType: string): Promise<{ status: number; etag: string | null; data: unknown }> {
  cachedToken ??= await token();
  const res = await call(`${base}/admin/v1${path}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${cachedToken}`, 'content-type': contentType },
    body: new Uint8Array(bytes),
  });
  return answer('PUT', path, res);
}

async function answer(method: string, path: string, res: Response): Promise<{ status: number; etag: string | null; data: unknown }> {
  const text = await res.text();
  let data: unknown;
  try {
    data = text ? (JSON.parse(text) as unknown) : null;
  } catch {
    throw new CliError(`${method} ${path} → ${res.status}: the answer is not JSON; is ${base} the auth-service?`);
  }
  if (!res.ok) {
    const p = data as { title?: string; detail?: string } | null;
    throw new CliError(`${method} ${path} → ${res.status} ${p?.title ?? ''}${p?.detail ? `: ${p.detail}` : ''}`);
  }
  return { status: res.status, etag: res.headers.get('etag'), data };
}

const print = (data: unknown): void => {
  process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
};
const need = (value: string | undefined, what: string): string => {
  if (!value) throw new CliError(`Missing ${what}. See --help.`);
  return value;
};

/** `--organization-prompt on|off` as the client field; absent: nothing. */
function organizationPrompt(flag: string | undefined): { organizationPrompt?: boolean } {
  if (flag === undefined) return {};
  if (flag !== 'on' && flag !== 'off') throw new CliError('--organization-prompt takes on or off.');
  return { organizationPrompt: flag === 'on' };
}

/**
 * The initial password of `users create`: typed at a prompt that does not echo it, or piped in
 * (one trailing newline dropped). Never an argument: arguments end up in shell history and `ps`.
 */
async function readPassword(): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const chunk of stdin) chunks.push(chunk as Buffer);
    const piped = Buffer.concat(chunks)
      .toString('utf8')
      .replace(/\r?\n$/, '');
    if (!piped)
      throw new CliError(
        'No password on stdin: type it at the prompt, or pipe it in (printf %s "$PASSWORD" | npm run admin -- users create …).',
      );
    return piped;
  }
  process.stderr.write('Initial password: ');
  stdin.setRawMode(true);
  stdin.resume();
  let typed = '';
  try {
    for await (const chunk of stdin) {
      for (const ch of (chunk as Buffer).toString('utf8')) {
        if (ch === '\r' || ch === '\n') return typed;
        if (ch === '\u0003') throw new CliError('Cancelled.');
        if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
        else typed += ch;
      }
    }
    return typed;
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    process.stderr.write('\n');
  }
}

/** The media type of a logo file, by its extension (the service checks it against the bytes). */
const IMAGE_TYPES: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  webp: 'image/webp',
  svg: 'image/svg+xml',
};
const imageTypeOf = (file: string): string =>
  IMAGE_TYPES[/\.([a-z0-9]+)$/i.exec(file)?.[1]?.toLowerCase() ?? ''] ?? 'application/octet-stream';

/** `--legal-link 'Privacy=https://…'`: the label is everything before the first `=`. */
function legalLinks(values: string[]): { label: string; url: string }[] {
  return values.map((v) => {
    const at = v.indexOf('=');
    if (at < 1) throw new CliError(`--legal-link "${v}" must be <label>=<https URL>`);
    return { label: v.slice(0, at), url: v.slice(at + 1) };
  });
}

interface BrandingBody {
  displayName: string | null;
  colors: { primary: string | null; background: string | null; text: string | null };
  supportContact: string | null;
  texts: { heading: string | null; footer: string | null; legalLinks: { label: string; url: string }[] };
}

/** The branding read, with the options given applied (an empty value unsets it). */
function brandingChange(current: BrandingBody): { body: BrandingBody; changed: boolean } {
  const given = (v: string | undefined, old: string | null): string | null => (v === undefined ? old : v === '' ? null : v);
  const body: BrandingBody = {
    displayName: given(opts['display-name'], current.displayName),
    colors: {
      primary: given(opts.primary, current.colors.primary),
      background: given(opts.background, current.colors.background),
      text: given(opts.text, current.colors.text),
    },
    supportContact: given(opts.support, current.supportContact),
    texts: {
      heading: given(opts.heading, current.texts.heading),
      footer: given(opts.footer, current.texts.footer),
      legalLinks: opts['legal-link'] ? legalLinks(opts['legal-link'].filter((l) => l !== '')) : current.texts.legalLinks,
    },
  };
  const keys = ['display-name', 'primary', 'background', 'text', 'support', 'heading', 'footer', 'legal-link'] as const;
  return { body, changed: keys.some((k) => opts[k] !== undefined) };
}

/** Commands of one word: their first argument is an argument (`firebase-import <tenantId>`), not an action. */
const SINGLE_WORD = new Set(['bootstrap', 'firebase-import', 'audit']);

async function main(): Promise<void> {
  const [group, ...rest] = positionals;
  if (opts.help || !group) {
    process.stdout.write(HELP);
    return;
  }
  const action = SINGLE_WORD.has(group) ? undefined : rest.shift();
  const [a1, a2, a3] = rest;
  switch (action === undefined ? group : `${group} ${action}`) {
    case 'bootstrap': {
      const { loadConfig } = await import('../config/app-config.js');
      const { createApp } = await import('../bootstrap.js');
      const { attachEmbeddedPostgres } = await import('../database/embedded-postgres.js');
      const { BootstrapRefused, adminEnvLine, bootstrapAdmin, rotateAdminSecret } = await import('../admin/admin-bootstrap.js');
      const { default: pino } = await import('pino');
      const config = loadConfig();
      // With the embedded PostgreSQL, a running service owns its server: use it rather than start a second one on the same data directory.
      const attached = config.DATABASE_URL ? undefined : attachEmbeddedPostgres(config.DATA_DIR);
      if (attached) {
        config.DATABASE_URL = attached.url;
        process.stderr.write(
          `admin: using the embedded PostgreSQL the running service started (pid ${attached.pid}, port ${attached.port}, ${config.DATA_DIR})\n`,
        );
      }
      // The service's logs go to stderr here: stdout is the result, for `| jq` and scripts.
      const running = await createApp(config, { listen: false, logDestination: pino.destination({ dest: 2, sync: true }) });
      try {
        const id = opts.id ?? config.BOOTSTRAP_ADMIN_CLIENT_ID;
        const result = opts.rotate ? await rotateAdminSecret(running.app, id) : await bootstrapAdmin(running.app, id);
        print({
          ...result,
          adminUrl: config.issuer,
          note: `The secret is shown once. Next: ${adminEnvLine(config.issuer, result.clientId, result.clientSecret)}`,
        });
      } catch (err) {
        if (err instanceof BootstrapRefused) throw new CliError(err.message);
        throw err;
      } finally {
        await running.close();
      }
      return;
    }
    case 'tenants list': {
      print((await api('GET', '/tenants')).data);
      return;
    }
    case 'tenants create': {
      print((await api('POST', '/tenants', { slug: need(a1, 'slug'), displayName: need(a2, 'display name') })).data);
      return;
    }
    case 'tenants get': {
      print((await api('GET', `/tenants/${need(a1, 'tenantId')}`)).data);
      return;
    }
    case 'tenants update': {
      const path = `/tenants/${need(a1, 'tenantId')}`;
      const locale = opts['default-locale'];
      const body = {
        ...(opts['display-name'] !== undefined ? { displayName: opts['display-name'] } : {}),
        // "none" clears it (the pages fall back to the browser's language, then English).
        ...(locale !== undefined ? { defaultLocale: locale === 'none' ? null : locale } : {}),
      };
      if (Object.keys(body).length === 0) throw new CliError('Nothing to change: give --display-name or --default-locale. See --help.');
      const current = await api('GET', path);
      print((await api('PATCH', path, body, { 'if-match': current.etag ?? '' })).data);
      return;
    }
    case 'tenants suspend':
    case 'tenants resume': {
      const path = `/tenants/${need(a1, 'tenantId')}`;
      const current = await api('GET', path);
      print((await api('PATCH', path, { status: action === 'suspend' ? 'suspended' : 'active' }, { 'if-match': current.etag ?? '' })).data);
      return;
    }
    case 'tenants delete':
      await api('DELETE', `/tenants/${need(a1, 'tenantId')}`);
      {
        print({ deleted: a1 });
        return;
      }
    case 'tenants branding': {
      const path = `/tenants/${need(a2, 'tenantId')}/branding`;
      if (a1 === 'get') {
        print((await api('GET', path)).data);
        return;
      }
      if (a1 !== 'set') throw new CliError('tenants branding get|set <tenantId>. See --help.');
      const current = await api('GET', path);
      const { body, changed } = brandingChange(current.data as BrandingBody);
      if (!changed)
        throw new CliError(
          'Nothing to change: give --primary, --background, --text, --display-name, --support, --heading, --footer or --legal-link. See --help.',
        );
      print((await api('PUT', path, body, { 'if-match': current.etag ?? '' })).data);
      return;
    }
    case 'tenants logo': {
      const path = `/tenants/${need(a2, 'tenantId')}/branding/logo`;
      if (a1 === 'set') {
        const file = need(a3, 'image file');
        let bytes: Buffer;
        try {
          bytes = readFileSync(file);
        } catch (err) {
          throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        }
        print(((await upload(path, bytes, imageTypeOf(file))).data as { logo: unknown }).logo);
        return;
      }
      if (a1 !== 'remove') throw new CliError('tenants logo set <tenantId> <file> | tenants logo remove <tenantId>. See --help.');
      await api('DELETE', path);
      print({ removed: 'logo', tenant: a2 });
      return;
    }
    case 'bindings list': {
      print((await api('GET', `/tenants/${need(a1, 'tenantId')}/bindings`)).data);
      return;
    }
    case 'bindings create': {
      const fromFile = opts.file ? json(readFileSync(opts.file, 'utf8'), opts.file) : {};
      const body = {
        ...fromFile,
        ...(opts.kind ? { kind: opts.kind } : {}),
        ...(opts.config ? { config: json(opts.config, '--config') } : {}),
        ...(opts.secrets ? { secrets: json(opts.secrets, '--secrets') } : {}),
        ...(opts['claim-mapping'] ? { claimMapping: json(opts['claim-mapping'], '--claim-mapping') } : {}),
        ...priority(),
      };
      print((await api('POST', `/tenants/${need(a1, 'tenantId')}/bindings`, body)).data);
      return;
    }
    case 'bindings update': {
      const path = `/tenants/${need(a1, 'tenantId')}/bindings/${need(a2, 'bindingId')}`;
      const current = await api('GET', path);
      const body = {
        ...(opts.file ? json(readFileSync(opts.file, 'utf8'), opts.file) : {}),
        ...(opts.config ? { config: json(opts.config, '--config') } : {}),
        ...(opts.secrets ? { secrets: json(opts.secrets, '--secrets') } : {}),
        ...(opts['claim-mapping'] ? { claimMapping: json(opts['claim-mapping'], '--claim-mapping') } : {}),
        ...priority(),
      };
      print((await api('PATCH', path, body, { 'if-match': current.etag ?? '' })).data);
      return;
    }
    case 'bindings test-login': {
      print((await api('POST', `/tenants/${need(a1, 'tenantId')}/bindings/${need(a2, 'bindingId')}/test-login`)).data);
      return;
    }
    case 'bindings preview': {
      print(
        (
          await api(
            'POST',
            `/tenants/${need(a1, 'tenantId')}/bindings/${need(a2, 'bindingId')}/mapping:preview`,
            opts.claims ? { claims: json(opts.claims, '--claims') } : {},
          )
        ).data,
      );
      return;
    }
    case 'bindings activate': {
      const path = `/tenants/${need(a1, 'tenantId')}/bindings/${need(a2, 'bindingId')}`;
      const current = await api('GET', path);
      print((await api('POST', `${path}/activate`, undefined, { 'if-match': current.etag ?? '' })).data);
      return;
    }
    case 'bindings retire': {
      const path = `/tenants/${need(a1, 'tenantId')}/bindings/${need(a2, 'bindingId')}`;
      const current = await api('GET', path);
      print((await api('POST', `${path}/retire`, undefined, { 'if-match': current.etag ?? '' })).data);
      return;
    }
    case 'bindings rollback': {
      print((await api('POST', `/tenants/${need(a1, 'tenantId')}/bindings/rollback`)).data);
      return;
    }
    case 'bindings health': {
      print((await api('GET', `/tenants/${need(a1, 'tenantId')}/bindings/${need(a2, 'bindingId')}/health`)).data);
      return;
    }
    case 'clients list': {
      print((await api('GET', '/clients')).data);
      return;
    }
    case 'clients create': {
      print(
        (
          await api('POST', '/clients', {
            id: need(opts.id, '--id'),
            name: need(opts.name, '--name'),
            kind: need(opts.kind, '--kind'),
            ...(opts.tenant ? { tenantId: opts.tenant } : {}),
            ...(opts['redirect-uri'] ? { redirectUris: opts['redirect-uri'] } : {}),
            ...(opts['post-logout-redirect-uri'] ? { postLogoutRedirectUris: opts['post-logout-redirect-uri'] } : {}),
            ...organizationPrompt(opts['organization-prompt']),
            ...(opts.scope ? { scopes: opts.scope } : {}),
          })
        ).data,
      );
      return;
    }
    case 'clients update': {
      const path = `/clients/${need(a1, 'clientId')}`;
      const change = {
        ...(opts.name ? { name: opts.name } : {}),
        ...(opts['redirect-uri'] ? { redirectUris: opts['redirect-uri'] } : {}),
        ...(opts['post-logout-redirect-uri'] ? { postLogoutRedirectUris: opts['post-logout-redirect-uri'] } : {}),
        ...(opts.scope ? { scopes: opts.scope } : {}),
        ...organizationPrompt(opts['organization-prompt']),
      };
      if (Object.keys(change).length === 0)
        throw new CliError(
          'Nothing to change: give --name, --redirect-uri, --post-logout-redirect-uri, --scope or --organization-prompt. See --help.',
        );
      const current = await api('GET', path);
      print((await api('PATCH', path, change, { 'if-match': current.etag ?? '' })).data);
      return;
    }
    case 'users create': {
      const tenantId = need(a1, 'tenantId');
      const username = need(a2, 'username');
      if (opts.invite && !opts.email) throw new CliError('--invite needs --email: the invitation is mailed there.');
      const password = opts.invite ? undefined : await readPassword();
      print(
        (
          await api('POST', `/tenants/${tenantId}/users`, {
            username,
            ...(password !== undefined ? { password } : {}),
            ...(opts.email ? { email: opts.email } : {}),
            ...(opts['email-verified'] ? { emailVerified: true } : {}),
            ...(opts['display-name'] ? { displayName: opts['display-name'] } : {}),
            ...(opts.role ? { roles: opts.role } : {}),
          })
        ).data,
      );
      return;
    }
    case 'users list': {
      const q = new URLSearchParams();
      if (opts.search) q.set('q', opts.search);
      if (opts.status) q.set('status', opts.status);
      if (opts.limit) q.set('limit', opts.limit);
      if (opts.cursor) q.set('cursor', opts.cursor);
      print((await api('GET', `/tenants/${need(a1, 'tenantId')}/users?${q}`)).data);
      return;
    }
    case 'users get': {
      print((await api('GET', `/tenants/${need(a1, 'tenantId')}/users/${need(a2, 'userId')}`)).data);
      return;
    }
    case 'users update':
    case 'users disable':
    case 'users enable': {
      const path = `/tenants/${need(a1, 'tenantId')}/users/${need(a2, 'userId')}`;
      const change =
        action === 'update'
          ? {
              ...(opts.email ? { email: opts.email } : {}),
              ...(opts['email-verified'] ? { emailVerified: true } : {}),
              ...(opts['display-name'] ? { displayName: opts['display-name'] } : {}),
              ...(opts.role ? { roles: opts.role } : {}),
            }
          : { status: action === 'disable' ? 'disabled' : 'active' };
      if (Object.keys(change).length === 0)
        throw new CliError('Nothing to change: give --email, --email-verified, --display-name or --role. See --help.');
      const current = await api('GET', path);
      print((await api('PATCH', path, change, { 'if-match': current.etag ?? '' })).data);
      return;
    }
    case 'users invite': {
      const body = opts.username ? { username: opts.username } : {};
      print((await api('POST', `/tenants/${need(a1, 'tenantId')}/users/${need(a2, 'userId')}/invitation`, body)).data);
      return;
    }
    case 'users reset-password': {
      print((await api('POST', `/tenants/${need(a1, 'tenantId')}/users/${need(a2, 'userId')}/password-reset`, {})).data);
      return;
    }
    case 'users verify-email': {
      print((await api('POST', `/tenants/${need(a1, 'tenantId')}/users/${need(a2, 'userId')}/verification-email`, {})).data);
      return;
    }
    case 'users factors': {
      print((await api('GET', `/tenants/${need(a1, 'tenantId')}/users/${need(a2, 'userId')}/factors`)).data);
      return;
    }
    case 'users remove-totp':
      await api('DELETE', `/tenants/${need(a1, 'tenantId')}/users/${need(a2, 'userId')}/factors/totp`);
      {
        print({ removed: 'totp', user: a2 });
        return;
      }
    case 'users remove-passkey':
      await api('DELETE', `/tenants/${need(a1, 'tenantId')}/users/${need(a2, 'userId')}/factors/passkeys/${need(a3, 'passkeyId')}`);
      {
        print({ removed: a3, user: a2 });
        return;
      }
    case 'users unlock': {
      print((await api('POST', `/tenants/${need(a1, 'tenantId')}/users/${need(a2, 'userId')}/unlock`, {})).data);
      return;
    }
    case 'users delete':
      await api('DELETE', `/tenants/${need(a1, 'tenantId')}/users/${need(a2, 'userId')}`);
      {
        print({ deleted: a2 });
        return;
      }
    case 'clients disable':
      await api('DELETE', `/clients/${need(a1, 'clientId')}`);
      {
        print({ disabled: a1 });
        return;
      }
    case 'scim-tokens create': {
      print((await api('POST', `/tenants/${need(a1, 'tenantId')}/scim-tokens`, { name: need(a2, 'token name') })).data);
      return;
    }
    case 'scim-tokens list': {
      print((await api('GET', `/tenants/${need(a1, 'tenantId')}/scim-tokens`)).data);
      return;
    }
    case 'scim-tokens revoke':
      await api('DELETE', `/tenants/${need(a1, 'tenantId')}/scim-tokens/${need(a2, 'tokenId')}`);
      {
        print({ revoked: a2 });
        return;
      }
    case 'scim-held list': {
      print((await api('GET', `/tenants/${need(a1, 'tenantId')}/scim/held-operations`)).data);
      return;
    }
    case 'scim-held release':
    case 'scim-held discard': {
      print((await api('POST', `/tenants/${need(a1, 'tenantId')}/scim/held-operations/${action}`, {})).data);
      return;
    }
    case 'firebase-import': {
      const tenantId = need(a1, 'tenantId');
      const exported = json(readFileSync(need(opts.file, '--file'), 'utf8'), '--file');
      const hashConfig = json(readFileSync(need(opts['hash-config'], '--hash-config'), 'utf8'), '--hash-config');
      print((await api('POST', `/tenants/${tenantId}/firebase-import`, { export: exported, hashConfig })).data);
      return;
    }
    case 'keys list': {
      print((await api('GET', '/signing-keys')).data);
      return;
    }
    case 'keys rotate': {
      print((await api('POST', '/signing-keys/rotate', opts.delay ? { publishDelaySeconds: Number(opts.delay) } : {})).data);
      return;
    }
    case 'audit': {
      const q = new URLSearchParams();
      if (opts.tenant) q.set('tenantId', opts.tenant);
      if (opts.action) q.set('action', opts.action);
      if (opts.limit) q.set('limit', opts.limit);
      print((await api('GET', `/audit-events?${q}`)).data);
      return;
    }
    default:
      throw new CliError(`Unknown command "${positionals.join(' ')}". See --help.`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`admin: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(err instanceof CliError ? 2 : 1);
});
