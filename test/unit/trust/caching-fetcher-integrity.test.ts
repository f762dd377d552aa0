// Store poisoning: content-addressed metadata is stored only once its bytes hash to the name it was
// fetched for, a copy read back that does not is deleted and fetched again, and a refused update
// leaves the store exactly as it was — so one bad answer cannot block the genuine data afterwards.
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileKv } from '../../../src/store/file-kv.js';
import { KvTrustState } from '../../../src/store/kv-trust-state.js';
import { MemoryKv } from '../../../src/store/memory-kv.js';
import { TrustClient, type MetadataFetcher, type MetadataRequest } from '../../../src/signatures/dct/client.js';
import { CachingFetcher } from '../../../src/signatures/dct/fetch/caching-fetcher.js';
import { TrustService } from '../../../src/signatures/dct/trust-service.js';
import type { KvStore } from '../../../src/store/kv.js';
import { buildRepo, makeCertKey, makeKey } from '../../support/signed-repo.js';

const GUN = 'example.com/team/app';
const files = buildRepo({ gun: GUN, root: [makeCertKey({ cn: GUN, days: 3650 })], targets: [makeKey('ecdsa')], tags: { v1: Buffer.from('manifest') } });
const hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const flip = (b: Buffer) => {
  const c = Buffer.from(b);
  c[c.length >> 1]! ^= 1;
  return c;
};

/** A notary server whose answers a test can replace, one request at a time. */
function server(overrides: Map<string, Buffer> = new Map()) {
  const log: string[] = [];
  const fetcher: MetadataFetcher = {
    source: 'notary.test',
    fetch: async (r: MetadataRequest) => {
      log.push(r.sha256 ? `${r.role}.${r.sha256.slice(0, 8)}` : r.role);
      // Snapshot and targets: the answer by checksum is replaced, and any request by name before it (the
      // first-contact prefetch) gets the replacement too without spending it.
      const once = overrides.get(r.role);
      if (once) {
        if (r.sha256 !== undefined || r.role === 'timestamp' || r.role === 'root') overrides.delete(r.role);
        return once;
      }
      return files.get(r.role) ?? null;
    },
  };
  return { fetcher, log, overrides };
}

function client(kv: KvStore, fetcher: MetadataFetcher) {
  const cached = new CachingFetcher(fetcher, kv, { freshSeconds: 0, staleIfError: true });
  const clock = { now: () => new Date('2030-01-01T00:00:00Z') };
  return new TrustService({ client: new TrustClient({ fetcher: cached, state: new KvTrustState(kv), clock }), clock, cacheSeconds: 0, kv, fetcher: cached });
}

/** Every file under the store directory with its bytes: "exactly as it was" is compared on these. */
function snapshot(path: string): Record<string, string> {
  const dir = join(path, 'kv');
  const out: Record<string, string> = {};
  for (const n of readdirSync(dir).sort()) if (!n.endsWith('.lock')) out[n] = readFileSync(join(dir, n)).toString('base64');
  return out;
}

describe('content-addressed metadata in the shared store', () => {
  it('one bad answer from the server is refused, not stored, and the good answers after it are accepted', async () => {
    const kv = new MemoryKv();
    const s = server(new Map([['targets', flip(files.get('targets')!)]]));
    await expect(client(kv, s.fetcher).resolve(GUN, 'v1')).rejects.toMatchObject({ code: 'HASH_MISMATCH' });
    const key = `meta:notary.test:${GUN}:targets:${hex(files.get('targets')!)}`;
    expect(await kv.get(key)).toBeUndefined();
    // Another replica sharing the store, the server honest again.
    await expect(client(kv, server().fetcher).resolve(GUN, 'v1')).resolves.toMatchObject({ tag: 'v1' });
    expect((await kv.get(key))?.equals(files.get('targets')!)).toBe(true);
  });

  it('a poisoned copy already in the store is deleted and fetched again', async () => {
    const kv = new MemoryKv();
    const key = `meta:notary.test:${GUN}:snapshot:${hex(files.get('snapshot')!)}`;
    await kv.set(key, flip(files.get('snapshot')!), 86400);
    const s = server();
    await expect(client(kv, s.fetcher).resolve(GUN, 'v1')).resolves.toMatchObject({ tag: 'v1' });
    expect(s.log.some((l) => l.startsWith('snapshot'))).toBe(true); // asked the server, not the bad copy
    expect((await kv.get(key))?.equals(files.get('snapshot')!)).toBe(true);
  });

  it('a good copy in the store is used without asking the server', async () => {
    const kv = new MemoryKv();
    await expect(client(kv, server().fetcher).resolve(GUN, 'v1')).resolves.toBeDefined();
    const s = server();
    await expect(client(kv, s.fetcher).resolve(GUN, 'v1')).resolves.toBeDefined();
    expect(s.log.filter((l) => l.includes('.'))).toEqual([]);
  });

  it('a refused update leaves the file store exactly as it was', async () => {
    const path = mkdtempSync(join(tmpdir(), 'trustgate-integrity-'));
    const kv = new FileKv(path, Date.now, { sweepSeconds: 0 });
    await kv.sweep(); // creates the directory
    // First contact, the targets altered: root, timestamp and snapshot were fine (and the snapshot
    // hashes to its name), but the update as a whole is refused, so none of it may be kept.
    await expect(client(kv, server(new Map([['targets', flip(files.get('targets')!)]])).fetcher).resolve(GUN, 'v1')).rejects.toMatchObject({
      code: 'HASH_MISMATCH',
    });
    expect(snapshot(path)).toEqual({});
    await expect(client(kv, server().fetcher).resolve(GUN, 'v1')).resolves.toBeDefined();
    const before = snapshot(path);
    expect(Object.keys(before).length).toBeGreaterThan(3);
    const ts = JSON.parse(files.get('timestamp')!.toString());
    ts.signed.version = 2;
    await expect(client(kv, server(new Map([['timestamp', Buffer.from(JSON.stringify(ts))]])).fetcher).resolve(GUN, 'v1')).rejects.toMatchObject({
      code: 'SIGNATURE_INVALID',
    });
    expect(snapshot(path)).toEqual(before);
    await kv.close();
  });
});

describe('negative cache', () => {
  it('is bounded in count, least recent first, and never written to the shared store', async () => {
    const kv = new MemoryKv();
    const asked: string[] = [];
    const fetcher: MetadataFetcher = { source: 'n', fetch: async (r) => (asked.push(r.gun), null) };
    const clock = { now: () => new Date('2030-01-01T00:00:00Z') };
    const svc = new TrustService({ client: new TrustClient({ fetcher, state: new KvTrustState(kv), clock }), clock, cacheSeconds: 300, kv, negativeEntries: 3 });
    for (const g of ['a/1', 'a/2', 'a/3', 'a/4']) await expect(svc.resolve(`example.com/${g}`, 'v')).rejects.toMatchObject({ code: 'TRUST_DATA_MISSING' });
    asked.length = 0;
    for (const g of ['a/2', 'a/3', 'a/4']) await expect(svc.resolve(`example.com/${g}`, 'v')).rejects.toMatchObject({ code: 'TRUST_DATA_MISSING' });
    expect(asked).toEqual([]); // remembered
    await expect(svc.resolve('example.com/a/1', 'v')).rejects.toMatchObject({ code: 'TRUST_DATA_MISSING' });
    expect(asked).toEqual(['example.com/a/1']); // evicted as the least recent
    expect(await kv.get('neg:example.com/a/1')).toBeUndefined();
  });
});
