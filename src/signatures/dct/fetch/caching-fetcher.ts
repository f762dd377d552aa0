// Metadata through the shared store. Nothing read from the store is trusted: every byte is verified
// again by the trusted set, at the current time, exactly like bytes from the network.
//  - content-addressed names (<role>.<sha256>.json) are served from the store when present and only
//    when their bytes hash to the name: a copy that does not (poisoned by a hostile server or bundle
//    before this check existed, or corrupted on disk) is deleted and fetched again. Bytes that do not
//    hash to the name they were fetched for are never stored, so one bad answer cannot sit in the
//    shared store for every replica and block the genuine data for the retention period;
//  - timestamp.json fetched by any replica within the cache period is reused by the others, so a
//    fleet makes one notary request per period, not one per replica. The shared store is not a root of
//    trust (issue 26), so a copy stands in for notary only within bounds this replica checks itself:
//    only for a GUN whose root this replica has trusted on its own (`replica.knows`), only with the
//    fetch time a replica wrote beside it, not from the future and not older than the cache period,
//    and for at most one cache period of this replica's own clock from when it first saw those bytes
//    (a copy planted without a TTL cannot stop it from asking notary). When an update that used a
//    shared copy fails, the service retries once with notary (`retryFromSource`);
//  - when the notary server cannot be reached, the last timestamp/root seen is used instead
//    (stale-if-error), again only for a GUN this replica knows: it still has to verify under the
//    replica's own root and floors and be unexpired, so once it expires the tag is refused.
// Nothing an update fetched is written before the whole update verified (commit): a refused update or
// bundle import leaves the store exactly as it was.
import { createHash } from 'node:crypto';
import { isTrustgateError } from '../../../errors.js';
import type { KvStore } from '../../../store/kv.js';
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
  /**
   * This replica's own record: shared timestamps (fresh, stale-if-error) are used only for GUNs it
   * has trusted a root for itself. Absent: for every GUN (a store that is the replica's own).
   */
  replica?: { knows(gun: string): Promise<boolean> } | undefined;
  /** This replica's clock (ms), for the bounds on shared timestamps. Default Date.now. */
  now?: () => number;
  /**
   * The store is this replica's own (the file store, also when `workers` share its directory: their
   * rollback state is in it too). A first contact then means no one verified the GUN here, and the
   * prefetch does not first ask the store whether snapshot and targets are in it (measured: that read
   * held back the prefetch by a few ms of a cold tag). Default false (a shared store: asked).
   */
  ownStore?: boolean;
}

/** A shared fresh timestamp is `tgfresh1 <fetched at, ms>\n<timestamp.json>`; anything else is not used. */
const FRESH_HEADER = 'tgfresh1 ';
/** How far in the future another replica's fetch time may be (clock skew between replicas). */
const FRESH_SKEW_MS = 5_000;
/** Timestamps whose first sighting this replica remembers (bounded; the oldest are forgotten first). */
const SEEN_MAX = 10_000;

function freshEntry(bytes: Buffer, fetchedAt: number): Buffer {
  return Buffer.concat([Buffer.from(`${FRESH_HEADER}${fetchedAt}\n`), bytes]);
}

