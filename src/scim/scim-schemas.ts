/**
 * The SCIM schemas this server implements (RFC 7643 §4 core User and Group, §4.3 Enterprise
 * User extension), described once. The same definitions drive `/Schemas`, input validation and
 * coercion, PATCH path resolution and the `attributes` / `excludedAttributes` projection.
 */

export const CORE_USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const CORE_GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const ENTERPRISE_USER = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
export const LIST_RESPONSE = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
export const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
export const SEARCH_REQUEST = 'urn:ietf:params:scim:api:messages:2.0:SearchRequest';
export const SCHEMA_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Schema';
export const RESOURCE_TYPE_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:ResourceType';
export const SP_CONFIG_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig';

export type ScimType = 'string' | 'boolean' | 'decimal' | 'integer' | 'dateTime' | 'reference' | 'complex' | 'binary';
export type Mutability = 'readOnly' | 'readWrite' | 'immutable' | 'writeOnly';
export type Returned = 'always' | 'never' | 'default' | 'request';

export interface AttributeDef {
  name: string;
  type: ScimType;
  multiValued: boolean;
  description: string;
  required: boolean;
  caseExact: boolean;
  mutability: Mutability;
  returned: Returned;
  uniqueness: 'none' | 'server' | 'global';
  subAttributes?: AttributeDef[];
  canonicalValues?: string[];
  referenceTypes?: string[];
  /** Longest accepted string (not part of RFC 7643's schema representation). */
  maxLength?: number;
}

export interface SchemaDef {
  id: string;
  name: string;
  description: string;
  attributes: AttributeDef[];
}

type Opts = Partial<Omit<AttributeDef, 'name' | 'type'>>;

const attr = (name: string, type: ScimType, description: string, o: Opts = {}): AttributeDef => ({
  name,
  type,
  multiValued: false,
  description,
  required: false,
  caseExact: false,
  mutability: 'readWrite',
  returned: 'default',
  uniqueness: 'none',
  ...(type === 'string' || type === 'reference' ? { maxLength: 1024 } : {}),
  ...o,
});

/** `value` / `display` / `type` / `primary`: the usual shape of a multi-valued complex attribute. */
const multi = (name: string, description: string, valueType: ScimType, types: string[], extra: AttributeDef[] = []): AttributeDef =>
  attr(name, 'complex', description, {
    multiValued: true,
    subAttributes: [
      attr('value', valueType, `The ${name} value.`),
      attr('display', 'string', 'A human-readable name, primarily used for display purposes.'),
      attr('type', 'string', 'A label indicating the function of the value.', { canonicalValues: types, maxLength: 64 }),
      attr('primary', 'boolean', 'Indicates the primary or preferred value; at most one value is primary.'),
      ...extra,
    ],
  });

