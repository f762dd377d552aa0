// Read a response body into memory with a hard cap: notary's GetSized (Content-Length precheck, then a
// limited read) — the endless-data attack. Used for metadata and token responses only, never blobs.
import type { Readable } from 'node:stream';
import { fail } from '../errors.js';

export async function readBodyCapped(
  body: Readable & { destroy(err?: Error): unknown },
  maxBytes: number,
  what: string,
  contentLength?: string | string[] | undefined,
): Promise<Uint8Array> {
  const declared = Number(Array.isArray(contentLength) ? contentLength[0] : contentLength);
  // Destroying an undici body emits RequestAbortedError; with no listener that would crash the process.
  const abandon = () => {
    body.on('error', () => {});
    body.destroy();
  };
  if (Number.isFinite(declared) && declared > maxBytes) {
    abandon();
    throw fail('TOO_LARGE', `${what}: server announced ${declared} bytes, over the ${maxBytes}-byte limit`);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    total += (chunk as Buffer).length;
    if (total > maxBytes) {
      abandon();
      throw fail('TOO_LARGE', `${what}: more than the ${maxBytes}-byte limit`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, total);
}
