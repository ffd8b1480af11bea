/**
 * The OpenAPI document is one a client generator can use: every operation described, every
 * security scheme it names defined, the error formats and the token endpoint's form body stated.
 * Proven by generating a TypeScript client from the served document with orval, type-checking it,
 * and calling the running service through it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { generate } from 'orval';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { adminClient, type AdminClient } from './support/admin.js';

interface Operation {
  operationId?: string;
  summary?: string;
  security?: Array<Record<string, string[]>>;
  requestBody?: { content: Record<string, { schema: { $ref?: string; properties?: Record<string, unknown>; required?: string[] } }> };
  responses: Record<string, { content?: Record<string, { schema?: unknown }> }>;
}
interface Doc {
  paths: Record<string, Record<string, Operation>>;
  components: {
    securitySchemes?: Record<string, { type: string; scheme?: string }>;
    schemas: Record<string, { properties?: Record<string, unknown>; required?: string[] }>;
  };
}

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head', 'trace', 'search'];

let app: TestApp;
let admin: AdminClient;
let doc: Doc;
const dir = mkdtempSync(join(tmpdir(), 'auth-service-openapi-'));

beforeAll(async () => {
  app = await startTestApp();
  admin = await adminClient(app);
  doc = (await (await fetch(`${app.url}/docs/openapi.json`)).json()) as Doc;
});

afterAll(async () => {
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

const operations = () =>
  Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([m]) => METHODS.includes(m))
      .map(([method, op]) => ({ id: `${method.toUpperCase()} ${path}`, path, method, op })),
  );

describe('the OpenAPI document', () => {
  it('gives every operation a summary and a success and an error response', () => {
    const all = operations();
    expect(all.length).toBeGreaterThan(60);
    expect(all.filter((o) => !o.op.summary).map((o) => o.id)).toEqual([]);
    expect(all.filter((o) => !Object.keys(o.op.responses).some((c) => c.startsWith('2'))).map((o) => o.id)).toEqual([]);
    expect(all.filter((o) => !o.op.responses['default']?.content).map((o) => o.id)).toEqual([]);
  });

  it("describes errors in each route family's format", () => {
    const errorOf = (id: string) => {
      const o = operations().find((x) => x.id === id)!;
      return o.op.responses['default']!.content!;
    };
    expect(errorOf('POST /oauth2/token')).toEqual({ 'application/json': { schema: { $ref: '#/components/schemas/OAuthError' } } });
    expect(errorOf('GET /scim/v2/Users')).toEqual({ 'application/scim+json': { schema: { $ref: '#/components/schemas/ScimError' } } });
    expect(errorOf('GET /admin/v1/tenants')).toEqual({ 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } });
    for (const name of ['OAuthError', 'ScimError', 'Problem']) expect(doc.components.schemas[name], name).toBeDefined();
  });

  it('defines every security scheme an operation names, so Swagger UI offers Authorize', () => {
    const schemes = doc.components.securitySchemes ?? {};
    const named = new Set(operations().flatMap((o) => (o.op.security ?? []).flatMap((s) => Object.keys(s))));
    expect([...named].filter((n) => !schemes[n])).toEqual([]);
    expect(named).toEqual(new Set(['bearer', 'scimToken', 'metricsToken', 'clientBasic']));
    expect(schemes['clientBasic']).toMatchObject({ type: 'http', scheme: 'basic' });
    const security = (id: string) => operations().find((o) => o.id === id)!.op.security;
    expect(security('GET /admin/v1/tenants')).toEqual([{ bearer: [] }]);
    expect(security('GET /scim/v2/Users')).toEqual([{ scimToken: [] }]);
    expect(security('GET /metrics')).toEqual([{ metricsToken: [] }]);
    expect(security('POST /oauth2/token')).toEqual([{ clientBasic: [] }, {}]);
    expect(security('GET /oauth2/revocations')).toEqual([{ clientBasic: [] }]);
  });

  it('lists SCIM Bulk and Me once each, under their RFC 7644 method', () => {
    expect(Object.keys(doc.paths['/scim/v2/Bulk']!)).toEqual(['post']);
    expect(Object.keys(doc.paths['/scim/v2/Me']!)).toEqual(['get']);
    expect(
      operations()
        .filter((o) => !['get', 'put', 'post', 'delete', 'patch'].includes(o.method))
        .map((o) => o.id),
    ).toEqual([]);
  });

  it("states the token endpoint's form body with the grant parameters", () => {
    const body = doc.paths['/oauth2/token']!['post']!.requestBody!.content;
    expect(Object.keys(body)).toEqual(['application/x-www-form-urlencoded']);
    const schema = body['application/x-www-form-urlencoded']!.schema;
    expect(schema.required).toEqual(['grant_type']);
    expect(Object.keys(schema.properties!)).toEqual(
      expect.arrayContaining([
        'grant_type',
        'code',
        'redirect_uri',
        'code_verifier',
        'refresh_token',
        'scope',
        'client_id',
        'client_secret',
      ]),
    );
  });

  it('gives the create-binding body examples of one kind each, migrationImport only with firebase_legacy', () => {
    const media = doc.paths['/admin/v1/tenants/{tenantId}/bindings']!['post']!.requestBody!.content['application/json'] as unknown as {
      examples: Record<string, { value: { kind: string; migrationImport?: boolean } }>;
    };
    const examples = Object.values(media.examples).map((e) => e.value);
    expect(examples.map((e) => e.kind)).toEqual(expect.arrayContaining(['oidc', 'native', 'firebase_legacy']));
    for (const e of examples) if (e.migrationImport !== undefined) expect(e.kind).toBe('firebase_legacy');
  });
});

describe('a TypeScript client generated from it', () => {
  it('type-checks and calls the service: readiness, and the admin API with a bearer token', async () => {
    const spec = join(dir, 'openapi.json');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(spec, JSON.stringify(doc));
    const target = join(dir, 'client.ts');
    await generate({ input: { target: spec }, output: { target, client: 'fetch', baseUrl: app.url, mode: 'single' } });

    const program = ts.createProgram([target], {
      strict: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
      lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'],
      types: [],
      skipLibCheck: true,
    });
    const diagnostics = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    expect(diagnostics).toEqual([]);

    const client = (await import(pathToFileURL(target).href)) as Record<
      string,
      (...args: unknown[]) => Promise<{ status: number; data: unknown }>
    >;
    const ready = await client['healthControllerReady']!();
    expect(ready).toMatchObject({ status: 200, data: { status: 'ok' } });
    const tenants = await client['tenantsAdminControllerList']!({ limit: 5 }, { headers: { authorization: `Bearer ${admin.token}` } });
    expect(tenants.status).toBe(200);
    expect(tenants.data).toMatchObject({ items: expect.any(Array) });
    const refused = await client['tenantsAdminControllerList']!({ limit: 5 });
    expect(refused).toMatchObject({ status: 401, data: { status: 401, title: 'Unauthorized' } });
  });
});