export const USER_SCHEMA: SchemaDef = {
  id: CORE_USER,
  name: 'User',
  description: 'User Account',
  attributes: [
    attr('id', 'string', 'Unique identifier of the platform user (the platform `sub`).', {
      caseExact: true,
      mutability: 'readOnly',
      returned: 'always',
      uniqueness: 'server',
    }),
    attr('userName', 'string', 'Unique identifier for the user within the tenant, case-insensitive.', {
      required: true,
      uniqueness: 'server',
      maxLength: 320,
    }),
    attr('externalId', 'string', "The provisioning client's identifier for the user.", { caseExact: true, maxLength: 500 }),
    attr('name', 'complex', "The components of the user's real name.", {
      subAttributes: [
        attr('formatted', 'string', 'The full name, formatted for display.'),
        attr('familyName', 'string', 'The family name.'),
        attr('givenName', 'string', 'The given name.'),
        attr('middleName', 'string', 'The middle name(s).'),
        attr('honorificPrefix', 'string', 'The honorific prefix(es).'),
        attr('honorificSuffix', 'string', 'The honorific suffix(es).'),
      ],
    }),
    attr('displayName', 'string', 'The name of the user, suitable for display to end-users.'),
    attr('nickName', 'string', 'The casual way to address the user.'),
    attr('profileUrl', 'reference', "A URI of the user's online profile.", { referenceTypes: ['external'] }),
    attr('title', 'string', "The user's title, such as 'Vice President'."),
    attr('userType', 'string', 'The relationship between the organisation and the user.'),
    attr('preferredLanguage', 'string', "The user's preferred written or spoken language.", { maxLength: 64 }),
    attr('locale', 'string', "The user's default location for localisation.", { maxLength: 64 }),
    attr('timezone', 'string', "The user's time zone (IANA).", { maxLength: 64 }),
    attr('active', 'boolean', "The user's administrative status; false disables the platform user and ends their sessions."),
    attr('password', 'string', 'Not stored: this service never accepts passwords over SCIM.', {
      mutability: 'writeOnly',
      returned: 'never',
    }),
    multi('emails', 'Email addresses for the user.', 'string', ['work', 'home', 'other']),
    multi('phoneNumbers', 'Phone numbers for the user.', 'string', ['work', 'home', 'mobile', 'fax', 'pager', 'other']),
    multi('ims', 'Instant messaging addresses for the user.', 'string', []),
    multi('photos', 'URLs of photos of the user.', 'reference', ['photo', 'thumbnail']),
    attr('addresses', 'complex', 'Physical mailing addresses for the user.', {
      multiValued: true,
      subAttributes: [
        attr('formatted', 'string', 'The full mailing address.'),
        attr('streetAddress', 'string', 'The street address.'),
        attr('locality', 'string', 'The city or locality.'),
        attr('region', 'string', 'The state or region.'),
        attr('postalCode', 'string', 'The zip code or postal code.'),
        attr('country', 'string', 'The country (ISO 3166-1 alpha-2).'),
        attr('type', 'string', 'A label indicating the function of the address.', {
          canonicalValues: ['work', 'home', 'other'],
          maxLength: 64,
        }),
        attr('primary', 'boolean', 'Indicates the primary mailing address.'),
      ],
    }),
    attr('groups', 'complex', 'Groups the user belongs to (read-only; change memberships through Groups).', {
      multiValued: true,
      mutability: 'readOnly',
      subAttributes: [
        attr('value', 'string', 'The id of the group.', { mutability: 'readOnly' }),
        attr('$ref', 'reference', 'The URI of the group.', { mutability: 'readOnly', referenceTypes: ['Group'] }),
        attr('display', 'string', 'The display name of the group.', { mutability: 'readOnly' }),
        attr('type', 'string', "'direct' (nested groups are not supported).", { mutability: 'readOnly', canonicalValues: ['direct'] }),
      ],
    }),
    multi('entitlements', 'Entitlements of the user (stored, not interpreted).', 'string', []),
    multi('roles', 'Roles of the user (stored, not interpreted; platform roles come from the binding rules).', 'string', []),
    multi('x509Certificates', 'X.509 certificates of the user.', 'binary', []),
  ],
};

export const ENTERPRISE_USER_SCHEMA: SchemaDef = {
  id: ENTERPRISE_USER,
  name: 'EnterpriseUser',
  description: 'Enterprise User',
  attributes: [
    attr('employeeNumber', 'string', 'Numeric or alphanumeric identifier assigned to a person.'),
    attr('costCenter', 'string', 'Identifies the name of a cost center.'),
    attr('organization', 'string', 'Identifies the name of an organisation.'),
    attr('division', 'string', 'Identifies the name of a division.'),
    attr('department', 'string', 'Identifies the name of a department.'),
    attr('manager', 'complex', "The user's manager.", {
      subAttributes: [
        attr('value', 'string', 'The id of the SCIM resource representing the manager.', { caseExact: true }),
        attr('$ref', 'reference', 'The URI of the manager.', { referenceTypes: ['User'] }),
        attr('displayName', 'string', 'The display name of the manager.', { mutability: 'readOnly' }),
      ],
    }),
  ],
};

