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
