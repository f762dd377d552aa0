// Blob cache metrics, registered on the server's own prom-client registry (observe/metrics.ts).
import { Counter, Gauge, type Registry } from 'prom-client';

export class BlobCacheMetrics {
  readonly hits: Counter;
  readonly misses: Counter;
  readonly bytesFromCache: Counter;
  readonly bytesFromUpstream: Counter;
  readonly evictions: Counter;
  readonly bytesHeld: Gauge;
  readonly blobs: Gauge;
  readonly freeBytes: Gauge;
  readonly filling: Gauge;
  readonly relayed: Counter;
  /** Set by the cache: re-measures free space (and filling) when the metrics are scraped. */
  refresh: (() => Promise<void>) | undefined;

  constructor(registry: Registry) {
    const registers = [registry];
    this.hits = new Counter({ name: 'trustgate_blobcache_hits_total', help: 'Blob requests served from the disk cache (committed, or joining a fill in progress)', registers });
    this.misses = new Counter({ name: 'trustgate_blobcache_misses_total', help: 'Blob fills started: one upstream GET each', registers });
    this.bytesFromCache = new Counter({ name: 'trustgate_blobcache_bytes_from_cache_total', help: 'Blob bytes sent to clients from the disk cache', registers });
    this.bytesFromUpstream = new Counter({ name: 'trustgate_blobcache_bytes_from_upstream_total', help: 'Blob bytes fetched from upstreams into the disk cache', registers });
    this.evictions = new Counter({ name: 'trustgate_blobcache_evictions_total', help: 'Blobs evicted (least recently used) to stay under blobCache.maxBytes', registers });
    this.bytesHeld = new Gauge({ name: 'trustgate_blobcache_bytes', help: 'Bytes of committed blobs held on disk', registers });
    this.blobs = new Gauge({ name: 'trustgate_blobcache_blobs', help: 'Committed blobs held on disk', registers });
    // Names fixed: alert rules use them (docs/failure-modes.md).
    // Both gauges wait for the same re-measure (a registry collects its metrics in parallel).
    let inFlight: Promise<void> | undefined;
    const refresh = () => (inFlight ??= (this.refresh?.() ?? Promise.resolve()).catch(() => undefined).finally(() => (inFlight = undefined)));
    this.freeBytes = new Gauge({ name: 'trustgate_blobcache_free_bytes', help: 'Free bytes on the blob cache filesystem (statfs at scrape)', registers, collect: refresh });
    this.filling = new Gauge({ name: 'trustgate_blobcache_filling', help: '1 while the blob cache fills; 0 while free space is below blobCache.minFreeBytes (misses are relayed uncached)', registers, collect: refresh });
    this.relayed = new Counter({ name: 'trustgate_blobcache_relayed_total', help: 'Fills the disk refused mid-way (ENOSPC, EIO, EDQUOT, EROFS): dropped, the clients served from the upstream stream', registers });
  }
}
