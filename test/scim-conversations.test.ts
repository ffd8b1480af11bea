import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './support/app-harness.js';
import { TenantsService } from '../src/tenants/tenants.service.js';
import { CORE_GROUP, ENTERPRISE, PATCH_OP, type ListBody, type ScimClient, entraUser, oktaUser, q, scimClient } from './support/scim.js';
import { tenantRows } from './support/tenant-rows.js';

/**
 * Replays of the request sequences Microsoft Entra ID and Okta document for their SCIM
 * provisioning clients (request shapes as published in their SCIM guides), against the real
 * service over HTTP.
 */
let app: TestApp;
let entra: ScimClient;
let okta: ScimClient;
let entraTenant: string;

beforeAll(async () => {
  app = await startTestApp();
  const tenants = app.app.get(TenantsService);
  entraTenant = (await tenants.create('contoso', 'Contoso')).id;
  entra = await scimClient(app, entraTenant, 'Microsoft Entra ID');
  okta = await scimClient(app, (await tenants.create('initech', 'Initech')).id, 'Okta');
});

afterAll(async () => {
  await app?.close();
});

const userStatus = async (tenantId: string, id: string) =>
  (await tenantRows<{ status: string }>(app, tenantId, `SELECT status FROM users WHERE id = $1`, [id]))[0]?.status;

