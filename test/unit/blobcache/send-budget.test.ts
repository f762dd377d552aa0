// limits.sendBufferBytes (blobcache/send-budget.ts): leases shrink as the budget is used, never below
// 16 KiB, and give their bytes back on release.
import { describe, expect, it, vi } from 'vitest';
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

describe('SendBudget: memory back once the sends are done', () => {
  it('drops its slabs and asks for one collection a quiet second after every buffer came back, not before', () => {
    vi.useFakeTimers();
    try {
      let collected = 0;
      const b = new SendBudget(64 * MiB, () => collected++);
      const leases = Array.from({ length: 600 }, () => b.lease(MiB));
      expect(b.slabCount).toBeGreaterThan(0);
      for (const l of leases.slice(0, 599)) l.release();
      vi.advanceTimersByTime(5000);
      expect(collected).toBe(0); // one send still holds buffers: the slabs stay
      leases[599]!.release();
      vi.advanceTimersByTime(500);
      expect(collected).toBe(0); // not quiet for a second yet
      const again = b.lease(MiB); // a new send: not quiet
      vi.advanceTimersByTime(1500);
      expect(collected).toBe(0);
      again.release();
      vi.advanceTimersByTime(1000);
      expect(collected).toBe(1);
      expect(b.collections).toBe(1);
      expect(b.slabCount).toBe(0);
      // The stub collects nothing and this test still holds the buffers: the dropped slabs are alive, so
      // it is asked again after 1, 2, 4 and 8 s, five times in all, then no more.
      expect(b.slabsAlive).toBeGreaterThan(0);
      vi.advanceTimersByTime(1000);
      expect(collected).toBe(2);
      vi.advanceTimersByTime(2000);
      expect(collected).toBe(3);
      vi.advanceTimersByTime(60_000);
      expect(collected).toBe(5);
      expect(b.collections).toBe(5);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a collection that frees the dropped slabs is not asked for again; a new send stops the asking', async () => {
    const { garbageCollector } = await import('../../../src/app/collect-garbage.js');
    const gc = garbageCollector();
    let collected = 0;
    const b = new SendBudget(64 * MiB, () => (collected++, gc()), { quietMs: 20, recheckMs: 50 });
    (() => {
      for (const l of Array.from({ length: 100 }, () => b.lease(MiB))) l.release();
    })();
    const until = async (ok: () => boolean) => {
      for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
    };
    await until(() => b.slabsAlive === 0 && collected > 0);
    expect(collected).toBeGreaterThanOrEqual(1);
    expect(b.slabsAlive).toBe(0);
    const settled = collected;
    await new Promise((r) => setTimeout(r, 300)); // past every recheck
    expect(collected).toBe(settled);

    // A slab a queued write still holds: asked again until the write lets it go, but not while a new
    // send runs.
    let held: Buffer | undefined;
    (() => {
      const l = b.lease(MiB);
      held = l.buffers[0];
      l.release(false);
    })();
    await until(() => collected >= settled + 2);
    expect(b.slabsAlive).toBe(1);
    let busy: ReturnType<SendBudget['lease']> | undefined = b.lease(MiB);
    const during = collected;
    await new Promise((r) => setTimeout(r, 300));
    expect(collected).toBe(during);
    busy.release();
    busy = undefined; // its buffers are views of a slab too
    held = undefined;
    await until(() => b.slabsAlive === 0);
    expect(held).toBeUndefined();
    expect(b.slabsAlive).toBe(0);
  });

  it('reuses a returned buffer, but never one a queued write may still carry', () => {
    const b = new SendBudget(64 * MiB);
    const first = b.lease(MiB);
    const [a0, a1] = first.buffers;
    first.release();
    const second = b.lease(MiB);
    expect(second.buffers.map((x) => x.buffer === a0.buffer && x.byteOffset)).toEqual([a1.byteOffset, a0.byteOffset].map((o) => o));
    second.release(false);
    const third = b.lease(MiB);
    for (const x of third.buffers) for (const y of second.buffers) expect(x.buffer === y.buffer && x.byteOffset === y.byteOffset).toBe(false);
    third.release();
  });
});
