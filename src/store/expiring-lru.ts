// A bounded map whose entries expire: least recently used entries go first once it is full, and an
// entry past its time reads as absent. Entries are objects that say when they end and whether they
// are still the live one for their key (`live` turns false when replaced, deleted or evicted), so a
// caller that kept an entry (the warm tag path keeps one per route) can check it without a lookup.
// Single-flight loading is here too: concurrent misses of one key share one load.

export interface Expiring<V> {
  readonly value: V;
  /** ms since the epoch; Infinity: until evicted. */
  readonly until: number;
  /** When it was set (ms). */
  readonly at: number;
  live: boolean;
}

export interface Weight<V> {
  /** What one value weighs (bytes). */
  of(v: V): number;
  /** The most all values may weigh together; least recently used go first past it. */
  max: number;
}

export class ExpiringLru<V> {
  private readonly map = new Map<string, Expiring<V>>();
  private readonly inflight = new Map<string, Promise<Expiring<V>>>();
  private weight = 0;

  constructor(
    private readonly max = 4096,
    private readonly weigh?: Weight<V>,
  ) {}

  private drop(key: string, e: Expiring<V>): void {
    e.live = false;
    this.map.delete(key);
    if (this.weigh) this.weight -= this.weigh.of(e.value);
  }

  /** The live, unexpired entry for `key`, marked most recently used. */
  entry(key: string, nowMs: number): Expiring<V> | undefined {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    if (e.until <= nowMs) {
      this.drop(key, e);
      return undefined;
    }
    this.map.delete(key);
    this.map.set(key, e);
    return e;
  }

  get(key: string, nowMs = Date.now()): V | undefined {
    return this.entry(key, nowMs)?.value;
  }

  set(key: string, value: V, until = Infinity, at = Date.now()): Expiring<V> {
    const old = this.map.get(key);
    if (old) this.drop(key, old);
    const e: Expiring<V> = { value, until, at, live: true };
    const w = this.weigh?.of(value) ?? 0;
    // A value heavier than the whole bound is handed back but not kept.
    if (this.weigh && w > this.weigh.max) {
      e.live = false;
      return e;
    }
    this.map.set(key, e);
    this.weight += w;
    while (this.map.size > this.max || (this.weigh && this.weight > this.weigh.max)) {
      const [k, v] = this.map.entries().next().value!;
      this.drop(k, v);
    }
    return e;
  }

  delete(key: string): void {
    const e = this.map.get(key);
    if (e) this.drop(key, e);
  }

  /**
   * The entry for `key`, or the one `load` makes, shared by every caller that misses meanwhile. `load`
   * returns the value and until when it holds; a thrown error is not kept (each caller of that flight
   * gets it) unless `load` turns it into a value itself.
   */
  async getOrLoad(key: string, nowMs: () => number, load: () => Promise<{ value: V; until: number }>): Promise<Expiring<V>> {
    const hit = this.entry(key, nowMs());
    if (hit) return hit;
    return this.load(key, nowMs, load);
  }

  /** Load `key` now (joining a load already running), whatever is cached. */
  load(key: string, nowMs: () => number, load: () => Promise<{ value: V; until: number }>): Promise<Expiring<V>> {
    let p = this.inflight.get(key);
    if (!p) {
      const at = nowMs();
      p = load()
        .then(({ value, until }) => this.set(key, value, until, at))
        .finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  get size(): number {
    return this.map.size;
  }

  /** The unexpired entries, without marking them used (metrics read them when scraped). */
  *live(nowMs: number): IterableIterator<Expiring<V>> {
    for (const e of this.map.values()) if (e.until > nowMs) yield e;
  }
}
