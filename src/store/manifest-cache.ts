// Verified manifests by (upstream, repository, digest), in memory, bounded in bytes, with
// single-flight loading so concurrent misses make one upstream request. Keyed per repository:
// registries scope content per repository, so a digest known in one must not leak into another.
export interface CachedManifest {
  bytes: Buffer;
  mediaType: string;
}

export class ManifestCache {
  private readonly entries = new Map<string, CachedManifest>();
  private readonly inflight = new Map<string, Promise<CachedManifest>>();
  private bytes = 0;

  constructor(private readonly maxBytes = 64 * 1024 * 1024) {}

  get(key: string): CachedManifest | undefined {
    const e = this.entries.get(key);
    if (e) {
      this.entries.delete(key);
      this.entries.set(key, e);
    }
    return e;
  }

  /** The cached value, or the one `load` produces (shared by concurrent callers); failures are not cached. */
  async getOrLoad(key: string, load: () => Promise<CachedManifest>): Promise<CachedManifest> {
    const hit = this.get(key);
    if (hit) return hit;
    let p = this.inflight.get(key);
    if (!p) {
      p = load()
        .then((v) => {
          this.set(key, v);
          return v;
        })
        .finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  set(key: string, v: CachedManifest): void {
    if (v.bytes.length > this.maxBytes) return;
    const old = this.entries.get(key);
    if (old) {
      this.bytes -= old.bytes.length;
      this.entries.delete(key);
    }
    this.entries.set(key, v);
    this.bytes += v.bytes.length;
    for (const [k, e] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(k);
      this.bytes -= e.bytes.length;
    }
  }
}
