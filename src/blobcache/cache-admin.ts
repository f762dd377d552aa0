// What `trustgate cache status|prune` does to a cache directory, without a running server: the same
// layout BlobCache keeps (blob-cache.ts). Prune removes least recently used blobs (oldest mtime:
// hits touch it) until the cache fits; a running trustgate notices removed files on its next open
// (size checked on every open) and fetches them again.
import { readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { pruneLinks, scanBlobs } from './blob-cache.js';

export interface CacheStatus {
  path: string;
  maxBytes: number;
  blobs: number;
  bytes: number;
  /** Fills in progress (or left by a crash: discarded at the next start). */
  partials: number;
  upstreams: Record<string, { blobs: number; bytes: number }>;
}

export async function cacheStatus(path: string, maxBytes: number): Promise<CacheStatus> {
  const found = await scanBlobs(path);
  const upstreams: CacheStatus['upstreams'] = {};
  for (const f of found) {
    const u = (upstreams[f.upstream] ??= { blobs: 0, bytes: 0 });
    u.blobs++;
    u.bytes += f.size;
  }
  let partials = 0;
  for (const d of await readdir(join(path, 'tmp')).catch(() => [] as string[])) {
    partials += await readdir(join(path, 'tmp', d)).then((n) => n.length, () => 1);
  }
  return { path, maxBytes, blobs: found.length, bytes: found.reduce((a, f) => a + f.size, 0), partials, upstreams };
}

export interface PruneResult {
  removed: number;
  freedBytes: number;
  bytes: number;
  /** Repository links removed: those of the removed blobs, and any left by blobs gone before. */
  links: number;
}

/**
 * Remove least recently used blobs until at most `targetBytes` are held (0 empties the cache).
 * `onProgress(n, of, result so far)` before the n-th (from 0) of `of` blobs is looked at (the CLI's progress lines).
 */
export async function pruneCache(path: string, targetBytes: number, onProgress?: (looked: number, of: number, r: PruneResult) => void): Promise<PruneResult> {
  const found = await scanBlobs(path);
  found.sort((a, b) => a.mtimeMs - b.mtimeMs);
  const held = new Set(found.map((f) => f.key));
  const gone = new Set<string>();
  let bytes = found.reduce((a, f) => a + f.size, 0);
  let removed = 0;
  let freedBytes = 0;
  let looked = 0;
  for (const f of found) {
    if (bytes <= targetBytes) break;
    onProgress?.(looked++, found.length, { removed, freedBytes, bytes, links: 0 });
    // Touched since the scan: in use, keep it.
    const st = await stat(f.path).catch(() => undefined);
    if (st && st.mtimeMs !== f.mtimeMs) continue;
    await unlink(f.path).catch(() => undefined);
    bytes -= f.size;
    freedBytes += f.size;
    removed++;
    gone.add(f.key);
  }
  const links = await pruneLinks(path, (key) => held.has(key) && !gone.has(key));
  return { removed, freedBytes, bytes, links };
}
