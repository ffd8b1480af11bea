/**
 * SimpleSAMLphp (Debian's package) as a real SAML 2.0 IdP for tests, on loopback.
 *
 * ensureSimpleSamlPhp() installs the Debian packages when missing (root only);
 * startSimpleSamlIdp() writes a private config dir (IdP key/cert, exampleauth users, remote SPs)
 * in a temp folder and serves SimpleSAMLphp's www dir with `php -S 127.0.0.1:<free port>`.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { freePort } from '../support/free-port.js';
import { PeerUnavailableError } from './peer-unavailable.js';
import { aptInstall } from './apt.js';

const run = promisify(execFile);
const PEER = 'SimpleSAMLphp';

/** Where Debian's simplesamlphp package puts the application (1.19.x in bookworm); env overrides. */
export const SIMPLESAMLPHP_DIR = process.env.SIMPLESAMLPHP_DIR ?? '/usr/share/simplesamlphp';
const DEBIAN_PACKAGES = ['simplesamlphp', 'php-cli', 'php-xml', 'php-mbstring', 'php-curl', 'php-intl'];

export const NAME_FORMAT_URI = 'urn:oasis:names:tc:SAML:2.0:attrname-format:uri';
export const NAME_FORMAT_BASIC = 'urn:oasis:names:tc:SAML:2.0:attrname-format:basic';
export const NAMEID_EMAIL = 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress';
export const NAMEID_PERSISTENT = 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent';
export const NAMEID_TRANSIENT = 'urn:oasis:names:tc:SAML:2.0:nameid-format:transient';
export const NAMEID_UNSPECIFIED = 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified';

export interface SimpleSamlSp {
  entityId: string;
  /** The SP's AssertionConsumerService (HTTP-POST binding). */
  acsUrl: string;
  /** Sign the Assertion (default true). */
  signAssertion?: boolean;
  /** Sign the Response envelope (default false). */
  signResponse?: boolean;
  /** Encrypt the Assertion to spCertPem (default false; requires spCertPem). */
  encryptAssertion?: boolean;
  /** The SP's certificate (PEM): the encryption target (AuthnRequest signatures are not checked). */
  spCertPem?: string;
  /**
   * Attribute NameFormat sent to this SP. Default `uri` (names like
   * `http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress`, as Entra/ADFS send them).
   */
  attributeNameFormat?: string;
  /** NameID format for this SP (overrides the IdP-wide option). */
  nameIdFormat?: string;
  /** Attribute whose first value becomes the NameID (non-transient formats; default: the IdP-wide nameIdAttribute). */
  nameIdAttribute?: string;
}

export interface SimpleSamlUser {
  username: string;
  password: string;
  attributes: Record<string, string[]>;
}

export interface SimpleSamlIdpOptions {
  sps: SimpleSamlSp[];
  users: SimpleSamlUser[];
  /** NameID format (default emailAddress). The value comes from nameIdAttribute (see below). */
  nameIdFormat?: string;
  /**
   * Attribute whose first value becomes the NameID (default: the attribute named
   * `http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress` or `email`/`mail` if
   * present on every user, else `uid`, which is set to the username when a user has none).
   * Not used for the transient format.
   */
  nameIdAttribute?: string;
  /** Assertion lifetime in seconds (SimpleSAMLphp's assertion.lifetime; default 300). */
  assertionLifetimeSeconds?: number;
  /** Print php -S output to stderr (default false). */
  verbose?: boolean;
}

export interface SimpleSamlIdp {
  /** e.g. http://127.0.0.1:PORT/simplesaml */
  baseUrl: string;
  /** The IdP's entityID (its metadata URL, as SimpleSAMLphp does by default). */
  entityId: string;
  metadataUrl: string;
  metadataXml: string;
  /** The IdP's signing certificate (PEM). */
  signingCertPem: string;
  /** SingleSignOnService, HTTP-Redirect binding. */
  ssoUrl: string;
  /** IdP-initiated SSO URL for an SP (SimpleSAMLphp's `saml2/idp/SSOService.php?spentityid=`). */
  idpInitiatedUrl(spEntityId: string, relayState?: string): string;
  stop(): Promise<void>;
}

let ensured: Promise<void> | undefined;

/**
 * Makes sure Debian's simplesamlphp and PHP are installed: installs them with apt-get when
 * missing (root only). Throws PeerUnavailableError when that is impossible.
 */
export function ensureSimpleSamlPhp(): Promise<void> {
  ensured ??= doEnsure().catch((err: unknown) => {
    ensured = undefined;
    throw err;
  });
  return ensured;
}

