import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  plugins: [swc.vite({ module: { type: 'es6' } })],
  test: {
    include: ['src/**/*.spec.ts', 'test/**/*.test.ts'],
    // global-setup.ts: the run's embedded PostgreSQL. keycloak-global-setup.ts: the run's one real
    // Keycloak, started on first use and shared by the files that need it (see that file).
    globalSetup: ['test/support/global-setup.ts', 'test/support/keycloak-global-setup.ts'],
    reporters: ['default', './test/support/summary-reporter.ts'],
    testTimeout: 60_000,
    hookTimeout: 240_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
  },
});
