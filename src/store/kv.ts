// The store contract every backend keeps (memory, file, Redis), and that test/unit/store/kv-contract.ts
// checks against each of them (distribution's cachecheck suite idea). Small values only: TUF
// metadata, manifests, rollback floors, locks — never blobs.
export type Release = () => Promise<void>;

export interface SetOptions {
  copy?: boolean | undefined;
}

export interface KvStore {
  readonly kind: string;
  get(key: string): Promise<Buffer | undefined>;
  /**
   * ttlSeconds 0 or absent: kept until evicted or overwritten. `copy`: a value that can be had again
   * (metadata and manifests checked against their hash when read back): a backend may skip making it
   * survive a power loss (the file store's fdatasync). Visible to readers once set() resolves either way.
   */
  set(key: string, value: Buffer, ttlSeconds?: number, opts?: SetOptions): Promise<void>;
  /**
   * A value get() returned passed the caller's check (its hash matched its name): keep it in the
   * fastest layer. Optional; layered stores fill their in-process layer only this way and by set(),
   * never with what another replica wrote and nobody checked.
   */
  keep?(key: string, value: Buffer): Promise<void>;
  /** Remove a value (absent is not an error): a copy read back that fails its integrity check. */
  delete(key: string): Promise<void>;
  /**
   * Raise per-field integer maxima atomically and return the merged map: rollback floors only ever
   * rise, whatever order concurrent writers (processes, replicas) arrive in.
   */
  raiseVersions(key: string, versions: Readonly<Record<string, number>>): Promise<Record<string, number>>;
  getVersions(key: string): Promise<Record<string, number>>;
  /** Take a lock that expires by itself after ttlMs; undefined when someone else holds it. */
  tryLock(key: string, ttlMs: number): Promise<Release | undefined>;
  /** Whether the backend answers; degraded stores keep serving from the layers that still do. */
  health(): { ok: boolean; detail?: string };
  /** Ready the backend at start (the file store sweeps what a crashed process left). */
  open?(): Promise<void>;
  close(): Promise<void>;
}

export function mergeMax(a: Readonly<Record<string, number>>, b: Readonly<Record<string, number>>): Record<string, number> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = Math.max(out[k] ?? 0, v);
  return out;
}
