// Bounded fuzzing of the trust engine over mutated real notary metadata (notary's own 0.3 fixture):
// bit flips, truncation, wrong types, deep nesting, huge numbers, duplicate keys, long strings.
// Oracle: never a crash (only TrustgateErrors), never a hang, and never an answer other than the
// genuine one. A mutation of a hash-linked file (snapshot, targets, delegations, root) must be refused.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isTrustgateError } from '../../../src/errors.js';
import { TrustClient, type MetadataFetcher, type MetadataRequest } from '../../../src/signatures/dct/client.js';
import { MemoryTrustState } from '../../../src/signatures/dct/state/memory-state.js';

const GUN = 'docker.com/notary0.3/tst';
const NOW = new Date('2026-01-01T00:00:00Z');
const DIR = new URL('../../fixtures/notary0.3-tst/', import.meta.url);
const FILES = ['root', 'timestamp', 'snapshot', 'targets', 'targets/releases'] as const;
type FileName = (typeof FILES)[number];
const original = Object.fromEntries(FILES.map((f) => [f, readFileSync(new URL(`${f}.json`, DIR))])) as Record<FileName, Buffer>;

class MapFetcher implements MetadataFetcher {
  readonly source = 'fuzz';
  constructor(private readonly files: Record<string, Buffer>) {}
  async fetch(req: MetadataRequest): Promise<Uint8Array | null> {
    const b = req.version === undefined ? this.files[req.role] : undefined;
    if (!b) return null;
    if (b.length > req.maxBytes) return b.subarray(0, req.maxBytes + 1); // what a capped reader would see
    return b;
  }
}

async function lookup(files: Record<string, Buffer>, tag: string) {
  const client = new TrustClient({ fetcher: new MapFetcher(files), state: new MemoryTrustState(), clock: { now: () => NOW } });
  return client.lookup(GUN, tag);
}

// Deterministic PRNG (mulberry32) so a failure names a reproducible seed.
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Mutator = (b: Buffer, r: () => number) => Buffer;
const pick = <T,>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

// JSON-aware mutations work on the parsed value at a random path.
function mutateJson(b: Buffer, r: () => number, f: (v: unknown, r: () => number) => unknown): Buffer {
  const doc = JSON.parse(b.toString('utf8'));
  const paths: Array<[Record<string, unknown> | unknown[], string | number]> = [];
  const walk = (v: unknown) => {
    if (v && typeof v === 'object') {
      for (const [k, c] of Object.entries(v)) {
        paths.push([v as Record<string, unknown>, Array.isArray(v) ? Number(k) : k]);
        walk(c);
      }
    }
  };
  walk(doc);
  const [parent, key] = pick(r, paths);
  (parent as Record<string | number, unknown>)[key] = f((parent as Record<string | number, unknown>)[key], r);
  return Buffer.from(JSON.stringify(doc));
}

