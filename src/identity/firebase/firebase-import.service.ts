import { Inject, Injectable } from '@nestjs/common';
import { AppConfig } from '../../config/app-config.js';
import { Database, type Tx } from '../../database/database.js';
import { AuditService } from '../../audit/audit.service.js';
import { ProblemError } from '../../common/errors.js';
import { TenantsService, type Tenant } from '../../tenants/tenants.service.js';
import { BindingsService } from '../../tenants/bindings.service.js';
import { normaliseIdentity } from '../../users/claim-normaliser.js';
import { UsersRepository } from '../../users/users.repository.js';
import { NativeCredentialsRepository } from '../../users/native-credentials.repository.js';
import type { BindingContext } from '../port/identity-provider.port.js';
import { firebaseIssuer, parseFirebaseBindingConfig } from './firebase-binding-config.js';
import { FirebaseHashConfigStore } from './firebase-hash-configs.js';
import { formatFirebasePasswordHash, isBase64Value, isFirebasePasswordHash } from './firebase-password-hash.js';
import {
  firebaseScryptParamsFromHashConfig,
  hashFirebaseScrypt,
  InvalidFirebaseScryptParamsError,
  type FirebaseScryptParams,
} from './firebase-scrypt.js';

/** One user of a `firebase auth:export` JSON file (fields the import uses; others are ignored). */
export interface FirebaseExportedUser {
  localId: string;
  email?: string;
  emailVerified?: boolean;
  passwordHash?: string;
  salt?: string;
  displayName?: string;
  disabled?: boolean;
  /** The user's custom claims, as a JSON string. */
  customAttributes?: string;
}

export interface FirebaseImportOptions {
  /** The firebase_legacy binding the uids belong to; default: the tenant's (active first). */
  bindingId?: string;
  /** Who runs the import, for the audit trail (`ops:<name>`). */
  actor?: string;
}

export interface FirebaseImportReport {
  total: number;
  /** Platform users created by this import. */
  created: number;
  /** Users that already existed (an earlier token exchange or import) and were matched by uid. */
  matched: number;
  credentialsCreated: number;
  /** Still-unconverted Firebase hashes replaced by the export's (a re-import). */
  credentialsUpdated: number;
  /** Credentials left alone: already argon2id (the user has logged in since) or set natively. */
  credentialsKept: number;
  /** Users imported without a password (no email, no Firebase password: e.g. Google sign-in only). */
  withoutPassword: number;
  skipped: Array<{ index: number; reason: string }>;
  hashConfigId: string;
}

const MAX_USERS = 100_000;
const CHUNK = 200;
const EMAIL = /^[^\s@<>()]{1,64}@[^\s@<>()]{1,255}$/;
const MAX_CUSTOM_ATTRIBUTES = 1000; // Firebase's own limit on custom claims, in bytes

const invalid = (detail: string) => new ProblemError({ type: 'invalid-firebase-export', detail: detail });

interface ValidUser {
  index: number;
  localId: string;
  email: string | null;
  emailVerified: boolean;
  displayName: string | null;
  disabled: boolean;
  password?: { passwordHash: string; salt: string };
  customClaims: Record<string, unknown>;
}

/**
 * The cut-over bridge: imports a Firebase project's users (the JSON `firebase auth:export`
 * writes, plus the project's password hash parameters) into native credentials, so the tenant
 * can be switched to the hosted login (or Keycloak) without its users noticing:
 * - each Firebase uid stays linked to its platform user on the tenant's firebase_legacy binding,
 *   so a user who already exchanged Firebase tokens keeps the same platform `sub`, and Firebase
 *   tokens exchanged during the overlap keep mapping to the same user;
 * - passwords keep their Firebase scrypt hash (`$firebase-scrypt$…`, project parameters stored
 *   once, encrypted) until the user's first login replaces it with argon2id;
 * - custom claims become platform roles through the binding's mapping rules, stored as `manual`
 *   roles so they survive the switch to a binding that does not know them.
 *
 * Idempotent: importing the same (or a newer) export again updates users and not-yet-converted
 * hashes and never creates duplicates. There is no admin HTTP endpoint yet; ops call this method.
 */
@Injectable()
export class FirebaseImportService {
  constructor(
    private readonly db: Database,
    private readonly tenants: TenantsService,
    private readonly bindings: BindingsService,
    private readonly hashConfigs: FirebaseHashConfigStore,
    private readonly users: UsersRepository,
    private readonly credentials: NativeCredentialsRepository,
    private readonly audit: AuditService,
    @Inject(AppConfig) private readonly config: AppConfig,
  ) {}

