// The DCT trust service of one upstream, built the same way for `start` and for commands that resolve
// signed tags through the engine (`resign`): notary server (or air-gap bundle) → shared-store cache →
// verifying client → single-flight service. Returns undefined for an upstream without DCT.
import type { Config, UpstreamConfig } from '../config/schema.js';
import type { Metrics } from '../observe/metrics.js';
import type { KvStore } from '../store/kv.js';
import type { ReplicaTrustState } from '../store/replica-trust-state.js';
import { OfflineFetcher } from '../signatures/dct/bundle.js';
import { TrustClient, type Clock, type MetadataFetcher } from '../signatures/dct/client.js';
import { CachingFetcher } from '../signatures/dct/fetch/caching-fetcher.js';
import { InstrumentedFetcher } from '../signatures/dct/fetch/instrumented-fetcher.js';
import { FrozenFetcher } from '../signatures/dct/fetch/frozen-fetcher.js';
import { VerifiedRecords } from '../signatures/dct/state/verified-records.js';
import { TrustService } from '../signatures/dct/trust-service.js';
import { pinningOf, replicaTrustStateFor } from './store.js';
import { notaryFetcherFor } from './upstream-clients.js';

export interface DctTrust {
  service: TrustService;
  close(): Promise<void>;
}

export function dctTrustFor(
  config: Config,
  u: UpstreamConfig,
  env: NodeJS.ProcessEnv,
  kv: KvStore,
  clock: Clock,
  metrics?: Metrics,
  /**
   * This replica's rollback state over the store (app/store.ts replicaTrustStateFor), shared by the
   * upstreams of `start`; a command that builds one upstream alone gets its own (closed with it).
   */
  replica?: ReplicaTrustState,
): DctTrust | undefined {
  let source: MetadataFetcher | undefined;
  const notary = notaryFetcherFor(config, u, env);
  if (notary) {
    source = metrics ? new InstrumentedFetcher(notary, metrics) : notary;
  } else if (u.bundle) {
    // Air-gapped: the last imported metadata is the current metadata (CachingFetcher `offline`),
    // verified on every update, so the upstream serves until the bundle's earliest expiry, then refuses.
    source = new OfflineFetcher();
  }
  if (!source) return undefined;
  const own = replica ? undefined : replicaTrustStateFor(config, kv, clock);
  const state = replica ?? own!.state;
  // Rollback floors, trusted roots and verified metadata live in the store, so they survive restarts
  // and are shared by replicas; what each replica trusts itself (its roots and floors) it also keeps in
  // its own record, and shared copies are re-verified against it (ReplicaTrustState, CachingFetcher).
  const cached = new CachingFetcher(source, kv, {
    freshSeconds: u.bundle ? 0 : config.limits.trustCacheSeconds,
    staleIfError: true,
    offline: u.bundle,
    replica: state,
    now: () => clock.now().getTime(),
    // The file store holds this replica's rollback state too (replicaTrustStateFor): it is its own.
    ownStore: config.store.kind === 'file',
  });
  // Every live update records when it verified what: frozen trust resolves from the last such record
  // made at or before notary.frozenAt, and from then on never asks the notary server again.
  const records = notary ? new VerifiedRecords(kv, source.source) : undefined;
  const frozenAt = u.notary?.frozenAt;
  const frozen = records && frozenAt ? { at: frozenAt, fetcher: new FrozenFetcher(kv, records, frozenAt) } : undefined;
  if (frozenAt) metrics?.freezes.set(u.name, frozenAt);
  if (metrics) metrics.freezeClock = () => clock.now().getTime();
  const service = new TrustService({
    client: new TrustClient({ fetcher: cached, state, clock, pinning: pinningOf(config), frozen }),
    clock,
    cacheSeconds: config.limits.trustCacheSeconds,
    kv,
    fetcher: cached,
    records,
    frozenAt,
    // How old stale-if-error data is (the notary server unreachable): its last live verification.
    verifiedAt: records
      ? async (gun) => {
          const r = await records.read(gun);
          return r ? new Date(r.at) : undefined;
        }
      : undefined,
  });
  metrics?.trustData.set(u.name, (nowMs) => service.trustDataSummary(nowMs));
  return {
    service,
    close: async () => {
      await notary?.close();
      await own?.close();
    },
  };
}
