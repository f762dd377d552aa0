// What the proxy asks of trust: verified tag → target, and the list of signed tags. Keeps each GUN's
// verified set in memory until the timestamp's cache period ends (never past any role's expiry), and
// coalesces concurrent misses for one GUN into one update (single-flight).
import { fail, isTrustgateError } from '../../errors.js';
import type { KvStore } from '../../store/kv.js';
import type { Clock, TrustClient } from './client.js';
import type { CachingFetcher } from './fetch/caching-fetcher.js';
import { resolveTag, type SignedTarget } from './resolve-tag.js';
import type { TrustedSet } from './trusted-set.js';
import { isValidTag } from './model/names.js';
import { earliestRootCertExpiry } from './verify/root.js';
import type { VerifiedRecords } from './state/verified-records.js';

export interface TrustServiceOptions {
  client: TrustClient;
  clock: Clock;
  /** Seconds a verified set is used before the timestamp is re-checked. 0 = every request. */
  cacheSeconds: number;
  /** Bytes of verified metadata kept in memory (sum of the raw files of each set; default 128 MiB). */
  maxBytes?: number;
  /** Shared store: cross-replica update locks. */
  kv?: KvStore | undefined;
  /** Reports whether an update had to use stale metadata (notary unreachable). */
  fetcher?: (Pick<CachingFetcher, 'takeStale' | 'commit' | 'discard'> & Partial<Pick<CachingFetcher, 'retryFromSource'>>) | undefined;
  /** Seconds a "no trust data" answer is remembered (default 30). */
  negativeSeconds?: number;
  /** How many "no trust data" answers are remembered at most (default 10,000; least recent go first). */
  negativeEntries?: number;
  /** How long a replica waits for another replica's update of the same GUN (default 10 s). */
  lockWaitMs?: number;
  /** When each GUN was last verified: what frozen trust resolves from (written after every live update). */
  records?: VerifiedRecords | undefined;
  /** notary.frozenAt: live sets are not used past it, so the first update after the freeze is a frozen one. */
  frozenAt?: Date | undefined;
  /**
   * When the data of `gun` was last fetched and verified live (its verified record): the age of a set
   * served stale-if-error, which its update did not fetch itself. Best effort.
   */
  verifiedAt?: ((gun: string) => Promise<Date | undefined>) | undefined;
}

/** A resolved tag, and how: from stale-if-error data, or from trust frozen at an instant (ISO). */
export type ResolvedTarget = SignedTarget & { stale: boolean; frozen?: string | undefined };

/** What a DCT proof is called in X-Trustgate-Verified-By and the audit line's satisfiedBy. */
export function dctLabel(t: { role: string; frozen?: string | undefined }): string {
  return t.frozen ? `dct ${t.role} frozen ${t.frozen}` : `dct ${t.role}`;
}

interface Entry {
  set: TrustedSet;
  /** Raw size of the set's files: what the memory bound counts (parsed forms are a small multiple). */
  bytes: number;
  until: number;
  stale: boolean;
  /** When its data was fetched from the notary server and verified (ms): what trustgate_trust_data_age_seconds reports. */
  fetchedAt: number;
  /** Earliest expiry of what signers hold (root and its certificates, targets, delegations), ms. */
  signerExpiry: number;
  /** Tags already resolved against this set (it is immutable): the warm path is a map lookup. */
  resolved?: Map<string, ResolvedTarget>;
  /** Signed digest → the first signed tag that maps to it (digestPulls: signed), built once per set. */
  byDigest?: Map<string, SignedTarget>;
}

function isUnreachable(err: unknown): boolean {
  return isTrustgateError(err) && (err.code === 'NOTARY_UNAVAILABLE' || err.code === 'TIMEOUT');
}

function setBytes(set: TrustedSet): number {
  let n = set.root.env.raw.length + (set.timestamp?.env.raw.length ?? 0) + (set.snapshot?.env.raw.length ?? 0);
  for (const t of set.targets.values()) n += t.env.raw.length;
  return n;
}

