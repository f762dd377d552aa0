import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileKv } from '../../../src/store/file-kv.js';
import { MemoryKv } from '../../../src/store/memory-kv.js';
import { TieredKv } from '../../../src/store/tiered-kv.js';
import { runKvContract } from '../../support/kv-contract.js';

runKvContract('memory', () => new MemoryKv());
runKvContract('file', () => new FileKv(mkdtempSync(join(tmpdir(), 'trustgate-filekv-'))));
runKvContract('memory over file', () => new TieredKv(new MemoryKv(), new FileKv(mkdtempSync(join(tmpdir(), 'trustgate-tiered-'))), undefined, 1));

describe('file store shared by two processes', () => {
  it('raises floors without losing any under interleaved writers with separate instances', async () => {
    const path = mkdtempSync(join(tmpdir(), 'trustgate-filekv-shared-'));
    const a = new FileKv(path);
    const b = new FileKv(path);
    await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).raiseVersions('f', { [`r${i % 4}`]: i })));
    expect(await a.getVersions('f')).toEqual({ r0: 36, r1: 37, r2: 38, r3: 39 });
  });
});
