import { describe, expect, it } from 'vitest';
import { ScimError } from '../common/errors.js';
import { normaliseDocument, projectDocument } from './scim-document.js';
import { PatchEngine, parsePatchRequest } from './scim-patch.js';
import { ENTERPRISE_USER, PATCH_OP, USER_RESOURCE } from './scim-schemas.js';
import { lowerCaseInsensitive, USER_CI } from './scim-sql.js';
import { parseScimFilter } from './filter/scim-filter.js';

const engine = new PatchEngine(USER_RESOURCE);
const base = () =>
  normaliseDocument(USER_RESOURCE, {
    userName: 'bjensen',
    name: { givenName: 'Barbara', familyName: 'Jensen' },
    active: true,
    emails: [
      { value: 'bjensen@example.com', type: 'work', primary: true },
      { value: 'babs@jensen.org', type: 'home' },
    ],
  });
const apply = (...Operations: unknown[]) =>
  normaliseDocument(USER_RESOURCE, engine.apply(base(), parsePatchRequest({ schemas: [PATCH_OP], Operations })));
const scimType = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    if (err instanceof ScimError) return err.scimType;
    throw err;
  }
  throw new Error('expected a ScimError');
};

describe('normaliseDocument', () => {
  it('matches attribute names case-insensitively and drops read-only, write-only and unknown ones', () => {
    const doc = normaliseDocument(USER_RESOURCE, {
      USERNAME: 'x',
      Active: 'False',
      id: 'ignored',
      groups: [{ value: 'g' }],
      password: 'secret',
      shoeSize: 42,
      meta: { resourceType: 'User' },
      [ENTERPRISE_USER.toUpperCase()]: { Manager: 'boss-id', DEPARTMENT: 'Tours' },
    });
    expect(doc).toEqual({ userName: 'x', active: false, [ENTERPRISE_USER]: { manager: { value: 'boss-id' }, department: 'Tours' } });
  });

  it('wraps a lone value of a multi-valued attribute and keeps at most one primary', () => {
    const doc = normaliseDocument(USER_RESOURCE, {
      userName: 'x',
      emails: { value: 'a@example.com', primary: true },
      phoneNumbers: [
        { value: '1', primary: true },
        { value: '2', primary: 'true' },
      ],
    });
    expect(doc['emails']).toEqual([{ value: 'a@example.com', primary: true }]);
    expect(doc['phoneNumbers']).toEqual([
      { value: '1', primary: false },
      { value: '2', primary: true },
    ]);
  });

  it('treats null and "" as unassigned and refuses wrong types', () => {
    expect(normaliseDocument(USER_RESOURCE, { userName: 'x', title: null, nickName: '' })).toEqual({ userName: 'x' });
    expect(scimType(() => normaliseDocument(USER_RESOURCE, { userName: 'x', active: 'perhaps' }))).toBe('invalidValue');
    expect(scimType(() => normaliseDocument(USER_RESOURCE, { userName: { first: 'x' } }))).toBe('invalidValue');
    expect(scimType(() => normaliseDocument(USER_RESOURCE, { userName: '   ' }))).toBe('invalidValue');
    expect(scimType(() => normaliseDocument(USER_RESOURCE, { userName: 'x'.repeat(321) }))).toBe('invalidValue');
  });
});

