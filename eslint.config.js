// Flat config: typescript-eslint strictTypeChecked with type information over every TypeScript
// tree tsconfig.json compiles; the plain-JavaScript scripts get the base rules only.
import eslint from '@eslint/js';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'coverage/', '.cache/', '.data/', 'bench/results/'] },
  eslint.configs.recommended,
  {
    files: ['**/*.ts'],
    extends: [...tseslint.configs.strictTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      // A `default:` is a deliberate catch-all (the SCIM operator switches); without one every member must be handled.
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      '@typescript-eslint/no-explicit-any': 'error',
      // A number prints the same in every template; the rule is kept for objects, undefined and null.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      // `(x) => void sideEffect(x)`-style callbacks are idiomatic; statements and returns stay checked.
      '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true }],
      // Nest modules are decorated classes with no members by design.
      '@typescript-eslint/no-extraneous-class': ['error', { allowWithDecorator: true }],
      // `_`-named bindings are deliberate: a rest sibling dropping a field, a parameter a signature requires.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true }],
      // An `async` method that fulfils a Promise-returning port (or a library's async hook) without
      // awaiting is still right: `async` turns a synchronous throw into the rejection callers handle.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // Tests and the benchmark assert presence with `!`: a wrong assertion throws and fails the run.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
  {
    // A SCIM resource is a map keyed by attribute name; removing an attribute is deleting its key.
    files: ['src/scim/**/*.ts'],
    rules: { '@typescript-eslint/no-dynamic-delete': 'off' },
  },
  {
    // #15, ADR 0015: all SQL lives in `*.repository.ts` (and the database layer itself). A service
    // or controller that needs data calls a repository (its own module's) or another module's service.
    files: ['src/**/*.ts'],
    ignores: ['src/**/*.repository.ts', 'src/database/**', 'src/**/*.spec.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: "CallExpression[callee.type='MemberExpression'][callee.property.name='query']",
          message: 'SQL belongs in a *.repository.ts file (docs/architecture.md §1): call a repository method instead.',
        },
      ],
    },
  },
  {
    // Controllers see services only: never the database (docs/architecture.md §1).
    files: ['src/**/*.controller.ts', 'src/**/*.controllers.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/database/database.js'], message: 'A controller injects services only, never Database.' }] },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', URL: 'readonly' },
    },
  },
  {
    // The example SPA's one script runs in the browser.
    files: ['examples/*/public/**/*.js'],
    languageOptions: {
      sourceType: 'module',
      globals: { document: 'readonly', fetch: 'readonly', location: 'readonly', history: 'readonly', URLSearchParams: 'readonly' },
    },
  },
  prettier,
);
