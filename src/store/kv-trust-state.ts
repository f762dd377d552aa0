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
    const merged = await this.kv.raiseVersions(`trust:floors:${gun}`, state.versions);
    if (state.root && (state.versions.root ?? 0) >= (merged.root ?? 0)) await this.kv.set(`trust:root:${gun}`, Buffer.from(state.root));
  }
}
