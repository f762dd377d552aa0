// The file store's disk bounds: store.maxBytes with least-recently-used eviction of values that have
// a TTL, values without one (trusted roots, bundle metadata) and version floors never evicted, and a
// sweeper for expired values, dead writers' temp files and expired locks.
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileKv } from '../../../src/store/file-kv.js';

const KiB = 1024;

/** What the values really occupy on disk: allocated blocks of every file under kv/. */
function diskBytes(path: string): { allocated: number; apparent: number; files: number } {
  let allocated = 0;
  let apparent = 0;
  const names = readdirSync(join(path, 'kv'));
  for (const n of names) {
    const st = statSync(join(path, 'kv', n));
    allocated += st.blocks * 512;
    apparent += st.size;
  }
  return { allocated, apparent, files: names.length };
}

describe('file store size cap (store.maxBytes)', () => {
  it('keeps the directory under the cap whatever is written, evicting least recently used first', async () => {
    const path = mkdtempSync(join(tmpdir(), 'trustgate-filekv-cap-'));
    const kv = new FileKv(path, Date.now, { maxBytes: 64 * KiB, sweepSeconds: 0 });
    await kv.set('hot', Buffer.alloc(KiB, 1), 3600);
    for (let i = 0; i < 300; i++) {
      await kv.set(`k${i}`, Buffer.alloc(KiB + (i % 7) * 100, 2), 3600);
      if (i % 10 === 0) expect(await kv.get('hot')).toBeDefined(); // used often: stays
      const d = diskBytes(path);
      expect(d.allocated).toBeLessThanOrEqual(64 * KiB);
    }
    expect(await kv.get('hot')).toBeDefined();
    expect(await kv.get('k299')).toBeDefined();
    expect(await kv.get('k0')).toBeUndefined(); // least recently used: evicted
    expect(await kv.usedBytes()).toBeLessThanOrEqual(64 * KiB);
    await kv.close();
  });

  it('keeps the least-recently-used order across a restart: reads touch the files', async () => {
    const path = mkdtempSync(join(tmpdir(), 'trustgate-filekv-restart-'));
    const fileOf = (key: string) => join(path, 'kv', createHash('sha256').update(key).digest('hex'));
    const kv = new FileKv(path, Date.now, { maxBytes: 64 * KiB, sweepSeconds: 0 });
    for (let i = 0; i < 10; i++) await kv.set(`v${i}`, Buffer.alloc(KiB, i), 3600);
    // Written an hour ago, in order v0..v9; then v0 and v1 (the oldest writes) are read.
    const past = Date.now() / 1000 - 3600;
    for (let i = 0; i < 10; i++) utimesSync(fileOf(`v${i}`), past + i, past + i);
    await kv.sweep(); // the index as a restarted process builds it: from modification times
    expect(await kv.get('v0')).toBeDefined();
    expect(await kv.get('v1')).toBeDefined();
    for (let t = 0; t < 100 && statSync(fileOf('v1')).mtimeMs < (past + 60) * 1000; t++) await new Promise((r) => setTimeout(r, 10)); // the touch is not awaited
    await kv.close();
    // A new process with room for 4 values (each is charged one 4 KiB block): the 2 used, the 2 newest.
    const next = new FileKv(path, Date.now, { maxBytes: 16 * KiB, sweepSeconds: 0 });
    await next.sweep();
    const kept = [];
    for (let i = 0; i < 10; i++) if (await next.get(`v${i}`)) kept.push(i);
    expect(kept).toEqual([0, 1, 8, 9]);
    await next.close();
  });

  it('never evicts values without a TTL nor version floors', async () => {
    const path = mkdtempSync(join(tmpdir(), 'trustgate-filekv-pinned-'));
    const kv = new FileKv(path, Date.now, { maxBytes: 32 * KiB, sweepSeconds: 0 });
    await kv.set('trust:root:a', Buffer.from('root'));
    await kv.raiseVersions('trust:floors:a', { root: 3 });
    for (let i = 0; i < 100; i++) await kv.set(`m${i}`, Buffer.alloc(2 * KiB), 600);
    expect((await kv.get('trust:root:a'))?.toString()).toBe('root');
    expect(await kv.getVersions('trust:floors:a')).toEqual({ root: 3 });
    expect(await kv.usedBytes()).toBeLessThanOrEqual(32 * KiB);
    await kv.close();
  });

  it('does not store a TTL value larger than the cap', async () => {
    const path = mkdtempSync(join(tmpdir(), 'trustgate-filekv-big-'));
    const kv = new FileKv(path, Date.now, { maxBytes: 16 * KiB, sweepSeconds: 0 });
    await kv.set('small', Buffer.from('x'), 60);
    await kv.set('big', Buffer.alloc(64 * KiB), 60);
    expect(await kv.get('big')).toBeUndefined();
    expect(await kv.get('small')).toBeDefined();
    await kv.close();
  });

  it('a second process over the same directory counts what is already there', async () => {
    const path = mkdtempSync(join(tmpdir(), 'trustgate-filekv-restart-'));
    const a = new FileKv(path, Date.now, { maxBytes: 40 * KiB, sweepSeconds: 0 });
    for (let i = 0; i < 8; i++) await a.set(`a${i}`, Buffer.alloc(3 * KiB), 600);
    await a.close();
    const b = new FileKv(path, Date.now, { maxBytes: 40 * KiB, sweepSeconds: 0 });
    expect(await b.usedBytes()).toBe(8 * 4 * KiB);
    for (let i = 0; i < 8; i++) await b.set(`b${i}`, Buffer.alloc(3 * KiB), 600);
    expect(diskBytes(path).allocated).toBeLessThanOrEqual(40 * KiB);
    expect(await b.get('b7')).toBeDefined();
    await b.close();
  });
});

