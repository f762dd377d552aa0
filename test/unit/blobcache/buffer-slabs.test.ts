// blobcache/buffer-slabs.ts: send buffers carved from large slabs, reused by class, never overlapping,
// dropped only once every chunk is back.
import { describe, expect, it } from 'vitest';
import { BufferSlabs } from '../../../src/blobcache/buffer-slabs.js';

const KiB = 1024;
const MiB = 1024 * KiB;

function overlaps(a: Buffer, b: Buffer): boolean {
  return a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.length && b.byteOffset < a.byteOffset + a.length;
}

describe('BufferSlabs', () => {
  it('hands out buffers of the asked size that never overlap while they are out', () => {
    const s = new BufferSlabs();
    const sizes = [500, 16 * KiB, 16 * KiB + 1, 100 * KiB, MiB, 3 * MiB];
    const out = Array.from({ length: 300 }, (_, i) => s.take(sizes[i % sizes.length]!));
    out.forEach((b, i) => expect(b.length).toBe(sizes[i % sizes.length]));
    for (let i = 0; i < out.length; i++) for (let j = i + 1; j < out.length; j++) expect(overlaps(out[i]!, out[j]!)).toBe(false);
    // Writing each fully leaves every other intact.
    out.forEach((b, i) => b.fill(i & 0xff));
    out.forEach((b, i) => expect([b[0], b[b.length >> 1], b[b.length - 1]]).toEqual([i & 0xff, i & 0xff, i & 0xff]));
    expect(s.slabCount).toBeGreaterThan(1);
    expect(s.out).toBe(300);
  });

  it('reuses a returned chunk for the next buffer of its class, and keeps the slabs while any is out', () => {
    const s = new BufferSlabs();
    const a = s.take(20 * KiB); // class 32 KiB
    const b = s.take(MiB);
    s.give(a);
    const c = s.take(30 * KiB);
    expect(c.buffer).toBe(a.buffer);
    expect(c.byteOffset).toBe(a.byteOffset);
    expect(s.reset()).toEqual([]); // b and c are out
    s.give(b);
    s.forget(c); // a write may still hold c: counted back, never reused
    const d = s.take(30 * KiB);
    expect(overlaps(c, d)).toBe(false);
    s.give(d);
    const dropped = s.reset();
    expect(dropped).toHaveLength(1); // every chunk so far came from one slab
    expect(dropped[0]).toBe(a.buffer);
    expect(s.slabCount).toBe(0);
    expect(s.reset()).toEqual([]); // nothing to drop
  });

  it('gives a buffer above its largest class its own allocation', () => {
    const s = new BufferSlabs();
    const big = s.take(8 * MiB);
    expect(big.length).toBe(8 * MiB);
    expect(s.slabCount).toBe(0);
    s.give(big);
    expect(s.out).toBe(0);
  });
});
