// In-process store: the L1 in front of file or Redis, bounded in bytes (LRU), with TTLs.
import { mergeMax, type KvStore, type Release } from './kv.js';

interface Entry {
  value: Buffer;
  expiresAt: number; // 0 = never
}

export class MemoryKv implements KvStore {
  readonly kind = 'memory';
  private readonly entries = new Map<string, Entry>();
  private readonly versions = new Map<string, Record<string, number>>();
  private readonly locks = new Map<string, number>();
  private bytes = 0;

  constructor(
    private readonly maxBytes = 64 * 1024 * 1024,
    private readonly now: () => number = Date.now,
  ) {}

  async get(key: string): Promise<Buffer | undefined> {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.expiresAt !== 0 && e.expiresAt <= this.now()) {
      this.drop(key, e);
      return undefined;
    }
    this.entries.delete(key); // refresh recency
    this.entries.set(key, e);
    return e.value;
  }

  async set(key: string, value: Buffer, ttlSeconds = 0): Promise<void> {
    if (value.length > this.maxBytes) return;
    const old = this.entries.get(key);
    if (old) this.drop(key, old);
    this.entries.set(key, { value, expiresAt: ttlSeconds > 0 ? this.now() + ttlSeconds * 1000 : 0 });
    this.bytes += value.length;
    for (const [k, e] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.drop(k, e);
    }
  }

  async delete(key: string): Promise<void> {
    const e = this.entries.get(key);
    if (e) this.drop(key, e);
  }

  private drop(key: string, e: Entry): void {
    this.entries.delete(key);
    this.bytes -= e.value.length;
  }

  async raiseVersions(key: string, versions: Readonly<Record<string, number>>): Promise<Record<string, number>> {
    const merged = mergeMax(this.versions.get(key) ?? {}, versions);
    this.versions.set(key, merged);
    return { ...merged };
  }

  async getVersions(key: string): Promise<Record<string, number>> {
    return { ...(this.versions.get(key) ?? {}) };
  }

  async tryLock(key: string, ttlMs: number): Promise<Release | undefined> {
    const held = this.locks.get(key);
    if (held !== undefined && held > this.now()) return undefined;
    const until = this.now() + ttlMs;
    this.locks.set(key, until);
    return async () => {
      if (this.locks.get(key) === until) this.locks.delete(key);
    };
  }

  health(): { ok: boolean } {
    return { ok: true };
  }

  async close(): Promise<void> {}
}
