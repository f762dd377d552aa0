// Frozen DCT trust (notary.frozenAt) with an injected clock and a counting metadata source: from the
// freeze on nothing is fetched, tags resolve from the set verified before it, timestamp and snapshot are
// checked at the freeze and the signer's roles at now, and state from after the freeze is never used.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MemoryKv } from '../../../src/store/memory-kv.js';
import { KvTrustState } from '../../../src/store/kv-trust-state.js';
import { TrustClient, type MetadataFetcher, type MetadataRequest } from '../../../src/signatures/dct/client.js';
import { CachingFetcher } from '../../../src/signatures/dct/fetch/caching-fetcher.js';
import { FrozenFetcher } from '../../../src/signatures/dct/fetch/frozen-fetcher.js';
import { VerifiedRecords } from '../../../src/signatures/dct/state/verified-records.js';
import { TrustService } from '../../../src/signatures/dct/trust-service.js';
import { buildRepo, makeCertKey, makeKey } from '../../support/signed-repo.js';

const GUN = 'example.com/team/app';
const T0 = Date.parse('2030-01-01T00:00:00Z');
const DAY = 86400e3;
const iso = (t: number) => new Date(t).toISOString();

/** A repository as notary-server signs it: timestamp and snapshot short-lived (`serverDays`), the rest long. */
function repo(tags: Record<string, Buffer>, serverDays: number, signerExpires = '2100-01-01T00:00:00Z') {
  return buildRepo({ gun: GUN, root: [makeCertKey({ cn: 'example.com/*', days: 36500 })], targets: [makeKey('ecdsa')], tags, expires: signerExpires, serverExpires: iso(T0 + serverDays * DAY) });
}

function setup(served: Map<string, Buffer>, frozenAt: number | undefined, kv = new MemoryKv(64 << 20, () => Date.now())) {
  let now = T0;
  let files = served;
  const requests: string[] = [];
  const net: MetadataFetcher = {
    source: 'notary.test',
    fetch: async (r: MetadataRequest) => {
      requests.push(r.role);
      return files.get(r.role) ?? null;
    },
  };
  const clock = { now: () => new Date(now) };
  const cached = new CachingFetcher(net, kv, { freshSeconds: 0, staleIfError: true });
  const records = new VerifiedRecords(kv, net.source);
  const at = frozenAt === undefined ? undefined : new Date(frozenAt);
  const frozen = at ? { at, fetcher: new FrozenFetcher(kv, records, at) } : undefined;
  const service = () =>
    new TrustService({ client: new TrustClient({ fetcher: cached, state: new KvTrustState(kv), clock, frozen }), clock, cacheSeconds: 300, kv, fetcher: cached, records, frozenAt: at });
  return { kv, records, service, requests, at: (t: number) => (now = t), serve: (f: Map<string, Buffer>) => (files = f) };
}