function parseFreshEntry(entry: Buffer): { fetchedAt: number; bytes: Buffer } | undefined {
  const nl = entry.indexOf(0x0a);
  if (nl < 0 || nl > 40 || !entry.subarray(0, FRESH_HEADER.length).equals(Buffer.from(FRESH_HEADER))) return undefined;
  const digits = entry.subarray(FRESH_HEADER.length, nl).toString('latin1');
  if (!/^\d{1,16}$/.test(digits)) return undefined;
  return { fetchedAt: Number(digits), bytes: entry.subarray(nl + 1) };
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
  /** GUNs whose current update used a timestamp from the shared store instead of the server. */
  private readonly fromShared = new Set<string>();
  /** GUNs whose next update asks the server, whatever the shared store holds. */
  private readonly bypass = new Set<string>();
  /** sha256 of a timestamp → when this replica first saw it in the store or last got it from the server. */
  private readonly seen = new Map<string, number>();
  private readonly now: () => number;

  constructor(
    private readonly inner: MetadataFetcher,
    private readonly kv: KvStore,
    private readonly opts: CachingFetcherOptions,
  ) {
    this.source = inner.source;
    this.now = opts.now ?? Date.now;
  }

  /**
   * The update of `gun` failed: if it used a shared timestamp, its next update asks the server instead
   * (true: worth retrying). A copy that fails verification costs one more request, not a refusal.
   */
  retryFromSource(gun: string): boolean {
    if (!this.fromShared.delete(gun)) return false;
    this.bypass.add(gun);
    return true;
  }

  private async mayUseShared(gun: string): Promise<boolean> {
    return !this.opts.replica || (await this.opts.replica.knows(gun));
  }

  private noteSeen(bytes: Uint8Array, at: number): void {
    const id = createHash('sha256').update(bytes).digest('hex');
    this.seen.delete(id);
    this.seen.set(id, at);
    for (const k of this.seen.keys()) {
      if (this.seen.size <= SEEN_MAX) break;
      this.seen.delete(k);
    }
  }

  /** The shared fresh timestamp, when every bound above holds; else undefined (ask the server). */
  private async freshCopy(gun: string, key: string, maxBytes: number): Promise<Buffer | undefined> {
    if (this.bypass.delete(gun) || !(await this.mayUseShared(gun))) return undefined;
    const entry = await this.kv.get(key);
    const parsed = entry && parseFreshEntry(entry);
    if (!parsed || parsed.bytes.length > maxBytes) return undefined;
    const now = this.now();
    const period = this.opts.freshSeconds * 1000;
    if (parsed.fetchedAt > now + FRESH_SKEW_MS || now - parsed.fetchedAt > period) return undefined;
    const id = createHash('sha256').update(parsed.bytes).digest('hex');
    const first = this.seen.get(id);
    if (first === undefined) this.noteSeen(parsed.bytes, now);
    else if (now - first > period) return undefined;
    this.fromShared.add(gun);
    return parsed.bytes;
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
    // A GUN another replica has verified already has its snapshot and targets in the shared store: only
    // the timestamp (which each replica takes from the server itself) is asked for ahead then.
    const known = this.opts.ownStore
      ? undefined
      : this.kv.get(`meta:${this.inner.source}:${gun}:timestamp:last`).then(
          (b) => b !== undefined,
          () => false,
        );
    const m = new Map<string, Promise<Uint8Array | null>>();
    for (const role of roles) {
      const maxBytes = role === 'timestamp' ? TIMESTAMP_PREFETCH_BYTES : PREFETCH_MAX_BYTES;
      const ask = () => this.inner.fetch({ gun, role, maxBytes });
      // Asked now, not in a `.then`: the caller validates root.json synchronously right after this
      // returns (X.509 and a signature, ~1.3 ms in the cold-tag trace), and a request queued behind a
      // microtask went out only after that.
      const answer = role === 'timestamp' || !known ? ask() : known.then((k) => (k ? null : ask()));
      m.set(role, answer.catch(() => null));
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
      // A prefetched candidate that is the file named (its hash) is as good as a stored copy, which is
      // checked the same way: the store is asked only without one (no store read on a first contact).
      const candidate = await this.takeCandidate(req.gun, req.role);
      if (candidate && candidate.length <= req.maxBytes && hashesTo(candidate, req.sha256)) {
        this.defer(req.gun, [key, Buffer.from(candidate), this.opts.retainSeconds ?? 30 * 86400]);
        return candidate;
      }
      const hit = await this.kv.get(key);
      if (hit) {
        if (hit.length <= req.maxBytes && hashesTo(hit, req.sha256)) {
          await this.kv.keep?.(key, hit);
          return hit;
        }
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
    // `:fresh-at` (fetch time + bytes), not the bare `:fresh` of earlier versions: in a rolling upgrade
    // each version reads only entries in its own format, and a planted bare `:fresh` is never read.
    const fresh = `${base}:fresh-at`;
    if (req.role === 'timestamp' && this.opts.freshSeconds > 0 && !req.revalidate) {
      const hit = await this.freshCopy(req.gun, fresh, req.maxBytes);
      if (hit) return hit;
    }
    let bytes: Uint8Array | null;
    try {
      // A prefetched timestamp is the server's current one, asked for moments ago; null (not found, or
      // the prefetch failed) is asked again.
      const candidate = req.role === 'timestamp' ? await this.takeCandidate(req.gun, 'timestamp') : undefined;
      bytes = candidate && candidate.length <= req.maxBytes ? candidate : await this.inner.fetch(req);
    } catch (err) {
      const unreachable = isTrustgateError(err) && (err.code === 'NOTARY_UNAVAILABLE' || err.code === 'TIMEOUT');
      if (!unreachable || !this.opts.staleIfError || !(await this.mayUseShared(req.gun))) throw err;
      const last = await this.kv.get(`${base}:last`);
      if (!last || last.length > req.maxBytes) throw err;
      this.stale.add(req.gun);
      this.fromShared.add(req.gun);
      return last;
    }
    if (bytes) {
      const b = Buffer.from(bytes);
      this.defer(req.gun, [`${base}:last`, b, this.opts.retainSeconds ?? 30 * 86400]);
      if (req.role === 'timestamp' && this.opts.freshSeconds > 0) {
        const now = this.now();
        this.noteSeen(b, now);
        this.defer(req.gun, [fresh, freshEntry(b, now), this.opts.freshSeconds]);
      }
    }
    return bytes;
  }

  private defer(gun: string, write: [string, Buffer, number]): void {
    const writes = this.pending.get(gun) ?? [];
    writes.push(write);
    this.pending.set(gun, writes);
  }

  /** The update of `gun` verified: keep what it fetched as the last known good copies. */
  async commit(gun: string, leave?: ReadonlyMap<string, unknown>): Promise<void> {
    // `leave`: keys another writer stores durably for this update (VerifiedRecords.filesOf), not copied here.
    const writes = (this.pending.get(gun) ?? []).filter(([key]) => !leave?.has(key));
    this.pending.delete(gun);
    this.fromShared.delete(gun);
    // Distinct keys, no order between them: written together (one after another they were a few ms of
    // every cold tag on the file store, each a durable write).
    // Copies (`copy`): hash-checked or re-verified on every read, so one lost in a power loss is only
    // fetched again; the rollback state and the verified records (with the files they name, `leave`)
    // stay durable writes.
    await Promise.all(writes.map(([key, value, ttl]) => this.kv.set(key, value, ttl, { copy: true })));
  }

  /** The update of `gun` failed: forget what it fetched. */
  discard(gun: string): void {
    this.pending.delete(gun);
  }
}

function hashesTo(bytes: Uint8Array, sha256Hex: string): boolean {
  return createHash('sha256').update(bytes).digest('hex') === sha256Hex.toLowerCase();
}
