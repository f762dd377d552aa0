// Rollback state over any KvStore: the trusted root per GUN and its version floors. Floors are raised
// atomically (never lowered); the root is replaced only by one at least as new as every floor seen.
import type { TrustState, TrustStateStore } from '../signatures/dct/client.js';
import type { KvStore } from './kv.js';

export class KvTrustState implements TrustStateStore {
  constructor(private readonly kv: KvStore) {}

  async load(gun: string): Promise<TrustState | undefined> {
    const [root, versions] = await Promise.all([this.kv.get(`trust:root:${gun}`), this.kv.getVersions(`trust:floors:${gun}`)]);
    if (!root) return Object.keys(versions).length ? { root: undefined, versions } : undefined;
    return { root, versions };
  }

  async save(gun: string, state: TrustState): Promise<void> {
    const floors = `trust:floors:${gun}`;
    if (!state.root) {
      await this.kv.raiseVersions(floors, state.versions);
      return;
    }
    // The root is written beside the floor raise, not after it (two durable writes at once: measured on
    // the cold tag path, docs/benchmarks.md). Whether it may replace the stored one is decided on the
    // floors read just before: the same check as on the floors the raise returns (our own versions are
    // in both), with the same window for another process's raise between check and write as before,
    // and one a newer root's client rotates out of (TrustClient: an anchor below the root floor).
    const seen = await this.kv.getVersions(floors);
    const root = state.root;
    const writeRoot = (state.versions.root ?? 0) >= (seen.root ?? 0) ? this.kv.set(`trust:root:${gun}`, Buffer.from(root)) : undefined;
    await Promise.all([this.kv.raiseVersions(floors, state.versions), writeRoot]);
  }
}
