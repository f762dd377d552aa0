// Tag → digest resolutions upstream, reused for cache.tagTtlSeconds. Notation and cosign sign digests,
// not tags, so serving a tag under them starts with asking the registry what the tag names now; before
// this every warm request asked again (and verified again). A resolution holds the bytes got by tag and
// their digest (computed, never the registry's header), so what is served is still what was proven.
// Concurrent misses make one upstream GET (single-flight). A miss against cached data may refresh once
// (refresh()): at most once a second per repository, so a flood of unsigned-tag requests cannot turn
// into a flood of upstream GETs. docs/signatures.md, "Warm answers and freshness".
import type { CachedManifest } from '../store/manifest-cache.js';
import { ExpiringLru, type Expiring } from '../store/expiring-lru.js';

export interface TagResolution {
  m: CachedManifest;
  digest: string;
}

/** How often a repository's tags may be asked again on a refusal (the freshness rule of issue 25). */
export const REFRESH_INTERVAL_MS = 1000;

export class TagResolutions {
  private readonly cache: ExpiringLru<TagResolution>;
  /** Repository → when it was last refreshed on a refusal (ms); bounded with the cache. */
  private readonly refreshed: ExpiringLru<true>;

  constructor(
    private readonly ttlMs: number,
    private readonly nowMs: () => number,
    max = 10_000,
    maxBytes = 64 * 1024 * 1024,
  ) {
    // Bounded in bytes too: a manifest may be up to limits.manifestBytes, and tags are the client's to name.
    this.cache = new ExpiringLru(max, { of: (r) => r.m.bytes.length + 256, max: maxBytes });
    this.refreshed = new ExpiringLru(max);
  }

  /** The unexpired resolution of `key` (`<upstream>/<repo>:<tag>`), without I/O. */
  now(key: string): Expiring<TagResolution> | undefined {
    return this.ttlMs > 0 ? this.cache.entry(key, this.nowMs()) : undefined;
  }

  /** The cached resolution, or the one `fetch` gets (one fetch for every concurrent caller). */
  resolve(key: string, fetch: () => Promise<TagResolution>): Promise<Expiring<TagResolution>> {
    return this.cache.getOrLoad(key, this.nowMs, async () => ({ value: await fetch(), until: this.nowMs() + this.ttlMs }));
  }

  /**
   * A refusal rests on `used`: ask the registry again when that resolution is older than a second and
   * the repository was not refreshed within the last second. Returns the new resolution when the tag
   * names another digest now, else undefined (nothing new to decide on).
   */
  async refresh(key: string, repoKey: string, used: Expiring<TagResolution>, fetch: () => Promise<TagResolution>): Promise<Expiring<TagResolution> | undefined> {
    const now = this.nowMs();
    if (now - used.at < REFRESH_INTERVAL_MS || this.refreshed.entry(repoKey, now)) return undefined;
    this.refreshed.set(repoKey, true, now + REFRESH_INTERVAL_MS, now);
    const again = await this.cache.load(key, this.nowMs, async () => ({ value: await fetch(), until: this.nowMs() + this.ttlMs }));
    return again.value.digest !== used.value.digest ? again : undefined;
  }

  /** Forget one tag (its manifest is gone upstream). */
  delete(key: string): void {
    this.cache.delete(key);
  }
}
