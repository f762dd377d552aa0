// The shared store is not a root of trust (issue 26), one check at a time, with replicas made in-process
// (each: its own local record, one shared MemoryKv standing in for Redis) over a signed mock repository:
// stored roots, floors and their proof, shared fresh timestamps, stale-if-error, the L1 layer and shared
// manifests. test/integration/store-tampering.test.ts does the same with redis-server and redis-cli.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fail } from '../../../src/errors.js';
import { FileKv } from '../../../src/store/file-kv.js';
import type { KvStore } from '../../../src/store/kv.js';
import { ManifestCache } from '../../../src/store/manifest-cache.js';
import { MemoryKv } from '../../../src/store/memory-kv.js';
import { ReplicaTrustState } from '../../../src/store/replica-trust-state.js';
import { TieredKv } from '../../../src/store/tiered-kv.js';
import { TrustClient, type MetadataFetcher, type MetadataRequest } from '../../../src/signatures/dct/client.js';
import { CachingFetcher } from '../../../src/signatures/dct/fetch/caching-fetcher.js';
import { parseEnvelope, parseRoot } from '../../../src/signatures/dct/model/metadata.js';
import { TrustService } from '../../../src/signatures/dct/trust-service.js';
import type { TrustPinning } from '../../../src/signatures/dct/verify/root.js';
import { isPinnedRoot, provenTimestampVersion } from '../../../src/signatures/dct/verify/stored-trust.js';
import { buildRepo, digestOf, fileForRequest, makeCertKey, makeKey, type Repo } from '../../support/notary-builder/index.js';

const GUN = 'example.com/team/app';
const T0 = Date.parse('2030-01-01T00:00:00Z');
const SOURCE = 'notary.test';
const FRESH = `meta:${SOURCE}:${GUN}:timestamp:fresh-at`;

/** The genuine repository (publish 1 → v1 = "one"), and the forger's, under keys of their own (v1 = "evil"). */
function repos() {
  const genuine = buildRepo({ gun: GUN, tags: { v1: 'one' } });
  const forged = buildRepo({
    gun: GUN,
    tags: { v1: 'evil' },
    rootKeys: [makeCertKey({ cn: GUN, label: 'forger root' })],
    targets: { keys: [makeKey('ecdsa', 'forger targets')] },
    snapshot: { keys: [makeKey('ecdsa', 'forger snapshot')] },
    timestamp: { keys: [makeKey('ecdsa', 'forger timestamp')] },
  });
  for (const role of ['root', 'timestamp', 'snapshot', 'targets']) forged.bump(role); // version 2: "newer"
  for (let i = 0; i < 8; i++) forged.relink({ bump: true }); // timestamp/snapshot version 10
  return { genuine, forged };
}

/** A new publish of `repo`: v1 now names `content`. */
function publish(repo: Repo, content: string): void {
  repo.resign('targets', (s) => {
    (s.targets as Record<string, unknown>).v1 = { hashes: { sha256: Buffer.from(digestOf(content).slice(7), 'hex').toString('base64') }, length: Buffer.byteLength(content) };
    s.version = (s.version as number) + 1;
  });
  repo.relink({ bump: true });
}

/** A notary server serving `repo()`'s files; `down` makes it unreachable. */
function server(repo: () => Repo) {
  const log: string[] = [];
  const s = {
    down: false,
    log,
    count: (file: string) => log.filter((f) => f === file).length,
    fetcher: {
      source: SOURCE,
      fetch: async (r: MetadataRequest) => {
        if (s.down) throw fail('NOTARY_UNAVAILABLE', 'connection refused');
        const file = r.sha256 && r.version === undefined ? `${r.role}.json` : fileForRequest(r);
        log.push(file);
        return repo().files.get(file) ?? null;
      },
    } satisfies MetadataFetcher,
  };
  return s;
}

interface Lab {
  now: number;
  shared: MemoryKv;
}

function lab(): Lab {
  const l: Lab = { now: T0, shared: undefined as unknown as MemoryKv };
  l.shared = new MemoryKv(64 << 20, () => l.now);
  return l;
}

