// TrustService: cache until the cache period or the earliest expiry, single-flight for concurrent
// misses, and no stale set kept after a failure. Driven by the real notary 0.3 fixture and a clock.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TrustClient, type MetadataFetcher, type MetadataRequest } from '../../../src/signatures/dct/client.js';
import { MemoryTrustState } from '../../../src/signatures/dct/state/memory-state.js';
import { TrustService } from '../../../src/signatures/dct/trust-service.js';
import { MemoryKv } from '../../../src/store/memory-kv.js';
import { buildRepo, makeCertKey, makeKey } from '../../support/signed-repo.js';

const GUN = 'docker.com/notary0.3/tst';
const DIR = new URL('../../fixtures/notary0.3-tst/', import.meta.url);
const files = Object.fromEntries(['root', 'timestamp', 'snapshot', 'targets', 'targets/releases'].map((r) => [r, readFileSync(new URL(`${r}.json`, DIR))]));

function setup(cacheSeconds: number) {
  const fetched: string[] = [];
  let fail = false;
  const fetcher: MetadataFetcher = {
    source: 'test',
    fetch: async (req: MetadataRequest) => {
      fetched.push(req.role);
      await new Promise((r) => setTimeout(r, 5));
      if (fail) throw Object.assign(new Error('down'), { code: 'NOTARY_UNAVAILABLE' });
      return files[req.role] ?? null;
    },
  };
  let now = new Date('2026-01-01T00:00:00Z');
  const clock: { now: () => Date; nowMs?: () => number } = { now: () => now };
  const service = new TrustService({ client: new TrustClient({ fetcher, state: new MemoryTrustState(), clock }), clock, cacheSeconds });
  return { service, fetched, clock, advance: (ms: number) => (now = new Date(now.getTime() + ms)), setFail: (f: boolean) => (fail = f) };
}

describe('TrustService', () => {
  it('coalesces concurrent cold lookups into one fetch of each role', async () => {
    const { service, fetched } = setup(300);
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => service.resolve(GUN, i % 2 ? 'hello' : 'LICENSE')));
    expect(new Set(results.map((r) => r.digest)).size).toBe(2);
    expect(fetched.sort()).toEqual(['root', 'snapshot', 'targets', 'targets/releases', 'timestamp']);
  });

  it('reuses the verified set within the cache period and re-checks after it', async () => {
    const { service, fetched, advance } = setup(300);
    await service.resolve(GUN, 'hello');
    const n = fetched.length;
    advance(299_000);
    await service.resolve(GUN, 'hello');
    expect(fetched.length).toBe(n);
    advance(2_000);
    await service.resolve(GUN, 'hello');
    expect(fetched.length).toBeGreaterThan(n);
  });

  it('never uses a cached set past a role expiry', async () => {
    const { service, advance } = setup(10 ** 9);
    await service.resolve(GUN, 'hello');
    advance(365 * 24 * 3600 * 1000); // past the fixture root certificate's NotAfter (2026-07-25)
    await expect(service.resolve(GUN, 'hello')).rejects.toMatchObject({ code: 'EXPIRED' });
  });

  it('resolvedNow answers what resolve() did, only from a fresh set and a tag resolved before', async () => {
    const { service, advance } = setup(300);
    expect(service.resolvedNow(GUN, 'hello')).toBeUndefined(); // nothing verified yet
    const r = await service.resolve(GUN, 'hello');
    expect(service.resolvedNow(GUN, 'hello')).toBe(r);
    expect(service.resolvedNow(GUN, 'LICENSE')).toBeUndefined(); // signed, but never resolved: resolve() decides
    expect(service.resolvedNow(`${GUN}x`, 'hello')).toBeUndefined();
    advance(301_000); // past the cache period: the timestamp must be checked again, which is I/O
    expect(service.resolvedNow(GUN, 'hello')).toBeUndefined();
    const again = await service.resolve(GUN, 'hello');
    expect(service.resolvedNow(GUN, 'hello')).toBe(again);
    expect(again).not.toBe(r); // a new set: new answers
  });

  it('resolvedNow reads the clock through nowMs when the clock has it', async () => {
    const { service, clock } = setup(300);
    const r = await service.resolve(GUN, 'hello');
    let ms = new Date('2026-01-01T00:00:00Z').getTime();
    clock.nowMs = () => ms; // a millisecond reading that will run ahead of now()
    expect(service.resolvedNow(GUN, 'hello')).toBe(r);
    ms += 301_000;
    expect(service.resolvedNow(GUN, 'hello')).toBeUndefined();
  });

  it('lists the tags docker would pull', async () => {
    const { service } = setup(300);
    expect((await service.signedTags(GUN)).map((t) => `${t.tag}@${t.role}`).sort()).toEqual(['LICENSE@targets', 'change@targets', 'hello@targets/releases']);
  });
});