  /**
   * @param exported the parsed `auth:export` JSON (`{ users: [...] }`)
   * @param hashConfig the project's `hash_config` (base64_signer_key, base64_salt_separator, rounds, mem_cost)
   */
  async importUsers(
    tenantId: string,
    exported: unknown,
    hashConfig: unknown,
    opts: FirebaseImportOptions = {},
  ): Promise<FirebaseImportReport> {
    const tenant = await this.tenants.findById(tenantId);
    if (!tenant || tenant.status === 'deleted') throw new ProblemError({ type: 'tenant-not-found' });
    const params = await validHashParams(hashConfig);
    const users = validUsers(exported);
    const binding = await this.db.transaction({ tenant: tenant.id }, (tx) => this.firebaseBinding(tx, tenant, opts.bindingId));
    const projectId = parseFirebaseBindingConfig(binding.config, { production: this.config.isProduction }).projectId;

    const report: FirebaseImportReport = {
      total: users.valid.length + users.skipped.length,
      created: 0,
      matched: 0,
      credentialsCreated: 0,
      credentialsUpdated: 0,
      credentialsKept: 0,
      withoutPassword: 0,
      skipped: users.skipped,
      hashConfigId: await this.db.transaction({ tenant: tenant.id }, (tx) => this.hashConfigs.insert(tx, tenant.id, projectId, params)),
    };
    // Chunks: a large export does not hold one long transaction; a re-run picks up where a failure stopped.
    for (let i = 0; i < users.valid.length; i += CHUNK) {
      const chunk = users.valid.slice(i, i + CHUNK);
      await this.db.transaction({ tenant: tenant.id }, async (tx) => {
        for (const user of chunk) await this.importOne(tx, binding, firebaseIssuer(projectId), report, user);
      });
    }
    report.skipped.sort((a, b) => a.index - b.index);
    await this.db.transaction({ tenant: tenant.id }, (tx) =>
      this.audit.record(tx, {
        tenantId: tenant.id,
        actor: opts.actor ?? 'ops',
        action: 'firebase.users_imported',
        target: binding.id,
        data: { ...report, skipped: report.skipped.length },
      }),
    );
    return report;
  }

  private async firebaseBinding(tx: Tx, tenant: Tenant, bindingId: string | undefined): Promise<BindingContext> {
    if (bindingId) {
      const binding = await this.bindings.get(tenant, bindingId, tx);
      if (binding.kind !== 'firebase_legacy') throw invalid('The binding to import into is not a firebase_legacy binding.');
      return binding;
    }
    const found = await this.bindings.preferredOfKind(tenant, 'firebase_legacy', {}, tx);
    if (!found)
      throw new ProblemError({
        type: 'firebase-binding-missing',
        detail:
          'Importing Firebase users needs the tenant’s firebase_legacy binding (the Firebase uids are linked to it). Create it first with migrationImport.',
      });
    return found;
  }

  private async importOne(tx: Tx, binding: BindingContext, issuer: string, report: FirebaseImportReport, u: ValidUser): Promise<void> {
    const tenantId = binding.tenantId;
    let userId = await this.users.findIdentityUserId(tx, binding.id, u.localId);
    if (userId) {
      report.matched++;
      // Firebase disabled the account: so does the platform. The reverse is an ops decision, never an import's.
      await this.users.updateFromImport(tx, userId, {
        email: u.email,
        emailVerified: u.emailVerified,
        displayName: u.displayName,
        disabled: u.disabled,
      });
    } else {
      userId = await this.users.insert(tx, {
        tenantId,
        email: u.email,
        emailVerified: u.emailVerified,
        displayName: u.displayName,
        status: u.disabled ? 'disabled' : 'active',
      });
      report.created++;
      await this.users.insertIdentity(tx, { tenantId, userId, bindingId: binding.id, issuer, subject: u.localId, email: u.email });
    }

    const roles = normaliseIdentity(binding.claimMapping, {
      issuer,
      subject: u.localId,
      claims: { ...u.customClaims, email: u.email, email_verified: u.emailVerified, name: u.displayName },
    }).roles;
    if (roles.length > 0) await this.users.grantRoles(tx, tenantId, userId, 'manual', roles);

    if (!u.password || !u.email) {
      report.withoutPassword++;
      return;
    }
    const hash = formatFirebasePasswordHash({
      configId: report.hashConfigId,
      salt: u.password.salt,
      passwordHash: u.password.passwordHash,
    });
    const taken = await this.credentials.findUserIdByUsername(tx, tenantId, u.email);
    if (taken && taken !== userId) {
      report.withoutPassword++;
      report.skipped.push({
        index: u.index,
        reason: 'username-taken: the email is another user’s native username; imported without a password',
      });
      return;
    }
    const existing = await this.credentials.findPasswordHash(tx, userId);
    if (existing === undefined) {
      await this.credentials.insert(tx, { userId, tenantId, username: u.email, passwordHash: hash });
      report.credentialsCreated++;
    } else if (existing === null || isFirebasePasswordHash(existing)) {
      await this.credentials.replaceUsernameAndHash(tx, userId, u.email, hash);
      report.credentialsUpdated++;
    } else {
      report.credentialsKept++;
    }
  }
}

