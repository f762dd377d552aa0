// Where candidate parents of a child digest come from (server/handlers/index-parents.ts): the record of
// indexes served `allow`, and the scan of DCT's signed targets — single-flight per repository, reused for
// cache.tagTtlSeconds, bounded by limits.maxTagsListed. The trust service and manifest loader are
// stand-ins (a unit test of one module); the rule itself is covered-children.test.ts's.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { fail } from '../../../src/errors.js';
import { Refusals, type DecidePorts, type Decision } from '../../../src/policy/decide.js';
import type { EffectivePolicy } from '../../../src/policy/effective.js';
import type { SignatureKind } from '../../../src/policy/vocabulary.js';
import type { ServerDeps, UpstreamDeps } from '../../../src/server/deps.js';
import { coveredByParents, MAX_RECORDED_CHILDREN, noteServedIndex } from '../../../src/server/handlers/index-parents.js';
import type { CachedManifest } from '../../../src/store/manifest-cache.js';

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const digestOf = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const hex = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;
const indexOf = (children: string[], n = 0): CachedManifest => ({ bytes: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: children.map((digest) => ({ mediaType: OCI_MANIFEST, digest, size: 1 })), n })), mediaType: OCI_INDEX });
const image: CachedManifest = { bytes: Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}'), mediaType: OCI_MANIFEST };

const CHILD = hex(1);
const OTHER = hex(2);

function setup(opts: { signed?: Array<{ tag: string; m: CachedManifest }>; tagTtlSeconds?: number; maxTagsListed?: number; trust?: boolean } = {}) {
  let now = 1_000_000;
  const manifests = new Map<string, CachedManifest>();
  const signed = (opts.signed ?? []).map((s) => ({ tag: s.tag, digest: digestOf(s.m.bytes), length: s.m.bytes.length, role: 'targets' }));
  for (const s of opts.signed ?? []) manifests.set(digestOf(s.m.bytes), s.m);
  const calls = { signedTags: 0, loads: [] as string[], debug: 0 };
  const deps = {
    config: { limits: { manifestBytes: 1 << 20, maxTagsListed: opts.maxTagsListed ?? 1000 }, cache: { tagTtlSeconds: opts.tagTtlSeconds ?? 10 } },
    clock: { now: () => new Date(now), nowMs: () => now },
    log: { debug: () => void calls.debug++ },
  } as unknown as ServerDeps;
  const trust = {
    signedTags: async () => {
      calls.signedTags++;
      await new Promise((r) => setTimeout(r, 5)); // concurrent misses overlap
      return signed;
    },
  };
  const up = { config: { name: 'lab' }, ...(opts.trust === false ? {} : { trust }) } as unknown as UpstreamDeps;
  const ports: DecidePorts<CachedManifest> = {
    dct: { resolve: async () => Promise.reject(fail('TAG_NOT_SIGNED', 'x')), signedTagForDigest: async (d) => signed.find((s) => s.digest === d), label: () => 'dct' },
    prove: async (kind) => Promise.reject(fail(kind === 'cosign' ? 'COSIGN_UNSIGNED' : 'NOTATION_UNSIGNED', 'none')),
    bySignedDigest: async () => Promise.reject(new Error('unused')),
    byTag: async () => Promise.reject(new Error('unused')),
    keep: () => undefined,
    missingSource: () => undefined,
  };
  const load = async (digest: string, length: number | undefined) => {
    calls.loads.push(digest);
    const m = manifests.get(digest);
    if (!m) throw fail('MANIFEST_UNKNOWN', `no ${digest}`);
    if (length !== undefined && m.bytes.length !== length) throw fail('DIGEST_MISMATCH', 'length');
    return m;
  };
  const eff = (of: SignatureKind[] = ['dct']): EffectivePolicy => ({ policy: 'enforce', require: { mode: 'any-of', of, label: of.join(',') }, digestPulls: 'signed' });
  const cover = (child: string, e = eff()) => coveredByParents(deps, up, e, 'reg/app', 'app', child, ports, load)(new Refusals());
  const served = (m: CachedManifest, decision: 'allow' | 'audit-allow' = 'allow', repo = 'app') =>
    noteServedIndex(deps, { outcome: 'serve', audit: { upstream: 'lab', gun: `reg/${repo}`, repo, ref: 'v1', decision, policy: 'enforce' }, manifest: m, digest: digestOf(m.bytes), proofs: [] } as Decision<CachedManifest>);
  return { deps, calls, manifests, cover, served, eff, tick: (ms: number) => void (now += ms) };
}

