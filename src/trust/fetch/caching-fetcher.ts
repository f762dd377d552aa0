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
import type { RoleName } from '../model/metadata.js';

/** Size cap of a prefetched candidate: larger files are fetched by name with the limit their parent sets. */
const PREFETCH_MAX_BYTES = 1024 * 1024;
/** As DEFAULT_FETCH_LIMITS.timestampBytes. */
const TIMESTAMP_PREFETCH_BYTES = 128 * 1024;

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
  // First contact: GUN → role → the answer to a request by name made ahead of time (prefetch). Only a
  // candidate: used for a content-addressed request when it hashes to that name, else fetched again.
  private readonly candidates = new Map<string, Map<string, Promise<Uint8Array | null>>>();

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

  /**
   * Ask the server for `roles` of `gun` by name, in parallel, now. Each of those files is otherwise named
   * only by its parent's hash, so a first update would make one round trip after another. Nothing is
   * trusted or stored because it was prefetched: a candidate is used only where a request names its
   * exact sha256 (and within that request's size limit); errors are dropped and the file is fetched
   * again by name. Candidates are forgotten after a few seconds, used or not.
   */
  prefetch(gun: string, roles: readonly RoleName[]): void {
    if (this.opts.offline) return;
    const m = new Map<string, Promise<Uint8Array | null>>();
    for (const role of roles) {
      const maxBytes = role === 'timestamp' ? TIMESTAMP_PREFETCH_BYTES : PREFETCH_MAX_BYTES;
      m.set(role, this.inner.fetch({ gun, role, maxBytes }).catch(() => null));
    }
    this.candidates.set(gun, m);
    setTimeout(() => {
      if (this.candidates.get(gun) === m) this.candidates.delete(gun);
    }, 10_000).unref();
  }

  private takeCandidate(gun: string, role: string): Promise<Uint8Array | null> | undefined {
    const m = this.candidates.get(gun);
    const p = m?.get(role);
    if (p) m!.delete(role);
    return p;
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
      const candidate = await this.takeCandidate(req.gun, req.role);
      const bytes = candidate && candidate.length <= req.maxBytes && hashesTo(candidate, req.sha256) ? candidate : await this.inner.fetch(req);
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
      // A prefetched timestamp is the server's current one, asked for moments ago; null (not found, or
      // the prefetch failed) is asked again.
      const candidate = req.role === 'timestamp' ? await this.takeCandidate(req.gun, 'timestamp') : undefined;
      bytes = candidate && candidate.length <= req.maxBytes ? candidate : await this.inner.fetch(req);
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
