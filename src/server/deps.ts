// What the HTTP layer is built from: injected, so tests build their own (STYLE.md "No global state").
import type { Config, UpstreamConfig } from '../config/schema.js';
import { fail, type TrustgateError } from '../errors.js';
import { missingSources, type EffectivePolicy } from '../policy/effective.js';
import type { AuditWriter, Logger } from '../observe/logger.js';
import type { Metrics } from '../observe/metrics.js';
import type { RegistryClient } from '../registry/registry-client.js';
import type { ManifestCache } from '../store/manifest-cache.js';
import type { Clock } from '../trust/client.js';
import type { TrustService } from '../trust/trust-service.js';
import type { NotationVerifier } from '../notation/notation-verifier.js';
import type { BlobCache } from '../blobcache/blob-cache.js';
import type { BlobCacheMetrics } from '../blobcache/cache-metrics.js';
import type { SendBudget } from '../blobcache/send-budget.js';

/** What a signature check over a digest proves: which kind, and who or what satisfied the policy. */
export interface SignatureProof {
  kind: 'notation' | 'cosign';
  /** For the X-Trustgate-Verified-By header and the audit line's `satisfiedBy`. */
  by: string;
  /** Check failures the policy only logs (Notation permissive/audit levels): written to the audit record. */
  logged?: readonly string[] | undefined;
}

/**
 * Notation and cosign sign digests, not tags: given the digest (and size) of a manifest, prove that a
 * signature of it satisfies the site's policy, or throw a TrustgateError with the refusal code.
 */
export interface DigestSignatureVerifier {
  verify(registry: RegistryClient, repositoryUri: string, repo: string, manifest: { digest: string; size: number; mediaType: string }): Promise<SignatureProof>;
}

/**
 * Where the signatures of an image are read: its own repository on its upstream's registry, or a
 * signature repository (cosign.repository, notation.repository) on the registry of the upstream whose
 * gun prefixes it — possibly another upstream, with its own URL, TLS and credentials.
 */
export interface SignatureSource {
  registry: RegistryClient;
  /** Repository name on that registry (without the gun). */
  repo: string;
  /** gun/repo, for messages. */
  name: string;
}

/** A configured signature repository (REGISTRY_HOST/REPOSITORY) → where to read it; built once at start. */
export type SignatureSources = (repository: string) => SignatureSource;

export interface UpstreamDeps {
  config: UpstreamConfig;
  registry: RegistryClient;
  /** Absent when the upstream has no notary server (policy off). */
  trust?: TrustService | undefined;
  /** Present when Notation signatures are configured for the upstream. */
  notation?: NotationVerifier | undefined;
  /** Digest signature checks by kind (notation, cosign), present where configured. */
  signatures?: Partial<Record<'notation' | 'cosign', DigestSignatureVerifier>> | undefined;
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
