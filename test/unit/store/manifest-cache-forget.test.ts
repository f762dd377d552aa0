// Withdrawing a cached manifest (issue 27): delete() removes it from memory and the shared store;
// applyForgotten() drops the memory copy of what another process (`trustgate cache forget`) withdrew.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FORGOTTEN_KEY, ManifestCache, manifestStoreKey } from '../../../src/store/manifest-cache.js';
import { MemoryKv } from '../../../src/store/memory-kv.js';

const bytes = Buffer.from('{"schemaVersion":2}');
const key = `lab/team/app@sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const load = (calls: { n: number }) => async () => {
  calls.n++;
  return { bytes, mediaType: 'application/vnd.oci.image.manifest.v1+json' };
};

describe('ManifestCache withdrawal', () => {
  it('delete() removes a manifest from memory and from the shared store', async () => {
    const shared = new MemoryKv();
    const cache = new ManifestCache(1 << 20, shared);
    const calls = { n: 0 };
    await cache.getOrLoad(key, load(calls));
    expect(await shared.get(manifestStoreKey(key))).toBeDefined();
    await cache.delete(key);
    expect(cache.get(key)).toBeUndefined();
    expect(await shared.get(manifestStoreKey(key))).toBeUndefined();
    await cache.getOrLoad(key, load(calls));
    expect(calls.n).toBe(2); // loaded again: nothing was left to serve
  });

  it('applyForgotten() evicts what another process withdrew, once: a copy loaded again afterwards stays', async () => {
    const shared = new MemoryKv();
    const cache = new ManifestCache(1 << 20, shared);
    const calls = { n: 0 };
    await cache.getOrLoad(key, load(calls));
    await cache.applyForgotten();
    expect(cache.get(key)).toBeDefined(); // nothing withdrawn yet
    // What `trustgate cache forget` does from its own process.
    await shared.delete(manifestStoreKey(key));
    await shared.raiseVersions(FORGOTTEN_KEY, { [key]: 1000 });
    await cache.applyForgotten();
    expect(cache.get(key)).toBeUndefined();
    await cache.getOrLoad(key, load(calls));
    expect(calls.n).toBe(2);
    await cache.applyForgotten();
    expect(cache.get(key)).toBeDefined(); // the same withdrawal does not evict a fresh copy again
    await shared.raiseVersions(FORGOTTEN_KEY, { [key]: 2000 });
    await cache.applyForgotten();
    expect(cache.get(key)).toBeUndefined(); // a second forget does
  });
});
