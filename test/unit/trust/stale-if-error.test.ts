// Stale-if-error with an injected clock: verified metadata keeps serving while the notary server is
// unreachable and unexpired, says so, and is refused once the timestamp expires.
import { describe, expect, it } from 'vitest';
import { fail } from '../../../src/errors.js';
import { MemoryKv } from '../../../src/store/memory-kv.js';
import { KvTrustState } from '../../../src/store/kv-trust-state.js';
import { TrustClient, type MetadataFetcher, type MetadataRequest } from '../../../src/signatures/dct/client.js';
import { CachingFetcher } from '../../../src/signatures/dct/fetch/caching-fetcher.js';
import { TrustService } from '../../../src/signatures/dct/trust-service.js';
import { buildRepo, makeCertKey, makeKey } from '../../support/signed-repo.js';

const GUN = 'example.com/team/app';
const T0 = Date.parse('2030-01-01T00:00:00Z');
const files = buildRepo({
  gun: GUN,
  root: [makeCertKey({ cn: 'example.com/*', days: 36500 })],
  targets: [makeKey('ecdsa')],
  tags: { v1: Buffer.from('m') },
  expires: '2100-01-01T00:00:00Z',
});
// A timestamp that expires one hour after T0, as a real one does 14 days after signing.
const shortTs = buildRepo({
  gun: GUN,
  root: [makeCertKey({ cn: 'example.com/*', days: 36500 })],
  targets: [makeKey('ecdsa')],
  tags: { v1: Buffer.from('m') },
  expires: new Date(T0 + 3600e3).toISOString(),
});

function setup(repo: Map<string, Buffer>) {
  let down = false;
  let now = T0;
  const requests: string[] = [];
  const net: MetadataFetcher = {
    source: 'notary.test',
    fetch: async (r: MetadataRequest) => {
      requests.push(r.role);
      if (down) throw fail('NOTARY_UNAVAILABLE', 'connection refused');
      return repo.get(r.role) ?? null;
    },
  };
  const kv = new MemoryKv(64 << 20, () => now);
  const clock = { now: () => new Date(now) };
  const cached = new CachingFetcher(net, kv, { freshSeconds: 300, staleIfError: true });
  const service = new TrustService({ client: new TrustClient({ fetcher: cached, state: new KvTrustState(kv), clock }), clock, cacheSeconds: 300, kv, fetcher: cached });
  return { service, requests, setDown: (d: boolean) => (down = d), advance: (ms: number) => (now += ms) };
}

describe('stale-if-error', () => {
  it('serves unexpired verified metadata while the server is down, and says so', async () => {
    const t = setup(files);
    await expect(t.service.resolve(GUN, 'v1')).resolves.toMatchObject({ stale: false });
    t.setDown(true);
    t.advance(600_000); // past the cache period and the shared timestamp's freshness
    await expect(t.service.resolve(GUN, 'v1')).resolves.toMatchObject({ stale: true, role: 'targets' });
    t.setDown(false);
    t.advance(10_000);
    await expect(t.service.resolve(GUN, 'v1')).resolves.toMatchObject({ stale: false });
  });

  it('refuses once the cached timestamp has expired', async () => {
    const t = setup(shortTs);
    await t.service.resolve(GUN, 'v1');
    t.setDown(true);
    t.advance(1800e3);
    await expect(t.service.resolve(GUN, 'v1')).resolves.toMatchObject({ stale: true });
    t.advance(3600e3);
    await expect(t.service.resolve(GUN, 'v1')).rejects.toMatchObject({ code: 'EXPIRED' });
  });

  it('refuses when the server is down and nothing was ever verified', async () => {
    const t = setup(files);
    t.setDown(true);
    await expect(t.service.resolve(GUN, 'v1')).rejects.toMatchObject({ code: 'NOTARY_UNAVAILABLE' });
  });

  it('within the cache period makes no request at all; after it, only the timestamp', async () => {
    const t = setup(files);
    await t.service.resolve(GUN, 'v1');
    const cold = t.requests.length;
    t.advance(60_000);
    await t.service.resolve(GUN, 'v1');
    expect(t.requests.length).toBe(cold);
    t.advance(600_000);
    await t.service.resolve(GUN, 'v1');
    expect(t.requests.slice(cold)).toEqual(['timestamp']);
  });
});
