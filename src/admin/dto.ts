import { Type } from 'class-transformer';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  ArrayMaxSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsEmail,
  IsInt,
  IsISO8601,
  IsObject,
  IsOptional,
  IsString,
  IsUUID,
  Length,
  Matches,
  Max,
  Min,
  ValidateIf,
  ValidateNested,
} from 'class-validator';
import { IDP_KINDS, type ClaimMappingRules, type IdpKind } from '../identity/port/identity-provider.port.js';
import { SLUG_PATTERN } from '../tenants/tenants.service.js';
import { LOCALES, type Locale } from '../i18n/index.js';

export class CreateTenantDto {
  @ApiProperty({ example: 'acme', description: 'Lower-case letters, digits and inner hyphens, 1–63 characters. Immutable.' })
  @Matches(SLUG_PATTERN, { message: 'slug must be 1–63 lower-case letters, digits and inner hyphens' })
  slug!: string;

  @ApiProperty({ example: 'Acme Corporation' })
  @IsString()
  @Length(1, 200)
  displayName!: string;
}

export class PasswordPolicyDto {
  @ApiPropertyOptional({ minimum: 8, maximum: 256, default: 8 })
  @IsOptional()
  @IsInt()
  @Min(8)
  @Max(256)
  minLength?: number;

  @ApiPropertyOptional({
    minimum: 0,
    maximum: 4,
    default: 2,
    description: 'Least zxcvbn strength score: 0 off, 2 refuses what about 10^8 guesses find, 4 the strictest.',
  })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(4)
  minStrength?: number;
}

export class UpdateTenantDto {
  /** Accepted only to refuse it with a clear message: slugs are immutable. */
  @IsOptional()
  slug?: unknown;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @Length(1, 200)
  displayName?: string;

  @ApiPropertyOptional({ enum: ['active', 'suspended'] })
  @IsOptional()
  @IsIn(['active', 'suspended'])
  status?: 'active' | 'suspended';

  @ApiPropertyOptional({ type: () => PasswordPolicyDto, description: 'Rules for local passwords; replaces the stored rules.' })
  @IsOptional()
  @ValidateNested()
  @Type(() => PasswordPolicyDto)
  passwordPolicy?: PasswordPolicyDto;

  @ApiPropertyOptional({
    enum: LOCALES,
    nullable: true,
    description:
      'The language of the hosted pages and mails when the request names none of the shipped ones (ui_locales, then Accept-Language); null clears it (English).',
  })
  @ValidateIf((_, v) => v !== undefined && v !== null)
  @IsIn(LOCALES, { message: `defaultLocale must be one of ${LOCALES.join(', ')}, or null` })
  defaultLocale?: Locale | null;
}

export class CreateBindingDto {
  @ApiProperty({ enum: IDP_KINDS })
  @IsIn(IDP_KINDS, { message: `kind must be one of ${IDP_KINDS.join(', ')}` })
  kind!: IdpKind;

  @ApiPropertyOptional({ description: 'Kind-specific configuration (see README, "Onboard a tenant").' })
  @IsOptional()
  @IsObject()
  config?: Record<string, unknown>;

  @ApiPropertyOptional({ description: 'Write-only: encrypted at rest, never returned.' })
  @IsOptional()
  @IsObject()
  secrets?: Record<string, unknown>;

  @ApiPropertyOptional({ description: 'Claim and role mapping rules.' })
  @IsOptional()
  @IsObject()
  claimMapping?: ClaimMappingRules;

  @ApiPropertyOptional()
  @IsOptional()
  @IsInt()
  @Min(-1000)
  @Max(1000)
  priority?: number;

  @ApiPropertyOptional({ description: 'Ops only: import an existing Firebase project (ADR-0002).' })
  @IsOptional()
  @IsBoolean()
  migrationImport?: boolean;
}

export class UpdateBindingDto {
  /** Accepted only to refuse it with a clear message: status changes through activate, retire and rollback. */
  @IsOptional()
  status?: unknown;

  @IsOptional()
  @IsObject()
  config?: Record<string, unknown>;