/** One replica: its own local record over the lab's shared store, the trust service it serves from. */
function replica(l: Lab, net: MetadataFetcher, opts: { local?: KvStore; pinning?: TrustPinning; freshSeconds?: number } = {}) {
  const clock = { now: () => new Date(l.now) };
  const local = opts.local ?? new MemoryKv();
  const state = new ReplicaTrustState({ local, shared: l.shared, pinning: opts.pinning, clock });
  const cached = new CachingFetcher(net, l.shared, { freshSeconds: opts.freshSeconds ?? 300, staleIfError: true, replica: state, now: () => l.now });
  const service = new TrustService({ client: new TrustClient({ fetcher: cached, state, clock, pinning: opts.pinning }), clock, cacheSeconds: 0, kv: l.shared, fetcher: cached });
  return { service, state, local, resolve: (tag = 'v1') => service.resolve(GUN, tag) };
}

const rootKeyId = (repo: Repo) => (repo.signed('root').roles as { root: { keyids: string[] } }).root.keyids[0]!;
const pinsFor = (repo: Repo): TrustPinning => ({ certs: { [GUN]: [rootKeyId(repo)] }, disableTofu: true });
const fresh = (bytes: Buffer, fetchedAt: number) => Buffer.concat([Buffer.from(`tgfresh1 ${fetchedAt}\n`), bytes]);
const anchorOf = (repo: Repo) => {
  const env = parseEnvelope(repo.file('root'), 'root');
  return { root: parseRoot(env), env };
};

/** What a Redis writer plants: the forged root, timestamp (fresh and last), snapshot, targets, floors of 10. */
async function plantForgery(l: Lab, forged: Repo): Promise<void> {
  const hex = (role: string) => digestOf(forged.file(role)).slice(7);
  await l.shared.set(`trust:root:${GUN}`, forged.file('root'));
  await l.shared.set(FRESH, fresh(forged.file('timestamp'), l.now));
  await l.shared.set(`meta:${SOURCE}:${GUN}:timestamp:last`, forged.file('timestamp'));
  await l.shared.set(`meta:${SOURCE}:${GUN}:root:last`, forged.file('root'));
  for (const role of ['snapshot', 'targets']) await l.shared.set(`meta:${SOURCE}:${GUN}:${role}:${hex(role)}`, forged.file(role));
  await l.shared.raiseVersions(`trust:floors:${GUN}`, { root: 10, timestamp: 10, snapshot: 10, targets: 10 });
}

describe('pure checks on stored trust data', () => {
  const { genuine, forged } = repos();
  const now = new Date(T0);

  it('a stored root counts only under a pin that accepts it', () => {
    expect(isPinnedRoot(GUN, genuine.file('root'), undefined, now)).toBe(false);
    expect(isPinnedRoot(GUN, genuine.file('root'), { disableTofu: false }, now)).toBe(false); // TOFU is not for stored roots
    expect(isPinnedRoot(GUN, genuine.file('root'), pinsFor(genuine), now)).toBe(true);
    expect(isPinnedRoot(GUN, forged.file('root'), pinsFor(genuine), now)).toBe(false);
    expect(isPinnedRoot(GUN, genuine.file('root'), { certs: { 'other.example/*': [rootKeyId(genuine)] } }, now)).toBe(false);
    expect(isPinnedRoot(GUN, Buffer.from('{"signed":'), pinsFor(genuine), now)).toBe(false);
  });

  it('a timestamp proves its version only when the anchor root signed it', () => {
    expect(provenTimestampVersion(anchorOf(genuine), genuine.file('timestamp'))).toBe(1);
    expect(provenTimestampVersion(anchorOf(genuine), forged.file('timestamp'))).toBeUndefined();
    expect(provenTimestampVersion(anchorOf(forged), forged.file('timestamp'))).toBe(10);
    expect(provenTimestampVersion(anchorOf(genuine), Buffer.from('junk'))).toBeUndefined();
  });
});

