// In-process TrustStateStore: the CLI's, and the L1 the persistent stores sit behind.
import type { TrustState, TrustStateStore } from '../client.js';

export class MemoryTrustState implements TrustStateStore {
  private readonly states = new Map<string, TrustState>();

  async load(gun: string): Promise<TrustState | undefined> {
    const s = this.states.get(gun);
    return s && { root: s.root, versions: { ...s.versions } };
  }

  async save(gun: string, state: TrustState): Promise<void> {
    this.states.set(gun, mergeStates(this.states.get(gun), state));
  }
}

/** Floors only ever rise, and the root kept is the newest, even when two updates race. */
export function mergeStates(prev: TrustState | undefined, next: TrustState): TrustState {
  if (!prev) return next;
  const versions = { ...prev.versions };
  for (const [role, v] of Object.entries(next.versions)) versions[role] = Math.max(versions[role] ?? 0, v);
  const root = (next.versions.root ?? 0) >= (prev.versions.root ?? 0) ? (next.root ?? prev.root) : prev.root;
  return { root, versions };
}
