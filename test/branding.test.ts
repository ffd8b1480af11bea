/**
 * Per-tenant branding (issue #18), service side: stored and read through the admin API, every bad
 * value refused with a 422 naming its field and nothing changed, the logo served with its headers,
 * audit events, and the brand the pages get (BrandingService.brandOf), fresh after every change.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { adminClient, type AdminClient } from './support/admin.js';
import { SVG, jpeg, png, webp } from './support/images.js';
import { BrandingService } from '../src/tenants/branding.service.js';
import { TenantsService } from '../src/tenants/tenants.service.js';
import { brandCss } from '../src/common/brand-css.js';

let app: TestApp;
let admin: AdminClient;

beforeAll(async () => {
  app = await startTestApp();
  admin = await adminClient(app);
});
afterAll(async () => app.close());

type Json = Record<string, unknown>;
interface BrandingView {
  tenantId: string;
  displayName: string | null;
  colors: { primary: string | null; background: string | null; text: string | null };
  supportContact: string | null;
  texts: { heading: string | null; footer: string | null; legalLinks: { label: string; url: string }[] };
  logo: { url: string; contentType: string; size: number; width: number; height: number; sha256: string } | null;
  version: number;
}

let slugs = 0;
async function createTenant(): Promise<string> {
  const slug = `brand-${++slugs}`;
  const res = await admin.call('POST', '/admin/v1/tenants', { slug, displayName: `Brand ${slugs} Ltd` });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

const path = (tenantId: string) => `/admin/v1/tenants/${tenantId}/branding`;

async function read(tenantId: string): Promise<{ view: BrandingView; etag: string | null }> {
  const res = await admin.call('GET', path(tenantId));
  expect(res.status).toBe(200);
  return { view: (await res.json()) as BrandingView, etag: res.headers.get('etag') };
}

async function put(tenantId: string, body: unknown, etag?: string): Promise<Response> {
  return admin.call('PUT', path(tenantId), body, { 'if-match': etag ?? (await read(tenantId)).etag ?? '' });
}

const putLogo = (tenantId: string, bytes: Buffer, contentType?: string): Promise<Response> =>
  fetch(`${app.url}${path(tenantId)}/logo`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${admin.token}`, ...(contentType ? { 'content-type': contentType } : {}) },
    body: new Uint8Array(bytes),
  });

const GOOD = {
  displayName: 'Acme Sign-in',
  colors: { primary: '#1A73E8', background: '#ffffff', text: '#202124' },
  supportContact: 'it-help@acme.example',
  texts: {
    heading: 'Welcome to Acme',
    footer: 'Acme Corporation & friends — "internal" use only.',
    legalLinks: [
      { label: 'Privacy', url: 'https://acme.example/privacy' },
      { label: 'Imprint', url: 'https://acme.example/imprint' },
    ],
  },
};

async function audits(tenantId: string, action: string): Promise<Json[]> {
  const res = await admin.call('GET', `/admin/v1/audit-events?tenantId=${tenantId}&action=${action}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { items: Json[] }).items;
}

describe('branding through the admin API', () => {
  it('reads as unset (version 0) before the first save, then stores, normalises and reads back what was set', async () => {
    const id = await createTenant();
    const first = await read(id);
    expect(first.etag).toBe('"v0"');
    expect(first.view).toMatchObject({
      tenantId: id,
      displayName: null,
      colors: { primary: null, background: null, text: null },
      supportContact: null,
      texts: { heading: null, footer: null, legalLinks: [] },
      logo: null,
      version: 0,
    });

    expect((await admin.call('PUT', path(id), GOOD)).status).toBe(428);
    const saved = await put(id, GOOD, '"v0"');
    expect(saved.status).toBe(200);
    expect(saved.headers.get('etag')).toBe('"v1"');
    const { view, etag } = await read(id);
    expect(etag).toBe('"v1"');
    expect(view).toMatchObject({ ...GOOD, colors: { ...GOOD.colors, primary: '#1a73e8' }, version: 1 });

    // PUT replaces the whole: what is left out is unset. A stale ETag is a 412.
    expect((await put(id, { colors: { text: '#111111' } }, '"v0"')).status).toBe(412);
    expect((await put(id, { colors: { text: '#111111' } }, '"v1"')).status).toBe(200);
    expect((await read(id)).view).toMatchObject({
      displayName: null,
      colors: { primary: null, background: null, text: '#111111' },
      supportContact: null,
      texts: { heading: null, footer: null, legalLinks: [] },
      version: 2,
    });
  });

  it('is for operators only, and 404 for an unknown tenant', async () => {
    const unknown = '00000000-0000-4000-8000-000000000000';
    expect((await admin.call('GET', path(unknown))).status).toBe(404);
    expect((await fetch(`${app.url}${path(unknown)}`)).status).toBe(401);
  });

  const REFUSALS: Array<{ name: string; body: unknown; field: string; type?: string; detail?: RegExp }> = [
    { name: 'a colour that is not #rrggbb', body: { colors: { primary: 'red' } }, field: 'colors.primary', detail: /#rrggbb/ },
    { name: 'a short hex colour', body: { colors: { background: '#fff' } }, field: 'colors.background' },
    {
      name: 'text on background below 4.5:1',
      body: { colors: { text: '#777777', background: '#ffffff' } },
      field: 'colors.text',
      type: 'branding-contrast',
      detail: /colors\.text on colors\.background: 4\.47:1, needs 4\.5:1/,
    },
    {
      name: 'a text colour unreadable on the default background',
      body: { colors: { text: '#eeeeee' } },
      field: 'colors.text',
      type: 'branding-contrast',
      detail: /colors\.text on the default background #ffffff: 1\.\d+:1/,
    },
    {
      name: 'a background the default text does not read on',
      body: { colors: { background: '#222222' } },
      field: 'colors.background',
      type: 'branding-contrast',
      detail: /the default text #000000 on colors\.background/,
    },
    {
      name: 'a primary colour no button label reads on',
      body: { colors: { primary: '#888888', background: '#000000', text: '#ffffff' } },
      field: 'colors.primary',
      type: 'branding-contrast',
      detail: /button label .* on colors\.primary: at best 3\.\d+:1, needs 4\.5:1/,
    },
    { name: 'a script in a text', body: { texts: { heading: '<script>alert(1)</script>' } }, field: 'texts.heading', detail: /plain text/ },
    { name: 'markup in the footer', body: { texts: { footer: 'Call us <b>now</b>' } }, field: 'texts.footer' },
    { name: 'a control character in a text', body: { texts: { footer: 'line one\nline two' } }, field: 'texts.footer' },
    { name: 'a bidi override in the display name', body: { displayName: 'Acme\u202egnp.exe' }, field: 'displayName' },
    { name: 'a heading over 120 characters', body: { texts: { heading: 'x'.repeat(121) } }, field: 'texts.heading', detail: /120/ },
    { name: 'a footer over 500 characters', body: { texts: { footer: 'x'.repeat(501) } }, field: 'texts.footer', detail: /500/ },
    {
      name: 'a link that is not https',
      body: { texts: { legalLinks: [{ label: 'Privacy', url: 'http://acme.example/privacy' }] } },
      field: 'texts.legalLinks[0].url',
      detail: /https/,
    },
    {
      name: 'a javascript: link',
      body: { texts: { legalLinks: [GOOD.texts.legalLinks[0], { label: 'x', url: 'javascript:alert(1)' }] } },
      field: 'texts.legalLinks[1].url',
    },
    {
      name: 'a link label with markup',
      body: { texts: { legalLinks: [{ label: '<img src=x>', url: 'https://acme.example/' }] } },
      field: 'texts.legalLinks[0].label',
    },
    {
      name: 'more than five legal links',
      body: { texts: { legalLinks: Array.from({ length: 6 }, (_, i) => ({ label: `L${i}`, url: `https://acme.example/${i}` })) } },
      field: 'texts.legalLinks',
    },
    { name: 'a support contact that is neither email nor https', body: { supportContact: 'call Bob' }, field: 'supportContact' },
    { name: 'an http support URL', body: { supportContact: 'http://help.acme.example' }, field: 'supportContact' },
  ];

  it.each(REFUSALS)('refuses $name with a 422 naming $field, and changes nothing', async ({ body, field, type, detail }) => {
    const id = await createTenant();
    expect((await put(id, GOOD, '"v0"')).status).toBe(200);
    const before = await read(id);
    const res = await put(id, { ...GOOD, ...(body as Json) }, before.etag!);
    expect(res.status).toBe(422);
    expect(res.headers.get('content-type')).toMatch(/problem\+json/);
    const problem = (await res.json()) as { type: string; field: string; detail: string };
    expect(problem.field).toBe(field);
    expect(problem.type).toBe(`urn:auth-service:problem:${type ?? 'branding-invalid'}`);
    if (type === undefined) expect(problem.detail.startsWith(`${field}: `)).toBe(true);
    else expect(problem.detail).toContain(field);
    if (detail) expect(problem.detail).toMatch(detail);
    expect(await read(id)).toEqual(before);
    expect(await audits(id, 'tenant.branding_updated')).toHaveLength(1);
  });

  it('accepts a light primary whose button label is the text colour, and an https support URL', async () => {
    const id = await createTenant();
    const res = await put(id, { colors: { primary: '#ffd400', text: '#000000' }, supportContact: 'https://help.acme.example/it' }, '"v0"');
    expect(res.status).toBe(200);
    const brand = await app.app.get(BrandingService).brandOf((await app.app.get(TenantsService).findById(id))!);
    expect(brandCss(brand)).toContain('--brand-on-primary:#000000');
  });

  it('records each change as an audit event, before and after', async () => {
    const id = await createTenant();
    await put(id, GOOD, '"v0"');
    await put(id, { ...GOOD, texts: { heading: 'Hello' } }, '"v1"');
    const events = await audits(id, 'tenant.branding_updated');
    expect(events).toHaveLength(2);
    expect(events[0]).toMatchObject({
      action: 'tenant.branding_updated',
      target: id,
      data: { before: { texts: { heading: 'Welcome to Acme' } }, after: { texts: { heading: 'Hello', footer: null } } },
    });
    expect(events[1]).toMatchObject({ data: { before: null, after: { displayName: 'Acme Sign-in' } } });
  });
});

describe('the logo', () => {
  it('is stored, named by its hash, and served with long-lived, non-sniffable, same-origin headers and the right bytes', async () => {
    const id = await createTenant();
    const image = png(64, 32);
    const res = await putLogo(id, image, 'image/png');
    expect(res.status).toBe(200);
    const { logo } = (await res.json()) as BrandingView;
    expect(logo).toMatchObject({ contentType: 'image/png', size: image.length, width: 64, height: 32 });
    expect(logo!.url).toMatch(new RegExp(`^/branding/${id}/logo-[0-9a-f]{16}\\.png$`));
    expect(logo!.url).toContain(logo!.sha256.slice(0, 16));

    const served = await fetch(`${app.url}${logo!.url}`);
    expect(served.status).toBe(200);
    expect(served.headers.get('content-type')).toBe('image/png');
    expect(served.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(served.headers.get('x-content-type-options')).toBe('nosniff');
    expect(served.headers.get('content-security-policy')).toBe("default-src 'none'");
    expect(served.headers.get('cross-origin-resource-policy')).toBe('same-origin');
    expect(Buffer.from(await served.arrayBuffer()).equals(image)).toBe(true);

    const [event] = await audits(id, 'tenant.logo_set');
    expect(event).toMatchObject({ target: id, data: { sha256: logo!.sha256, contentType: 'image/png', size: image.length, before: null } });
  });

  it('is 404 for a wrong hash, a wrong extension, another tenant, or a malformed name', async () => {
    const id = await createTenant();
    const other = await createTenant();
    const { logo } = (await (await putLogo(id, png(8, 8), 'image/png')).json()) as BrandingView;
    const url = logo!.url;
    const wrongHash = url.replace(/logo-([0-9a-f]{16})/, (_, h: string) => `logo-${h[0] === '0' ? '1' : '0'}${h.slice(1)}`);
    for (const bad of [
      wrongHash,
      url.replace(/\.png$/, '.jpg'),
      url.replace(id, other),
      url.replace(/logo-[0-9a-f]{16}/, 'logo-x'),
      `/branding/not-a-uuid/logo-0000000000000000.png`,
    ]) {
      const res = await fetch(`${app.url}${bad}`);
      expect(res.status, bad).toBe(404);
    }
  });

  it('is 404 once the tenant is deleted', async () => {
    const id = await createTenant();
    const { logo } = (await (await putLogo(id, png(8, 8), 'image/png')).json()) as BrandingView;
    expect((await fetch(`${app.url}${logo!.url}`)).status).toBe(200);
    expect((await admin.call('DELETE', `/admin/v1/tenants/${id}`)).status).toBe(204);
    expect((await fetch(`${app.url}${logo!.url}`)).status).toBe(404);
    expect((await admin.call('GET', path(id))).status).toBe(404);
  });

  it('is kept under row-level security: outside its tenant no branding or logo row is visible', async () => {
    const id = await createTenant();
    await put(id, GOOD, '"v0"');
    await putLogo(id, png(8, 8), 'image/png');
    const count = (scope: { tenant: string } | 'platform') =>
      app.database.transaction(scope, async (tx) => {
        const { rows } = await tx.query<{ n: number }>(
          `SELECT (SELECT count(*) FROM tenant_branding WHERE tenant_id = $1)::int + (SELECT count(*) FROM tenant_logos WHERE tenant_id = $1)::int AS n`,
          [id],
        );
        return rows[0]!.n;
      });
    expect(await count({ tenant: id })).toBe(2);
    expect(await count('platform')).toBe(0);
    expect(await count({ tenant: await createTenant() })).toBe(0);
  });

  it('takes JPEG and WebP too; a new logo has a new URL and the old one is gone; DELETE removes it', async () => {
    const id = await createTenant();
    const first = ((await (await putLogo(id, png(10, 10), 'image/png')).json()) as BrandingView).logo!;
    const second = await putLogo(id, jpeg(300, 100), 'image/jpeg');
    expect(second.status).toBe(200);
    const jpg = ((await second.json()) as BrandingView).logo!;
    expect(jpg).toMatchObject({ contentType: 'image/jpeg', width: 300, height: 100 });
    expect(jpg.url).toMatch(/\.jpg$/);
    expect((await fetch(`${app.url}${first.url}`)).status).toBe(404);
    expect((await fetch(`${app.url}${jpg.url}`)).headers.get('content-type')).toBe('image/jpeg');

    const third = await putLogo(id, webp(512, 256), 'image/webp');
    expect(third.status).toBe(200);
    expect(((await third.json()) as BrandingView).logo).toMatchObject({ contentType: 'image/webp', width: 512, height: 256 });

    const removed = await admin.call('DELETE', `${path(id)}/logo`);
    expect(removed.status).toBe(204);
    expect((await read(id)).view.logo).toBeNull();
    expect(await audits(id, 'tenant.logo_removed')).toHaveLength(1);
    expect((await admin.call('DELETE', `${path(id)}/logo`)).status).toBe(204);
    expect(await audits(id, 'tenant.logo_removed')).toHaveLength(1);
  });

  const LOGO_REFUSALS: Array<{ name: string; bytes: () => Buffer; type?: string; detail: RegExp }> = [
    { name: 'an oversized logo', bytes: () => png(100, 100, undefined, 300 * 1024), type: 'image/png', detail: /at most 262144/ },
    {
      name: 'a non-image',
      bytes: () => Buffer.from('just some text, not a picture'),
      type: 'image/png',
      detail: /not a PNG, JPEG or WebP/,
    },
    { name: 'an SVG', bytes: () => SVG, type: 'image/svg+xml', detail: /SVG is not accepted/ },
    { name: 'an SVG declared as PNG', bytes: () => SVG, type: 'image/png', detail: /SVG is not accepted/ },
    {
      name: 'PNG bytes declared as JPEG',
      bytes: () => png(10, 10),
      type: 'image/jpeg',
      detail: /Content-Type says image\/jpeg, the bytes are image\/png/,
    },
    { name: 'a PNG without a Content-Type', bytes: () => png(10, 10), detail: /send the image file .* \(none was sent\)/ },
    {
      name: 'a PNG as application/octet-stream',
      bytes: () => png(10, 10),
      type: 'application/octet-stream',
      detail: /not application\/octet-stream/,
    },
    { name: 'a JSON body', bytes: () => Buffer.from('{"logo":"x"}'), type: 'application/json', detail: /not application\/json/ },
    {
      name: 'PNG bytes declared as GIF',
      bytes: () => png(10, 10),
      type: 'image/gif',
      detail: /Content-Type says image\/gif, the bytes are image\/png/,
    },
    { name: 'an image over 2048 pixels wide', bytes: () => png(4096, 10), type: 'image/png', detail: /4096×10 pixels; at most 2048×2048/ },
    { name: 'a damaged WebP header', bytes: () => webp(10, 10).subarray(0, 24), type: 'image/webp', detail: /damaged/ },
    { name: 'an empty body', bytes: () => Buffer.alloc(0), type: 'image/png', detail: /empty/ },
  ];

  it.each(LOGO_REFUSALS)(
    'refuses $name with a 422 naming the field logo, and keeps the logo there was',
    async ({ bytes, type, detail }) => {
      const id = await createTenant();
      const kept = ((await (await putLogo(id, png(16, 16), 'image/png')).json()) as BrandingView).logo!;
      const res = await putLogo(id, bytes(), type);
      expect(res.status).toBe(422);
      const problem = (await res.json()) as { type: string; field: string; detail: string };
      expect(problem).toMatchObject({ type: 'urn:auth-service:problem:logo-invalid', field: 'logo' });
      expect(problem.detail).toMatch(detail);
      expect((await read(id)).view.logo).toEqual(kept);
      expect((await fetch(`${app.url}${kept.url}`)).status).toBe(200);
      expect(await audits(id, 'tenant.logo_set')).toHaveLength(1);
    },
  );

  it('answers a body far over the limit with a 413 before reading it all, and keeps the logo', async () => {
    const id = await createTenant();
    const kept = ((await (await putLogo(id, png(16, 16), 'image/png')).json()) as BrandingView).logo!;
    const res = await putLogo(id, png(10, 10, undefined, 2 * 1024 * 1024), 'image/png');
    expect(res.status).toBe(413);
    expect((await read(id)).view.logo).toEqual(kept);
  });
});

describe('the brand of the pages (BrandingService.brandOf)', () => {
  it('is the tenant display name alone without branding, then the stored branding with the logo URL', async () => {
    const id = await createTenant();
    const tenant = (await app.app.get(TenantsService).findById(id))!;
    const branding = app.app.get(BrandingService);
    expect(await branding.brandOf(tenant)).toEqual({ displayName: tenant.displayName });

    await put(id, GOOD, '"v0"');
    const { logo } = (await (await putLogo(id, png(20, 20), 'image/png')).json()) as BrandingView;
    expect(await branding.brandOf(tenant)).toEqual({
      displayName: 'Acme Sign-in',
      logoUrl: logo!.url,
      colors: { primary: '#1a73e8', background: '#ffffff', text: '#202124' },
      supportContact: 'it-help@acme.example',
      texts: GOOD.texts,
    });
  });

  it('is cached, and fresh at once after a change through the API (this replica) or in the database (any replica)', async () => {
    const id = await createTenant();
    const tenant = (await app.app.get(TenantsService).findById(id))!;
    const branding = app.app.get(BrandingService);
    await put(id, { texts: { heading: 'One' } }, '"v0"');
    expect((await branding.brandOf(tenant)).texts?.heading).toBe('One');
    expect((await branding.brandOf(tenant)).texts?.heading).toBe('One');

    await put(id, { texts: { heading: 'Two' } }, '"v1"');
    expect((await branding.brandOf(tenant)).texts?.heading).toBe('Two');

    // A change made elsewhere (another replica, psql) reaches this replica by the row-change notification.
    await app.database.transaction({ tenant: id }, (tx) =>
      tx.query(`UPDATE tenant_branding SET heading = 'Three', version = version + 1 WHERE tenant_id = $1`, [id]),
    );
    await expect.poll(async () => (await branding.brandOf(tenant)).texts?.heading, { timeout: 5_000 }).toBe('Three');

    await putLogo(id, png(12, 12), 'image/png');
    expect((await branding.brandOf(tenant)).logoUrl).toMatch(/\.png$/);
    await admin.call('DELETE', `${path(id)}/logo`);
    expect((await branding.brandOf(tenant)).logoUrl).toBeUndefined();
  });
});
