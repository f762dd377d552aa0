// HEAD|GET /v2/<name>/blobs/<digest>. With the blob cache (default): served from local disk when
// committed (file-sender.ts: reused buffers, the fastest file-to-socket path measured here), or from
// the growing file of the one fill in progress; a miss starts that fill (one
// upstream GET however many clients ask). Without it, or for what the cache does not take (Range or
// HEAD of a blob not held, a blob larger than the cache): streamed from the upstream with
// backpressure, Range passed through, redirects followed by the registry client. A full GET is
// hashed on the way and its last chunk held back until the digest matches (HoldBackVerifier): on a
// mismatch the client is left with a short body it must reject.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { BlobCache, NOT_CACHEABLE, type CachedBlob, type Fill, type FillReader } from '../../blobcache/blob-cache.js';
import { sendGrowingFile } from '../../blobcache/growing-file-sender.js';
import { sendFileRange } from '../../blobcache/file-sender.js';
import { HoldBackVerifier } from '../../blobcache/hold-back-verifier.js';
import { parseRange } from '../../blobcache/range.js';
import { fail } from '../../errors.js';
import type { UpstreamResponse } from '../../registry/registry-client.js';
import type { ServerDeps, UpstreamDeps } from '../deps.js';
import type { Route } from '../route.js';

type BlobRoute = Extract<Route, { kind: 'blob' }>;

const PASS_HEADERS = ['content-type', 'content-length', 'content-range', 'accept-ranges', 'last-modified'];
const READ_STEP = 1 << 20;

// 416 with `Content-Range: bytes */<size>` (RFC 9110 §15.5.17), as the registry answers it; the size when known.
function rangeNotSatisfiable(digest: string, size: number | string | undefined) {
  const headers = size !== undefined ? { 'content-range': `bytes */${size}` } : undefined;
  return Object.assign(fail('RANGE_INVALID', `the requested range of blob ${digest} cannot be satisfied`), headers ? { headers } : {});
}

function baseHeaders(digest: string): Record<string, string> {
  return { 'docker-content-digest': digest, etag: `"${digest}"`, 'docker-distribution-api-version': 'registry/2.0' };
}

export async function handleBlob(route: BlobRoute, req: IncomingMessage, res: ServerResponse, deps: ServerDeps): Promise<void> {
  const up = deps.upstreams.get(route.upstream.name)!;
  const range = typeof req.headers.range === 'string' ? req.headers.range : undefined;
  const method = req.method === 'HEAD' ? 'HEAD' : 'GET';
  if (deps.blobCache && (await serveCached(deps.blobCache, up, route, method, range, res, deps))) return;
  const abort = new AbortController();
  // A client that goes away must free the upstream connection too.
  res.once('close', () => {
    if (!res.writableFinished) abort.abort();
  });
  const upres = await openUpstream(up, route, method, range, abort.signal);
  await relay(upres, route, method, res, deps);
}

/** The upstream's answer for a blob, or the refusal it amounts to. */
async function openUpstream(up: UpstreamDeps, route: BlobRoute, method: 'GET' | 'HEAD', range: string | undefined, signal?: AbortSignal): Promise<UpstreamResponse> {
  const headers: Record<string, string> = range !== undefined ? { range } : {};
  const upres = await up.registry.send(`/v2/${route.repo}/blobs/${route.digest}`, { method, repo: route.repo, headers, signal, stream: true });
  if (upres.statusCode === 404) {
    await upres.body.dump().catch(() => {});
    throw fail('BLOB_UNKNOWN', `blob ${route.digest} is not in ${route.repo} on upstream ${up.config.name}`);
  }
  if (upres.statusCode !== 200 && upres.statusCode !== 206) {
    await upres.body.dump().catch(() => {});
    if (upres.statusCode === 416) {
      const size = /^bytes \*\/(\d{1,16})$/.exec(String(upres.headers['content-range'] ?? ''))?.[1];
      throw rangeNotSatisfiable(route.digest, size);
    }
    throw fail('UPSTREAM_UNAVAILABLE', `upstream ${up.config.name} answered ${upres.statusCode} for blob ${route.digest}`);
  }
  // A 206 nobody asked for is a part of the blob that the client would take for the whole, with our
  // Docker-Content-Digest on it; and it cannot be checked against the digest.
  if (upres.statusCode === 206 && range === undefined) {
    await upres.body.dump().catch(() => {});
    throw fail('UPSTREAM_INVALID', `upstream ${up.config.name} answered 206 to a blob request without Range for ${route.digest}`);
  }
  return upres;
}