export const GROUP_SCHEMA: SchemaDef = {
  id: CORE_GROUP,
  name: 'Group',
  description: 'Group',
  attributes: [
    attr('id', 'string', 'Unique identifier of the group.', {
      caseExact: true,
      mutability: 'readOnly',
      returned: 'always',
      uniqueness: 'server',
    }),
    attr('displayName', 'string', 'A human-readable name for the group.', { required: true, maxLength: 500 }),
    attr('externalId', 'string', "The provisioning client's identifier for the group.", { caseExact: true, maxLength: 500 }),
    attr('members', 'complex', 'A list of members of the group (users; nested groups are not supported).', {
      multiValued: true,
      subAttributes: [
        attr('value', 'string', 'The id of the member.', { caseExact: true, mutability: 'immutable' }),
        attr('$ref', 'reference', 'The URI of the member.', { mutability: 'immutable', referenceTypes: ['User'] }),
        attr('display', 'string', 'The display name of the member.', { mutability: 'readOnly' }),
        attr('type', 'string', "The type of the member ('User').", { mutability: 'immutable', canonicalValues: ['User'] }),
      ],
    }),
  ],
};

export const ALL_SCHEMAS: SchemaDef[] = [USER_SCHEMA, ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA];

export interface ResourceTypeDef {
  id: 'User' | 'Group';
  endpoint: string;
  schema: SchemaDef;
  extensions: SchemaDef[];
}

export const USER_RESOURCE: ResourceTypeDef = { id: 'User', endpoint: '/Users', schema: USER_SCHEMA, extensions: [ENTERPRISE_USER_SCHEMA] };
export const GROUP_RESOURCE: ResourceTypeDef = { id: 'Group', endpoint: '/Groups', schema: GROUP_SCHEMA, extensions: [] };

/** Case-insensitive attribute look-up (RFC 7643 §2.1: attribute names are case-insensitive). */
export function findAttr(attrs: readonly AttributeDef[] | undefined, name: string): AttributeDef | undefined {
  if (!attrs) return undefined;
  const lower = name.toLowerCase();
  return attrs.find((a) => a.name.toLowerCase() === lower);
}

/** The schema a URN names within a resource type (core or one of its extensions), case-insensitively. */
export function findSchema(rt: ResourceTypeDef, urn: string): SchemaDef | undefined {
  const lower = urn.toLowerCase();
  if (rt.schema.id.toLowerCase() === lower) return rt.schema;
  return rt.extensions.find((e) => e.id.toLowerCase() === lower);
}

/** Attribute definition with the SCIM-internal `maxLength` removed, for `/Schemas`. */
function publicAttr(a: AttributeDef): Record<string, unknown> {
  const { maxLength: _maxLength, subAttributes, ...rest } = a;
  return { ...rest, ...(subAttributes ? { subAttributes: subAttributes.map(publicAttr) } : {}) };
}

export function schemaResource(s: SchemaDef, baseUrl: string): Record<string, unknown> {
  return {
    schemas: [SCHEMA_SCHEMA],
    id: s.id,
    name: s.name,
    description: s.description,
    attributes: s.attributes.map(publicAttr),
    meta: { resourceType: 'Schema', location: `${baseUrl}/Schemas/${s.id}` },
  };
}

export function resourceTypeResource(rt: ResourceTypeDef, baseUrl: string): Record<string, unknown> {
  return {
    schemas: [RESOURCE_TYPE_SCHEMA],
    id: rt.id,
    name: rt.id,
    endpoint: rt.endpoint,
    description: rt.id === 'User' ? 'User Account' : 'Group',
    schema: rt.schema.id,
    schemaExtensions: rt.extensions.map((e) => ({ schema: e.id, required: false })),
    meta: { resourceType: 'ResourceType', location: `${baseUrl}/ResourceTypes/${rt.id}` },
  };
}
