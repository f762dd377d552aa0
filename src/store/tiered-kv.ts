// L1 (in-process memory) in front of L2 (file or Redis). When L2 fails, every operation carries on
// with L1 alone and health() says degraded: losing Redis degrades to L1 + upstream, never to
// "allow" — verification never depends on the store answering. Floors are the max of both layers,
// so a Redis that lost its data cannot lower what this process has already seen. L1 holds only what
// this process wrote or checked: a value read from L2 enters it through keep(), once its reader has
// verified it (a content hash against its name), never on the read itself.
import type { Logger } from '../observe/logger.js';
import { mergeMax, type KvStore, type Release, type SetOptions } from './kv.js';
import { MemoryKv } from './memory-kv.js';

export class TieredKv implements KvStore {
  readonly kind: string;
  private l2Error: string | undefined;
  private probing = false;

  constructor(
    private readonly l1: MemoryKv,
    private readonly l2: KvStore,
    private readonly log?: Logger,
    /** Seconds a value kept from L2 (or written) stays in L1: bounds how long a replica misses another's write. */
    private readonly l1TtlSeconds = 5,
    /** Called for every lookup with the layer that answered and how (metrics). */
    private readonly onGet?: (layer: string, result: 'hit' | 'miss' | 'error') => void,
  ) {
    this.kind = `memory+${l2.kind}`;
  }

  private async fromL2<T>(what: string, op: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false }> {
    try {
      const value = await op();
      if (this.l2Error !== undefined) this.log?.info({ store: this.l2.kind }, 'store recovered');
      this.l2Error = undefined;
      return { ok: true, value };
    } catch (err) {
      if (this.l2Error === undefined) this.log?.warn({ store: this.l2.kind, op: what, err: (err as Error).message }, 'store unavailable, serving from memory');
      this.l2Error = (err as Error).message;
      return { ok: false };
    }
  }

  async get(key: string): Promise<Buffer | undefined> {
    const hit = await this.l1.get(key);
    this.onGet?.('memory', hit ? 'hit' : 'miss');
    if (hit) return hit;
    const r = await this.fromL2('get', () => this.l2.get(key));
    this.onGet?.(this.l2.kind, !r.ok ? 'error' : r.value ? 'hit' : 'miss');
    return r.ok ? r.value : undefined;
  }

  async keep(key: string, value: Buffer): Promise<void> {
    await this.l1.set(key, value, this.l1TtlSeconds);
  }

  async set(key: string, value: Buffer, ttlSeconds = 0, opts?: SetOptions): Promise<void> {
    await this.l1.set(key, value, ttlSeconds > 0 ? Math.min(ttlSeconds, this.l1TtlSeconds) : this.l1TtlSeconds);
    await this.fromL2('set', () => this.l2.set(key, value, ttlSeconds, opts));
  }

  async delete(key: string): Promise<void> {
    await this.l1.delete(key);
    await this.fromL2('delete', () => this.l2.delete(key));
  }

  async raiseVersions(key: string, versions: Readonly<Record<string, number>>): Promise<Record<string, number>> {
    const local = await this.l1.raiseVersions(key, versions);
    const r = await this.fromL2('raiseVersions', () => this.l2.raiseVersions(key, local));
    return r.ok ? this.l1.raiseVersions(key, r.value) : local;
  }

  async getVersions(key: string): Promise<Record<string, number>> {
    const local = await this.l1.getVersions(key);
    const r = await this.fromL2('getVersions', () => this.l2.getVersions(key));
    return r.ok ? mergeMax(local, r.value) : local;
  }

  async tryLock(key: string, ttlMs: number): Promise<Release | undefined> {
    const r = await this.fromL2('tryLock', () => this.l2.tryLock(key, ttlMs));
    return r.ok ? r.value : this.l1.tryLock(key, ttlMs);
  }

  health(): { ok: boolean; detail?: string } {
    const h = this.l2.health();
    // The last L2 operation failed but the backend says it is back (e.g. Redis reconnected after a
    // Sentinel failover): probe it, so readiness recovers on the next check. Without this an idle
    // replica would stay not-ready forever — a load balancer sends it no traffic, and only traffic
    // cleared the error.
    if (h.ok && this.l2Error !== undefined && !this.probing) {
      this.probing = true;
      void this.fromL2('probe', () => this.l2.get('trustgate-readiness-probe')).finally(() => (this.probing = false));
    }
    if (!h.ok || this.l2Error !== undefined) return { ok: false, detail: `${this.l2.kind}: ${this.l2Error ?? h.detail ?? 'unavailable'}` };
    return { ok: true };
  }

  async open(): Promise<void> {
    await this.l2.open?.();
  }

  async close(): Promise<void> {
    await this.l2.close();
  }
}