function announcedLength(upres: UpstreamResponse): number | undefined {
  const len = Number(upres.headers['content-length']);
  return Number.isSafeInteger(len) && len >= 0 ? len : undefined;
}

/** Stream an upstream answer to the client (the path without the cache). */
async function relay(upres: UpstreamResponse, route: BlobRoute, method: 'GET' | 'HEAD', res: ServerResponse, deps: ServerDeps): Promise<void> {
  const out: Record<string, string | string[]> = baseHeaders(route.digest);
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
    if (upres.statusCode === 200 && deps.config.limits.verifyBlobDigests) await pipeline(upres.body, new HoldBackVerifier(route.digest, announcedLength(upres)), res);
    else await pipeline(upres.body, res);
    m?.bytes.inc(Number(upres.headers['content-length'] ?? 0) || 0);
  } finally {
    m?.streams.dec();
  }
}

/**
 * A repository's access to a blob held for the upstream is confirmed once with a HEAD (remembered
 * like distribution's repository links): registries scope blobs per repository, and the cache must
 * not serve one repository's layers to requesters of another the upstream would refuse.
 */
async function confirmAccess(cache: BlobCache, up: UpstreamDeps, route: BlobRoute, timeoutMs: number, fill?: Fill): Promise<void> {
  if (fill?.repos.has(route.repo)) return; // the fill's own GET was for this repository
  if (await cache.hasLink(up.config.name, route.repo, route.digest)) return;
  const upres = await openUpstream(up, route, 'HEAD', undefined, AbortSignal.timeout(timeoutMs));
  await upres.body.dump().catch(() => {});
  await cache.addLink(up.config.name, route.repo, route.digest);
}

/** Serve from the cache if it can; false when the request is for the upstream relay instead. */
async function serveCached(cache: BlobCache, up: UpstreamDeps, route: BlobRoute, method: 'GET' | 'HEAD', range: string | undefined, res: ServerResponse, deps: ServerDeps): Promise<boolean> {
  const key = BlobCache.key(up.config.name, route.digest);
  // Committed by another worker sharing the directory since this one indexed it: served from disk.
  // Looked up again below either way: this await lets another request start the fill meanwhile, and
  // the lookup-then-beginFill must stay synchronous (one fill per blob).
  if (cache.lookup(key).kind === 'miss') await cache.adopt(key);
  // A few rounds: every await may change what the cache holds (a fill commits, a bad file is dropped).
  for (let round = 0; round < 4; round++) {
    const l = cache.lookup(key);
    if (l.kind === 'miss') {
      if (method === 'HEAD' || range !== undefined) return false;
      const fill = cache.beginFill(key);
      // Joiners for the same repository need no confirmation: the fill's own GET is it (and if the
      // upstream refuses, they get the same refusal).
      fill.repos.add(route.repo);
      return fillAndServe(cache, fill, up, route, res, deps);
    }
    await confirmAccess(cache, up, route, deps.config.limits.upstreamTimeoutMs, l.kind === 'filling' ? l.fill : undefined);
    if (l.kind === 'filling') {
      if (range !== undefined) return false;
      try {
        await l.fill.ready;
      } catch (err) {
        if ((err as { code?: string }).code === NOT_CACHEABLE) return false;
        throw err;
      }
      // A fill that failed meanwhile, or relays and has dropped its first bytes: fetch for ourselves.
      const reader = method === 'GET' ? l.fill.attach() : undefined;
      if (method === 'GET' && !reader) {
        if (l.fill.committed) continue; // done meanwhile: a hit now
        return false;
      }
      deps.blobCacheMetrics?.hits.inc(); // joined a fill: no upstream request of its own
      await sendGrowing(l.fill, reader, route, method, res, deps);
      return true;
    }
    const blob = await cache.openCommitted(key);
    if (!blob) continue; // gone or wrong size on disk: dropped, look again (a miss now)
    if (await sendCommitted(blob, route, method, range, res, deps)) return true;
  }
  return false;
}

