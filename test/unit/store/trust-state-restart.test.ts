// Rollback state on disk survives a restart: a new process (a new TrustClient over the same
// directory) refuses metadata older than what an earlier one accepted.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileKv } from '../../../src/store/file-kv.js';
import { KvTrustState } from '../../../src/store/kv-trust-state.js';
import { TrustClient, type MetadataFetcher } from '../../../src/signatures/dct/client.js';
import { buildRepo, makeCertKey, makeKey } from '../../support/signed-repo.js';

const GUN = 'example.com/team/app';
const dir = mkdtempSync(join(tmpdir(), 'trustgate-filestate-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const keys = { root: [makeCertKey({ cn: GUN })], targets: [makeKey('ecdsa')], snapshot: makeKey('ecdsa'), timestamp: makeKey('ed25519') };
const v1 = buildRepo({ gun: GUN, ...keys, tags: { a: Buffer.from('one') }, version: 1 });
const v2 = buildRepo({ gun: GUN, ...keys, tags: { a: Buffer.from('two') }, version: 2 });

function client(files: Map<string, Buffer>) {
  const fetcher: MetadataFetcher = { source: 'memory', fetch: async (r) => files.get(r.role) ?? null };
  return new TrustClient({ fetcher, state: new KvTrustState(new FileKv(dir)), clock: { now: () => new Date() } });
}

describe('rollback state on the file store', () => {
  it('keeps rollback floors across a restart', async () => {
    await expect(client(v2).lookup(GUN, 'a')).resolves.toMatchObject({ length: 3 });
    // "Restart": a fresh client and store object over the same directory, fed the older versions.
    await expect(client(v1).lookup(GUN, 'a')).rejects.toMatchObject({ code: 'ROLLBACK' });
    await expect(client(v2).lookup(GUN, 'a')).resolves.toBeDefined();
  });

  it('writes atomically: no temp files left, versions only rise under concurrent saves', async () => {
    const store = new KvTrustState(new FileKv(dir));
    const root = Buffer.from('{}');
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.save('x/y', { root, versions: { timestamp: 20 - i } })));
    expect((await store.load('x/y'))?.versions.timestamp).toBe(20);
    expect(readdirSync(join(dir, 'kv')).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});
