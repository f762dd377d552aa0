// The table is the contract: docs/errors.md and test/unit/errors.test.ts keep it in sync.
// Operators match on `code` (CLI JSON `error`, OCI `detail.code`, audit `code`); never rename one.
// `oci` is the distribution-spec error code a client sees, `status` the HTTP status.
export const CODES = {
  // Trust establishment (src/signatures/dct). Every one of these is a refusal.
  TRUST_DATA_MISSING: { oci: 'DENIED', status: 403, summary: 'the repository has no trust data on the notary server' },
  TAG_NOT_SIGNED: { oci: 'DENIED', status: 403, summary: 'no valid trust data for the tag in targets/releases or targets' },
  SIGNATURE_INVALID: { oci: 'DENIED', status: 403, summary: 'a signature, key or key ID does not verify' },
  THRESHOLD_NOT_MET: { oci: 'DENIED', status: 403, summary: 'fewer distinct valid signatures than the role threshold' },
  EXPIRED: { oci: 'DENIED', status: 403, summary: 'a role (or the root certificate) is past its expiry' },
  ROLLBACK: { oci: 'DENIED', status: 403, summary: 'a role version is lower than one seen before' },
  HASH_MISMATCH: { oci: 'DENIED', status: 403, summary: 'metadata bytes do not match the hash or length signed by their parent' },
  ROOT_CN_MISMATCH: { oci: 'DENIED', status: 403, summary: 'no root certificate has a common name matching the GUN' },
  ROOT_CERT_INVALID: { oci: 'DENIED', status: 403, summary: 'no root certificate is usable (weak algorithm, small RSA key, not yet valid, bad chain)' },
  ROOT_ROTATION_FAILED: { oci: 'DENIED', status: 403, summary: 'a new root is not signed by a threshold of the previously trusted root keys' },
  PINNING_FAILED: { oci: 'DENIED', status: 403, summary: 'the root is not allowed by trust pinning or root rotation rules' },
  TOO_LARGE: { oci: 'DENIED', status: 403, summary: 'a download exceeded its size limit' },
  MALFORMED: { oci: 'DENIED', status: 403, summary: 'metadata is not valid JSON or not valid Notary v1 structure' },
  FROZEN_NO_STATE: { oci: 'DENIED', status: 403, summary: 'DCT trust is frozen (notary.frozenAt) and the repository has no trust data verified at or before the freeze' },
  // Notary Project (Notation) signatures.
  NOTATION_UNSIGNED: { oci: 'DENIED', status: 403, summary: 'the manifest has no Notary Project signature' },
  NOTATION_INVALID: { oci: 'DENIED', status: 403, summary: 'no Notary Project signature of the manifest satisfies the trust policy' },
  NOTATION_NO_POLICY: { oci: 'DENIED', status: 403, summary: 'no Notation trust policy applies to the repository' },
  // Sigstore (cosign) signatures.
  COSIGN_UNSIGNED: { oci: 'DENIED', status: 403, summary: 'the manifest has no cosign signature' },
  COSIGN_INVALID: { oci: 'DENIED', status: 403, summary: 'no cosign signature of the manifest satisfies the configured keys or identities' },
  // Policy.
  DIGEST_NOT_SIGNED: { oci: 'DENIED', status: 403, summary: 'digestPulls: signed, and no signed tag or signature covers the requested digest' },
  TRUST_SOURCE_MISSING: { oci: 'DENIED', status: 403, summary: 'the effective policy requires a signature kind that has no trust source configured' },
  // Getting the data.
  NOTARY_UNAVAILABLE: { oci: 'UNAVAILABLE', status: 503, summary: 'the notary server could not be reached or answered with an error' },
  NOTARY_UNAUTHORIZED: { oci: 'DENIED', status: 403, summary: 'the notary server refused our credentials or the token realm is not allowed' },
  TIMEOUT: { oci: 'UNAVAILABLE', status: 503, summary: 'a download did not finish within its deadline' },
  // Serving from the upstream registry.
  DIGEST_MISMATCH: { oci: 'DENIED', status: 403, summary: 'the upstream served bytes that do not match the signed or requested digest and length' },
  MANIFEST_UNKNOWN: { oci: 'MANIFEST_UNKNOWN', status: 404, summary: 'the upstream does not have the manifest (e.g. the signed digest is gone)' },
  BLOB_UNKNOWN: { oci: 'BLOB_UNKNOWN', status: 404, summary: 'the upstream does not have the blob' },
  MANIFEST_TOO_LARGE: { oci: 'MANIFEST_INVALID', status: 502, summary: 'the upstream manifest exceeds the size limit' },
  DIGEST_INVALID: { oci: 'DIGEST_INVALID', status: 400, summary: 'the digest in the request is not a valid sha256 digest' },
  UPSTREAM_UNAVAILABLE: { oci: 'UNAVAILABLE', status: 502, summary: 'the upstream registry could not be reached or answered with an error' },
  UPSTREAM_TIMEOUT: { oci: 'UNAVAILABLE', status: 504, summary: 'the upstream registry did not answer within its deadline' },
  UPSTREAM_INVALID: { oci: 'UNAVAILABLE', status: 502, summary: 'the upstream answered with malformed or wrongly shaped data, or redirected where it may not' },
  UPSTREAM_UNAUTHORIZED: { oci: 'UNAUTHORIZED', status: 401, summary: 'the upstream registry refused our credentials or its token realm is not allowed' },
  // The audit trail (observe/log-streams.ts).
  AUDIT_UNAVAILABLE: { oci: 'UNAVAILABLE', status: 503, summary: 'the audit trail cannot be written and its buffer is full (audit.onFailure: refuse): no decision is made without its line' },
  // Usage.
  USAGE: { oci: 'UNSUPPORTED', status: 400, summary: 'bad command-line usage' },
  CONFIG_INVALID: { oci: 'UNKNOWN', status: 500, summary: 'the configuration is invalid' },
  UNSUPPORTED: { oci: 'UNSUPPORTED', status: 405, summary: 'the operation is not supported by this read-only proxy' },
  NAME_INVALID: { oci: 'NAME_INVALID', status: 400, summary: 'invalid repository name' },
  PAGINATION_INVALID: { oci: 'PAGINATION_NUMBER_INVALID', status: 400, summary: 'the n or last parameter of a tags list is not valid' },
  RANGE_INVALID: { oci: 'RANGE_INVALID', status: 416, summary: 'the requested byte range of the blob cannot be satisfied' },
  NOT_FOUND: { oci: 'NOT_FOUND', status: 404, summary: 'unknown route' },
  // Client limits (slow and greedy clients).
  TOO_MANY_STREAMS: { oci: 'TOOMANYREQUESTS', status: 429, summary: 'the client address already has limits.perClientStreams blob streams in flight' },
  TOO_MANY_CONNECTIONS: { oci: 'UNAVAILABLE', status: 503, summary: 'limits.maxConnections or limits.perClientConnections reached and every connection busy' },
  REQUEST_TIMEOUT: { oci: 'UNKNOWN', status: 408, summary: 'the client did not send its request (headers) in time' },
  INTERNAL: { oci: 'UNKNOWN', status: 500, summary: 'an unexpected internal error' },
} as const satisfies Record<string, { oci: string; status: number; summary: string }>;

export type ErrorCode = keyof typeof CODES;

export class TrustgateError extends Error {
  override readonly name = 'TrustgateError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export function isTrustgateError(err: unknown): err is TrustgateError {
  const code = err instanceof Error ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && Object.hasOwn(CODES, code);
}

/** Shorthand used throughout: `throw fail('EXPIRED', '…')`. */
export function fail(code: ErrorCode, message: string, cause?: unknown): TrustgateError {
  return new TrustgateError(code, message, cause === undefined ? undefined : { cause });
}
