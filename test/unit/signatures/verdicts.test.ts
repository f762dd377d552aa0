// The verdict cache: proofs replayed until their own end or the maximum age, refusals for a second,
// concurrent misses share one verification, anything that is not a refusal is not cached.
import { describe, expect, it } from 'vitest';
import { fail } from '../../../src/errors.js';
import type { DigestProver, SignatureProof } from '../../../src/signatures/port.js';
import { CachedProver } from '../../../src/signatures/verdicts.js';

const d = { digest: 'sha256:' + 'a'.repeat(64), size: 100, mediaType: 'application/vnd.oci.image.manifest.v1+json' };
const registry = {} as Parameters<DigestProver['verify']>[0];

function prover(answer: () => SignatureProof | Error) {
  let calls = 0;
  const inner: DigestProver = {
    async verify() {
      calls++;
      await new Promise((r) => setTimeout(r, 5));
      const a = answer();
      if (a instanceof Error) throw a;
      return a;
    },
  };
  return { inner, calls: () => calls };
}

describe('CachedProver', () => {
  it('replays a proof until maxAgeMs, and answers it synchronously meanwhile', async () => {
    let now = 0;
    const p = prover(() => ({ kind: 'cosign', by: 'cosign key k' }));
    const c = new CachedProver(p.inner, { nowMs: () => now, maxAgeMs: 1000 });
    expect(c.now('g/r', d)).toBeUndefined();
    await Promise.all(Array.from({ length: 20 }, () => c.verify(registry, 'g/r', 'r', d)));
    expect(p.calls()).toBe(1);
    expect(c.now('g/r', d)?.value).toEqual({ proof: { kind: 'cosign', by: 'cosign key k' } });
    now = 999;
    await c.verify(registry, 'g/r', 'r', d);
    expect(p.calls()).toBe(1);
    now = 1000;
    expect(c.now('g/r', d)).toBeUndefined();
    await c.verify(registry, 'g/r', 'r', d);
    expect(p.calls()).toBe(2);
  });

  it('never replays a proof past its validUntil (a signature expiry, a certificate notAfter)', async () => {
    let now = 0;
    const p = prover(() => ({ kind: 'notation', by: 'n', validUntil: new Date(500) }));
    const c = new CachedProver(p.inner, { nowMs: () => now, maxAgeMs: 10_000 });
    await c.verify(registry, 'g/r', 'r', d);
    now = 499;
    expect(c.now('g/r', d)).toBeDefined();
    now = 500;
    expect(c.now('g/r', d)).toBeUndefined();
  });

  it('keeps a refusal for a second only, and keys by repository and descriptor', async () => {
    let now = 0;
    let signed = false;
    const p = prover(() => (signed ? { kind: 'cosign', by: 'k' } : fail('COSIGN_UNSIGNED', 'no signature')));
    const c = new CachedProver(p.inner, { nowMs: () => now, maxAgeMs: 60_000 });
    await expect(c.verify(registry, 'g/r', 'r', d)).rejects.toMatchObject({ code: 'COSIGN_UNSIGNED' });
    signed = true;
    await expect(c.verify(registry, 'g/r', 'r', d)).rejects.toMatchObject({ code: 'COSIGN_UNSIGNED' });
    expect(p.calls()).toBe(1);
    // Another repository or another size is another verdict.
    await expect(c.verify(registry, 'g/other', 'other', d)).resolves.toMatchObject({ by: 'k' });
    await expect(c.verify(registry, 'g/r', 'r', { ...d, size: 101 })).resolves.toMatchObject({ by: 'k' });
    now = 1000;
    await expect(c.verify(registry, 'g/r', 'r', d)).resolves.toMatchObject({ by: 'k' });
  });

  it('does not cache what is not a refusal', async () => {
    let n = 0;
    const p = prover(() => (n++ === 0 ? new TypeError('bug') : { kind: 'cosign', by: 'k' }));
    const c = new CachedProver(p.inner, { nowMs: () => 0, maxAgeMs: 1000 });
    await expect(c.verify(registry, 'g/r', 'r', d)).rejects.toThrow(TypeError);
    await expect(c.verify(registry, 'g/r', 'r', d)).resolves.toMatchObject({ by: 'k' });
  });
});
