import { Controller, Get, Headers, Inject, Res } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { AppConfig } from '../config/app-config.js';
import { SigningKeysService } from '../tokens/signing-keys.service.js';

@ApiTags('discovery')
@Controller('.well-known')
export class WellKnownController {
  private discovery?: string;

  constructor(
    private readonly keys: SigningKeysService,
    @Inject(AppConfig) private readonly config: AppConfig,
  ) {}

  /** Served from memory with an ETag; gateways revalidate cheaply and refetch on an unknown `kid`. */
  @Get('jwks.json')
  jwks(@Headers('if-none-match') ifNoneMatch: string | undefined, @Res() res: Response): void {
    const { body, etag } = this.keys.jwksDocument();
    res.setHeader('Cache-Control', `public, max-age=${this.config.JWKS_MAX_AGE_SECONDS}, must-revalidate`);
    res.setHeader('ETag', etag);
    if (ifNoneMatch && ifNoneMatch.split(',').some((t) => t.trim() === etag)) {
      res.status(304).end();
      return;
    }
    res.status(200).type('application/jwk-set+json').send(body);
  }

  @Get('openid-configuration')
  openidConfiguration(@Res() res: Response): void {
    this.discovery ??= JSON.stringify(this.document());
    res.setHeader('Cache-Control', 'public, max-age=3600');
    res.status(200).type('application/json').send(this.discovery);
  }

  private document(): Record<string, unknown> {
    const base = this.config.issuer;
    return {
      issuer: base,
      authorization_endpoint: `${base}/oauth2/authorize`,
      token_endpoint: `${base}/oauth2/token`,
      jwks_uri: `${base}/.well-known/jwks.json`,
      userinfo_endpoint: `${base}/oauth2/userinfo`,
      revocation_endpoint: `${base}/oauth2/revoke`,
      end_session_endpoint: `${base}/oauth2/logout`,
      response_types_supported: ['code'],
      response_modes_supported: ['query'],
      grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:token-exchange'],
      code_challenge_methods_supported: ['S256'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'auth_time', 'nonce', 'sid', 'tid', 'org', 'email', 'email_verified', 'name', 'roles'],
      authorization_response_iss_parameter_supported: true,
      // Extension: the organisation slug the user typed, required at the authorization endpoint.
      authorization_request_parameters_supported: ['org'],
    };
  }
}
