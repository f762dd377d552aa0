// What the HTTP layer is built from: injected, so tests build their own (STYLE.md "No global state").
import type { Config, UpstreamConfig } from '../config/schema.js';
import type { AuditWriter, Logger } from '../observe/logger.js';
import type { Metrics } from '../observe/metrics.js';
import type { RegistryClient } from '../registry/registry-client.js';
import type { ManifestCache } from '../store/manifest-cache.js';
import type { Clock } from '../trust/client.js';
import type { TrustService } from '../trust/trust-service.js';
import type { NotationVerifier } from '../notation/notation-verifier.js';

export interface UpstreamDeps {
  config: UpstreamConfig;
  registry: RegistryClient;
  /** Absent when the upstream has no notary server (policy off). */
  trust?: TrustService | undefined;
  /** Present when Notation signatures are configured for the upstream. */
  notation?: NotationVerifier | undefined;
}

export interface ServerDeps {
  config: Config;
  upstreams: ReadonlyMap<string, UpstreamDeps>;
  manifests: ManifestCache;
  /** The shared store, for readiness. */
  kv?: { health(): { ok: boolean; detail?: string }; readonly kind: string } | undefined;
  log: Logger;
  /** The audit stream: one line per decision, written whatever the log level (observe/log-streams.ts). */
  audit?: AuditWriter | undefined;
  clock: Clock;
  metrics?: Metrics | undefined;
  /** Set on SIGTERM: readiness turns 503 so load balancers stop sending new work. */
  lifecycle?: { draining: boolean } | undefined;
}
