// HEAD|GET /v2/<name>/blobs/<digest>: streamed from the upstream with backpressure (stream.pipeline
// carries the client's pace to the upstream socket), Range passed through, redirects followed by the
// registry client. A full GET is hashed on the way through: on a mismatch the response is cut.
import { createHash, type Hash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fail } from '../../errors.js';
import type { ServerDeps } from '../deps.js';
import type { Route } from '../route.js';

type BlobRoute = Extract<Route, { kind: 'blob' }>;

/** Passes bytes through unchanged and fails at the end unless they hash to the digest. */
export class DigestVerifier extends Transform {
  private readonly hash: Hash = createHash('sha256');
  constructor(private readonly digest: string) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    const got = `sha256:${this.hash.digest('hex')}`;
    // Headers are already out; failing here destroys the response, which is the only honest signal.
    cb(got === this.digest ? null : fail('DIGEST_MISMATCH', `upstream blob hashes to ${got}, not ${this.digest}`));
  }
}

const PASS_HEADERS = ['content-type', 'content-length', 'content-range', 'accept-ranges', 'last-modified'];

export async function handleBlob(route: BlobRoute, req: IncomingMessage, res: ServerResponse, deps: ServerDeps): Promise<void> {
  const up = deps.upstreams.get(route.upstream.name)!;
  const abort = new AbortController();
  // A client that goes away must free the upstream connection too.
  res.once('close', () => {
    if (!res.writableFinished) abort.abort();
  });
  const headers: Record<string, string> = {};
  if (typeof req.headers.range === 'string') headers.range = req.headers.range;
  const method = req.method === 'HEAD' ? 'HEAD' : 'GET';
  const upres = await up.registry.send(`/v2/${route.repo}/blobs/${route.digest}`, { method, repo: route.repo, headers, signal: abort.signal, stream: true });
  if (upres.statusCode === 404) {
    await upres.body.dump();
    throw fail('BLOB_UNKNOWN', `blob ${route.digest} is not in ${route.repo} on upstream ${up.config.name}`);
  }
  if (upres.statusCode !== 200 && upres.statusCode !== 206) {
    await upres.body.dump().catch(() => {});
    if (upres.statusCode === 416) throw fail('BLOB_UNKNOWN', 'requested range not satisfiable');
    throw fail('UPSTREAM_UNAVAILABLE', `upstream ${up.config.name} answered ${upres.statusCode} for blob ${route.digest}`);
  }
  const out: Record<string, string | string[]> = {
    'docker-content-digest': route.digest,
    etag: `"${route.digest}"`,
    'docker-distribution-api-version': 'registry/2.0',
  };
  for (const h of PASS_HEADERS) {
    const v = upres.headers[h];
    if (v !== undefined) out[h] = v;
  }
  res.writeHead(upres.statusCode, out);
  if (method === 'HEAD') {
    await upres.body.dump().catch(() => {});
    res.end();
    return;
  }
  const m = deps.metrics;
  m?.streams.inc();
  try {
    // A range cannot be checked against the whole blob's digest.
    if (upres.statusCode === 200 && deps.config.limits.verifyBlobDigests) await pipeline(upres.body, new DigestVerifier(route.digest), res);
    else await pipeline(upres.body, res);
    m?.bytes.inc(Number(upres.headers['content-length'] ?? 0) || 0);
  } finally {
    m?.streams.dec();
  }
}
