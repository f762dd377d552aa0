// blobcache/min-queue.ts: the read gate's order (least-moved send first, first come first served among equals).
import { describe, expect, it } from 'vitest';
import { MinQueue } from '../../../src/blobcache/min-queue.js';

describe('MinQueue', () => {
  it('pops the smallest key first, and equal keys in insertion order', () => {
    const q = new MinQueue<string>();
    expect(q.pop()).toBeUndefined();
    const items: Array<[number, string]> = [[5, 'a'], [1, 'b'], [5, 'c'], [0, 'd'], [1, 'e'], [3, 'f'], [0, 'g']];
    for (const [k, v] of items) q.push(k, v);
    expect(q.size).toBe(7);
    const out: string[] = [];
    for (let v = q.pop(); v !== undefined; v = q.pop()) out.push(v);
    expect(out).toEqual(['d', 'g', 'b', 'e', 'f', 'a', 'c']);
  });

  it('agrees with a sort over many random keys', () => {
    const q = new MinQueue<number>();
    const keys = Array.from({ length: 2000 }, (_, i) => ((i * 7919) % 97) * 1000 + 0);
    keys.forEach((k, i) => q.push(k, i));
    const expected = keys.map((k, i) => ({ k, i })).sort((a, b) => a.k - b.k || a.i - b.i).map((x) => x.i);
    const got: number[] = [];
    for (let v = q.pop(); v !== undefined; v = q.pop()) got.push(v);
    expect(got).toEqual(expected);
  });
});