/** A miss: one upstream GET feeds the cache file; this client (and any joining) read it as it grows. */
async function fillAndServe(cache: BlobCache, fill: Fill, up: UpstreamDeps, route: BlobRoute, res: ServerResponse, deps: ServerDeps): Promise<boolean> {
  let upres: UpstreamResponse;
  try {
    // No client signal: the fill outlives the client that started it (others may be reading it);
    // a stalled upstream is cut by the registry client's body timeout.
    upres = await openUpstream(up, route, 'GET', undefined);
  } catch (err) {
    cache.abandonFill(fill, err as Error);
    throw err;
  }
  const size = announcedLength(upres);
  if (size === undefined || upres.statusCode !== 200) {
    cache.abandonFill(fill, Object.assign(new Error('no length'), { code: NOT_CACHEABLE }));
    await relay(upres, route, 'GET', res, deps);
    return true;
  }
  // The upstream served this blob to this repository: that is the access confirmation.
  // Attached before any byte lands: should the disk refuse the fill, this client's bytes are kept in
  // memory for it (the fill relays) instead of being lost.
  const reader = fill.attach()!;
  if (!(await cache.startFill(fill, size, upres.body, route.digest, () => cache.addLink(up.config.name, route.repo, route.digest)))) {
    reader.detach();
    await relay(upres, route, 'GET', res, deps);
    return true;
  }
  await sendGrowing(fill, reader, route, 'GET', res, deps);
  return true;
}

async function sendGrowing(fill: Fill, reader: FillReader | undefined, route: BlobRoute, method: 'GET' | 'HEAD', res: ServerResponse, deps: ServerDeps): Promise<void> {
  res.writeHead(200, { ...baseHeaders(route.digest), 'content-type': 'application/octet-stream', 'content-length': String(fill.size), 'accept-ranges': 'bytes' });
  if (method === 'HEAD' || !reader) {
    reader?.detach();
    return void res.end();
  }
  const m = deps.metrics;
  m?.streams.inc();
  try {
    if ((await sendGrowingFile(fill, reader, res, (n) => deps.blobCacheMetrics?.bytesFromCache.inc(n), deps.sendBudget)) === 'sent') m?.bytes.inc(fill.size);
  } finally {
    m?.streams.dec();
  }
}

/** Hash a whole committed file (before serving a range of a blob not yet verified since start). */
async function hashFile(blob: CachedBlob): Promise<string> {
  const h = createHash('sha256');
  for await (const c of blob.file.createReadStream({ start: 0, end: Math.max(0, blob.size - 1), highWaterMark: READ_STEP, autoClose: false })) h.update(c as Buffer);
  return `sha256:${h.digest('hex')}`;
}

/** Serve a committed blob; false when it turned out wrong on disk (dropped: the caller looks again). */
async function sendCommitted(blob: CachedBlob, route: BlobRoute, method: 'GET' | 'HEAD', range: string | undefined, res: ServerResponse, deps: ServerDeps): Promise<boolean> {
  try {
    const r = parseRange(range, blob.size);
    if (r.kind === 'unsatisfiable') throw rangeNotSatisfiable(route.digest, blob.size);
    const headers: Record<string, string> = { ...baseHeaders(route.digest), 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes' };
    if (method === 'HEAD') {
      res.writeHead(200, { ...headers, 'content-length': String(blob.size) });
      res.end();
      return true;
    }
    if (r.kind === 'part') {
      // A part cannot be checked on its own: a blob not yet verified since start is hashed whole first.
      if (blob.mustVerify) {
        if ((await hashFile(blob)) !== route.digest) {
          await blob.discard('hash mismatch');
          return false;
        }
        blob.markVerified();
      }
      res.writeHead(206, { ...headers, 'content-length': String(r.end - r.start + 1), 'content-range': `bytes ${r.start}-${r.end}/${blob.size}` });
      if ((await sendFileRange(blob.file, res, { start: r.start, end: r.end + 1, bufferSize: READ_STEP, budget: deps.sendBudget })) === 'sent') deps.blobCacheMetrics?.bytesFromCache.inc(r.end - r.start + 1);
      return true;
    }
    res.writeHead(200, { ...headers, 'content-length': String(blob.size) });
    const m = deps.metrics;
    m?.streams.inc();
    try {
      const verify = blob.mustVerify ? { digest: route.digest, onVerified: () => blob.markVerified() } : undefined;
      try {
        if ((await sendFileRange(blob.file, res, { start: 0, end: blob.size, bufferSize: READ_STEP, verify, budget: deps.sendBudget })) === 'client-gone') return true;
      } catch (err) {
        // Altered on disk: never served complete (the last chunk waits for the digest), and dropped.
        if ((err as { code?: string }).code === 'DIGEST_MISMATCH') await blob.discard('hash mismatch');
        throw err;
      }
      deps.blobCacheMetrics?.bytesFromCache.inc(blob.size);
      m?.bytes.inc(blob.size);
    } finally {
      m?.streams.dec();
    }
    return true;
  } finally {
    blob.release();
  }
}