/**
 * Earliest expiry of any role (or root certificate) in the set: cached data is never used past it. A
 * frozen set's timestamp and snapshot were checked at the freeze (TrustedSet.frozenAt) and do not count.
 */
export function earliestExpiry(set: TrustedSet): number {
  let t = Math.min(set.root.root.expires.getTime(), earliestRootCertExpiry(set.root.root)?.getTime() ?? Infinity);
  if (set.timestamp && !set.frozenAt) t = Math.min(t, set.timestamp.ts.expires.getTime());
  if (set.snapshot && !set.frozenAt) t = Math.min(t, set.snapshot.snap.expires.getTime());
  for (const r of set.targets.values()) t = Math.min(t, r.targets.expires.getTime());
  return t;
}

/** earliestExpiry without timestamp and snapshot, which the notary server re-signs by itself. */
export function earliestSignerExpiry(set: TrustedSet): number {
  let t = Math.min(set.root.root.expires.getTime(), earliestRootCertExpiry(set.root.root)?.getTime() ?? Infinity);
  for (const r of set.targets.values()) t = Math.min(t, r.targets.expires.getTime());
  return t;
}

/** An update's verified set as soon as it verified, for resolve()'s `early` hints (told synchronously). */
interface EarlySet {
  done?: boolean;
  set?: TrustedSet;
  waiting: Array<(set: TrustedSet) => void>;
}

export class TrustService {
  private readonly entries = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<Entry>>();
  // GUN → the set of its update in flight, as soon as every role verified (its floors still being
  // saved): what resolve()'s `early` hint is given. Never an answer: resolve() still waits for the entry.
  private readonly verifiedEarly = new Map<string, EarlySet>();

  private readonly maxBytes: number;
  private bytes = 0;
  // "No trust data" answers, GUN → until (ms). In process and bounded in count: every unknown
  // repository name a client makes up would otherwise be one more entry in the shared store.
  private readonly negatives = new Map<string, { at: number; until: number; code: 'TRUST_DATA_MISSING' | 'FROZEN_NO_STATE' }>();
  // GUN → when it was last revalidated because a tag was missing from cached data: at most once a second
  // per repository, so a flood of unsigned-tag requests cannot multiply requests to the notary server.
  private readonly revalidated = new Map<string, number>();

  constructor(private readonly opts: TrustServiceOptions) {
    this.maxBytes = opts.maxBytes ?? 128 * 1024 * 1024;
  }

  async verifiedSet(gun: string): Promise<TrustedSet> {
    return (await this.entry(gun)).set;
  }

  /** `revalidate`: update now even within the cache period, asking the server past the shared timestamp. */
  private async entry(gun: string, revalidate = false): Promise<Entry> {
    const now = this.opts.clock.now().getTime();
    const e = this.entries.get(gun);
    if (e && e.until > now && !revalidate) return e;
    let p = this.inflight.get(gun);
    if (!p) {
      const early: EarlySet = { waiting: [] };
      this.verifiedEarly.set(gun, early);
      const verified = (set: TrustedSet | undefined) => {
        if (early.done) return;
        early.done = true;
        early.set = set;
        // Called synchronously, not from a promise's `then`: the hint's work (the manifest's store read
        // and request) then starts before the store writes the update begins right after (cold-tag trace).
        for (const w of early.waiting.splice(0)) if (set) w(set);
      };
      p = this.update(gun, revalidate, verified).then(
        (entry) => {
          this.remember(gun, entry);
          return entry;
        },
        (err) => {
          // A failed update must not leave a stale "verified" set behind. A failed revalidation of a set
          // still within its cache period leaves it: that set is as good as it was a moment ago.
          if (!revalidate) this.forget(gun);
          throw err;
        },
      );
      p = p.finally(() => {
        this.inflight.delete(gun);
        this.verifiedEarly.delete(gun);
        verified(undefined);
      });
      this.inflight.set(gun, p);
    }
    return p;
  }