describe('a root in the shared store', () => {
  it('is not a TOFU record: a replica without its own takes its first root from notary', async () => {
    const { genuine, forged } = repos();
    const l = lab();
    await plantForgery(l, forged);
    const net = server(() => genuine);
    const r = replica(l, net.fetcher);
    await expect(r.resolve()).resolves.toMatchObject({ digest: digestOf('one') });
    expect(net.count('root.json')).toBe(1);
    expect(net.count('timestamp.json')).toBe(1); // the planted fresh timestamp is not used for a GUN it did not know
    await expect(r.resolve('evil')).rejects.toMatchObject({ code: 'TAG_NOT_SIGNED' });
  });

  it('with trust pinning + disable_tofu: the forged root is refused by the pins, a pinned one is used as it is', async () => {
    const { genuine, forged } = repos();
    const l = lab();
    await plantForgery(l, forged);
    const net = server(() => genuine);
    await expect(replica(l, net.fetcher, { pinning: pinsFor(genuine) }).resolve()).resolves.toMatchObject({ digest: digestOf('one') });
    expect(net.count('root.json')).toBe(1);
    // The genuine root in the store passes the pins: another pinned replica needs no root from notary.
    await l.shared.set(`trust:root:${GUN}`, genuine.file('root'));
    const before = net.count('root.json');
    await expect(replica(l, net.fetcher, { pinning: pinsFor(genuine) }).resolve()).resolves.toMatchObject({ digest: digestOf('one') });
    expect(net.count('root.json')).toBe(before);
  });

  it('never replaces the root a replica trusted itself', async () => {
    const { genuine, forged } = repos();
    const l = lab();
    const net = server(() => genuine);
    const local = new MemoryKv();
    await replica(l, net.fetcher, { local }).resolve();
    await plantForgery(l, forged);
    const restarted = replica(l, net.fetcher, { local });
    expect(Buffer.from((await restarted.state.load(GUN))!.root!).equals(genuine.file('root'))).toBe(true);
    await expect(restarted.resolve()).resolves.toMatchObject({ digest: digestOf('one') }); // forged fresh refused, re-fetched
  });
});

describe('rollback floors', () => {
  it('are the replica’s own: a lowered shared floor does not lower them, and they survive a restart on disk', async () => {
    const { genuine } = repos();
    const old = genuine.copy();
    publish(genuine, 'two');
    const l = lab();
    let serving = genuine;
    const net = server(() => serving);
    const dir = mkdtempSync(join(tmpdir(), 'trustgate-replica-'));
    await expect(replica(l, net.fetcher, { local: new FileKv(dir) }).resolve()).resolves.toMatchObject({ digest: digestOf('two') });
    l.shared = new MemoryKv(64 << 20, () => l.now); // Redis lost or lowered every floor
    serving = old; // and notary (or the network) replays the older publish
    const restarted = replica(l, net.fetcher, { local: new FileKv(dir) });
    await expect(restarted.resolve()).rejects.toMatchObject({ code: 'ROLLBACK' });
    expect((await restarted.state.load(GUN))!.versions.timestamp).toBe(2);
  });

  it('forged in the store (version 10) lock nothing out: only a floor the anchor root signed counts', async () => {
    const { genuine, forged } = repos();
    const l = lab();
    await l.shared.raiseVersions(`trust:floors:${GUN}`, { root: 10, timestamp: 10, snapshot: 10, targets: 10 });
    await l.shared.set(`trust:floor-proof:${GUN}`, forged.file('timestamp')); // signed, but not by the GUN's root
    const net = server(() => genuine);
    await expect(replica(l, net.fetcher).resolve()).resolves.toMatchObject({ digest: digestOf('one') });
  });

  it('another replica saw, with its signed timestamp as proof, hold for a replica that saw less', async () => {
    const { genuine } = repos();
    const old = genuine.copy();
    publish(genuine, 'two');
    const l = lab();
    let serving = genuine;
    const net = server(() => serving);
    await replica(l, net.fetcher).resolve();
    expect(provenTimestampVersion(anchorOf(genuine), (await l.shared.get(`trust:floor-proof:${GUN}`))!)).toBe(2);
    serving = old;
    await expect(replica(l, net.fetcher).resolve()).rejects.toMatchObject({ code: 'ROLLBACK' });
  });
});