async function installed(): Promise<boolean> {
  if (!existsSync(join(SIMPLESAMLPHP_DIR, 'www', '_include.php'))) return false;
  try {
    const { stdout } = await run('php', ['-m']);
    const mods = stdout.toLowerCase();
    return ['dom', 'mbstring', 'openssl', 'xml'].every((m) => mods.includes(m));
  } catch {
    return false;
  }
}

async function doEnsure(): Promise<void> {
  if (await installed()) return;
  if (process.platform !== 'linux' || !existsSync('/usr/bin/apt-get')) {
    throw new PeerUnavailableError(PEER, `not installed and no apt-get here; install Debian's ${DEBIAN_PACKAGES.join(' ')}`);
  }
  await aptInstall(PEER, DEBIAN_PACKAGES, { missing: 'not installed' });
  if (!(await installed())) {
    throw new PeerUnavailableError(PEER, `installed packages but ${SIMPLESAMLPHP_DIR}/www or PHP modules are missing`);
  }
}

/** A self-signed RSA certificate + key made with the openssl CLI (node's crypto cannot issue X.509). */
export async function selfSignedCert(
  dir: string,
  name: string,
  cn: string,
): Promise<{ keyPath: string; certPath: string; keyPem: string; certPem: string }> {
  const keyPath = join(dir, `${name}.key`);
  const certPath = join(dir, `${name}.crt`);
  try {
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-sha256',
      '-days',
      '30',
      '-subj',
      `/CN=${cn}`,
      '-keyout',
      keyPath,
      '-out',
      certPath,
    ]);
  } catch (err) {
    throw new PeerUnavailableError(PEER, `openssl failed: ${(err as Error).message}`);
  }
  return { keyPath, certPath, keyPem: await readFile(keyPath, 'utf8'), certPem: await readFile(certPath, 'utf8') };
}

/** PHP single-quoted string literal. */
function phpStr(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** A JSON-ish value as a PHP literal (strings, numbers, booleans, null, arrays, string-keyed maps). */
function php(v: unknown, indent = ''): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'string') return phpStr(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  const next = `${indent}  `;
  if (Array.isArray(v)) {
    return v.length === 0 ? '[]' : `[\n${v.map((x) => `${next}${php(x, next)},`).join('\n')}\n${indent}]`;
  }
  if (typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
    return entries.length === 0 ? '[]' : `[\n${entries.map(([k, x]) => `${next}${phpStr(k)} => ${php(x, next)},`).join('\n')}\n${indent}]`;
  }
  throw new TypeError(`cannot render ${typeof v} as PHP`);
}

const pemBody = (pem: string): string => pem.replace(/-----(BEGIN|END) [A-Z ]+-----/g, '').replace(/\s+/g, '');

function defaultNameIdAttribute(users: SimpleSamlUser[]): string {
  const candidates = [
    'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress',
    'urn:oid:0.9.2342.19200300.100.1.3',
    'email',
    'mail',
  ];
  for (const c of candidates) if (users.length > 0 && users.every((u) => (u.attributes[c]?.length ?? 0) > 0)) return c;
  return 'uid';
}

async function waitForUrl(url: string, proc: ChildProcess, timeoutMs: number, output: () => string): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new PeerUnavailableError(PEER, `php -S exited (${proc.exitCode}): ${output().slice(-2000)}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
      const body = await res.text();
      if (res.ok && body.includes('EntityDescriptor')) return body;
      last = `HTTP ${res.status}: ${body.slice(0, 500)}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new PeerUnavailableError(
    PEER,
    `metadata at ${url} not ready after ${timeoutMs} ms (${last}); php output: ${output().slice(-2000)}`,
  );
}

