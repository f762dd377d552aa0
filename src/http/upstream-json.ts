// Upstream answers are input. JSON from a registry or token server that does not parse, or is not the
// object the protocol says, is UPSTREAM_INVALID (502): a refusal with a code and an audit line, never
// a TypeError that ends as 500.
import { fail } from '../errors.js';

/** Parse an upstream JSON object (not an array or scalar); UPSTREAM_INVALID naming `what` otherwise. */
export function parseUpstreamObject(bytes: Uint8Array, what: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch {
    throw fail('UPSTREAM_INVALID', `${what}: not JSON`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw fail('UPSTREAM_INVALID', `${what}: expected a JSON object`);
  return doc as Record<string, unknown>;
}
