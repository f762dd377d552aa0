// The one place errors become HTTP: distribution-spec error bodies {"errors":[{code,message,detail}]}
// with the stable trustgate code in detail.code. Unknown errors are 500 UNKNOWN, logged once here.
import type { ServerResponse } from 'node:http';
import { CODES, isTrustgateError } from '../errors.js';
import type { Logger } from '../observe/logger.js';

export function ociErrorBody(code: keyof typeof CODES, message: string): string {
  return JSON.stringify({ errors: [{ code: CODES[code].oci, message, detail: { code } }] });
}

export function sendError(res: ServerResponse, err: unknown, method: string, log: Logger): void {
  let code: keyof typeof CODES = 'INTERNAL';
  let message = 'internal error';
  if (isTrustgateError(err)) {
    code = err.code;
    message = err.message;
  } else {
    log.error({ err }, 'unexpected error');
  }
  if (res.headersSent) {
    // Headers (and maybe part of a body) are out: cutting the connection is the only honest signal.
    res.destroy(err instanceof Error ? err : undefined);
    return;
  }
  const body = ociErrorBody(code, message);
  const headers: Record<string, string | number> = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'docker-distribution-api-version': 'registry/2.0',
  };
  if (CODES[code].status === 405) headers.allow = 'GET, HEAD';
  // A refusal may name headers of its own (416: `Content-Range: bytes */<size>`, RFC 9110 §15.5.17).
  const own = isTrustgateError(err) ? (err as { headers?: Readonly<Record<string, string>> }).headers : undefined;
  if (own) Object.assign(headers, own);
  res.writeHead(CODES[code].status, headers);
  res.end(method === 'HEAD' ? undefined : body);
}
