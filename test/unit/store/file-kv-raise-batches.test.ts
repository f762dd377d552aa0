// The file store's version raises of one key merged into one read-merge-write while another is in
// flight (a group commit): every verification raises the shared verified-record index key, and raises
// one after another made 50 new GUNs wait up to 90 ms on it. Each raise is still answered only once a
// write holding its versions is done, and nothing is lost or lowered.
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileKv } from '../../../src/store/file-kv.js';

const fresh = () => {
  const path = mkdtempSync(join(tmpdir(), 'trustgate-raise-batches-'));
  return { path, kv: new FileKv(path, Date.now, { sweepSeconds: 0 }) };
};

/** The key's floors as on disk now (what a restarted process would read). */
function onDisk(path: string): Record<string, number> {
  const f = readdirSync(join(path, 'kv')).find((n) => n.endsWith('.versions'))!;
  return JSON.parse(readFileSync(join(path, 'kv', f), 'utf8')) as Record<string, number>;
}

describe('file store: concurrent raises of one key', () => {
  it('50 raises at once are one write; each is answered with its version durable, none lost', async () => {
    const { path, kv } = fresh();
    const answers = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const merged = await kv.raiseVersions('dct:verified-index:n', { [`gun${i}`]: 100 + i });
        // Answered: on disk already, as the answer says.
        expect(onDisk(path)[`gun${i}`]).toBe(100 + i);
        return merged;
      }),
    );
    expect(kv.versionWrites).toBe(1);
    for (const [i, m] of answers.entries()) expect(m[`gun${i}`]).toBe(100 + i);
    expect(Object.keys(onDisk(path))).toHaveLength(50);
  });

  it('raises arriving while a write is in flight form the next batch; a lower value never lowers a floor', async () => {
    const { path, kv } = fresh();
    const first = kv.raiseVersions('floors', { timestamp: 5 });
    await new Promise((r) => setImmediate(r)); // the first write has started
    const later = [kv.raiseVersions('floors', { timestamp: 3, snapshot: 2 }), kv.raiseVersions('floors', { targets: 7 }), kv.raiseVersions('floors', { snapshot: 4 })];
    expect(await first).toEqual({ timestamp: 5 });
    const got = await Promise.all(later);
    expect(kv.versionWrites).toBe(2);
    for (const g of got) expect(g).toEqual({ timestamp: 5, snapshot: 4, targets: 7 });
    expect(onDisk(path)).toEqual({ timestamp: 5, snapshot: 4, targets: 7 });
    // Other keys are not held back by this one's batches.
    await kv.raiseVersions('other', { root: 1 });
    expect(kv.versionWrites).toBe(3);
  });
});