describe('a fresh timestamp in the shared store', () => {
  async function known() {
    const { genuine, forged } = repos();
    const l = lab();
    const net = server(() => genuine);
    const a = replica(l, net.fetcher);
    const b = replica(l, net.fetcher);
    await a.resolve();
    await b.resolve(); // b knows the GUN now (its own root)
    return { genuine, forged, l, net, a, b, ts: () => net.count('timestamp.json') };
  }

  it('is reused by a replica that knows the GUN, within the period, with the fetch time a replica wrote', async () => {
    const t = await known();
    const n = t.ts();
    t.l.now += 10_000;
    await t.b.resolve();
    expect(t.ts()).toBe(n);
  });

  it('is not used without a fetch time, with one from the future, or older than the period', async () => {
    const t = await known();
    const ts = t.genuine.file('timestamp');
    for (const planted of [ts, fresh(ts, t.l.now + 60_000), fresh(ts, t.l.now - 301_000), Buffer.from(`tgfresh1 x\n${ts}`)]) {
      await t.l.shared.set(FRESH, planted); // no TTL
      const n = t.ts();
      await t.b.resolve();
      expect(t.ts()).toBe(n + 1);
    }
  });

  it('planted without a TTL and re-planted as new, is reused for one period of the replica’s own clock at most', async () => {
    const t = await known();
    const ts = t.genuine.file('timestamp');
    const n = t.ts();
    for (let s = 0; s <= 240; s += 60) {
      t.l.now = T0 + 1000 + s * 1000;
      await t.l.shared.set(FRESH, fresh(ts, t.l.now)); // a header that always looks just fetched
      await t.b.resolve();
    }
    expect(t.ts()).toBe(n);
    t.l.now = T0 + 301_000; // b has used these bytes (first seen at T0) for longer than one period
    await t.l.shared.set(FRESH, fresh(ts, t.l.now));
    await t.b.resolve();
    expect(t.ts()).toBe(n + 1);
  });

  it('forged, or an older genuine one replayed: the update is retried from notary, never served', async () => {
    const t = await known();
    const old = t.genuine.copy();
    publish(t.genuine, 'two');
    t.l.now += 301_000; // past the period: the replicas see publish 2
    await t.a.resolve();
    await t.b.resolve();
    for (const planted of [t.forged.file('timestamp'), old.file('timestamp')]) {
      await t.l.shared.set(FRESH, fresh(planted, t.l.now));
      const n = t.ts();
      await expect(t.b.resolve()).resolves.toMatchObject({ digest: digestOf('two') });
      expect(t.ts()).toBe(n + 1);
    }
  });
});

describe('stale-if-error', () => {
  it('serves shared copies only for a GUN the replica trusted itself', async () => {
    const { genuine } = repos();
    const l = lab();
    const net = server(() => genuine);
    const a = replica(l, net.fetcher);
    await a.resolve();
    net.down = true;
    l.now += 600_000;
    await expect(a.resolve()).resolves.toMatchObject({ stale: true, digest: digestOf('one') });
    await expect(replica(l, net.fetcher).resolve()).rejects.toMatchObject({ code: 'NOTARY_UNAVAILABLE' });
  });
});