async function validHashParams(raw: unknown): Promise<FirebaseScryptParams> {
  if (typeof raw !== 'object' || raw === null) throw invalid('The hash configuration (hash_config) is required.');
  const c = raw as Record<string, unknown>;
  if (c['algorithm'] !== undefined && String(c['algorithm']).toUpperCase() !== 'SCRYPT')
    throw invalid('Only Firebase SCRYPT password hashes can be imported.');
  const rounds = typeof c['rounds'] === 'string' ? Number(c['rounds']) : c['rounds'];
  const memCost = typeof c['mem_cost'] === 'string' ? Number(c['mem_cost']) : c['mem_cost'];
  if (
    typeof c['base64_signer_key'] !== 'string' ||
    typeof c['base64_salt_separator'] !== 'string' ||
    typeof rounds !== 'number' ||
    typeof memCost !== 'number'
  )
    throw invalid('hash_config needs base64_signer_key, base64_salt_separator, rounds and mem_cost.');
  const params = firebaseScryptParamsFromHashConfig({
    base64_signer_key: c['base64_signer_key'],
    base64_salt_separator: c['base64_salt_separator'],
    rounds,
    mem_cost: memCost,
  });
  try {
    await hashFirebaseScrypt('parameter-check', '', params); // throws on parameters Firebase would not accept
  } catch (err) {
    if (err instanceof InvalidFirebaseScryptParamsError) throw invalid(`hash_config is invalid: ${err.message}.`);
    throw err;
  }
  return params;
}

function validUsers(exported: unknown): { valid: ValidUser[]; skipped: Array<{ index: number; reason: string }> } {
  const list = typeof exported === 'object' && exported !== null ? (exported as Record<string, unknown>)['users'] : undefined;
  if (!Array.isArray(list)) throw invalid('The export must be the JSON `firebase auth:export` writes: an object with a users array.');
  if (list.length > MAX_USERS) throw invalid(`At most ${MAX_USERS} users per import; split the export.`);
  const valid: ValidUser[] = [];
  const skipped: Array<{ index: number; reason: string }> = [];
  for (const [index, raw] of list.entries()) {
    const result = validUser(raw, index);
    if (typeof result === 'string') skipped.push({ index, reason: result });
    else valid.push(result);
  }
  return { valid, skipped };
}

/** The user, or why it is skipped. */
function validUser(raw: unknown, index: number): ValidUser | string {
  const u = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  const localId = u['localId'];
  if (typeof localId !== 'string' || localId.length === 0 || localId.length > 128) return 'localId missing or invalid';
  let email: string | null = null;
  if (u['email'] !== undefined) {
    if (typeof u['email'] !== 'string' || !EMAIL.test(u['email'].trim())) return 'email invalid';
    email = u['email'].trim().toLowerCase();
  }
  let password: ValidUser['password'];
  if (u['passwordHash'] !== undefined) {
    if (!isBase64Value(u['passwordHash'], false) || !isBase64Value(u['salt'], true)) return 'passwordHash or salt is not base64';
    password = { passwordHash: u['passwordHash'], salt: u['salt'] };
  }
  let customClaims: Record<string, unknown> = {};
  const attrs = u['customAttributes'];
  if (attrs !== undefined && attrs !== '') {
    let parsed: unknown;
    try {
      parsed = typeof attrs === 'string' && attrs.length <= MAX_CUSTOM_ATTRIBUTES ? JSON.parse(attrs) : undefined;
    } catch {
      parsed = undefined;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      return `customAttributes is not a JSON object of at most ${MAX_CUSTOM_ATTRIBUTES} characters`;
    customClaims = parsed as Record<string, unknown>;
  }
  const displayName = typeof u['displayName'] === 'string' && u['displayName'].trim() ? u['displayName'].trim().slice(0, 200) : null;
  return {
    index,
    localId,
    email,
    emailVerified: email !== null && u['emailVerified'] === true,
    displayName,
    disabled: u['disabled'] === true,
    password,
    customClaims,
  };
}
