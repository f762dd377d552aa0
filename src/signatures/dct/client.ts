// The updater: the only part of src/signatures/dct that does I/O, and only through injected interfaces
// (MetadataFetcher, TrustStateStore, Clock). Follows notary's client/tufclient.go: bootstrap the root,
// update timestamp → snapshot → targets → delegations, and on failure update the root and retry once.
import { fail, isTrustgateError, TrustgateError } from '../../errors.js';
import { parseEnvelope, type RoleName } from './model/metadata.js';
import { isValidGun, isValidTag } from './model/names.js';
import { resolveTag, type SignedTarget } from './resolve-tag.js';
import { DEFAULT_SET_LIMITS, TrustedSet, type SetLimits, type VersionFloors } from './trusted-set.js';
import { validateRoot, type TrustedRoot, type TrustPinning } from './verify/root.js';

export interface MetadataRequest {
  gun: string;
  role: RoleName;
  /** Hex sha256 from the parent: fetch the content-addressed `<role>.<sha256>.json`. */
  sha256?: string | undefined;
  /** Intermediate roots of a rotation: `<version>.root.json`. */
  version?: number | undefined;
  /** Refuse (TOO_LARGE) anything longer: endless-data attack. */
  maxBytes: number;
  /** Ask the server even if a timestamp fetched moments ago is shared in the store (a tag just signed). */
  revalidate?: boolean | undefined;
}

export interface MetadataFetcher {
  /** The bytes, or null when the server has no such file (404). Network trouble throws NOTARY_UNAVAILABLE/TIMEOUT. */
  fetch(req: MetadataRequest): Promise<Uint8Array | null>;
  /** Where the data comes from, for messages. */
  readonly source: string;
  /**
   * First contact with a GUN: ask for these roles by name now, in parallel, as candidates for the
   * content-addressed requests the update will make (fetch/caching-fetcher.ts). Optional.
   */
  prefetch?(gun: string, roles: readonly RoleName[]): void;
}

/** What a first update of a GUN fetches after root.json: asked for together (MetadataFetcher.prefetch). */
export const FIRST_CONTACT_ROLES: readonly RoleName[] = ['timestamp', 'snapshot', 'targets', 'targets/releases'];

/** What must survive a restart so an older root or role version is refused (rollback). */
export interface TrustState {
  /** Absent when only floors survived (e.g. the store lost the root but kept the versions). */
  root: Uint8Array | undefined;
  versions: VersionFloors;
  /** The timestamp the saved versions come from (saved only): signed evidence of its floor for other replicas. */
  timestamp?: Uint8Array | undefined;
}

export interface TrustStateStore {
  load(gun: string): Promise<TrustState | undefined>;
  save(gun: string, state: TrustState): Promise<void>;
  /**
   * Floors that others recorded and that metadata signed by `anchor` proves (a shared store's): merged
   * over load()'s versions once the anchor is known. Optional; floors nobody can prove are not returned.
   */
  provenFloors?(gun: string, anchor: TrustedRoot, now: Date): Promise<Partial<VersionFloors>>;
}

export interface Clock {
  now(): Date;
  /** now().getTime() without a Date: for checks made on every request (the warm tag path). Optional. */
  nowMs?(): number;
}

export interface FetchLimits {
  /** root.json when no parent lists its size (bootstrap, rotation). notary allows 100 MiB; roots are a few KiB. */
  rootBytes: number;
  /** notary allows 1 MiB; a timestamp is under 1 KiB. */
  timestampBytes: number;
  /** Absolute cap on anything whose length a parent lists. */
  metadataBytes: number;
}

export const DEFAULT_FETCH_LIMITS: FetchLimits = { rootBytes: 512 * 1024, timestampBytes: 128 * 1024, metadataBytes: 32 * 1024 * 1024 };

