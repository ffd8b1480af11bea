import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { bootstrapAdmin } from '../src/admin/admin-bootstrap.js';

const run = promisify(execFile);
let app: TestApp;
let env: Record<string, string>;

beforeAll(async () => {
  app = await startTestApp();
  const { clientId, clientSecret } = await bootstrapAdmin(app.app, 'cli-ops');
  env = { ...(process.env as Record<string, string>), ADMIN_URL: app.url, ADMIN_CLIENT_ID: clientId, ADMIN_CLIENT_SECRET: clientSecret };
});
afterAll(async () => app?.close());

const cli = (...args: string[]) => run(process.execPath, ['--import', '@swc-node/register/esm-register', 'src/cli/admin.ts', ...args], { env, timeout: 60_000 });

describe('admin CLI', () => {
  it('prints help', async () => {
    const { stdout } = await cli('--help');
    expect(stdout).toContain('Usage: npm run admin -- <command>');
    expect(stdout).toContain('bindings activate <tenantId> <bindingId>');
  });

  it('creates and lists a tenant through the API', async () => {
    const created = JSON.parse((await cli('tenants', 'create', 'cli-made', 'Made by CLI')).stdout) as { id: string; slug: string };
    expect(created.slug).toBe('cli-made');
    const listed = JSON.parse((await cli('tenants', 'list')).stdout) as { items: Array<{ slug: string }> };
    expect(listed.items.map((t) => t.slug)).toContain('cli-made');
  });

  it('exits 2 with the API problem on bad input', async () => {
    await expect(cli('tenants', 'create', 'Bad Slug', 'x')).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('400') });
  });
});
