// Rollback state of one replica: what it trusts on its own, in front of what the shared store says.
// The shared store (Redis) is input, not truth (issue 26): a writer to it must not pick a replica's
// root, lower its floors, or lock a GUN out with floors nothing signed.
//  - local: this replica's own record (a file store under `store.localPath`; with the file store, the
//    store itself). It holds the root the replica trusts per GUN (its TOFU record, moved on only by
//    rotations that root signed) and every version floor it has seen. It survives restarts.
//  - shared: read for two things only, each re-verified here before it counts:
//      a root for a GUN this replica has no record of, used only if trust pinning accepts it (else the
//      replica fetches its first root from notary itself, pinned or TOFU);
//      a timestamp floor, counted only up to the version of a timestamp signed by the replica's anchor
//      root (`trust:floor-proof:<GUN>`). The numbers in `trust:floors:<GUN>` are written for other
//      versions and operators but never enforced: a lowered one cannot lower a replica's floors, and a
//      raised one (a forger's version 10) cannot refuse the genuine metadata.
import { createHash } from 'node:crypto';
import type { Logger } from '../observe/logger.js';
import type { Clock, TrustState, TrustStateStore } from '../signatures/dct/client.js';
import { parseEnvelope, parseRoot } from '../signatures/dct/model/metadata.js';
import type { VersionFloors } from '../signatures/dct/trusted-set.js';
import type { TrustedRoot, TrustPinning } from '../signatures/dct/verify/root.js';
import { isPinnedRoot, provenTimestampVersion } from '../signatures/dct/verify/stored-trust.js';
import { KvTrustState } from './kv-trust-state.js';
import type { KvStore } from './kv.js';

export interface ReplicaTrustStateOptions {
  /** This replica's own store: what it trusted first, and its floors. */
  local: KvStore;
  /** The store shared with other replicas; absent when the replica's store is its own (file store). */
  shared?: KvStore | undefined;
  pinning?: TrustPinning | undefined;
  clock: Clock;
  log?: Logger | undefined;
}

const proofKey = (gun: string) => `trust:floor-proof:${gun}`;
const SAVED_MAX = 10_000;

export class ReplicaTrustState implements TrustStateStore {
  private readonly local: KvTrustState;
  private readonly shared: KvTrustState | undefined;
  /** GUNs with a root in the local record (it only ever gains them). */
  private readonly known = new Set<string>();
  /** What was last written to the local record per GUN (root hash and floors). */
  private readonly saved = new Map<string, string>();

  constructor(private readonly opts: ReplicaTrustStateOptions) {
    this.local = new KvTrustState(opts.local);
    this.shared = opts.shared ? new KvTrustState(opts.shared) : undefined;
  }

  /** Whether this replica has trusted a root for `gun` itself: only then may shared copies stand in for notary. */
  async knows(gun: string): Promise<boolean> {
    if (this.known.has(gun)) return true;
    if ((await this.local.load(gun))?.root) this.known.add(gun);
    return this.known.has(gun);
  }

  async load(gun: string): Promise<TrustState | undefined> {
    const mine = await this.local.load(gun);
    if (mine?.root) {
      this.known.add(gun);
      return mine;
    }
    if (!this.shared) return mine;
    const theirs = await this.shared.load(gun);
    if (!theirs?.root) return mine;
    if (isPinnedRoot(gun, theirs.root, this.opts.pinning, this.opts.clock.now())) return { root: theirs.root, versions: { ...(mine?.versions ?? {}) } };
    this.opts.log?.warn({ gun }, 'root in the shared store is not accepted by this replica (no record of its own, not pinned): fetching it from notary');
    return mine;
  }

  async provenFloors(gun: string, anchor: TrustedRoot): Promise<Partial<VersionFloors>> {
    if (!this.opts.shared) return {};
    const proof = await this.opts.shared.get(proofKey(gun));
    const v = proof ? provenTimestampVersion(anchor, proof) : undefined;
    return v === undefined ? {} : { timestamp: v };
  }

  async save(gun: string, state: TrustState): Promise<void> {
    // The local record is written when something rose (every update saves; most change nothing).
    const mark = `${state.root ? createHash('sha256').update(state.root).digest('hex') : '-'} ${JSON.stringify(state.versions)}`;
    if (this.saved.get(gun) !== mark) {
      await this.local.save(gun, { root: state.root, versions: state.versions });
      this.saved.set(gun, mark);
      if (this.saved.size > SAVED_MAX) this.saved.delete(this.saved.keys().next().value!);
    }
    if (state.root) this.known.add(gun);
    if (!this.shared || !this.opts.shared) return;
    // The proof first: the floor write that follows waits for a Redis replica (Sentinel), which then
    // has the proof too.
    await this.saveProof(this.opts.shared, gun, state);
    await this.shared.save(gun, { root: state.root, versions: state.versions });
  }

  /**
   * The timestamp this update verified, as other replicas' evidence for its floor. Replaced unless the
   * stored one proves a higher version under the same root: a replica that saw less must not take
   * evidence away, and one a forger wrote proves nothing and goes.
   */
  private async saveProof(shared: KvStore, gun: string, state: TrustState): Promise<void> {
    const anchor = state.root && state.timestamp ? anchorOf(state.root) : undefined;
    if (!anchor || !state.timestamp) return;
    const cur = await shared.get(proofKey(gun));
    if (cur?.equals(state.timestamp)) return;
    const mineV = provenTimestampVersion(anchor, state.timestamp);
    const curV = cur ? provenTimestampVersion(anchor, cur) : undefined;
    if (mineV !== undefined && mineV >= (curV ?? 0)) await shared.set(proofKey(gun), Buffer.from(state.timestamp));
  }
}

function anchorOf(raw: Uint8Array): TrustedRoot | undefined {
  try {
    const env = parseEnvelope(raw, 'root');
    return { root: parseRoot(env), env };
  } catch {
    return undefined;
  }
}
