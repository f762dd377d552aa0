// app/collect-garbage.ts: the runtime's gc (blob send buffers are dropped with one, send-budget.ts).
import { describe, expect, it } from 'vitest';
import { garbageCollector } from '../../../src/app/collect-garbage.js';

describe('collect-garbage', () => {
  it('gives one gc function that really collects', async () => {
    const gc = garbageCollector();
    expect(garbageCollector()).toBe(gc);
    let big: ArrayBuffer | undefined = new ArrayBuffer(64 << 20);
    const ref = new WeakRef(big);
    big = undefined;
    await new Promise((r) => setTimeout(r, 0)); // a WeakRef target is kept until the job ends
    gc();
    expect(ref.deref()).toBeUndefined();
  });
});