describe('the in-process layer (L1)', () => {
  it('holds what this process wrote or checked, never a value read from L2 as it is', async () => {
    const l2 = new MemoryKv();
    const l1 = new MemoryKv();
    const kv = new TieredKv(l1, l2, undefined, 60);
    await l2.set('planted', Buffer.from('x'));
    expect((await kv.get('planted'))?.toString()).toBe('x');
    expect(await l1.get('planted')).toBeUndefined();
    await kv.keep('planted', Buffer.from('x'));
    expect((await l1.get('planted'))?.toString()).toBe('x');
    await kv.set('mine', Buffer.from('y'));
    expect((await l1.get('mine'))?.toString()).toBe('y');
  });

  it('gets content-addressed metadata only once its hash matched its name', async () => {
    const { genuine } = repos();
    const l1 = new MemoryKv();
    const l2 = new MemoryKv();
    const kv = new TieredKv(l1, l2, undefined, 60);
    const snap = genuine.file('snapshot');
    const hex = digestOf(snap).slice(7);
    await l2.set(`meta:${SOURCE}:${GUN}:snapshot:${hex}`, Buffer.from('not the snapshot'));
    const cached = new CachingFetcher(server(() => genuine).fetcher, kv, { freshSeconds: 0, staleIfError: false });
    expect(Buffer.from((await cached.fetch({ gun: GUN, role: 'snapshot', sha256: hex, maxBytes: 1 << 20 }))!).equals(snap)).toBe(true);
    expect(await l1.get(`meta:${SOURCE}:${GUN}:snapshot:${hex}`)).toBeUndefined();
    await l2.set(`meta:${SOURCE}:${GUN}:snapshot:${hex}`, snap);
    await cached.fetch({ gun: GUN, role: 'snapshot', sha256: hex, maxBytes: 1 << 20 });
    expect((await l1.get(`meta:${SOURCE}:${GUN}:snapshot:${hex}`))?.equals(snap)).toBe(true);
  });
});

describe('manifests in the shared store', () => {
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: {}, layers: [] }));
  const key = `lab/team/app@${digestOf(bytes)}`;
  const loadFromUpstream = () => {
    const calls: number[] = [];
    return { calls, load: async () => (calls.push(1), { bytes, mediaType: 'application/vnd.oci.image.manifest.v1+json' }) };
  };

  it('are used when the bytes hash to the digest and the media type is the one they declare', async () => {
    const shared = new MemoryKv();
    await shared.set(`manifest:${key}`, Buffer.concat([Buffer.from('application/vnd.oci.image.manifest.v1+json\n'), bytes]));
    const up = loadFromUpstream();
    expect((await new ManifestCache(1 << 20, shared).getOrLoad(key, up.load)).bytes.equals(bytes)).toBe(true);
    expect(up.calls).toHaveLength(0);
  });

  it('without a mediaType of their own, take any well-formed media type, never one with a header in it', async () => {
    const bare = Buffer.from(JSON.stringify({ schemaVersion: 2, config: {}, layers: [] }));
    const k = `lab/team/app@${digestOf(bare)}`;
    const load = async () => ({ bytes: bare, mediaType: 'application/vnd.oci.image.manifest.v1+json' });
    const shared = new MemoryKv();
    await shared.set(`manifest:${k}`, Buffer.concat([Buffer.from('application/vnd.docker.distribution.manifest.v2+json\n'), bare]));
    expect((await new ManifestCache(1 << 20, shared).getOrLoad(k, load)).mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    await shared.set(`manifest:${k}`, Buffer.concat([Buffer.from('text/html; charset="x\r"\n'), bare]));
    expect((await new ManifestCache(1 << 20, shared).getOrLoad(k, load)).mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
  });

  for (const [what, value] of [
    ['other bytes', Buffer.concat([Buffer.from('application/vnd.oci.image.manifest.v1+json\n'), Buffer.from('{"schemaVersion":2}')])],
    ['another media type', Buffer.concat([Buffer.from('application/vnd.oci.image.index.v1+json\n'), bytes])],
    ['a header injection', Buffer.concat([Buffer.from('application/vnd.oci.image.manifest.v1+json\r\nx-evil: 1\n'), bytes])],
    ['no media type line', bytes],
  ] as const) {
    it(`with ${what} are fetched again from the upstream, and the copy removed`, async () => {
      const shared = new MemoryKv();
      await shared.set(`manifest:${key}`, value);
      const up = loadFromUpstream();
      const got = await new ManifestCache(1 << 20, shared).getOrLoad(key, up.load);
      expect(got).toMatchObject({ bytes, mediaType: 'application/vnd.oci.image.manifest.v1+json' });
      expect(up.calls).toHaveLength(1);
      expect((await shared.get(`manifest:${key}`))?.subarray(0, 43).toString()).toBe('application/vnd.oci.image.manifest.v1+json\n');
    });
  }
});
