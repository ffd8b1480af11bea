/**
 * Node flags that run a TypeScript entry point from source, as the npm scripts do. On Node 26,
 * @swc-node/register's `module.register()` call prints DEP0205 (deprecated in favour of
 * `module.registerHooks()`, which Node 20 lacks) on stderr; the warning is silenced, by its code
 * only, so a child's output stays what the service wrote. See ADR 0014.
 */
export const TS_LOADER = ['--disable-warning=DEP0205', '--import', '@swc-node/register/esm-register'] as const;
