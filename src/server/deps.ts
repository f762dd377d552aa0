// What the HTTP layer is built from: injected, so tests build their own (STYLE.md "No global state").
import type { Config, UpstreamConfig } from '../config/schema.js';
import { fail, type TrustgateError } from '../errors.js';
import { missingSources, type EffectivePolicy } from '../policy/effective.js';
import type { AuditWriter, Logger } from '../observe/logger.js';
import type { Metrics } from '../observe/metrics.js';
import type { RegistryClient } from '../registry/registry-client.js';
import type { ManifestCache } from '../store/manifest-cache.js';
import type { Clock } from '../signatures/dct/client.js';
import type { TrustService } from '../signatures/dct/trust-service.js';
import type { NotationVerifier } from '../signatures/notation/notation-verifier.js';
import type { BlobCache } from '../blobcache/blob-cache.js';
import type { BlobCacheMetrics } from '../blobcache/cache-metrics.js';
import type { SendBudget } from '../blobcache/send-budget.js';
import type { DigestProver } from '../signatures/port.js';
import { TagResolutions } from '../registry/tag-resolutions.js';

// The signature port moved to signatures/port.ts (adapters no longer import server/); re-exported
// for the handlers and the composition root.
export type { DigestProver, DigestSignatureVerifier, SignatureProof, SignatureSource, SignatureSources } from '../signatures/port.js';

export interface UpstreamDeps {
  config: UpstreamConfig;
  registry: RegistryClient;
  /** Absent when the upstream has no notary server (policy off). */
  trust?: TrustService | undefined;
  /** Present when Notation signatures are configured for the upstream. */
  notation?: NotationVerifier | undefined;
  /** Digest signature checks by kind (notation, cosign), present where configured. */
  signatures?: Partial<Record<'notation' | 'cosign', DigestProver>> | undefined;
  /** Tag → digest resolutions upstream, reused for cache.tagTtlSeconds (made on first use when absent). */
  tags?: TagResolutions | undefined;
}

const madeTags = new WeakMap<UpstreamDeps, TagResolutions>();

/** The upstream's tag resolutions: the composition root's, or one made here for deps built by hand (tests). */
export function tagResolutionsOf(deps: Pick<ServerDeps, 'config' | 'clock'>, up: UpstreamDeps): TagResolutions {
  if (up.tags) return up.tags;
  let t = madeTags.get(up);
  if (!t) madeTags.set(up, (t = new TagResolutions((deps.config.cache?.tagTtlSeconds ?? 10) * 1000, () => deps.clock.nowMs?.() ?? deps.clock.now().getTime())));
  return t;
}

/**
 * The request-time guard of the effective policy: TRUST_SOURCE_MISSING when it names a signature kind
 * this upstream has no verifier for. config check refuses such a configuration; reaching it anyway is
 * a refusal, never a pass. Past this check every kind the requirement names has its verifier.
 */
export function missingSourceRefusal(up: UpstreamDeps, eff: EffectivePolicy, what: string): TrustgateError | undefined {
  const missing = missingSources(eff, { dct: up.trust !== undefined, notation: up.signatures?.notation !== undefined, cosign: up.signatures?.cosign !== undefined });
  if (missing.length === 0) return undefined;
  return fail('TRUST_SOURCE_MISSING', `${what}: policy ${eff.policy} requires ${missing.join(', ')}, which upstream ${up.config.name} does not configure`);
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
  /** The verified blob cache on local disk; absent with `blobCache: false`. */
  blobCache?: BlobCache | undefined;
  blobCacheMetrics?: BlobCacheMetrics | undefined;
  /** The global budget blob sends lease their read buffers from (limits.sendBufferBytes). */
  sendBudget?: SendBudget | undefined;
  /** Set on SIGTERM: readiness turns 503 so load balancers stop sending new work. */
  lifecycle?: { draining: boolean } | undefined;
}
