// The bounded, expiring map under the warm path's caches: expiry, LRU order, weight, liveness of kept
// entries, single-flight loads that do not keep failures.
import { describe, expect, it } from 'vitest';
import { ExpiringLru } from '../../../src/store/expiring-lru.js';

describe('ExpiringLru', () => {
  it('an entry past its time reads as absent and is no longer live', () => {
    const c = new ExpiringLru<string>(10);
    const e = c.set('a', 'x', 1000, 0);
    expect(c.entry('a', 999)).toBe(e);
    expect(c.entry('a', 1000)).toBeUndefined();
    expect(e.live).toBe(false);
    expect(c.size).toBe(0);
  });

  it('evicts the least recently used past its count, and marks what it evicts or replaces as not live', () => {
    const c = new ExpiringLru<number>(2);
    const a = c.set('a', 1);
    const b = c.set('b', 2);
    c.get('a'); // a is now the most recent
    c.set('c', 3);
    expect(c.get('b')).toBeUndefined();
    expect(b.live).toBe(false);
    expect(c.get('a')).toBe(1);
    const a2 = c.set('a', 10);
    expect(a.live).toBe(false);
    expect(a2.live).toBe(true);
    c.delete('a');
    expect(a2.live).toBe(false);
  });

  it('stays under its weight bound, and keeps nothing heavier than the bound', () => {
    const c = new ExpiringLru<Buffer>(100, { of: (b) => b.length, max: 10 });
    c.set('a', Buffer.alloc(4));
    c.set('b', Buffer.alloc(4));
    c.set('c', Buffer.alloc(4)); // 12 > 10: a goes
    expect(c.get('a')).toBeUndefined();
    expect(c.get('b')).toBeDefined();
    const huge = c.set('h', Buffer.alloc(11));
    expect(huge.live).toBe(false);
    expect(c.get('h')).toBeUndefined();
    expect(c.get('b')).toBeDefined(); // the huge one pushed nothing out
  });

  it('loads once for concurrent misses and keeps no failure', async () => {
    const c = new ExpiringLru<string>(10);
    let calls = 0;
    const load = async () => {
      calls++;
      await new Promise((r) => setTimeout(r, 10));
      return { value: 'v', until: Infinity };
    };
    const got = await Promise.all(Array.from({ length: 50 }, () => c.getOrLoad('k', Date.now, load)));
    expect(calls).toBe(1);
    expect(new Set(got).size).toBe(1);
    let fails = 0;
    const failing = async (): Promise<{ value: string; until: number }> => {
      fails++;
      throw new Error('upstream down');
    };
    await expect(c.getOrLoad('f', Date.now, failing)).rejects.toThrow('upstream down');
    await expect(c.getOrLoad('f', Date.now, failing)).rejects.toThrow('upstream down');
    expect(fails).toBe(2);
  });
});
