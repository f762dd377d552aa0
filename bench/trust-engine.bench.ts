// Trust engine throughput on real notary-signed metadata (notary's 0.3 fixture: ecdsa-x509 root,
// ecdsa targets/snapshot/timestamp, rsa-x509 targets/releases):
//  - cold: a full verification from bytes (root TOFU, timestamp, snapshot, targets, delegation);
//  - warm: tag → digest from an already verified set (what a cache hit costs).
import { readFileSync } from 'node:fs';
import { TrustClient, type MetadataFetcher, type MetadataRequest } from '../src/signatures/dct/client.js';
import { resolveTag } from '../src/signatures/dct/resolve-tag.js';
import { MemoryTrustState } from '../src/signatures/dct/state/memory-state.js';
import { opsPerSecond, opsPerSecondAsync, printEnv, writeResults } from './lib/report.js';

const MS = Number(process.env.BENCH_MS ?? 2000);
const GUN = 'docker.com/notary0.3/tst';
const NOW = new Date('2026-01-01T00:00:00Z');
const dir = new URL('../test/fixtures/notary0.3-tst/', import.meta.url);
const files = Object.fromEntries(
  ['root', 'timestamp', 'snapshot', 'targets', 'targets/releases'].map((r) => [r, readFileSync(new URL(`${r}.json`, dir))]),
);
const fetcher: MetadataFetcher = {
  source: 'memory',
  fetch: async (req: MetadataRequest) => files[req.role] ?? null,
};
const fresh = () => new TrustClient({ fetcher, state: new MemoryTrustState(), clock: { now: () => NOW } });

printEnv();
const cold = await opsPerSecondAsync(() => fresh().lookup(GUN, 'hello'), MS);
const set = await fresh().update(GUN);
const warm = opsPerSecond(() => resolveTag(GUN, 'hello', set.targets, set.skipped), MS);
const rows = [
  { op: 'full verification of a 5-file metadata set from bytes (update + lookup; key and certificate decoding memoized)', opsPerSec: Math.round(cold) },
  { op: 'tag lookup from verified state', opsPerSec: Math.round(warm) },
];
console.log('| operation | per second |\n|---|---:|');
for (const r of rows) console.log(`| ${r.op} | ${r.opsPerSec.toLocaleString('en')} |`);
console.log(writeResults('trust-engine', { rows }));