  /**
   * One update, coalesced across replicas: the lock holder fetches, the others wait for it and then
   * find the fresh timestamp and content-addressed metadata in the shared store.
   */
  private async update(gun: string, revalidate = false, onVerified?: (set: TrustedSet) => void): Promise<Entry> {
    const kv = this.opts.kv;
    const negUntil = this.negatives.get(gun);
    if (!revalidate && negUntil !== undefined && negUntil.until > this.opts.clock.now().getTime()) {
      throw fail(negUntil.code, `no trust data for ${gun}${negUntil.code === 'FROZEN_NO_STATE' ? ' verified before DCT trust was frozen' : ''} (remembered for ${this.opts.negativeSeconds ?? 30} s)`);
    }
    this.negatives.delete(gun);
    let release: (() => Promise<void>) | undefined;
    if (kv) {
      const deadline = Date.now() + (this.opts.lockWaitMs ?? 10_000);
      while (!(release = await kv.tryLock(`lock:update:${gun}`, 15_000)) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 25));
      }
    }
    // Set once an attempt's roles have all verified: whether it used stale-if-error data, and its store
    // writes (metadata copies, the verified record), which then run beside the floor save.
    let stale = false;
    let writes: Promise<void> | undefined;
    try {
      const attempt = async () => {
        writes = undefined;
        const verified = (set: TrustedSet) => {
          stale = this.opts.fetcher?.takeStale(gun) ?? false;
          // The early manifest request first: starting the store writes runs a dozen kv.set preludes
          // (names, temp files, opens) that would otherwise go before it (cold-tag trace).
          try {
            onVerified?.(set);
          } finally {
            writes = this.stored(gun, set, stale);
          }
        };
        try {
          const set = await this.opts.client.update(gun, { revalidate, onVerified: verified });
          await writes;
          return set;
        } catch (err) {
          await writes;
          this.opts.fetcher?.discard(gun);
          throw err;
        }
      };
      let set;
      try {
        set = await attempt();
      } catch (err) {
        // The shared store is not a root of trust: when an update that used a timestamp another
        // replica stored fails (forged, replayed, lowered floors), it is tried once more from notary.
        if (isUnreachable(err) || !this.opts.fetcher?.retryFromSource?.(gun)) throw err;
        set = await attempt();
      }
      let until = stale
        ? set.now.getTime() + 5_000 // try the server again soon
        : Math.min(set.now.getTime() + this.opts.cacheSeconds * 1000, earliestExpiry(set));
      // A live set is not used past the freeze: the next answer comes from the frozen state.
      if (!set.frozenAt && this.opts.frozenAt) until = Math.min(until, this.opts.frozenAt.getTime());
      // A set is as old as the update that read it from its source (the notary server; for frozen trust
      // and bundles, the store, read again every cache period: their age is in trustgate_trust_frozen_at_seconds
      // and trustgate_bundle_expiry_seconds). Stale-if-error data is as old as its last live verification.
      const fetchedAt = !stale ? set.now.getTime() : ((await this.opts.verifiedAt?.(gun).catch(() => undefined))?.getTime() ?? this.entries.get(gun)?.fetchedAt ?? set.now.getTime());
      return { set, bytes: setBytes(set), until: Math.min(until, earliestExpiry(set)), stale, fetchedAt, signerExpiry: earliestSignerExpiry(set) };
    } catch (err) {
      if (isTrustgateError(err) && (err.code === 'TRUST_DATA_MISSING' || err.code === 'FROZEN_NO_STATE')) this.rememberMissing(gun, err.code);
      throw err;
    } finally {
      await release?.();
    }
  }

  /**
   * The set's roles all verified: keep what the update fetched as the last known good copies and write
   * the verified record, beside the floor save rather than after it (measured: these writes, one after
   * another, were most of a cold tag; docs/benchmarks.md "Cold tag (measured)"). The answer still waits
   * for them, so once a tag is served the store holds what it was decided on. Nothing unverified is
   * written: only files of a set that verified. Best effort, as before: the layered store carries on
   * without its L2, and a record a store cannot take now keeps the previous one (still a set verified
   * before any freeze) until the next update writes it again.
   */
  private async stored(gun: string, set: TrustedSet, stale: boolean): Promise<void> {
    const pin = this.opts.frozenAt !== undefined;
    const records = !set.frozenAt && !stale ? this.opts.records : undefined;
    // The files the record names are written once, by the record (durable; pinned with a freeze).
    const files = records?.filesOf(gun, set, pin);
    await Promise.all([this.opts.fetcher?.commit(gun, files).catch(() => undefined), records?.write(gun, set, set.now, pin, files).catch(() => undefined)]);
  }

  private rememberMissing(gun: string, code: 'TRUST_DATA_MISSING' | 'FROZEN_NO_STATE'): void {
    this.negatives.delete(gun);
    const now = this.opts.clock.now().getTime();
    this.negatives.set(gun, { at: now, until: now + (this.opts.negativeSeconds ?? 30) * 1000, code });
    const max = this.opts.negativeEntries ?? 10_000;
    for (const g of this.negatives.keys()) {
      if (this.negatives.size <= max) break;
      this.negatives.delete(g);
    }
  }

  private forget(gun: string): void {
    const old = this.entries.get(gun);
    if (!old) return;
    this.entries.delete(gun);
    this.bytes -= old.bytes;
  }

  /** Least recently updated sets go first once the byte bound is reached. */
  private remember(gun: string, entry: Entry): void {
    this.forget(gun);
    this.entries.set(gun, entry);
    this.bytes += entry.bytes;
    for (const g of this.entries.keys()) {
      if (this.bytes <= this.maxBytes || g === gun) break;
      this.forget(g);
    }
  }

  /**
   * The sets in use at `nowMs` (within their cache period, so a repository nobody pulls any more drops
   * out): when the oldest one's data was fetched, and the earliest expiry signers must renew. Undefined
   * when none is in use. Bounded work: the sets in memory are bounded by maxBytes.
   */
  trustDataSummary(nowMs: number): { oldestFetchedAt: number; earliestExpiry: number } | undefined {
    let oldestFetchedAt = Infinity;
    let earliestExpiry = Infinity;
    for (const e of this.entries.values()) {
      if (e.until <= nowMs) continue;
      oldestFetchedAt = Math.min(oldestFetchedAt, e.fetchedAt);
      earliestExpiry = Math.min(earliestExpiry, e.signerExpiry);
    }
    return oldestFetchedAt === Infinity ? undefined : { oldestFetchedAt, earliestExpiry };
  }

  /**
   * Verified tag → target. A tag (or a whole repository) missing from data cached more than a second ago
   * is looked up once more with a revalidated timestamp, so a tag signed a moment ago is served at once
   * rather than after the cache period; that revalidation is single-flight and at most once a second per
   * repository. A tag moved to another digest is seen when the cache period (limits.trustCacheSeconds) ends.
   */
  async resolve(gun: string, tag: string, early?: (t: ResolvedTarget) => void): Promise<ResolvedTarget> {
    let e: Entry;
    try {
      const p = this.entry(gun);
      if (early) this.hintEarly(gun, tag, early);
      e = await p;
    } catch (err) {
      const neg = this.negatives.get(gun);
      if (!isTrustgateError(err) || err.code !== 'TRUST_DATA_MISSING' || !neg || !this.mayRevalidate(gun, neg.at)) throw err;
      e = await this.entry(gun, true);
    }
    try {
      return this.resolveIn(e, gun, tag);
    } catch (err) {
      if (!isTrustgateError(err) || err.code !== 'TAG_NOT_SIGNED' || e.set.frozenAt || !this.mayRevalidate(gun, e.set.now.getTime())) throw err;
      const fresh = await this.entry(gun, true).catch(() => undefined);
      if (!fresh || fresh === e) throw err;
      return this.resolveIn(fresh, gun, tag);
    }
  }

  /**
   * The update of `gun` in flight: once its set verified (floors still being saved), tell `early` what
   * `tag` resolves to in it, so work that needs it (the manifest by digest) starts while the floors are
   * written. Only a head start: the answer is still resolve()'s, given once the update is done, and a
   * tag that does not resolve, or an update that fails, tells `early` nothing.
   */
  private hintEarly(gun: string, tag: string, early: (t: ResolvedTarget) => void): void {
    const e = this.verifiedEarly.get(gun);
    if (!e) return;
    const tell = (set: TrustedSet) => {
      try {
        early({ ...resolveTag(gun, tag, set.targets, set.skipped), stale: false, ...(set.frozenAt ? { frozen: set.frozenAt.toISOString() } : {}) });
      } catch {
        /* the tag does not resolve (resolve() refuses it), or the hint failed: nothing to start */
      }
    };
    if (!e.done) e.waiting.push(tell);
    else if (e.set) tell(e.set);
  }

  /** True (and counted) when data from `since` is over a second old and the GUN was not revalidated in the last second. */
  private mayRevalidate(gun: string, since: number): boolean {
    const now = this.opts.clock.now().getTime();
    if (now - since < 1000 || now - (this.revalidated.get(gun) ?? -Infinity) < 1000) return false;
    this.revalidated.delete(gun);
    this.revalidated.set(gun, now);
    for (const g of this.revalidated.keys()) {
      if (this.revalidated.size <= (this.opts.negativeEntries ?? 10_000)) break;
      this.revalidated.delete(g);
    }
    return true;
  }

  private resolveIn(e: Entry, gun: string, tag: string): ResolvedTarget {
    e.resolved ??= new Map();
    let r = e.resolved.get(tag);
    if (!r) {
      const frozen = e.set.frozenAt?.toISOString();
      r = { ...resolveTag(gun, tag, e.set.targets, e.set.skipped), stale: e.stale, ...(frozen ? { frozen } : {}) };
      if (e.resolved.size < 10_000) e.resolved.set(tag, r);
    }
    return r;
  }

  /**
   * What resolve() would answer, synchronously, when it needs no I/O and no work: the GUN's verified
   * set is in memory and within its cache period, and this tag was resolved against it before. Else
   * undefined (and resolve() decides). The warm request path answers without a promise through this.
   */
  resolvedNow(gun: string, tag: string): ResolvedTarget | undefined {
    const e = this.entries.get(gun);
    if (!e?.resolved) return undefined;
    const clock = this.opts.clock;
    if (e.until <= (clock.nowMs ? clock.nowMs() : clock.now().getTime())) return undefined;
    return e.resolved.get(tag);
  }

  /**
   * A tag signed in targets/releases or targets that maps to this digest now, or undefined
   * (`digestPulls: signed`). The map is built once per verified set.
   */
  async signedTagForDigest(gun: string, digest: string): Promise<SignedTarget | undefined> {
    const e = await this.entry(gun);
    if (!e.byDigest) {
      const m = new Map<string, SignedTarget>();
      for (const t of signedTagsOf(gun, e.set)) if (!m.has(t.digest)) m.set(t.digest, t);
      e.byDigest = m;
    }
    return e.byDigest.get(digest);
  }

  /** Tags docker would pull with trust: those that resolve to targets/releases or targets. */
  async signedTags(gun: string): Promise<SignedTarget[]> {
    return signedTagsOf(gun, await this.verifiedSet(gun));
  }
}

function signedTagsOf(gun: string, set: TrustedSet): SignedTarget[] {
  const names = new Set<string>();
  for (const role of ['targets/releases', 'targets']) for (const name of set.targets.get(role)?.targets.targets.keys() ?? []) names.add(name);
  const out: SignedTarget[] = [];
  for (const name of names) {
    if (!isValidTag(name)) continue; // a target name no client could ask for as a tag
    try {
      out.push(resolveTag(gun, name, set.targets, set.skipped));
    } catch {
      /* not trusted for pulls (e.g. outside the role's paths): not listed */
    }
  }
  return out;
}
