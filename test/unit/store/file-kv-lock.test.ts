// The file store's lock (single-flight of trust updates across workers and processes sharing the
// directory): one holder however many contend, a lock being written is never taken for expired, an
// expired one is broken, a live one never.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileKv } from '../../../src/store/file-kv.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-filekv-lock-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const lockFile = (key: string) => join(dir, 'kv', `${createHash('sha256').update(key).digest('hex')}.lock`);

describe('FileKv.tryLock', () => {
  it('gives the lock to exactly one of many concurrent contenders in two processes sharing the directory', async () => {
    for (let round = 0; round < 20; round++) {
      const [a, b] = [new FileKv(dir, Date.now, { sweepSeconds: 0 }), new FileKv(dir, Date.now, { sweepSeconds: 0 })];
      const got = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 ? a : b).tryLock(`lock:update:r${round}`, 15_000)));
      expect(got.filter(Boolean)).toHaveLength(1);
      await got.find(Boolean)!();
      // Released: the next contender gets it.
      expect(await a.tryLock(`lock:update:r${round}`, 15_000)).toBeDefined();
    }
  });

  it('an empty lock file (a holder between create and write) is held, not broken; after a minute it is', async () => {
    const kv = new FileKv(dir, Date.now, { sweepSeconds: 0 });
    await kv.tryLock('warm-up', 1000); // creates the directory
    writeFileSync(lockFile('k'), '');
    expect(await kv.tryLock('k', 15_000)).toBeUndefined();
    const past = Date.now() / 1000 - 120;
    utimesSync(lockFile('k'), past, past);
    expect(await kv.tryLock('k', 15_000)).toBeDefined();
  });

  it('an expired lock is broken, a live one never', async () => {
    let now = Date.now();
    const kv = new FileKv(dir, () => now, { sweepSeconds: 0 });
    expect(await kv.tryLock('k', 1000)).toBeDefined(); // its holder "died"
    expect(await kv.tryLock('k', 1000)).toBeUndefined();
    now += 2000;
    const release = await kv.tryLock('k', 1000);
    expect(release).toBeDefined();
    expect(await kv.tryLock('k', 1000)).toBeUndefined();
    await release!();
    expect(await kv.tryLock('k', 1000)).toBeDefined();
  });
});
