import { ProblemError } from '../../common/errors.js';

/** Why a SAML response was refused: recorded in the audit log and the logs, never shown to the browser. */
export type SamlRejectReason =
  | 'malformed'
  | 'dtd'
  | 'signature'
  | 'algorithm'
  | 'decryption'
  | 'unencrypted'
  | 'issuer'
  | 'audience'
  | 'conditions'
  | 'destination'
  | 'recipient'
  | 'expired'
  | 'in_response_to'
  | 'in_response_to_reused'
  | 'replay'
  | 'subject'
  | 'idp_status'
  | 'idp_initiated_disabled'
  | 'invalid';

/**
 * A SAML response the service will not accept. The browser sees one generic message; `reason`
 * and `internal` (no NameIDs, no attribute values) go to the audit log and the logs.
 */
export class SamlResponseRejectedError extends ProblemError {
  override name = 'SamlResponseRejectedError';
  constructor(
    readonly reason: SamlRejectReason,
    readonly internal: string,
  ) {
    super(
      reason === 'idp_initiated_disabled'
        ? {
            type: 'saml-idp-initiated-disabled',
            detail: 'This organisation does not accept sign-ins started at its identity provider. Start from the application instead.',
          }
        : {
            type: 'saml-response-rejected',
            detail: "The organisation's identity provider sent a response that could not be accepted. Start again from the application.",
          },
    );
  }
}
