// The file store after a crash (issue 26): temp files a dead writer of this host left are swept at
// open, a live writer's are not; a value file whose length disagrees with its header (torn) is read
// as absent and removed.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'node:fs/promises';
import { describe, expect, it, vi } from 'vitest';
import { FileKv } from '../../../src/store/file-kv.js';

const host = hostname().replace(/[^A-Za-z0-9-]/g, '_');
const nameOf = (key: string) => createHash('sha256').update(key).digest('hex');

/** The pid of a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
  return Number(r.stdout.trim());
}

describe('file store crash leftovers', () => {
  it('open() removes temp files of dead writers of this host, keeps live and foreign ones', async () => {
    const path = mkdtempSync(join(tmpdir(), 'trustgate-filekv-crash-'));
    mkdirSync(join(path, 'kv'));
    const base = join(path, 'kv', nameOf('k'));
    const dead = `${base}.${host}~${deadPid()}~aaaaaa.tmp`;
    const live = `${base}.${host}~${process.ppid}~bbbbbb.tmp`;
    const foreign = `${base}.otherhost~${deadPid()}~cccccc.tmp`;
    for (const f of [dead, live, foreign]) writeFileSync(f, 'partial');
    const kv = new FileKv(path, Date.now, { sweepSeconds: 0 });
    await kv.open();
    expect([dead, live, foreign].map((f) => existsSync(f))).toEqual([false, true, true]);
    await kv.close();
  });

  it('a torn value (shorter than its header says) is absent, and swept', async () => {
    const path = mkdtempSync(join(tmpdir(), 'trustgate-filekv-torn-'));
    const kv = new FileKv(path, Date.now, { sweepSeconds: 0 });
    await kv.set('a', Buffer.alloc(1000, 7));
    await kv.set('b', Buffer.alloc(1000, 8));
    const fileA = join(path, 'kv', nameOf('a'));
    expect(readFileSync(fileA).readBigUInt64BE(8)).toBe(1000n);
    truncateSync(fileA, 16 + 500);
    expect(await kv.get('a')).toBeUndefined();
    expect(existsSync(fileA)).toBe(false);
    // An empty file (a rename persisted before its data) and a torn one found at open are removed.
    const fileB = join(path, 'kv', nameOf('b'));
    truncateSync(fileB, 16 + 10);
    writeFileSync(join(path, 'kv', nameOf('c')), '');
    const again = new FileKv(path, Date.now, { sweepSeconds: 0 });
    await again.open();
    expect(readdirSync(join(path, 'kv'))).toEqual([]);
    expect(await again.get('b')).toBeUndefined();
  });
  it('a copy (set with `copy`) skips fdatasync, is read back at once, and what a power loss can leave of it reads as absent', async () => {
    const path = mkdtempSync(join(tmpdir(), 'trustgate-filekv-copy-'));
    const kv = new FileKv(path, Date.now, { sweepSeconds: 0 });
    const probe = await open(join(path, 'probe'), 'w'); // FileHandle's prototype, to count syncs
    const proto = Object.getPrototypeOf(probe) as { datasync(): Promise<void> };
    await probe.close();
    const sync = vi.spyOn(proto, 'datasync');
    try {
      await kv.set('durable', Buffer.alloc(100, 1));
      expect(sync).toHaveBeenCalledTimes(1);
      await kv.set('copy', Buffer.alloc(1000, 2), 60, { copy: true });
      expect(sync).toHaveBeenCalledTimes(1); // no sync for the copy
    } finally {
      sync.mockRestore();
    }
    expect(await kv.get('copy')).toEqual(Buffer.alloc(1000, 2));
    // Without the sync, a power loss can leave the renamed file empty or short: never other bytes.
    const file = join(path, 'kv', nameOf('copy'));
    truncateSync(file, 16 + 999);
    expect(await kv.get('copy')).toBeUndefined();
    await kv.set('copy', Buffer.alloc(1000, 2), 60, { copy: true });
    truncateSync(file, 0);
    expect(await kv.get('copy')).toBeUndefined();
  });
});