  @IsOptional()
  @IsObject()
  secrets?: Record<string, unknown>;

  @IsOptional()
  @IsObject()
  claimMapping?: ClaimMappingRules;

  @IsOptional()
  @IsInt()
  @Min(-1000)
  @Max(1000)
  priority?: number;
}

export class MappingPreviewDto {
  @ApiPropertyOptional({ description: 'Upstream issuer of the sample; default: the last test login.' })
  @IsOptional()
  @IsString()
  issuer?: string;

  @IsOptional()
  @IsString()
  subject?: string;

  @ApiPropertyOptional({ description: 'Upstream claims of the sample identity; default: the last test login.' })
  @IsOptional()
  @IsObject()
  claims?: Record<string, unknown>;
}

export class CreateClientDto {
  @ApiProperty({ example: 'web-bff' })
  @Matches(/^[A-Za-z0-9_.-]{3,100}$/)
  id!: string;

  @IsString()
  @Length(1, 200)
  name!: string;

  @ApiProperty({ enum: ['bff', 'machine'] })
  @IsIn(['bff', 'machine'])
  kind!: 'bff' | 'machine';

  @ApiPropertyOptional({ description: 'Machine clients belong to one tenant.' })
  @IsOptional()
  @IsUUID()
  tenantId?: string;

  @IsOptional()
  @IsArray()
  @ArrayMaxSize(50)
  @IsString({ each: true })
  redirectUris?: string[];

  @IsOptional()
  @IsArray()
  @ArrayMaxSize(50)
  @IsString({ each: true })
  postLogoutRedirectUris?: string[];

  @IsOptional()
  @IsArray()
  @ArrayMaxSize(100)
  @Matches(/^[A-Za-z0-9_.:-]{1,100}$/, { each: true })
  scopes?: string[];

  @IsOptional()
  @IsArray()
  @IsIn(['authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:token-exchange'], { each: true })
  grantTypes?: string[];
  @ApiPropertyOptional({
    description:
      'A BFF that sends users to /oauth2/authorize without `org` gets the hosted "enter your organisation" page (never a list); default false.',
  })
  @IsOptional()
  @IsBoolean()
  organizationPrompt?: boolean;
}

/** Only what can change without re-issuing credentials: the id, kind, tenant and grants stay. */
export class UpdateClientDto {
  @IsOptional()
  @IsString()
  @Length(1, 200)
  name?: string;

  @ApiPropertyOptional({ description: 'Replaces the registered redirect URIs (matched exactly).' })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(50)
  @IsString({ each: true })
  redirectUris?: string[];

  @ApiPropertyOptional({ description: 'Replaces the registered post-logout redirect URIs.' })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(50)
  @IsString({ each: true })
  postLogoutRedirectUris?: string[];

  @ApiPropertyOptional({ description: 'Replaces the scopes the client may ask for.' })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(100)
  @Matches(/^[A-Za-z0-9_.:-]{1,100}$/, { each: true })
  scopes?: string[];

  @ApiPropertyOptional({
    description:
      'A BFF that sends users to /oauth2/authorize without `org` gets the hosted "enter your organisation" page (never a list); default false.',
  })
  @IsOptional()
  @IsBoolean()
  organizationPrompt?: boolean;
}

export class CreateUserDto {
  @ApiProperty({
    example: 'ann@globex.example',
    description: 'What the user types on the hosted form; unique per tenant, case-insensitive.',
  })
  @IsString()
  // The form trims what is typed, and control characters cannot be typed: neither could sign in.
  @Matches(/^[^\s\p{Cc}](?:[^\p{Cc}]{0,318}[^\s\p{Cc}])?$/u, {
    message: 'username must be 1–320 characters, without control characters or leading/trailing spaces',
  })
  username!: string;

  @ApiPropertyOptional({
    description:
      "The initial password (the tenant's password policy applies). Write-only: never returned or logged. Absent: the user is invited by email to set one (email required).",
  })
  @IsOptional()
  @IsString()
  password?: string;