describe('PatchEngine', () => {
  it('replaces through a value filter with a sub-attribute', () => {
    expect(apply({ op: 'Replace', path: 'emails[type eq "work"].value', value: 'new@example.com' })['emails']).toEqual([
      { value: 'new@example.com', type: 'work', primary: true },
      { value: 'babs@jensen.org', type: 'home' },
    ]);
  });

  it('creates the element a plain eq filter describes when nothing matches (Entra add)', () => {
    expect(apply({ op: 'Add', path: 'phoneNumbers[type eq "mobile"].value', value: '+1 555' })['phoneNumbers']).toEqual([
      { type: 'mobile', value: '+1 555' },
    ]);
  });

  it('removes a sub-attribute and drops the element left without a value', () => {
    expect(apply({ op: 'remove', path: 'emails[type eq "home"].value' })['emails']).toEqual([
      { value: 'bjensen@example.com', type: 'work', primary: true },
    ]);
  });

  it('treats a remove whose filter matches nothing as done', () => {
    expect(apply({ op: 'remove', path: 'emails[type eq "other"]' })).toEqual(base());
  });

  it('merges a complex attribute on add/replace without path and accepts dotted keys', () => {
    const doc = apply({ op: 'replace', value: { name: { familyName: 'J' }, 'name.middleName': 'M', displayName: 'Babs' } });
    expect(doc['name']).toEqual({ givenName: 'Barbara', familyName: 'J', middleName: 'M' });
    expect(doc['displayName']).toBe('Babs');
  });

  it('adds to a multi-valued attribute, merging an element with the same value and type', () => {
    const emails = apply({
      op: 'add',
      path: 'emails',
      value: [{ value: 'BJENSEN@example.com', type: 'work', display: 'B' }, { value: 'x@example.com' }],
    })['emails'];
    expect(emails).toEqual([
      { value: 'BJENSEN@example.com', type: 'work', primary: true, display: 'B' },
      { value: 'babs@jensen.org', type: 'home' },
      { value: 'x@example.com' },
    ]);
  });

  it('accepts an Entra manager given as a bare id and removes it by path', () => {
    const withManager = apply({ op: 'Add', path: `${ENTERPRISE_USER}:manager`, value: 'boss' });
    expect(withManager[ENTERPRISE_USER]).toEqual({ manager: { value: 'boss' } });
    const removed = normaliseDocument(
      USER_RESOURCE,
      engine.apply(withManager, parsePatchRequest({ Operations: [{ op: 'Remove', path: `${ENTERPRISE_USER}:manager` }] })),
    );
    expect(removed).not.toHaveProperty(ENTERPRISE_USER);
  });

  it('does not change its input', () => {
    const doc = base();
    const copy = structuredClone(doc);
    engine.apply(
      doc,
      parsePatchRequest({
        Operations: [
          { op: 'replace', path: 'emails', value: [] },
          { op: 'replace', path: 'active', value: false },
        ],
      }),
    );
    expect(doc).toEqual(copy);
  });

  it('names the right scimType for bad operations', () => {
    expect(scimType(() => parsePatchRequest({ Operations: [] }))).toBe('invalidSyntax');
    expect(scimType(() => parsePatchRequest({ schemas: ['urn:wrong'], Operations: [{ op: 'add', value: {} }] }))).toBe('invalidSyntax');
    expect(scimType(() => parsePatchRequest({ Operations: [{ op: 'add', path: 'title' }] }))).toBe('invalidValue');
    expect(scimType(() => apply({ op: 'replace', path: 'meta.lastModified', value: 'x' }))).toBe('invalidPath');
    expect(scimType(() => apply({ op: 'replace', path: 'name.nickname', value: 'x' }))).toBe('invalidPath');
    expect(scimType(() => apply({ op: 'replace', path: 'emails[type eq "work"', value: 'x' }))).toBe('invalidFilter');
    expect(scimType(() => apply({ op: 'replace', path: 'emails[type eq "work"].value', value: { nested: true } }))).toBe('invalidValue');
  });
});

describe('projectDocument', () => {
  const resource = {
    schemas: ['s'],
    id: '1',
    userName: 'u',
    name: { givenName: 'g', familyName: 'f' },
    [ENTERPRISE_USER]: { department: 'd', costCenter: 'c' },
    meta: { version: 'W/"1"' },
  };
  it('keeps id and schemas with attributes=, sub-attributes and whole extensions', () => {
    expect(projectDocument(USER_RESOURCE, resource, ['NAME.givenName', ENTERPRISE_USER])).toEqual({
      schemas: ['s'],
      id: '1',
      name: { givenName: 'g' },
      [ENTERPRISE_USER]: { department: 'd', costCenter: 'c' },
    });
  });
  it('removes excludedAttributes but never id', () => {
    expect(projectDocument(USER_RESOURCE, resource, undefined, ['id', 'name.familyName', `${ENTERPRISE_USER}:costCenter`, 'meta'])).toEqual(
      {
        schemas: ['s'],
        id: '1',
        userName: 'u',
        name: { givenName: 'g' },
        [ENTERPRISE_USER]: { department: 'd' },
      },
    );
  });
});

describe('lowerCaseInsensitive', () => {
  it('lower-cases the values compared with the lower-case columns only', () => {
    const ast = lowerCaseInsensitive(
      parseScimFilter(
        'userName eq "BJ" and externalId eq "EX" and emails[type eq "Work" and value eq "A@B"] and emails.value co "X" and name.givenName eq "G"',
      ),
      USER_CI,
    );
    expect(JSON.stringify(ast)).toBe(
      JSON.stringify(
        parseScimFilter(
          'userName eq "bj" and externalId eq "EX" and emails[type eq "work" and value eq "a@b"] and emails.value co "x" and name.givenName eq "G"',
        ),
      ),
    );
  });
});