const MUTATORS: Record<string, Mutator> = {
  bitflip: (b, r) => {
    const out = Buffer.from(b);
    const n = 1 + Math.floor(r() * 4);
    for (let i = 0; i < n; i++) {
      const j = Math.floor(r() * out.length);
      out[j] = out[j]! ^ (1 << Math.floor(r() * 8));
    }
    return out;
  },
  truncate: (b, r) => b.subarray(0, Math.floor(r() * b.length)),
  insertByte: (b, r) => {
    const i = Math.floor(r() * b.length);
    return Buffer.concat([b.subarray(0, i), Buffer.from([Math.floor(r() * 256)]), b.subarray(i)]);
  },
  wrongType: (b, r) =>
    mutateJson(b, r, (_v, r2) => pick(r2, [null, true, 0, -1, 1.5, '', 'x', [], {}, [1, 2], { a: 1 }] as unknown[])),
  hugeNumber: (b, r) => mutateJson(b, r, (_v, r2) => pick(r2, [1e308, 2 ** 64, -(2 ** 63), 2 ** 53, Number.MAX_SAFE_INTEGER])),
  longString: (b, r) => mutateJson(b, r, () => 'A'.repeat(200_000 + Math.floor(r() * 100_000))),
  deepNesting: (b, r) => {
    // Spliced in as text: JSON.stringify itself would overflow the stack on such a value.
    const depth = 1000 + Math.floor(r() * 100_000);
    const s = mutateJson(b, r, () => '__DEEP__').toString('utf8');
    return Buffer.from(s.replace('"__DEEP__"', '['.repeat(depth) + ']'.repeat(depth)));
  },
  duplicateKey: (b, r) => {
    // Raw-text duplicate: `"version":N` → `"version":N,"version":M` (JSON.stringify cannot make one).
    const s = b.toString('utf8');
    const keys = [...s.matchAll(/"(version|expires|length|threshold|_type|keyid|sig|method)":/g)];
    if (keys.length === 0) return b;
    const m = pick(r, keys);
    const dup = m[1] === 'version' || m[1] === 'length' || m[1] === 'threshold' ? String(Math.floor(r() * 10)) : '"x"';
    return Buffer.from(s.slice(0, m.index) + `"${m[1]}":${dup},` + s.slice(m.index));
  },
  hugeNumberText: (b, r) => {
    const s = b.toString('utf8');
    const nums = [...s.matchAll(/"(version|length|threshold)":(\d+)/g)];
    if (nums.length === 0) return b;
    const m = pick(r, nums);
    const rep = pick(r, ['1e400', '99999999999999999999999', '-0', '1.0', '1e2', '0x10', 'NaN']);
    return Buffer.from(s.slice(0, m.index) + `"${m[1]}":${rep}` + s.slice(m.index! + m[0].length));
  },
};

// Files whose bytes are hash-linked from a signed parent: any byte change must be refused.
const HASH_LINKED: readonly FileName[] = ['root', 'snapshot', 'targets', 'targets/releases'];
const TAGS = ['hello', 'LICENSE'];
const CASES_PER_MUTATOR = 60;

describe('fuzz: mutated real notary metadata', () => {
  it('baseline: the unmutated fixture resolves', async () => {
    await expect(lookup(original, 'hello')).resolves.toMatchObject({ role: 'targets/releases', length: 0 });
    await expect(lookup(original, 'LICENSE')).resolves.toMatchObject({ role: 'targets', length: 11309 });
  });

  it.each(Object.keys(MUTATORS))(
    '%s: never a crash, hang or wrong accept',
    async (name) => {
      const baseline = Object.fromEntries(await Promise.all(TAGS.map(async (t) => [t, await lookup(original, t)])));
      const r = rng([...name].reduce((h, c) => h * 31 + c.charCodeAt(0), 7));
      let refused = 0;
      let slowest = 0;
      for (let i = 0; i < CASES_PER_MUTATOR; i++) {
        const file = pick(r, FILES);
        const mutated = MUTATORS[name]!(original[file], r);
        const files = { ...original, [file]: mutated };
        const tag = pick(r, TAGS);
        const t0 = performance.now();
        const outcome = await lookup(files, tag).then(
          (ok) => ({ ok }),
          (err: unknown) => ({ err }),
        );
        slowest = Math.max(slowest, performance.now() - t0);
        const where = `${name} case ${i} on ${file}.json (tag ${tag})`;
        if ('err' in outcome) {
          if (!isTrustgateError(outcome.err)) throw new Error(`${where}: crashed with ${String((outcome.err as Error)?.stack ?? outcome.err)}`);
          refused++;
          continue;
        }
        // Accepted: only legitimate if the bytes did not change (some mutators can be no-ops) or the
        // file is the timestamp, whose signature covers the canonical form rather than the bytes.
        expect(outcome.ok, where).toEqual(baseline[tag]);
        if (HASH_LINKED.includes(file)) expect(mutated.equals(original[file]), `${where}: accepted changed bytes`).toBe(true);
      }
      expect(slowest, `slowest case took ${slowest.toFixed(0)} ms`).toBeLessThan(2000);
      expect(refused).toBeGreaterThan(0);
    },
    60_000,
  );
});