  @ApiPropertyOptional()
  @IsOptional()
  @IsEmail({}, { message: 'email must be an email address' })
  @Length(3, 320)
  email?: string;

  @ApiPropertyOptional({ description: "Whether the email is known to be the user's (default false)." })
  @IsOptional()
  @IsBoolean()
  emailVerified?: boolean;

  @IsOptional()
  @IsString()
  @Length(1, 200)
  displayName?: string;

  @ApiPropertyOptional({ description: "Roles given by hand (kept across logins, beside the binding's mapped roles)." })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(100)
  @Matches(/^[A-Za-z0-9_.:-]{1,100}$/, { each: true, message: 'each role must be 1–100 letters, digits, _ . : or -' })
  roles?: string[];
}

export class CreateScimTokenDto {
  @IsString()
  @Length(1, 100)
  name!: string;
}

export class RotateKeysDto {
  @ApiPropertyOptional({ description: 'Seconds the new key is published before it signs (default KEY_PUBLISH_DELAY_SECONDS).' })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(7 * 86_400)
  publishDelaySeconds?: number;
}

export class AuditQueryDto {
  @IsOptional()
  @IsUUID()
  tenantId?: string;

  @IsOptional()
  @IsString()
  @Length(1, 200)
  actor?: string;

  @IsOptional()
  @IsString()
  @Length(1, 100)
  action?: string;

  @IsOptional()
  @IsISO8601()
  since?: string;

  @IsOptional()
  @IsISO8601()
  until?: string;

  /**
   * The nextCursor of the previous page: an audit event id. At most 18 digits, so it always fits
   * the bigint it is compared with (19 could overflow it, a 500); ids will not reach 10^18.
   */
  @IsOptional()
  @Matches(/^\d{1,18}$/, { message: 'cursor must be the nextCursor of a previous page' })
  cursor?: string;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(500)
  limit?: number;
}

export class ListQueryDto {
  @ApiPropertyOptional({ description: 'The nextCursor of the previous page.' })
  @IsOptional()
  @IsString()
  @Length(1, 100)
  cursor?: string;

  @ApiPropertyOptional({ minimum: 1, maximum: 500, description: 'Page size.' })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(500)
  limit?: number;
}

export class HeldOperationsDto {
  @ApiPropertyOptional({ description: 'Ids of held operations; all held ones when omitted.' })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(10_000)
  @IsUUID('all', { each: true })
  ids?: string[];
}

export class ScimSettingsDto {
  @IsOptional()
  @IsInt()
  @Min(1)
  rateLimitPerMinute?: number | null;

  @IsOptional()
  @IsBoolean()
  guardEnabled?: boolean | null;

  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(100)
  guardPercent?: number | null;

  @IsOptional()
  @IsInt()
  @Min(1)
  guardWindowSeconds?: number | null;

  @IsOptional()
  @IsInt()
  @Min(0)
  guardMinCount?: number | null;
}

export class FirebaseImportDto {
  @ApiProperty({ description: 'The JSON `firebase auth:export --format=json` writes: `{ "users": [...] }`.' })
  @IsObject()
  export!: Record<string, unknown>;

  @ApiProperty({ description: 'The project password hash parameters: base64_signer_key, base64_salt_separator, rounds, mem_cost.' })
  @IsObject()
  hashConfig!: Record<string, unknown>;

  @ApiPropertyOptional({ description: "The firebase_legacy binding the users are linked to (default: the tenant's)." })
  @IsOptional()
  @IsUUID()
  bindingId?: string;
}

const ROLE_NAME = /^[A-Za-z0-9_.:-]{1,100}$/;

export class UpdateUserDto {
  @ApiPropertyOptional({ nullable: true, description: 'A new address is unverified unless emailVerified says otherwise.' })
  @IsOptional()
  @IsEmail({}, { message: 'email must be an email address' })
  @Length(3, 320)
  email?: string | null;

  @ApiPropertyOptional()
  @IsOptional()
  @IsBoolean()
  emailVerified?: boolean;