export async function startSimpleSamlIdp(opts: SimpleSamlIdpOptions): Promise<SimpleSamlIdp> {
  await ensureSimpleSamlPhp();
  const root = await mkdtemp(join(tmpdir(), 'ssp-idp-'));
  const configDir = join(root, 'config');
  const certDir = join(root, 'cert');
  const metadataDir = join(root, 'metadata');
  const dataDir = join(root, 'data');
  const tmpDir = join(root, 'tmp');
  const logDir = join(root, 'log');
  const sessionDir = join(root, 'sessions');
  await Promise.all([configDir, certDir, metadataDir, dataDir, tmpDir, logDir, sessionDir].map((d) => mkdir(d, { recursive: true })));

  let proc: ChildProcess | undefined;
  try {
    const port = await freePort();
    const origin = `http://127.0.0.1:${port}`;
    const baseUrl = `${origin}/simplesaml`;
    const metadataUrl = `${baseUrl}/saml2/idp/metadata.php`;
    const entityId = metadataUrl;
    const ssoUrl = `${baseUrl}/saml2/idp/SSOService.php`;

    const idpCert = await selfSignedCert(certDir, 'idp', '127.0.0.1 SimpleSAMLphp test IdP');
    const secretSalt = randomBytes(24).toString('hex');

    // --- config.php -------------------------------------------------------------------------
    const config = {
      baseurlpath: `${baseUrl}/`,
      certdir: `${certDir}/`,
      loggingdir: `${logDir}/`,
      datadir: `${dataDir}/`,
      tempdir: tmpDir,
      metadatadir: `${metadataDir}/`,
      technicalcontact_name: 'Test',
      technicalcontact_email: 'test@example.invalid',
      timezone: 'UTC',
      secretsalt: secretSalt,
      'auth.adminpassword': secretSalt,
      'admin.protectindexpage': true,
      'admin.protectmetadata': false,
      showerrors: true,
      errorreporting: false,
      debug: { saml: false, backtraces: true, validatexml: false },
      'logging.level': 3, // SimpleSAML\Logger::WARNING
      'logging.handler': 'stderr',
      'enable.saml20-idp': true,
      'enable.shib13-idp': false,
      'enable.adfs-idp': false,
      'enable.wsfed-sp': false,
      'enable.authmemcookie': false,
      'module.enable': { exampleauth: true, core: true, saml: true, admin: true },
      'session.duration': 3600,
      'session.datastore.timeout': 3600,
      'session.state.timeout': 3600,
      'session.cookie.name': `SimpleSAMLSessionID${port}`,
      'session.cookie.lifetime': 0,
      'session.cookie.path': '/',
      'session.cookie.domain': null,
      'session.cookie.secure': false,
      'session.cookie.samesite': null,
      'session.phpsession.cookiename': `SimpleSAML${port}`,
      'session.phpsession.savepath': sessionDir,
      'session.phpsession.httponly': true,
      'session.authtoken.cookiename': `SimpleSAMLAuthToken${port}`,
      'session.rememberme.enable': false,
      'store.type': 'phpsession',
      'assertion.allowed_clock_skew': 180,
      'language.available': ['en'],
      'language.default': 'en',
      'theme.use': 'default',
      'metadata.sources': [{ type: 'flatfile' }],
      'metadata.sign.enable': false,
      'trusted.url.domains': [`127.0.0.1:${port}`],
      production: false,
    };
    await writeFile(join(configDir, 'config.php'), `<?php\n$config = ${php(config)};\n`);

    // --- authsources.php: exampleauth:UserPass --------------------------------------------------
    const nameIdAttribute = opts.nameIdAttribute ?? defaultNameIdAttribute(opts.users);
    const users: Record<string, Record<string, string[]>> = {};
    for (const u of opts.users) {
      if (u.username.includes(':')) throw new TypeError(`username must not contain ':' (${u.username})`);
      // Attributes are sent exactly as given; only when the NameID falls back to `uid` and the
      // user has none is `uid: [username]` added.
      const extra: Record<string, string[]> = nameIdAttribute === 'uid' && !u.attributes.uid ? { uid: [u.username] } : {};
      users[`${u.username}:${u.password}`] = { ...u.attributes, ...extra };
    }
    // An authsource is ['exampleauth:UserPass', 'user:pass' => [attributes]] in PHP: a list head
    // followed by string keys, hence array_merge.
    const authsourcesPhp = `<?php\n$config = [\n  'admin' => ['core:AdminPassword'],\n  'example-userpass' => array_merge(['exampleauth:UserPass'], ${php(users, '  ')}),\n];\n`;
    await writeFile(join(configDir, 'authsources.php'), authsourcesPhp);

    // --- metadata/saml20-idp-hosted.php ------------------------------------------------------
    const idpNameIdFormat = opts.nameIdFormat ?? NAMEID_EMAIL;
    const idpHosted = {
      host: '__DEFAULT__',
      privatekey: idpCert.keyPath,
      certificate: idpCert.certPath,
      auth: 'example-userpass',
      'signature.algorithm': 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
      NameIDFormat: idpNameIdFormat,
      'assertion.lifetime': opts.assertionLifetimeSeconds ?? 300,
      'userid.attribute': nameIdAttribute,
      'attributes.NameFormat': NAME_FORMAT_URI,
      authproc: {},
    };
    await writeFile(join(metadataDir, 'saml20-idp-hosted.php'), `<?php\n$metadata['__DYNAMIC:1__'] = ${php(idpHosted)};\n`);

    // --- metadata/saml20-sp-remote.php --------------------------------------------------------
    let spRemote = '<?php\n';
    for (const sp of opts.sps) {
      if (sp.encryptAssertion && !sp.spCertPem) throw new TypeError(`SP ${sp.entityId}: encryptAssertion needs spCertPem`);
      const format = sp.nameIdFormat ?? idpNameIdFormat;
      const entry: Record<string, unknown> = {
        AssertionConsumerService: [
          { Binding: 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST', Location: sp.acsUrl, index: 0, isDefault: true },
        ],
        NameIDFormat: format,
        'simplesaml.nameidattribute': sp.nameIdAttribute ?? nameIdAttribute,
        'attributes.NameFormat': sp.attributeNameFormat ?? NAME_FORMAT_URI,
        'saml20.sign.assertion': sp.signAssertion ?? true,
        'saml20.sign.response': sp.signResponse ?? false,
        'assertion.encryption': sp.encryptAssertion ?? false,
        'validate.authnrequest': false,
        'signature.algorithm': 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
      };
      if (sp.encryptAssertion) {
        entry['sharedkey_algorithm'] = 'http://www.w3.org/2001/04/xmlenc#aes256-cbc';
      }
      if (sp.spCertPem) {
        entry.keys = [{ encryption: true, signing: true, type: 'X509Certificate', X509Certificate: pemBody(sp.spCertPem) }];
      }
      spRemote += `$metadata[${phpStr(sp.entityId)}] = ${php(entry)};\n`;
    }
    await writeFile(join(metadataDir, 'saml20-sp-remote.php'), spRemote);

    // --- php -S --------------------------------------------------------------------------------
    // SimpleSAMLphp 1.19 expects to live under /simplesaml; a tiny router maps it to www/.
    const router = join(root, 'router.php');
    await writeFile(
      router,
      `<?php
$www = ${phpStr(join(SIMPLESAMLPHP_DIR, 'www'))};
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
if (strpos($path, '/simplesaml/') !== 0 && $path !== '/simplesaml') { http_response_code(404); echo 'not found'; return true; }
$rel = substr($path, strlen('/simplesaml'));
if ($rel === '' || $rel === '/') { $rel = '/index.php'; }
// split /foo.php/extra/path into script + PATH_INFO
if (preg_match('#^(.*?\\.php)(/.*)?$#', $rel, $m)) { $script = $m[1]; $pathInfo = isset($m[2]) ? $m[2] : ''; } else { $script = $rel; $pathInfo = ''; }
$file = realpath($www . $script);
if ($file === false || strpos($file, $www) !== 0 || !is_file($file)) { http_response_code(404); echo 'not found'; return true; }
if (substr($file, -4) !== '.php') {
  $types = ['css' => 'text/css', 'js' => 'application/javascript', 'png' => 'image/png', 'ico' => 'image/x-icon', 'svg' => 'image/svg+xml', 'gif' => 'image/gif', 'woff' => 'font/woff', 'woff2' => 'font/woff2', 'ttf' => 'font/ttf'];
  $ext = strtolower(pathinfo($file, PATHINFO_EXTENSION));
  header('Content-Type: ' . (isset($types[$ext]) ? $types[$ext] : 'application/octet-stream'));
  readfile($file);
  return true;
}
$_SERVER['SCRIPT_FILENAME'] = $file;
$_SERVER['SCRIPT_NAME'] = '/simplesaml' . $script;
$_SERVER['PHP_SELF'] = '/simplesaml' . $script . $pathInfo;
if ($pathInfo !== '') { $_SERVER['PATH_INFO'] = $pathInfo; } else { unset($_SERVER['PATH_INFO']); }
chdir(dirname($file));
require $file;
return true;
`,
    );

    let output = '';
    proc = spawn(
      'php',
      [
        '-d',
        'display_errors=stderr',
        '-d',
        'error_reporting=E_ALL & ~E_DEPRECATED & ~E_NOTICE',
        '-S',
        `127.0.0.1:${port}`,
        '-t',
        join(SIMPLESAMLPHP_DIR, 'www'),
        router,
      ],
      {
        env: { ...process.env, SIMPLESAMLPHP_CONFIG_DIR: configDir },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const collect = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-20_000);
      if (opts.verbose) process.stderr.write(chunk);
    };
    proc.stdout?.on('data', collect);
    proc.stderr?.on('data', collect);
    const child = proc;

    const metadataXml = await waitForUrl(metadataUrl, child, 20_000, () => output);

    let stopped = false;
    return {
      baseUrl,
      entityId,
      metadataUrl,
      metadataXml,
      signingCertPem: idpCert.certPem,
      ssoUrl,
      idpInitiatedUrl(spEntityId: string, relayState?: string): string {
        const u = new URL(ssoUrl);
        u.searchParams.set('spentityid', spEntityId);
        if (relayState !== undefined) u.searchParams.set('RelayState', relayState);
        return u.toString();
      },
      async stop(): Promise<void> {
        if (stopped) return;
        stopped = true;
        await killChild(child);
        await rm(root, { recursive: true, force: true });
      },
    };
  } catch (err) {
    if (proc) await killChild(proc);
    await rm(root, { recursive: true, force: true });
    throw err;
  }
}

async function killChild(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}
