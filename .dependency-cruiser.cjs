// The module layering of docs/architecture.md (sections 1–2, ADR 0015), checked by
// `npm run lint:deps`. The layer rule is generated from MODULES below: one row per module, with
// the modules it may import. Change the doc and this table together. A `.cjs` file because the
// package is `"type": "module"`; dependency-cruiser resolves the `.js` specifiers to the `.ts`
// sources itself, and `not-to-unresolvable` fails the run when a relative import does not resolve
// (an unresolved import would slip past every other rule).

/** Files that wire the process: they may import anything and nothing imports them. */
const COMPOSITION = '^src/(?:[^/]+\\.ts$|cli/)';

const LAYER_0 = ['config', 'i18n', 'common', 'crypto'];
const LAYER_1 = ['database', 'metrics'];
const LAYER_2 = ['audit', 'tenants', 'clients', 'users', 'sessions', 'tokens', 'rate-limit', 'mail'];
/** `identity/port` is its own module (types and kinds only); `identity` is the rest of the folder. */
const LAYER_3 = ['identity', 'identity/port'];
const LAYER_4 = ['login', 'oauth', 'scim', 'gateway', 'well-known'];

/** module → the modules it may import (besides its own files). Section 2 of docs/architecture.md. */
const MODULES = {
  config: [],
  /** The message catalogues of the hosted pages: plain data and a formatter, nothing else. */
  i18n: [],
  common: ['i18n'],
  crypto: ['config', 'common'],
  database: [...LAYER_0],
  metrics: [...LAYER_0],
  audit: [...LAYER_0, ...LAYER_1],
  tenants: [...LAYER_0, ...LAYER_1, 'audit', 'identity/port'],
  clients: [...LAYER_0, ...LAYER_1, 'audit', 'tenants'],
  users: [...LAYER_0, ...LAYER_1, 'audit', 'tenants', 'identity/port'],
  sessions: [...LAYER_0, ...LAYER_1, 'audit'],
  tokens: [...LAYER_0, ...LAYER_1, 'audit', 'tenants', 'clients', 'sessions', 'users'],
  'rate-limit': [...LAYER_0, ...LAYER_1],
  mail: [...LAYER_0, ...LAYER_1],
  'identity/port': [...LAYER_0],
  identity: [...LAYER_0, ...LAYER_1, ...LAYER_2, 'identity/port'],
  login: [...LAYER_0, ...LAYER_1, ...LAYER_2, ...LAYER_3],
  oauth: [...LAYER_0, ...LAYER_1, ...LAYER_2, ...LAYER_3, 'login'],
  scim: [...LAYER_0, ...LAYER_1, ...LAYER_2, 'identity/port'],
  gateway: [...LAYER_0, ...LAYER_1, ...LAYER_2, 'identity/port'],
  'well-known': [...LAYER_0, ...LAYER_1, ...LAYER_2, 'identity/port'],
  /** The account email flows and pages: above login (the forgot-password page opens a sign-in) and oauth (the bearer guard). */
  account: [...LAYER_0, ...LAYER_1, ...LAYER_2, ...LAYER_3, ...LAYER_4],
  admin: [...LAYER_0, ...LAYER_1, ...LAYER_2, ...LAYER_3, ...LAYER_4, 'account'],
  health: [...LAYER_0, ...LAYER_1, ...LAYER_2, ...LAYER_3],
};

/** Where a module's files are. `identity` excludes its `port/` folder. */
const modulePath = (name) => (name === 'identity' ? '^src/identity/(?!port/)' : `^src/${name}/`);
const anyOf = (names) => names.map(modulePath).join('|');

const layerRules = Object.entries(MODULES).map(([name, allowed]) => ({
  name: `layer:${name}`,
  comment: `${name} may import only: ${allowed.length ? allowed.join(', ') : 'nothing in src/'} (docs/architecture.md §2).`,
  severity: 'error',
  from: { path: modulePath(name) },
  to: { path: '^src/', pathNot: anyOf([name, ...allowed]) },
}));

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'port-types-only-from-domain',
      comment: 'Domain data (layer 2) may import identity/port as types only (docs/architecture.md §1).',
      severity: 'error',
      from: { path: anyOf(LAYER_2) },
      to: { path: modulePath('identity/port'), dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'no-circular',
      comment: 'No import cycle between files (type-only imports included).',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-circular-folders',
      comment: 'No import cycle between folders of src/ (type-only imports included).',
      severity: 'error',
      scope: 'folder',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'src-not-to-tests',
      comment: 'Nothing in src/ imports the tests, the benchmarks or the scripts.',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(?:test|bench|scripts)/' },
    },
    {
      name: 'migrations-stand-alone',
      comment: 'Migrations import nothing from src/ (they must not change when the code does).',
      severity: 'error',
      from: { path: '^migrations/' },
      to: { path: '^src/' },
    },
    {
      name: 'only-database-runs-migrations',
      comment: 'Only database/ (and composition) import migrations/.',
      severity: 'error',
      from: { path: '^src/', pathNot: `${modulePath('database')}|${COMPOSITION}` },
      to: { path: '^migrations/' },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'Every import resolves: a relative import that does not would escape every rule above.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Spec files beside the code are unit tests, not part of the module graph: they may import what
    // they test (src/config/app-config.spec.ts checks crypto's key-encryption-key errors).
    exclude: { path: '\\.spec\\.ts$' },
    // Type-only imports couple modules too (docs/architecture.md §1): keep them in the graph.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.mjs', '.cjs', '.d.ts', '.json'],
    },
  },
};