describe('TrustService memory bound', () => {
  it('keeps verified sets within its byte bound, evicting the least recently updated', async () => {
    const root = makeCertKey({ cn: 'example.com/*' });
    const repos = new Map(['example.com/a', 'example.com/b'].map((g) => [g, buildRepo({ gun: g, root: [root], targets: [makeKey('ecdsa')], tags: { v1: Buffer.from(g) } })]));
    const fetched: string[] = [];
    const fetcher: MetadataFetcher = {
      source: 'test',
      fetch: async (req: MetadataRequest) => {
        fetched.push(req.gun);
        return repos.get(req.gun)?.get(req.role) ?? null;
      },
    };
    const clock = { now: () => new Date() };
    const oneSet = Math.max(...[...repos.values()].map((r) => [...r.values()].reduce((n, b) => n + b.length, 0)));
    const service = new TrustService({ client: new TrustClient({ fetcher, state: new MemoryTrustState(), clock }), clock, cacheSeconds: 300, maxBytes: oneSet + 10 });
    await service.resolve('example.com/a', 'v1');
    await service.resolve('example.com/a', 'v1');
    expect(fetched.filter((g) => g === 'example.com/a')).toHaveLength(4); // once per role, then cached
    await service.resolve('example.com/b', 'v1'); // no room for both: a is evicted
    await service.resolve('example.com/a', 'v1');
    expect(fetched.filter((g) => g === 'example.com/a').length).toBeGreaterThan(4);
  });
});

describe('TrustService cold path: what overlaps what (issue 23)', () => {
  /** A gate a test opens by hand. */
  function gate() {
    let open: () => void = () => undefined;
    const p = new Promise<void>((r) => (open = r));
    return { p, open };
  }
  const until = async (cond: () => boolean) => {
    for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
    expect(cond()).toBe(true);
  };
  const fetcher: MetadataFetcher = { source: 'test', fetch: async (req) => files[req.role] ?? null };
  const clock = { now: () => new Date('2026-01-01T00:00:00Z') };

  it('tells `early` the target once the set verified, and answers only once the floors are saved', async () => {
    const saving = gate();
    const state = new MemoryTrustState();
    let saved = false;
    const save = state.save.bind(state);
    state.save = async (gun, s) => {
      await saving.p;
      await save(gun, s);
      saved = true;
    };
    const service = new TrustService({ client: new TrustClient({ fetcher, state, clock }), clock, cacheSeconds: 300 });
    const early: unknown[] = [];
    let answered = false;
    const p = service.resolve(GUN, 'hello', (t) => early.push(t)).then((t) => ((answered = true), t));
    await until(() => early.length === 1);
    await new Promise((r) => setTimeout(r, 20));
    expect(answered).toBe(false); // the floors are not saved yet: no answer
    saving.open();
    const t = await p;
    expect(saved).toBe(true);
    expect(early[0]).toEqual(t);
  });

  it('an update whose floors cannot be saved refuses, whatever `early` was told', async () => {
    const state = new MemoryTrustState();
    state.save = async () => {
      throw Object.assign(new Error('disk full'), { code: 'EIO' });
    };
    const service = new TrustService({ client: new TrustClient({ fetcher, state, clock }), clock, cacheSeconds: 300 });
    const early: unknown[] = [];
    await expect(service.resolve(GUN, 'hello', (t) => early.push(t))).rejects.toThrow('disk full');
    expect(early).toHaveLength(1); // a head start only: nothing was answered from it
    await expect(service.resolve(GUN, 'hello')).rejects.toThrow('disk full'); // and nothing kept
  });

  it('a tag that does not resolve tells `early` nothing', async () => {
    const service = new TrustService({ client: new TrustClient({ fetcher, state: new MemoryTrustState(), clock }), clock, cacheSeconds: 300 });
    const early: unknown[] = [];
    await expect(service.resolve(GUN, 'no-such-tag', (t) => early.push(t))).rejects.toMatchObject({ code: 'TAG_NOT_SIGNED' });
    expect(early).toEqual([]);
  });

  it('writes metadata copies beside the floor save, and answers only once both are written', async () => {
    const kv = new MemoryKv();
    const saving = gate();
    const writing = gate();
    const order: string[] = [];
    const state = new MemoryTrustState();
    const save = state.save.bind(state);
    state.save = async (gun, st) => {
      order.push('save started');
      await saving.p;
      await save(gun, st);
      order.push('floors saved');
    };
    const caching = {
      takeStale: () => false,
      discard: () => undefined,
      commit: async () => {
        order.push('commit started');
        await writing.p;
        order.push('committed');
      },
    };
    const service = new TrustService({ client: new TrustClient({ fetcher, state, clock }), clock, cacheSeconds: 300, kv, fetcher: caching });
    let answered = false;
    const p = service.resolve(GUN, 'hello').then(() => (answered = true));
    await until(() => order.length === 2);
    expect(order.sort()).toEqual(['commit started', 'save started']); // together, not one after the other
    saving.open();
    await until(() => order.includes('floors saved'));
    await new Promise((r) => setTimeout(r, 20));
    expect(answered).toBe(false); // the copies are not written yet
    expect(await kv.tryLock(`lock:update:${GUN}`, 1000)).toBeUndefined(); // the update lock is still held
    writing.open();
    await p;
    const release = await kv.tryLock(`lock:update:${GUN}`, 1000);
    expect(release).toBeDefined();
    await release!();
  });
});