/** Creates users over HTTP with a few requests in flight, as the IdPs' provisioning engines do. */
async function provision(client: ScimClient, n: number, prefix: string): Promise<string[]> {
  const ids: string[] = new Array(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const res = await client.post('/Users', entraUser(`${prefix}${i}@contoso.test`, randomUUID()));
      if (res.status !== 201) throw new Error(`create ${i}: ${res.status} ${res.text}`);
      ids[i] = res.body['id'] as string;
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return ids;
}

describe('Microsoft Entra ID conversation', () => {
  const userName = `Test_User_${randomUUID()}@testuser.com`;
  const externalId = randomUUID();
  let id: string;

  it('answers the "userName eq" probe before create with an empty list', async () => {
    const res = await entra.get<ListBody>(`/Users${q(`userName eq "${userName}"`)}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/scim\+json/);
    expect(res.body).toMatchObject({ schemas: ['urn:ietf:params:scim:api:messages:2.0:ListResponse'], totalResults: 0, Resources: [] });
  });

  it("creates the user (201, Location, ETag) with the enterprise extension and Entra's meta/roles noise", async () => {
    const res = await entra.post(
      '/Users',
      entraUser(userName, externalId, { [ENTERPRISE]: { department: 'Finance', employeeNumber: '701984' } }),
    );
    expect(res.status).toBe(201);
    id = res.body['id'] as string;
    expect(res.headers.get('location')).toBe(`${app.url}/scim/v2/Users/${id}`);
    expect(res.headers.get('etag')).toBe('W/"1"');
    expect(res.body).toMatchObject({
      userName,
      externalId,
      active: true,
      emails: [{ primary: true, type: 'work', value: userName }],
      name: { formatted: 'givenName familyName', familyName: 'familyName', givenName: 'givenName' },
      [ENTERPRISE]: { department: 'Finance', employeeNumber: '701984' },
      meta: { resourceType: 'User', version: 'W/"1"', location: `${app.url}/scim/v2/Users/${id}` },
    });
    expect(res.body['schemas']).toEqual(['urn:ietf:params:scim:schemas:core:2.0:User', ENTERPRISE]);
  });

  it('finds the user by userName (any case) and by externalId', async () => {
    const byName = await entra.get<ListBody>(`/Users${q(`userName eq "${userName.toUpperCase()}"`)}`);
    expect(byName.body.totalResults).toBe(1);
    expect(byName.body.Resources[0]!['id']).toBe(id);
    const byExternal = await entra.get<ListBody>(`/Users${q(`externalId eq "${externalId}"`)}`);
    expect(byExternal.body.Resources.map((r) => r['id'])).toEqual([id]);
  });

  it('refuses a second user with the same userName in another case (409 uniqueness)', async () => {
    const res = await entra.post('/Users', entraUser(userName.toLowerCase(), randomUUID()));
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: '409', scimType: 'uniqueness' });
  });

  it("applies Entra's PATCH with capitalised ops and a value-path filter", async () => {
    const res = await entra.patch(`/Users/${id}`, {
      schemas: [PATCH_OP],
      Operations: [
        { op: 'Replace', path: 'emails[type eq "work"].value', value: 'updatedEmail@contoso.test' },
        { op: 'Replace', path: 'name.familyName', value: 'updatedFamilyName' },
        { op: 'Add', path: 'phoneNumbers[type eq "mobile"].value', value: '+1 555 0100' },
        { op: 'Add', path: `${ENTERPRISE}:manager`, value: '26118915-6090-4610-87e4-49d8ca9f808d' },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      emails: [{ primary: true, type: 'work', value: 'updatedEmail@contoso.test' }],
      name: { familyName: 'updatedFamilyName', givenName: 'givenName' },
      phoneNumbers: [{ type: 'mobile', value: '+1 555 0100' }],
      [ENTERPRISE]: { manager: { value: '26118915-6090-4610-87e4-49d8ca9f808d' }, department: 'Finance' },
      meta: { version: 'W/"2"' },
    });
    const again = await entra.get(`/Users/${id}`);
    expect(again.body['emails']).toEqual([{ primary: true, type: 'work', value: 'updatedEmail@contoso.test' }]);
  });

  it('removes the manager with a Remove on the extension path', async () => {
    const res = await entra.patch(`/Users/${id}`, { schemas: [PATCH_OP], Operations: [{ op: 'Remove', path: `${ENTERPRISE}:manager` }] });
    expect(res.status).toBe(200);
    expect((res.body[ENTERPRISE] as Record<string, unknown>)['manager']).toBeUndefined();
  });

  it('deactivates with {"op":"Replace","path":"active","value":"False"} and the platform user is disabled', async () => {
    const res = await entra.patch(`/Users/${id}`, { schemas: [PATCH_OP], Operations: [{ op: 'Replace', path: 'active', value: 'False' }] });
    expect(res.status).toBe(200);
    expect(res.body['active']).toBe(false);
    expect(await userStatus(entraTenant, id)).toBe('disabled');
  });

  it('re-activates with "True"', async () => {
    const res = await entra.patch(`/Users/${id}`, { schemas: [PATCH_OP], Operations: [{ op: 'Replace', path: 'active', value: 'True' }] });
    expect(res.status).toBe(200);
    expect(res.body['active']).toBe(true);
    expect(await userStatus(entraTenant, id)).toBe('active');
  });

  it('renames the user (userName replace)', async () => {
    const renamed = `${randomUUID()}@testuser.com`;
    const res = await entra.patch(`/Users/${id}`, {
      schemas: [PATCH_OP],
      Operations: [{ op: 'Replace', path: 'userName', value: renamed }],
    });
    expect(res.status).toBe(200);
    expect((await entra.get<ListBody>(`/Users${q(`userName eq "${renamed}"`)}`)).body.totalResults).toBe(1);
    expect((await entra.get<ListBody>(`/Users${q(`userName eq "${userName}"`)}`)).body.totalResults).toBe(0);
  });

  describe('groups', () => {
    let groupId: string;
    let members: string[];

    beforeAll(async () => {
      members = await provision(entra, 2500, `member-${randomUUID().slice(0, 8)}-`);
    }, 180_000);

    it("creates a group sent with Entra's extra group schema URN", async () => {
      const res = await entra.post('/Groups', {
        schemas: [CORE_GROUP, 'http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group'],
        externalId: '8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159',
        displayName: 'displayName',
        meta: { resourceType: 'Group' },
      });
      expect(res.status).toBe(201);
      groupId = res.body['id'] as string;
      expect(res.body).toMatchObject({
        schemas: [CORE_GROUP],
        displayName: 'displayName',
        externalId: '8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159',
        members: [],
      });
    });

    it('finds it by displayName with excludedAttributes=members', async () => {
      const res = await entra.get<ListBody>(`/Groups${q('displayName eq "displayName"', '&excludedAttributes=members')}`);
      expect(res.body.totalResults).toBe(1);
      expect(res.body.Resources[0]!['members']).toBeUndefined();
      const one = await entra.get(`/Groups/${groupId}?excludedAttributes=members`);
      expect(one.status).toBe(200);
      expect(one.body).not.toHaveProperty('members');
      expect(one.body['displayName']).toBe('displayName');
    });

    it('renames it with a Replace on displayName (204)', async () => {
      const res = await entra.patch(`/Groups/${groupId}`, {
        schemas: [PATCH_OP],
        Operations: [{ op: 'Replace', path: 'displayName', value: '1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName' }],
      });
      expect(res.status).toBe(204);
      expect((await entra.get(`/Groups/${groupId}?excludedAttributes=members`)).body['displayName']).toBe(
        '1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName',
      );
    });

    it('adds 2,500 members in one PATCH ({"$ref":null,"value":…})', async () => {
      const res = await entra.patch(`/Groups/${groupId}`, {
        schemas: [PATCH_OP],
        Operations: [{ op: 'Add', path: 'members', value: members.map((value) => ({ $ref: null, value })) }],
      });
      expect(res.status).toBe(204);
      const group = await entra.get(`/Groups/${groupId}`);
      expect((group.body['members'] as unknown[]).length).toBe(2500);
      // Entra's membership probe.
      const probe = await entra.get<ListBody>(
        `/Groups${q(`id eq "${groupId}" and members[value eq "${members[1234]}"]`, '&excludedAttributes=members')}`,
      );
      expect(probe.body.totalResults).toBe(1);
      const user = await entra.get(`/Users/${members[1234]}`);
      expect(user.body['groups']).toEqual([
        expect.objectContaining({ value: groupId, display: '1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName' }),
      ]);
    });

    it('removes 1,000 members in one PATCH ({"op":"Remove","path":"members","value":[…]})', async () => {
      const res = await entra.patch(`/Groups/${groupId}`, {
        schemas: [PATCH_OP],
        Operations: [{ op: 'Remove', path: 'members', value: members.slice(0, 1000).map((value) => ({ $ref: null, value })) }],
      });
      expect(res.status).toBe(204);
      const group = await entra.get(`/Groups/${groupId}`);
      const now = (group.body['members'] as Array<{ value: string }>).map((m) => m.value).sort();
      expect(now).toEqual(members.slice(1000).sort());
      const gone = await entra.get<ListBody>(
        `/Groups${q(`id eq "${groupId}" and members[value eq "${members[0]}"]`, '&excludedAttributes=members')}`,
      );
      expect(gone.body.totalResults).toBe(0);
    });

    it('deletes the group (204, then 404)', async () => {
      expect((await entra.delete(`/Groups/${groupId}`)).status).toBe(204);
      const after = await entra.get(`/Groups/${groupId}`);
      expect(after.status).toBe(404);
      expect(after.body).toMatchObject({ schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'], status: '404' });
    });
  });

  it('deletes the user: 204, then 404, and the platform user stays, disabled', async () => {
    expect((await entra.delete(`/Users/${id}`)).status).toBe(204);
    expect((await entra.get(`/Users/${id}`)).status).toBe(404);
    expect(await userStatus(entraTenant, id)).toBe('disabled');
  });
});

describe('Okta conversation', () => {
  const userName = `test.user.${randomUUID().slice(0, 8)}@okta.local`;
  let id: string;
  let groupId: string;

  it('probes with userName eq and paging parameters, then creates the user (password ignored, never returned)', async () => {
    const probe = await okta.get<ListBody>(`/Users${q(`userName eq "${userName}"`, '&startIndex=1&count=100')}`);
    expect(probe.body).toMatchObject({ totalResults: 0, startIndex: 1, itemsPerPage: 0, Resources: [] });
    const res = await okta.post('/Users', oktaUser(userName, '00ujl29u0le5T6Aj10h7'));
    expect(res.status).toBe(201);
    id = res.body['id'] as string;
    expect(res.body).toMatchObject({
      userName,
      displayName: 'Test User',
      locale: 'en-US',
      externalId: '00ujl29u0le5T6Aj10h7',
      active: true,
    });
    expect(res.body).not.toHaveProperty('password');
    expect(res.text).not.toContain('1mz050nq');
  });

  it('replaces the whole object with PUT (id, meta and groups in the body are ignored)', async () => {
    const current = await okta.get(`/Users/${id}`);
    const body = {
      ...current.body,
      name: { givenName: 'Another', familyName: 'User' },
      displayName: 'Another User',
      groups: [],
      password: 'x',
    };
    const res = await okta.put(`/Users/${id}`, body);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      id,
      name: { givenName: 'Another', familyName: 'User' },
      displayName: 'Another User',
      active: true,
      meta: { version: 'W/"2"' },
    });
    // An attribute left out of a PUT is cleared.
    const { locale: _locale, ...withoutLocale } = res.body;
    const cleared = await okta.put(`/Users/${id}`, withoutLocale);
    expect(cleared.body).not.toHaveProperty('locale');
  });

  it('deactivates with a path-less replace {"active": false} and re-activates', async () => {
    const off = await okta.patch(`/Users/${id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', value: { active: false } }] });
    expect(off.status).toBe(200);
    expect(off.body['active']).toBe(false);
    const on = await okta.patch(`/Users/${id}`, { schemas: [PATCH_OP], Operations: [{ op: 'replace', value: { active: true } }] });
    expect(on.body['active']).toBe(true);
  });

  it('pushes a group: create, rename with {"id","displayName"}, add and remove members, PUT members, delete', async () => {
    const created = await okta.post('/Groups', { schemas: [CORE_GROUP], displayName: 'Test SCIMv2', members: [] });
    expect(created.status).toBe(201);
    groupId = created.body['id'] as string;
    const other = await okta.post('/Users', oktaUser(`second.${userName}`, '00ujl29u0le5T6Aj10h8'));

    const renamed = await okta.patch(`/Groups/${groupId}`, {
      schemas: [PATCH_OP],
      Operations: [{ op: 'replace', value: { id: groupId, displayName: 'Test SCIMv2 renamed' } }],
    });
    expect(renamed.status).toBe(204);

    const added = await okta.patch(`/Groups/${groupId}`, {
      schemas: [PATCH_OP],
      Operations: [
        {
          op: 'add',
          path: 'members',
          value: [
            { value: id, display: userName },
            { value: other.body['id'], display: `second.${userName}` },
          ],
        },
      ],
    });
    expect(added.status).toBe(204);
    const listed = await okta.get<ListBody>(`/Groups${q('displayName eq "Test SCIMv2 renamed"', '&startIndex=1&count=100')}`);
    expect(listed.body.totalResults).toBe(1);
    expect((listed.body.Resources[0]!['members'] as unknown[]).length).toBe(2);

    const removed = await okta.patch(`/Groups/${groupId}`, {
      schemas: [PATCH_OP],
      Operations: [{ op: 'remove', path: `members[value eq "${id}"]` }],
    });
    expect(removed.status).toBe(204);
    const after = await okta.get(`/Groups/${groupId}`);
    expect(after.body['members']).toEqual([expect.objectContaining({ value: other.body['id'], display: 'Test User' })]);

    const put = await okta.put(`/Groups/${groupId}`, {
      schemas: [CORE_GROUP],
      id: groupId,
      displayName: 'Test SCIMv2 renamed',
      members: [{ value: id }],
    });
    expect(put.status).toBe(200);
    expect((put.body['members'] as Array<{ value: string }>).map((m) => m.value)).toEqual([id]);

    expect((await okta.delete(`/Groups/${groupId}`)).status).toBe(204);
  });
});