  @ApiPropertyOptional({ nullable: true })
  @IsOptional()
  @IsString()
  @Length(1, 200)
  displayName?: string | null;

  @ApiPropertyOptional({ description: 'The roles given by hand, replaced as a whole. Mapped and SCIM roles are not touched.' })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(100)
  @Matches(ROLE_NAME, { each: true, message: 'each role must be 1–100 letters, digits, _ . : or -' })
  roles?: string[];

  @ApiPropertyOptional({ enum: ['active', 'disabled'], description: 'Disabling ends every session of the user at once.' })
  @IsOptional()
  @IsIn(['active', 'disabled'])
  status?: 'active' | 'disabled';
}

export class ListUsersQueryDto extends ListQueryDto {
  @ApiPropertyOptional({ description: 'Case-insensitive prefix of the username, SCIM userName, email or display name.' })
  @IsOptional()
  @IsString()
  @Length(1, 320)
  q?: string;

  @ApiPropertyOptional({ enum: ['active', 'disabled'] })
  @IsOptional()
  @IsIn(['active', 'disabled'])
  status?: 'active' | 'disabled';
}

export class InviteUserDto {
  @ApiPropertyOptional({
    description: "The username of the new local password; default: the user's SCIM userName, else the email address.",
  })
  @IsOptional()
  @IsString()
  @Matches(/^[^\s\p{Cc}](?:[^\p{Cc}]{0,318}[^\s\p{Cc}])?$/u, {
    message: 'username must be 1–320 characters, without control characters or leading/trailing spaces',
  })
  username?: string;
}

/**
 * Tenant branding (issue #18). The shapes only: what each value may be (#rrggbb, plain text,
 * https, lengths, contrast) is checked by tenants/branding-rules.ts, which answers 422 naming the field.
 */
export class BrandingColorsDto {
  @ApiPropertyOptional({ nullable: true, example: '#1a73e8', description: 'Buttons (and links where it reads on the background).' })
  @IsOptional()
  @IsString()
  primary?: string | null;

  @ApiPropertyOptional({ nullable: true, example: '#ffffff', description: 'Page and card background.' })
  @IsOptional()
  @IsString()
  background?: string | null;

  @ApiPropertyOptional({ nullable: true, example: '#1f1f1f', description: 'Text; at least 4.5:1 on the background.' })
  @IsOptional()
  @IsString()
  text?: string | null;
}

export class LegalLinkDto {
  @ApiProperty({ example: 'Privacy', description: 'Plain text, at most 80 characters.' })
  @IsString()
  label!: string;

  @ApiProperty({ example: 'https://acme.example/privacy', description: 'An https URL.' })
  @IsString()
  url!: string;
}

export class BrandingTextsDto {
  @ApiPropertyOptional({ nullable: true, description: 'Plain text, at most 120 characters.' })
  @IsOptional()
  @IsString()
  heading?: string | null;

  @ApiPropertyOptional({ nullable: true, description: 'Plain text, at most 500 characters.' })
  @IsOptional()
  @IsString()
  footer?: string | null;

  @ApiPropertyOptional({ type: () => [LegalLinkDto], description: 'At most 5.' })
  @IsOptional()
  @IsArray()
  @ValidateNested({ each: true })
  @Type(() => LegalLinkDto)
  legalLinks?: LegalLinkDto[] | null;
}

export class BrandingDto {
  @ApiPropertyOptional({ nullable: true, description: "Shown instead of the tenant's display name; plain text, at most 200 characters." })
  @IsOptional()
  @IsString()
  displayName?: string | null;

  @ApiPropertyOptional({ type: () => BrandingColorsDto })
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => BrandingColorsDto)
  colors?: BrandingColorsDto | null;

  @ApiPropertyOptional({ nullable: true, example: 'it-help@acme.example', description: 'An email address or an https URL.' })
  @IsOptional()
  @IsString()
  supportContact?: string | null;

  @ApiPropertyOptional({ type: () => BrandingTextsDto })
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => BrandingTextsDto)
  texts?: BrandingTextsDto | null;
}
