// One contract for every KvStore backend (distribution's cachecheck/suite.go idea): memory and file
// run it in test/unit, Redis in test/integration against a real redis-server.
import { describe, expect, it } from 'vitest';
import type { KvStore } from '../../src/store/kv.js';

export function runKvContract(name: string, make: () => Promise<KvStore> | KvStore, sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))): void {
  describe(`KvStore contract: ${name}`, () => {
    it('gets what was set, and undefined for what was not', async () => {
      const kv = await make();
      await kv.set('a', Buffer.from('one'));
      expect((await kv.get('a'))?.toString()).toBe('one');
      expect(await kv.get('missing')).toBeUndefined();
      await kv.set('a', Buffer.from('two'));
      expect((await kv.get('a'))?.toString()).toBe('two');
    });

    it('deletes a value, and deleting an absent one is not an error', async () => {
      const kv = await make();
      await kv.set('d', Buffer.from('x'), 60);
      await kv.delete('d');
      expect(await kv.get('d')).toBeUndefined();
      await kv.delete('never-set');
      await kv.set('d', Buffer.from('y'));
      expect((await kv.get('d'))?.toString()).toBe('y');
    });

    it('keeps binary values byte for byte', async () => {
      const kv = await make();
      const v = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      await kv.set('bin', v);
      expect((await kv.get('bin'))?.equals(v)).toBe(true);
    });

    it('expires values after their TTL', async () => {
      const kv = await make();
      await kv.set('t', Buffer.from('x'), 1);
      expect(await kv.get('t')).toBeDefined();
      await sleep(1100);
      expect(await kv.get('t')).toBeUndefined();
    });

    it('raises version floors and never lowers them, also under concurrent writers', async () => {
      const kv = await make();
      expect(await kv.getVersions('f')).toEqual({});
      expect(await kv.raiseVersions('f', { timestamp: 5, snapshot: 3 })).toEqual({ timestamp: 5, snapshot: 3 });
      expect(await kv.raiseVersions('f', { timestamp: 4, targets: 2 })).toEqual({ timestamp: 5, snapshot: 3, targets: 2 });
      await Promise.all(Array.from({ length: 30 }, (_, i) => kv.raiseVersions('f', { timestamp: 30 - i })));
      expect((await kv.getVersions('f')).timestamp).toBe(30);
    });

    it('grants a lock to one holder until it is released or expires', async () => {
      const kv = await make();
      const release = await kv.tryLock('l', 5000);
      expect(release).toBeDefined();
      expect(await kv.tryLock('l', 5000)).toBeUndefined();
      await release!();
      const again = await kv.tryLock('l', 200);
      expect(again).toBeDefined();
      await sleep(300);
      expect(await kv.tryLock('l', 200)).toBeDefined(); // the first expired by itself
    });

    it('reports health once it has answered', async () => {
      const kv = await make();
      await kv.get('anything');
      expect(kv.health().ok).toBe(true);
    });
  });
}
