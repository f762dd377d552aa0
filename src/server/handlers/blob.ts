// HEAD|GET /v2/<name>/blobs/<digest>: streamed from the upstream with backpressure (stream.pipeline
// carries the client's pace to the upstream socket), Range passed through, redirects followed by the
// registry client. A full GET is hashed on the way through and its last chunk held back until the
// digest matches (HoldBackVerifier): on a mismatch the client is left with a short body.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { HoldBackVerifier } from '../../blobcache/hold-back-verifier.js';
import { fail } from '../../errors.js';
import type { ServerDeps } from '../deps.js';
import type { Route } from '../route.js';

type BlobRoute = Extract<Route, { kind: 'blob' }>;

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
  // A 206 nobody asked for is a part of the blob that the client would take for the whole, with our
  // Docker-Content-Digest on it; and it cannot be checked against the digest.
  if (upres.statusCode === 206 && headers.range === undefined) {
    await upres.body.dump().catch(() => {});
    throw fail('UPSTREAM_INVALID', `upstream ${up.config.name} answered 206 to a blob request without Range for ${route.digest}`);
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
    if (upres.statusCode === 200 && deps.config.limits.verifyBlobDigests) {
      const len = Number(upres.headers['content-length']);
      await pipeline(upres.body, new HoldBackVerifier(route.digest, Number.isSafeInteger(len) && len >= 0 ? len : undefined), res);
    }
    else await pipeline(upres.body, res);
    m?.bytes.inc(Number(upres.headers['content-length'] ?? 0) || 0);
  } finally {
    m?.streams.dec();
  }
}
