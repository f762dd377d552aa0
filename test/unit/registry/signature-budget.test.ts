// The pieces of the signature budget: the budget's two limits, the bounded verdict cache with expiry,
// the trust fingerprint, ordered examination a few at a time, and bounded refusal reasons.
import { describe, expect, it } from 'vitest';
import { fingerprint, firstInOrder, Reasons, SignatureBudget, VerdictCache } from '../../../src/registry/signature-budget.js';

describe('SignatureBudget', () => {
  it('counts uncached candidates and reserves bytes exactly, giving back what a read did not use', () => {
    const b = new SignatureBudget({ candidates: 2, bytes: 100 });
    expect(b.take()).toBe(true);
    expect(b.reserve(60)).toBe(60);
    expect(b.reserve(60)).toBe(40);
    b.refund(30);
    expect(b.reserve(60)).toBe(30);
    expect(b.take()).toBe(false); // bytes spent
    expect(b.describeUnexamined()).toMatch(/^1 candidate\(s\) not examined/);
    const c = new SignatureBudget({ candidates: 1, bytes: 100 });
    expect([c.take(), c.take(), c.take()]).toEqual([true, false, false]);
    expect(c.notExamined).toBe(2);
  });
});

describe('VerdictCache', () => {
  it('evicts the least recently used beyond its size, and forgets expired entries', () => {
    const c = new VerdictCache<string>(2);
    c.set('a', 'A');
    c.set('b', 'B');
    expect(c.get('a')).toBe('A');
    c.set('c', 'C');
    expect([c.get('a'), c.get('b'), c.get('c')]).toEqual(['A', undefined, 'C']);
    c.set('t', 'T', 1000);
    expect(c.get('t', 999)).toBe('T');
    expect(c.get('t', 1000)).toBeUndefined();
  });
});

describe('fingerprint', () => {
  it('is stable over key order and sees into Maps, Sets, RegExps and Buffers', () => {
    expect(fingerprint({ a: 1, b: [2] })).toBe(fingerprint({ b: [2], a: 1 }));
    expect(fingerprint({ m: new Map([['x', 1]]) })).not.toBe(fingerprint({ m: new Map([['x', 2]]) }));
    expect(fingerprint(new Set(['a']))).not.toBe(fingerprint(new Set(['b'])));
    expect(fingerprint(/a/)).not.toBe(fingerprint(/b/));
    expect(fingerprint(Buffer.from('a'))).not.toBe(fingerprint(Buffer.from('b')));
  });
});

describe('firstInOrder', () => {
  it('gives the first result in item order, and starts no batch after one is found', async () => {
    const started: number[] = [];
    const r = await firstInOrder([1, 2, 3, 4, 5, 6, 7], 3, async (n) => {
      started.push(n);
      await new Promise((res) => setTimeout(res, 10 - n));
      return n === 2 || n === 3 ? `found ${n}` : undefined;
    });
    expect(r).toBe('found 2');
    expect(started.sort()).toEqual([1, 2, 3]);
  });
});

describe('Reasons', () => {
  it('keeps a few, counts the rest, and always shows the first-placed note', () => {
    const r = new Reasons();
    for (let i = 0; i < 20; i++) r.push(`r${i}`);
    r.first('budget');
    expect(r.toString()).toBe(['budget', 'r0', 'r1', 'r2', 'r3', 'r4', 'r5', 'r6', 'r7', 'and 12 more'].join(' | '));
  });
});
