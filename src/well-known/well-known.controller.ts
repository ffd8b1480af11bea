import { Controller, Get, Inject, Req, Res } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { sendJwks } from './jwks-fast-path.js';
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

  /**
   * Served from memory with an ETag; gateways revalidate cheaply and refetch on an unknown `kid`.
   * On a listening server the JWKS fast path answers before this route (see jwks-fast-path.ts);
   * both write through `sendJwks`, and this route documents the endpoint in OpenAPI.
   */
  @Get('jwks.json')
  jwks(@Req() req: Request, @Res() res: Response): void {
    sendJwks(req, res, this.keys, this.config);
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
      grant_types_supported: [
        'authorization_code',
        'refresh_token',
        'client_credentials',
        'urn:ietf:params:oauth:grant-type:token-exchange',
      ],
      code_challenge_methods_supported: ['S256'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      claims_supported: [
        'sub',
        'iss',
        'aud',
        'exp',
        'iat',
        'auth_time',
        'nonce',
        'sid',
        'tid',
        'org',
        'email',
        'email_verified',
        'name',
        'roles',
      ],
      authorization_response_iss_parameter_supported: true,
      // Extension: the organisation slug the user typed, required at the authorization endpoint.
      authorization_request_parameters_supported: ['org'],
    };
  }
}