describe('file store sweeper', () => {
  it('deletes expired values, temp files of dead writers and expired locks, and nothing else', async () => {
    const path = mkdtempSync(join(tmpdir(), 'trustgate-filekv-sweep-'));
    let now = Date.parse('2030-01-01T00:00:00Z');
    const kv = new FileKv(path, () => now, { sweepSeconds: 0 });
    await kv.set('short', Buffer.from('a'), 10);
    await kv.set('long', Buffer.from('b'), 3600);
    await kv.set('pinned', Buffer.from('c'));
    await kv.raiseVersions('floors', { timestamp: 1 });
    const held = await kv.tryLock('held', 60_000);
    expect(held).toBeDefined();
    await kv.tryLock('dead', 1000); // its holder "died": never released
    const tmp = join(path, 'kv', 'f'.repeat(64) + '.abc.tmp');
    writeFileSync(tmp, 'torn');
    utimesSync(tmp, new Date(Date.now() - 2 * 3600_000), new Date(Date.now() - 2 * 3600_000));
    const before = diskBytes(path).files;
    now += 20_000;
    const r = await kv.sweep();
    expect(r.removed).toBe(3); // short, the dead lock, the temp file
    expect(diskBytes(path).files).toBe(before - 3);
    expect(await kv.get('short')).toBeUndefined();
    expect((await kv.get('long'))?.toString()).toBe('b');
    expect((await kv.get('pinned'))?.toString()).toBe('c');
    expect(await kv.getVersions('floors')).toEqual({ timestamp: 1 });
    expect(await kv.tryLock('held', 1000)).toBeUndefined(); // still held
    await held!();
    await kv.close();
  });

  it('runs by itself every sweepSeconds', async () => {
    const path = mkdtempSync(join(tmpdir(), 'trustgate-filekv-timer-'));
    const kv = new FileKv(path, Date.now, { sweepSeconds: 1 });
    await kv.set('gone', Buffer.from('a'), 1);
    await kv.set('kept', Buffer.from('b'), 3600);
    const count = () => readdirSync(join(path, 'kv')).length;
    expect(count()).toBe(2);
    const deadline = Date.now() + 5000;
    while (count() !== 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(count()).toBe(1);
    await kv.close();
  });
});
