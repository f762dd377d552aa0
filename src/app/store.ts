// The store and trust pinning, built the same way for every command (start, bundle, resign) from a
// validated config.
import { readConfigFile } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../observe/logger.js';
import { FileKv } from '../store/file-kv.js';
import type { KvStore } from '../store/kv.js';
import { MemoryKv } from '../store/memory-kv.js';
import { RedisKv } from '../store/redis-kv.js';
import { ReplicaTrustState } from '../store/replica-trust-state.js';
import { TieredKv } from '../store/tiered-kv.js';
import type { Clock } from '../signatures/dct/client.js';
import type { TrustPinning } from '../signatures/dct/verify/root.js';

/** L1 memory in front of the embedded file store (default) or Redis (fleets). */
export function buildKv(config: Config, log?: Logger, onGet?: (layer: string, result: 'hit' | 'miss' | 'error') => void): TieredKv {
  const l2 = config.store.kind === 'file' ? new FileKv(config.store.path, Date.now, { maxBytes: config.store.maxBytes }) : new RedisKv(config.store.url, config.store.prefix);
  return new TieredKv(new MemoryKv(), l2, log, 5, onGet);
}

/**
 * The rollback state a replica serves from: its own record in front of the shared store. With the file
 * store the store is the replica's own; with Redis the record is a file store under `store.localPath`.
 */
export function replicaTrustStateFor(config: Config, kv: KvStore, clock: Clock, log?: Logger): { state: ReplicaTrustState; close(): Promise<void> } {
  const pinning = pinningOf(config);
  if (config.store.kind === 'file') return { state: new ReplicaTrustState({ local: kv, pinning, clock, log }), close: async () => undefined };
  // Floors and roots only, never evicted (no TTL): a small directory, no cap of its own needed beyond the default.
  const local = new FileKv(config.store.localPath, Date.now, { sweepSeconds: 0 });
  return { state: new ReplicaTrustState({ local, shared: kv, pinning, clock, log }), close: () => local.close() };
}

export function pinningOf(config: Config): TrustPinning {
  return {
    certs: config.trustPinning.certs,
    ca: Object.fromEntries(Object.entries(config.trustPinning.ca).map(([p, f]) => [p, readConfigFile(f, `trust_pinning.ca.${p}`).toString('utf8')])),
    disableTofu: config.trustPinning.disableTofu,
  };
}

/** Key under which imported bundles are indexed in the store (status, expiry warnings). */
export const BUNDLE_INDEX_KEY = 'bundle:index';
