// The composition root's DCT trust (app/dct-trust.ts) with notary.frozenAt configured, over a
// store that lands the 30-day copies after the pinned (durable, no TTL) writes, as the file store
// sometimes did under load: the same file is written by the fetcher's commit and by VerifiedRecords,
// and whichever write landed last decided whether the frozen state outlived 30 days. Found by the
// frozen-trust integration test failing in CI with FROZEN_NO_STATE at +30 days.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dctTrustFor } from '../../../src/app/dct-trust.js';
import { validateConfig } from '../../../src/config/schema.js';
import { MemoryKv } from '../../../src/store/memory-kv.js';
import type { KvStore, SetOptions } from '../../../src/store/kv.js';
import { startHostileNotary, type HostileNotary } from '../../support/hostile-notary.js';
import { makePki, type Pki } from '../../support/pki.js';
import { buildRepo, makeCertKey, makeKey } from '../../support/signed-repo.js';

const GUN = 'example.com/team/app';
const DAY = 86400e3;
const MANIFEST = Buffer.from('manifest v1');

interface Write {
  key: string;
  ttl: number;
  copy: boolean;
}

/** A store that records every write and lets the copies and the expiring ones land a turn later. */
function laggingPins(inner: MemoryKv, writes: Write[]): KvStore {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop !== 'set') return Reflect.get(target, prop, receiver);
      return async (key: string, value: Buffer, ttl = 0, opts?: SetOptions) => {
        writes.push({ key, ttl, copy: opts?.copy === true });
        if (ttl !== 0 || opts?.copy) await new Promise((r) => setImmediate(r));
        return (target as KvStore).set(key, value, ttl, opts);
      };
    },
  }) as unknown as KvStore;
}

let dir: string;
let pki: Pki;
let notary: HostileNotary;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-frozen-pin-'));
  pki = await makePki(dir, 'pin');
  notary = await startHostileNotary({ gun: GUN, key: readFileSync(pki.keyFile), cert: readFileSync(pki.certFile) });
  // The server's roles expire in 14 days, as notary-server signs them: only the freeze serves at +31 days.
  const serverExpires = new Date(Date.now() + 14 * DAY).toISOString();
  for (const [role, bytes] of buildRepo({ gun: GUN, root: [makeCertKey({ cn: 'example.com/*', days: 3650 })], targets: [makeKey('ecdsa')], tags: { v1: MANIFEST }, serverExpires })) notary.files.set(role, bytes);
}, 60_000);

afterAll(async () => notary?.close());

function setup(frozenAt: Date | undefined) {
  let now = Date.now();
  const clock = { now: () => new Date(now) };
  const writes: Write[] = [];
  const mem = new MemoryKv(64 << 20, () => now);
  const kv = laggingPins(mem, writes);
  const config = validateConfig(
    {
      listen: '127.0.0.1:0',
      upstreams: [{ name: 'local', registry: 'http://127.0.0.1:5000', gun: 'example.com', policy: 'enforce', notary: { url: notary.url, ca: pki.caFile, ...(frozenAt ? { frozenAt: frozenAt.toISOString() } : {}) } }],
      default: 'local',
      store: { kind: 'file', path: join(dir, 'unused') },
    },
    't',
  );
  const trust = () => dctTrustFor(config, config.upstreams[0]!, {}, kv, clock)!;
  return { writes, trust, at: (t: number) => (now = t) };
}

/** Content-addressed metadata files (`meta:<source>:<gun>:<role>:<sha256>`). */
const files = (writes: Write[]) => writes.filter((w) => /^meta:.*:[0-9a-f]{64}$/.test(w.key));
const digest = `sha256:${createHash('sha256').update(MANIFEST).digest('hex')}`;

describe('frozen DCT state written by the composition root', () => {
  it('with a freeze configured every file of the verified set is durable and kept until evicted, and serves a month later', async () => {
    const frozenAt = new Date(Date.now() + DAY);
    const t = setup(frozenAt);
    const live = t.trust();
    await expect(live.service.resolve(GUN, 'v1')).resolves.toMatchObject({ digest });
    await live.close();
    const written = files(t.writes);
    expect(written.length).toBeGreaterThanOrEqual(4); // root, timestamp, snapshot, targets
    expect(written.filter((w) => w.ttl !== 0 || w.copy)).toEqual([]);
    // One writer per file: the record's (the fetcher's commit leaves them to it).
    expect(new Set(written.map((w) => w.key)).size).toBe(written.length);
    // 31 days on, the notary server gone: a restarted replica resolves from the frozen state alone.
    await notary.close();
    t.at(Date.now() + 31 * DAY);
    const later = t.trust();
    await expect(later.service.resolve(GUN, 'v1')).resolves.toMatchObject({ digest, frozen: frozenAt.toISOString() });
    await later.close();
  });
});

describe('without a freeze', () => {
  beforeAll(async () => {
    notary = await startHostileNotary({ gun: GUN, key: readFileSync(pki.keyFile), cert: readFileSync(pki.certFile) });
  });
  it('the fetched files are 30-day copies (the control: the store above does tell the two apart)', async () => {
    const serverExpires = new Date(Date.now() + 14 * DAY).toISOString();
    for (const [role, bytes] of buildRepo({ gun: GUN, root: [makeCertKey({ cn: 'example.com/*', days: 3650 })], targets: [makeKey('ecdsa')], tags: { v1: MANIFEST }, serverExpires })) notary.files.set(role, bytes);
    const t = setup(undefined);
    const live = t.trust();
    await expect(live.service.resolve(GUN, 'v1')).resolves.toMatchObject({ digest });
    await live.close();
    const written = files(t.writes);
    expect(written.length).toBeGreaterThanOrEqual(4);
    expect(written.filter((w) => w.copy).length).toBeGreaterThanOrEqual(2); // snapshot and targets: the fetcher's copies alone
    expect(written.filter((w) => w.ttl !== 30 * 86400)).toEqual([]);
  });
});
