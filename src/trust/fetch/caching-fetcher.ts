// Metadata through the shared store. Nothing read from the store is trusted: every byte is verified
// again by the trusted set, at the current time, exactly like bytes from the network.
//  - content-addressed names (<role>.<sha256>.json) are served from the store when present: the
//    parent's hash decides whether they are right, so any copy will do, from any replica;
//  - timestamp.json fetched by any replica within the cache period is reused by the others, so a
//    fleet makes one notary request per period, not one per replica;
//  - when the notary server cannot be reached, the last timestamp/root seen is used instead
//    (stale-if-error): it still has to verify and be unexpired, so once it expires the tag is refused.
import { isTrustgateError } from '../../errors.js';
import type { KvStore } from '../../store/kv.js';
import type { MetadataFetcher, MetadataRequest } from '../client.js';

export interface CachingFetcherOptions {
  /** Seconds a fetched timestamp is shared with other replicas before the server is asked again. */
  freshSeconds: number;
  /** Use the last known timestamp/root when the server is unreachable. */
  staleIfError: boolean;
  /** How long content-addressed metadata is kept (0: until evicted). */
  retainSeconds?: number;
  /**
   * Air-gapped upstream: there is no server, the last imported timestamp and root are the current
   * ones (still verified, so they serve until they expire and are refused after).
   */
  offline?: boolean;
}

export class CachingFetcher implements MetadataFetcher {
  readonly source: string;
  private readonly stale = new Set<string>();
  // Un-addressed files (timestamp.json, root.json) are kept as "last known" only once the update that
  // fetched them has verified: a hostile answer must not displace the good copy stale-if-error needs.
  private readonly pending = new Map<string, Array<[string, Buffer, number]>>();

  constructor(
    private readonly inner: MetadataFetcher,
    private readonly kv: KvStore,
    private readonly opts: CachingFetcherOptions,
  ) {
    this.source = inner.source;
  }

  /** True (once) when the last update of `gun` used stale data because the server was unreachable. */
  takeStale(gun: string): boolean {
    return this.stale.delete(gun);
  }

  async fetch(req: MetadataRequest): Promise<Uint8Array | null> {
    const base = `meta:${this.inner.source}:${req.gun}:${req.role}`;
    if (req.sha256 !== undefined) {
      const key = `${base}:${req.sha256}`;
      const hit = await this.kv.get(key);
      if (hit && hit.length <= req.maxBytes) return hit;
      const bytes = await this.inner.fetch(req);
      if (bytes) await this.kv.set(key, Buffer.from(bytes), this.opts.retainSeconds ?? 30 * 86400);
      return bytes;
    }
    if (req.version !== undefined) return this.inner.fetch(req);

    if (this.opts.offline) {
      const last = await this.kv.get(`${base}:last`);
      return last && last.length <= req.maxBytes ? last : null;
    }
    const fresh = `${base}:fresh`;
    if (req.role === 'timestamp' && this.opts.freshSeconds > 0) {
      const hit = await this.kv.get(fresh);
      if (hit && hit.length <= req.maxBytes) return hit;
    }
    let bytes: Uint8Array | null;
    try {
      bytes = await this.inner.fetch(req);
    } catch (err) {
      const unreachable = isTrustgateError(err) && (err.code === 'NOTARY_UNAVAILABLE' || err.code === 'TIMEOUT');
      if (!unreachable || !this.opts.staleIfError) throw err;
      const last = await this.kv.get(`${base}:last`);
      if (!last || last.length > req.maxBytes) throw err;
      this.stale.add(req.gun);
      return last;
    }
    if (bytes) {
      const b = Buffer.from(bytes);
      const writes = this.pending.get(req.gun) ?? [];
      writes.push([`${base}:last`, b, this.opts.retainSeconds ?? 30 * 86400]);
      if (req.role === 'timestamp' && this.opts.freshSeconds > 0) writes.push([fresh, b, this.opts.freshSeconds]);
      this.pending.set(req.gun, writes);
    }
    return bytes;
  }

  /** The update of `gun` verified: keep what it fetched as the last known good copies. */
  async commit(gun: string): Promise<void> {
    const writes = this.pending.get(gun) ?? [];
    this.pending.delete(gun);
    for (const [key, value, ttl] of writes) await this.kv.set(key, value, ttl);
  }

  /** The update of `gun` failed: forget what it fetched. */
  discard(gun: string): void {
    this.pending.delete(gun);
  }
}
