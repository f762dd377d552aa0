// limits.sendBufferBytes (blobcache/send-budget.ts): leases shrink as the budget is used, never below
// 16 KiB, and give their bytes back on release.
import { describe, expect, it } from 'vitest';
import { SendBudget } from '../../../src/blobcache/send-budget.js';

const KiB = 1024;
const MiB = 1024 * KiB;

describe('SendBudget', () => {
  it('full buffers while there is room, smaller ones as it fills, 16 KiB past it', () => {
    const b = new SendBudget(64 * MiB);
    const first = b.lease(MiB);
    expect(first.size).toBe(MiB);
    expect(first.buffers.map((x) => x.length)).toEqual([MiB, MiB]);
    const leases = Array.from({ length: 599 }, () => b.lease(MiB));
    const sizes = leases.map((l) => l.size);
    expect(Math.min(...sizes)).toBe(16 * KiB);
    // Never more than the budget plus the 16 KiB pairs handed out past it.
    const past = sizes.filter((s) => s === 16 * KiB).length;
    expect(b.bytesInUse).toBeLessThanOrEqual(64 * MiB + past * 32 * KiB);
    expect(b.bytesInUse).toBeLessThan(100 * MiB); // 600 × 2 × 1 MiB would be 1.2 GB
    for (const l of [first, ...leases]) l.release();
    first.release(); // twice: counted once
    expect(b.bytesInUse).toBe(0);
    expect(b.leases).toBe(0);
    expect(b.lease(MiB).size).toBe(MiB);
  });

  it('never more than asked for', () => {
    const b = new SendBudget(64 * MiB);
    expect(b.lease(100).size).toBe(100);
  });
});