describe('the scan of signed targets (no record)', () => {
  const idx = indexOf([CHILD]);

  it('finds the signed index listing the child and names it', async () => {
    const s = setup({ signed: [{ tag: 'v1', m: idx }, { tag: 'single', m: image }] });
    expect(await s.cover(CHILD)).toBe(`index ${digestOf(idx.bytes)} (dct targets tag v1)`);
    expect(await s.cover(OTHER)).toBeUndefined();
  });

  it('is single-flight: 50 concurrent misses make one scan', async () => {
    const s = setup({ signed: [{ tag: 'v1', m: idx }] });
    const got = await Promise.all(Array.from({ length: 50 }, (_, i) => s.cover(i % 2 ? CHILD : hex(100 + i))));
    expect(got.filter(Boolean)).toHaveLength(25);
    expect(s.calls.signedTags).toBe(1);
    expect(s.calls.debug).toBe(1);
  });

  it('is reused for cache.tagTtlSeconds, then made again', async () => {
    const s = setup({ signed: [{ tag: 'v1', m: idx }], tagTtlSeconds: 10 });
    await s.cover(OTHER);
    s.tick(9_999);
    await s.cover(hex(7));
    expect(s.calls.signedTags).toBe(1);
    s.tick(2);
    await s.cover(hex(8));
    expect(s.calls.signedTags).toBe(2);
  });

  it('is reused for at least 1 s even with cache.tagTtlSeconds: 0', async () => {
    const s = setup({ signed: [{ tag: 'v1', m: idx }], tagTtlSeconds: 0 });
    await s.cover(OTHER);
    await s.cover(hex(9));
    expect(s.calls.signedTags).toBe(1);
  });

  it('fetches at most limits.maxTagsListed distinct signed digests', async () => {
    const many = Array.from({ length: 5 }, (_, i) => ({ tag: `t${i}`, m: indexOf([hex(50 + i)], i) }));
    // A digest signed under two tags counts once.
    const s = setup({ signed: [many[0]!, { tag: 'again', m: many[0]!.m }, ...many.slice(1)], maxTagsListed: 3 });
    expect(await s.cover(hex(52))).toBeDefined();
    expect(await s.cover(hex(53))).toBeUndefined(); // the 4th signed digest was not scanned
    expect(s.calls.loads.filter((d) => d !== digestOf(many[2]!.m.bytes))).toHaveLength(2);
  });

  it('skips a signed target whose manifest cannot be had, and still finds the others', async () => {
    const s = setup({ signed: [{ tag: 'gone', m: indexOf([CHILD], 1) }, { tag: 'v1', m: idx }] });
    s.manifests.delete(digestOf(indexOf([CHILD], 1).bytes));
    expect(await s.cover(CHILD)).toBe(`index ${digestOf(idx.bytes)} (dct targets tag v1)`);
  });

  it('is not made when the requirement has no dct, or the upstream no trust service', async () => {
    const s = setup({ signed: [{ tag: 'v1', m: idx }] });
    expect(await s.cover(CHILD, s.eff(['cosign']))).toBeUndefined();
    expect(s.calls.signedTags).toBe(0);
    const t = setup({ signed: [{ tag: 'v1', m: idx }], trust: false });
    expect(await t.cover(CHILD)).toBeUndefined();
  });
});

describe('the record of indexes served allow', () => {
  it('gives the parent without a scan', async () => {
    const idx = indexOf([CHILD]);
    const s = setup({ signed: [{ tag: 'v1', m: idx }] });
    s.served(idx);
    expect(await s.cover(CHILD)).toBe(`index ${digestOf(idx.bytes)} (dct targets tag v1)`);
    expect(s.calls.signedTags).toBe(0);
  });

  it('is only a hint: a recorded parent no longer covered does not cover (and the scan is asked)', async () => {
    const idx = indexOf([CHILD]);
    const s = setup({ signed: [] });
    s.manifests.set(digestOf(idx.bytes), idx);
    s.served(idx);
    expect(await s.cover(CHILD)).toBeUndefined();
    expect(s.calls.signedTags).toBe(1);
  });

  it('keeps nothing from audit-allow, from another repository, or from a manifest that is not an index', async () => {
    const idx = indexOf([CHILD]);
    const s = setup({ signed: [] });
    s.manifests.set(digestOf(idx.bytes), idx);
    s.served(idx, 'audit-allow');
    s.served(idx, 'allow', 'elsewhere');
    s.served(image);
    await s.cover(CHILD, s.eff(['cosign']));
    expect(s.calls.loads).toEqual([]);
  });

  it(`holds at most ${MAX_RECORDED_CHILDREN} children, the least recently recorded dropped first`, async () => {
    const s = setup({ signed: [] });
    const first = indexOf([CHILD], -1);
    s.manifests.set(digestOf(first.bytes), first);
    s.served(first);
    for (let i = 0; i < MAX_RECORDED_CHILDREN / 1000; i++) s.served(indexOf(Array.from({ length: 1000 }, (_, j) => hex(10_000 + i * 1000 + j)), i));
    await s.cover(CHILD, s.eff(['cosign']));
    expect(s.calls.loads).toEqual([]); // CHILD's entry was evicted
  });
});