const A = Buffer.from('manifest A');
const B = Buffer.from('manifest B');
const sha = async (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('frozen DCT trust', () => {
  it('before the freeze nothing changes; from the freeze on the pre-freeze set serves, with no request', async () => {
    const t = setup(repo({ v1: A }, 14), T0 + DAY);
    const s = t.service();
    const live = await s.resolve(GUN, 'v1');
    expect(live.frozen).toBeUndefined();
    expect(live.digest).toBe(await sha(A));
    const before = t.requests.length;
    expect(before).toBeGreaterThan(0);
    t.at(T0 + 30 * DAY); // the timestamp (14 days) has long expired
    const frozen = await s.resolve(GUN, 'v1');
    expect(frozen).toMatchObject({ digest: await sha(A), frozen: iso(T0 + DAY) });
    await expect(s.resolve(GUN, 'unsigned')).rejects.toMatchObject({ code: 'TAG_NOT_SIGNED' });
    // A restarted replica (new service over the same store) resolves the same, still without a request.
    await expect(t.service().resolve(GUN, 'v1')).resolves.toMatchObject({ digest: await sha(A), frozen: iso(T0 + DAY) });
    expect(t.requests.length).toBe(before);
  });

  it('a clock stepped back before the freeze does not send the client back to the notary server', async () => {
    const t = setup(repo({ v1: A }, 14), T0 + DAY);
    await t.service().resolve(GUN, 'v1');
    let now = T0 + 2 * DAY;
    const records = new VerifiedRecords(t.kv, 'notary.test');
    const net: MetadataFetcher = { source: 'notary.test', fetch: async () => expect.unreachable('the notary server was asked') };
    const client = new TrustClient({ fetcher: net, state: new KvTrustState(t.kv), clock: { now: () => new Date(now) }, frozen: { at: new Date(T0 + DAY), fetcher: new FrozenFetcher(t.kv, records, new Date(T0 + DAY)) } });
    expect((await client.update(GUN)).frozenAt).toEqual(new Date(T0 + DAY));
    now = T0 + DAY - 60_000;
    expect((await client.update(GUN)).frozenAt).toEqual(new Date(T0 + DAY));
  });

  it('control: the same without frozenAt refuses the signed tag once the timestamp has expired', async () => {
    const t = setup(repo({ v1: A }, 14), undefined);
    await t.service().resolve(GUN, 'v1');
    t.at(T0 + 30 * DAY);
    await expect(t.service().resolve(GUN, 'v1')).rejects.toMatchObject({ code: 'EXPIRED' });
  });

  it('a server revived with other keys after the freeze is never asked, and the frozen digest stays', async () => {
    const t = setup(repo({ v1: A }, 14), T0 + DAY);
    await t.service().resolve(GUN, 'v1');
    const before = t.requests.length;
    t.serve(repo({ v1: B }, 60)); // new root, new keys, v1 → B, all fresh
    t.at(T0 + 2 * DAY);
    await expect(t.service().resolve(GUN, 'v1')).resolves.toMatchObject({ digest: await sha(A) });
    expect(t.requests.length).toBe(before);
  });

  it('a GUN with no state verified before the freeze is refused with FROZEN_NO_STATE', async () => {
    const t = setup(repo({ v1: A }, 14), T0 + DAY);
    t.at(T0 + 2 * DAY);
    await expect(t.service().resolve(GUN, 'v1')).rejects.toMatchObject({ code: 'FROZEN_NO_STATE' });
    expect(t.requests).toEqual([]);
  });

  it('state recorded after the freeze (a replica without frozenAt, a later bundle) is not used', async () => {
    const t = setup(repo({ v1: A }, 14), T0 + DAY);
    t.at(T0 + 2 * DAY);
    // Verified live by a service that has no freeze, at T0 + 2 days, into the same store.
    const live = setup(repo({ v1: A }, 14), undefined, t.kv);
    live.at(T0 + 2 * DAY);
    await live.service().resolve(GUN, 'v1');
    await expect(t.service().resolve(GUN, 'v1')).rejects.toMatchObject({ code: 'FROZEN_NO_STATE' });
  });

  it('the same set verified again after the freeze by a replica without frozenAt keeps its first instant', async () => {
    const served = repo({ v1: A }, 14);
    const t = setup(served, T0 + DAY);
    await t.service().resolve(GUN, 'v1');
    const live = setup(served, undefined, t.kv);
    live.at(T0 + 2 * DAY);
    await live.service().resolve(GUN, 'v1');
    t.at(T0 + 3 * DAY);
    await expect(t.service().resolve(GUN, 'v1')).resolves.toMatchObject({ digest: await sha(A), frozen: iso(T0 + DAY) });
  });

  it('state stored with the 30-day retention (verified before frozenAt was configured) is kept from the first frozen read on', async () => {
    let clock = T0;
    const kv = new MemoryKv(64 << 20, () => clock);
    const served = repo({ v1: A }, 14);
    // Verified by a replica without a freeze configured: record and files with the usual 30 days.
    const live = setup(served, undefined, kv);
    await live.service().resolve(GUN, 'v1');
    // frozenAt set later; the first frozen update, two days on, reads the set and keeps it.
    const t = setup(served, T0 + DAY, kv);
    t.at((clock = T0 + 2 * DAY));
    await expect(t.service().resolve(GUN, 'v1')).resolves.toMatchObject({ digest: await sha(A), frozen: iso(T0 + DAY) });
    // Forty days after it was verified, past the 30-day retention, a restarted replica still resolves it.
    t.at((clock = T0 + 40 * DAY));
    await expect(t.service().resolve(GUN, 'v1')).resolves.toMatchObject({ digest: await sha(A), frozen: iso(T0 + DAY) });
    // The control: never read while frozen, the same state is gone after 30 days.
    let clock2 = T0;
    const kv2 = new MemoryKv(64 << 20, () => clock2);
    await setup(served, undefined, kv2).service().resolve(GUN, 'v1');
    const t2 = setup(served, T0 + DAY, kv2);
    t2.at((clock2 = T0 + 40 * DAY));
    await expect(t2.service().resolve(GUN, 'v1')).rejects.toMatchObject({ code: 'FROZEN_NO_STATE' });
  });

  it('a timestamp that had already expired at the freeze does not serve (state must be current when frozen)', async () => {
    const t = setup(repo({ v1: A }, 1), T0 + 3 * DAY);
    await t.service().resolve(GUN, 'v1');
    t.at(T0 + 30 * DAY);
    await expect(t.service().resolve(GUN, 'v1')).rejects.toMatchObject({ code: 'EXPIRED', message: expect.stringContaining('before DCT trust was frozen') });
  });

  it("the signer's own roles keep their expiry after the freeze", async () => {
    const t = setup(repo({ v1: A }, 14, iso(T0 + 10 * DAY)), T0 + DAY);
    await t.service().resolve(GUN, 'v1');
    t.at(T0 + 5 * DAY);
    await expect(t.service().resolve(GUN, 'v1')).resolves.toMatchObject({ frozen: iso(T0 + DAY) });
    t.at(T0 + 11 * DAY);
    await expect(t.service().resolve(GUN, 'v1')).rejects.toMatchObject({ code: 'EXPIRED' });
  });

  it('a record whose files were swapped in the store is refused, never served', async () => {
    const t = setup(repo({ v1: A }, 14), T0 + DAY);
    await t.service().resolve(GUN, 'v1');
    const rec = (await t.records.read(GUN))!;
    await t.kv.set(t.records.fileKey(GUN, 'timestamp', rec.timestamp), Buffer.from('{"signed":{},"signatures":[]}'));
    t.at(T0 + 2 * DAY);
    await expect(t.service().resolve(GUN, 'v1')).rejects.toMatchObject({ code: 'FROZEN_NO_STATE' });
  });
});