export interface TrustClientOptions {
  fetcher: MetadataFetcher;
  state: TrustStateStore;
  clock: Clock;
  /** Applied on first contact with a GUN (and when the trusted root has expired). */
  pinning?: TrustPinning | undefined;
  /** A root.json trusted explicitly instead of on first use (`--trusted-root`). */
  trustedRoot?: Uint8Array | undefined;
  fetchLimits?: FetchLimits;
  setLimits?: SetLimits;
  /**
   * Frozen DCT trust (notary.frozenAt): from `at` on, every update reads from `fetcher` (the state
   * verified before the freeze) instead of the notary server, and checks timestamp and snapshot expiry
   * at `at` (TrustedSet.frozenAt).
   */
  frozen?: { at: Date; fetcher: MetadataFetcher } | undefined;
}

/** Raised inside an attempt when the snapshot lists a root other than the one we trust. */
class RootChanged extends Error {
  constructor(readonly sha256: string | undefined, readonly length: number) {
    super('snapshot lists a different root');
  }
}

function isNetworkError(err: unknown): boolean {
  return isTrustgateError(err) && (err.code === 'NOTARY_UNAVAILABLE' || err.code === 'TIMEOUT');
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

export class TrustClient {
  private readonly fetchLimits: FetchLimits;
  private readonly setLimits: SetLimits;
  private frozenSeen = false;

  constructor(private readonly opts: TrustClientOptions) {
    this.fetchLimits = opts.fetchLimits ?? DEFAULT_FETCH_LIMITS;
    this.setLimits = opts.setLimits ?? DEFAULT_SET_LIMITS;
  }

  /** Verified tag → digest, or a TrustgateError with the refusal code. */
  async lookup(gun: string, tag: string): Promise<SignedTarget> {
    if (!isValidTag(tag)) throw fail('USAGE', `invalid tag ${JSON.stringify(tag)}`);
    const set = await this.update(gun);
    return resolveTag(gun, tag, set.targets, set.skipped);
  }

  /**
   * Run one full, verified update of a GUN's metadata and persist the new rollback floors. `onVerified`
   * is told the set once every role has verified, while the floors are still being written: the caller
   * may start work that needs the verified answer (the manifest by digest) but must not serve anything
   * before this promise resolves, which it does only once the floors are saved.
   */
  async update(gun: string, opts: { revalidate?: boolean; onVerified?: ((set: TrustedSet) => void) | undefined } = {}): Promise<TrustedSet> {
    if (!isValidGun(gun)) throw fail('USAGE', `invalid GUN ${JSON.stringify(gun)}`);
    const now = this.opts.clock.now(); // one reference time for the whole update (TUF 5.1)
    // Once frozen, frozen for good in this process: a clock stepped back (NTP, a VM restored) must not
    // send requests to a notary server that may now be anybody's.
    if (this.opts.frozen && now >= this.opts.frozen.at) this.frozenSeen = true;
    const frozen = this.frozenSeen ? this.opts.frozen : undefined;
    const u: Update = { gun, now, fetcher: frozen?.fetcher ?? this.opts.fetcher, frozenAt: frozen?.at, revalidate: opts.revalidate === true };
    const state = await this.opts.state.load(gun);
    const floors: VersionFloors = { ...(state?.versions ?? {}) };
    let { anchor, fresh } = await this.bootstrapRoot(u, state);
    for (const [role, v] of Object.entries((await this.opts.state.provenFloors?.(gun, anchor, now)) ?? {})) floors[role] = Math.max(floors[role] ?? 0, v ?? 0);
    if (anchor.root.version < (floors.root ?? 0)) {
      // The anchor is older than a root seen before (a replica stored an older root after another
      // moved on, or root.json was served stale on first contact): only a rotation up to the floor helps.
      try {
        anchor = await this.rotateRoot(u, anchor, null, false);
      } catch (err) {
        if (!(err instanceof NoNewerRoot)) throw err;
      }
      if (anchor.root.version < (floors.root ?? 0)) {
        throw fail('ROLLBACK', `${gun} root: version ${anchor.root.version} is lower than current version ${floors.root}`);
      }
      fresh = true;
    }
    // DEVIATION: notary hard-fails when a cached root's leaf certificate has expired (the 2025 Docker
    // Hub failure). We instead require a newer root signed by the expired one's keys, with pinning
    // re-applied — the same rule notary uses when the root *role* expires — so a rotated repo recovers.
    if (!fresh && (anchor.root.expires < now || !rootCertsCurrent(gun, anchor, now))) {
      anchor = await this.rotateRoot(u, anchor, null, true);
    }

    let set: TrustedSet;
    try {
      set = await this.attempt(u, anchor, floors);
    } catch (err) {
      if (isNetworkError(err)) throw err;
      // notary Update(): any failure → update the root, then one more try; the second error stands.
      const changed = err instanceof RootChanged ? err : null;
      const first = changed ? fail('HASH_MISMATCH', `${gun}: the snapshot lists a root that could not be obtained`) : err;
      let rotated: TrustedRoot;
      try {
        rotated = await this.rotateRoot(u, anchor, changed, false);
      } catch (rotErr) {
        throw rotErr instanceof NoNewerRoot ? first : rotErr;
      }
      try {
        set = await this.attempt(u, rotated, floors);
      } catch (err2) {
        if (err2 instanceof RootChanged) throw first;
        throw err2;
      }
    }
    try {
      opts.onVerified?.(set);
    } catch {
      /* a hint to the caller: its failure is not the update's */
    }
    await this.opts.state.save(gun, { root: set.root.env.raw, versions: set.versions(), timestamp: set.timestamp?.env.raw });
    return set;
  }

  /** The anchor root, and whether it was just fetched and fully checked (expiry included). */
  private async bootstrapRoot(u: Update, state: TrustState | undefined): Promise<{ anchor: TrustedRoot; fresh: boolean }> {
    const { gun, now } = u;
    // A root we already trust is re-validated as the anchor: its own signatures and certificate CN.
    // Expiry is handled by the caller, which rotates away from an expired anchor.
    const trusted = state?.root ?? this.opts.trustedRoot;
    if (trusted) return { anchor: validateRoot({ gun, env: parseEnvelope(trusted, 'root'), now, checkExpiry: false }), fresh: false };
    const raw = await u.fetcher.fetch({ gun, role: 'root', maxBytes: this.fetchLimits.rootBytes });
    if (!raw) throw fail('TRUST_DATA_MISSING', `${u.fetcher.source} does not have trust data for ${gun}`);
    // The GUN has trust data: the files the update needs next are asked for at once instead of one round
    // trip after another. Only after root.json answered, so an unknown name still costs one request.
    u.fetcher.prefetch?.(gun, FIRST_CONTACT_ROLES);
    const anchor = validateRoot({ gun, env: parseEnvelope(raw, 'root'), now, checkExpiry: true, pinning: this.opts.pinning ?? {} });
    return { anchor, fresh: true };
  }

  /**
   * client/tufclient.go updateRoot: take the newest root (by the snapshot's checksum when known, else
   * root.json); accept it if the trusted root signs it, otherwise walk N.root.json from trusted+1 up,
   * each signed by its predecessor (expiry not checked for intermediates), then the newest again.
   */
  private async rotateRoot(u: Update, anchor: TrustedRoot, changed: RootChanged | null, anchorStale: boolean): Promise<TrustedRoot> {
    const { gun, now } = u;
    const newestRaw = await u.fetcher.fetch({
      gun,
      role: 'root',
      sha256: changed?.sha256,
      maxBytes: changed ? Math.min(changed.length, this.fetchLimits.metadataBytes) : this.fetchLimits.rootBytes,
    });
    if (!newestRaw || sameBytes(newestRaw, anchor.env.raw)) {
      if (anchorStale) {
        const why = anchor.root.expires < now ? `root expired at ${anchor.root.expires.toISOString()}` : 'root certificates are no longer valid';
        throw fail('EXPIRED', `${gun}: trusted ${why} and no newer root is available`);
      }
      throw new NoNewerRoot();
    }
    const env = parseEnvelope(newestRaw, 'root');
    const target = validateRootVersion(env);
    if (target < anchor.root.version) {
      // An older root is no way forward: report what failed in the first place (often the replayed
      // timestamp's ROLLBACK), not a rotation failure against a root we have already moved past.
      // A snapshot that names an older root than the one we trust is a rollback in its own right.
      if (!anchorStale && !changed) throw new NoNewerRoot();
      throw fail('ROLLBACK', `${gun} root: version ${target} is lower than current version ${anchor.root.version}`);
    }
    // Pinning is re-applied only when we are moving away from a stale anchor (notary bootstrapClient).
    const pinning = anchorStale ? (this.opts.pinning ?? {}) : undefined;
    try {
      return validateRoot({ gun, env, prev: anchor, now, checkExpiry: true, pinning });
    } catch (err) {
      if (!(err instanceof TrustgateError) || err.code !== 'ROOT_ROTATION_FAILED') throw err;
      let prev = anchor;
      for (let v = anchor.root.version + 1; v < target; v++) {
        if (v - anchor.root.version > 64) throw fail('TOO_LARGE', `${gun}: root rotation spans more than 64 versions`);
        const raw = await u.fetcher.fetch({ gun, role: 'root', version: v, maxBytes: this.fetchLimits.rootBytes });
        if (!raw) throw err;
        const next = validateRoot({ gun, env: parseEnvelope(raw, `${v}.root`), prev, now, checkExpiry: false, checkCertExpiry: true });
        if (next.root.version < v) throw fail('ROLLBACK', `${gun}: ${v}.root.json has version ${next.root.version}`);
        prev = next;
      }
      return validateRoot({ gun, env, prev, now, checkExpiry: true, pinning });
    }
  }

  private async attempt(u: Update, anchor: TrustedRoot, floors: VersionFloors): Promise<TrustedSet> {
    const { gun, now } = u;
    const set = new TrustedSet(gun, anchor, now, floors, this.setLimits, u.frozenAt);
    const fl = this.fetchLimits;
    const need = async (role: RoleName, sha256: Buffer | undefined, maxBytes: number): Promise<Uint8Array> => {
      const raw = await u.fetcher.fetch({ gun, role, sha256: sha256?.toString('hex'), maxBytes });
      if (!raw) throw fail('TRUST_DATA_MISSING', `${role} trust data for ${gun} is unavailable on ${u.fetcher.source}`);
      return raw;
    };
    const capped = (length: number) => Math.min(length, fl.metadataBytes);

    const ts = await u.fetcher.fetch({ gun, role: 'timestamp', maxBytes: fl.timestampBytes, revalidate: u.revalidate });
    if (!ts) throw fail('TRUST_DATA_MISSING', `timestamp trust data for ${gun} is unavailable on ${u.fetcher.source}`);
    set.loadTimestamp(ts);
    const snapMeta = set.snapshotMeta();
    set.loadSnapshot(await need('snapshot', snapMeta.hashes.sha256, capped(snapMeta.length)));
    if (!set.rootIsCurrent()) {
      const m = set.metaFor('root')!;
      throw new RootChanged(m.hashes.sha256?.toString('hex'), m.length);
    }
    const targetsMeta = set.metaFor('targets')!;
    const top = set.loadTargets(await need('targets', targetsMeta.hashes.sha256, capped(targetsMeta.length)));

    // Pre-order DFS, children prepended in declaration order (downloadTargets).
    const pending = set.childrenOf(top);
    while (pending.length > 0) {
      const { role, keys } = pending.shift()!;
      const meta = set.metaFor(role.name);
      if (!meta) continue; // not in the snapshot: skipped silently, as notary does
      const loaded = set.loadDelegation(role, keys, await need(role.name, meta.hashes.sha256, capped(meta.length)));
      if (loaded) pending.unshift(...set.childrenOf(loaded));
    }
    return set;
  }
}

class NoNewerRoot extends Error {}

/** What one update works with: one reference time, and the source chosen for it (live or frozen). */
interface Update {
  gun: string;
  now: Date;
  fetcher: MetadataFetcher;
  frozenAt: Date | undefined;
  revalidate: boolean;
}

function validateRootVersion(env: ReturnType<typeof parseEnvelope>): number {
  const v = env.signed.version;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw fail('MALFORMED', 'root: version must be an integer ≥ 1');
  return v;
}

/** True when the anchor still has a root key whose certificate is within its validity period. */
function rootCertsCurrent(gun: string, anchor: TrustedRoot, now: Date): boolean {
  try {
    validateRoot({ gun, env: anchor.env, now, checkExpiry: true });
    return true;
  } catch (err) {
    if (isTrustgateError(err) && err.code === 'EXPIRED') return false;
    throw err;
  }
}
