// Metadata through the shared store. Nothing read from the store is trusted: every byte is verified
// again by the trusted set, at the current time, exactly like bytes from the network.
//  - content-addressed names (<role>.<sha256>.json) are served from the store when present and only
//    when their bytes hash to the name: a copy that does not (poisoned by a hostile server or bundle
//    before this check existed, or corrupted on disk) is deleted and fetched again. Bytes that do not
//    hash to the name they were fetched for are never stored, so one bad answer cannot sit in the
//    shared store for every replica and block the genuine data for the retention period;
//  - timestamp.json fetched by any replica within the cache period is reused by the others, so a
//    fleet makes one notary request per period, not one per replica;
//  - when the notary server cannot be reached, the last timestamp/root seen is used instead
//    (stale-if-error): it still has to verify and be unexpired, so once it expires the tag is refused.
// Nothing an update fetched is written before the whole update verified (commit): a refused update or
// bundle import leaves the store exactly as it was.
import { createHash } from 'node:crypto';
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
  // What an update fetched is kept only once that update has verified: a hostile timestamp.json must not
  // displace the good copy stale-if-error needs, and a refused update must not change the store at all.
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
      if (hit) {
        if (hit.length <= req.maxBytes && hashesTo(hit, req.sha256)) return hit;
        await this.kv.delete(key);
      }
      const bytes = await this.inner.fetch(req);
      // Stored only if it is the file it is named after; whether the update then verifies decides commit.
      if (bytes && hashesTo(bytes, req.sha256)) this.defer(req.gun, [key, Buffer.from(bytes), this.opts.retainSeconds ?? 30 * 86400]);
      return bytes;
    }
    if (req.version !== undefined) return this.inner.fetch(req);

    if (this.opts.offline) {
      const last = await this.kv.get(`${base}:last`);
      return last && last.length <= req.maxBytes ? last : null;
    }
    const fresh = `${base}:fresh`;
    if (req.role === 'timestamp' && this.opts.freshSeconds > 0 && !req.revalidate) {
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
      this.defer(req.gun, [`${base}:last`, b, this.opts.retainSeconds ?? 30 * 86400]);
      if (req.role === 'timestamp' && this.opts.freshSeconds > 0) this.defer(req.gun, [fresh, b, this.opts.freshSeconds]);
    }
    return bytes;
  }

  private defer(gun: string, write: [string, Buffer, number]): void {
    const writes = this.pending.get(gun) ?? [];
    writes.push(write);
    this.pending.set(gun, writes);
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

function hashesTo(bytes: Uint8Array, sha256Hex: string): boolean {
  return createHash('sha256').update(bytes).digest('hex') === sha256Hex.toLowerCase();
}
