// The composition root: a validated Config → the per-upstream runtime the proxy serves from (registry
// clients, DCT trust, Notation and cosign verifiers, store, blob cache). Commands other than `start`
// build their clients through ./upstream-clients.ts, so the same rules hold for all of them.
import type { X509Certificate } from 'node:crypto';
import { readConfigFile } from '../config/load.js';
import type { Config, UpstreamConfig } from '../config/schema.js';
import { NotationVerifier } from '../notation/notation-verifier.js';
import { CosignVerifier } from '../cosign/cosign-verifier.js';
import { loadCosignTrustSelector } from '../cosign/load-trust.js';
import type { DigestSignatureVerifier, ServerDeps, UpstreamDeps } from '../server/deps.js';
import { RevocationClient } from '../notation/revocation.js';
import { parseTrustPolicy } from '../notation/trust-policy.js';
import { loadTrustStore } from '../notation/trust-store.js';
import { audit, type AuditSinks, type Logger } from '../observe/logger.js';
import { ManifestCache } from '../store/manifest-cache.js';
import { BlobCache } from '../blobcache/blob-cache.js';
import { BlobCacheMetrics } from '../blobcache/cache-metrics.js';
import { SendBudget } from '../blobcache/send-budget.js';
import type { Clock } from '../trust/client.js';
import { Metrics } from '../observe/metrics.js';
import type { KvStore } from '../store/kv.js';
import { readBundleIndex, secondsLeft } from './bundle-index.js';
import { dctTrustFor } from './dct-trust.js';
import { buildKv } from './store.js';
import { registryClientFor } from './upstream-clients.js';

/** Notation's verdict as the proxy's signature proof (header and audit line). */
function notationProofs(nv: NotationVerifier): DigestSignatureVerifier {
  return {
    async verify(registry, repositoryUri, repo, manifest) {
      const r = await nv.verify(registry, repositoryUri, repo, manifest);
      return { kind: 'notation', by: `notation ${r.signature ?? '(skip policy)'} policy ${r.policy}`, logged: r.logged };
    },
  };
}

/** Notation: the site's own trustpolicy.json and trust store directory, read and validated at start. */
async function buildNotation(u: UpstreamConfig, i: number, config: Config, clock: Clock): Promise<NotationVerifier | undefined> {
  if (!u.notation) return undefined;
  const trustPolicy = parseTrustPolicy(readConfigFile(u.notation.trustPolicy, `upstreams[${i}].notation.trustPolicy`).toString('utf8'));
  const trustStores = new Map<string, X509Certificate[]>();
  for (const p of trustPolicy.trustPolicies) {
    for (const ref of p.trustStores) {
      const key = `${ref.type}:${ref.name}`;
      if (!trustStores.has(key)) trustStores.set(key, await loadTrustStore(u.notation.trustStore, ref));
    }
  }
  return new NotationVerifier({ trustPolicy, trustStores, maxSignatures: config.limits.maxSignatures, revocation: new RevocationClient({ now: () => clock.now() }), now: () => clock.now() });
}

/** Everything the server needs, built from a validated config. */
export async function buildRuntime(
  config: Config,
  env: NodeJS.ProcessEnv,
  log: Logger,
  clock: Clock = { now: () => new Date(), nowMs: Date.now },
  metrics: Metrics = new Metrics(),
): Promise<ServerDeps & { close(): Promise<void>; lifecycle?: { draining: boolean } }> {
  const kv = buildKv(config, log.child({ component: 'store' }), (layer, result) => metrics.store.inc({ layer, result }));
  // Before serving: what a crashed process left (temp files, torn values) is swept, the index built.
  await kv.open();
  const upstreams = new Map<string, UpstreamDeps>();
  // Where request-time audit lines go: the deps returned below, once the caller has set their stream.
  let sinks: AuditSinks = { log, metrics };
  const closers: Array<() => Promise<void>> = [];
  const notations = await Promise.all(config.upstreams.map((u, i) => buildNotation(u, i, config, clock)));
  config.upstreams.forEach((u, i) => {
    const registry = registryClientFor(config, u, env, {
      onTiming: (kind, seconds) => metrics.upstreamSeconds.observe({ upstream: u.name, kind }, seconds),
      connections: { blobs: config.limits.upstreamBlobConnections, metadata: config.limits.upstreamMetadataConnections },
      // A refused redirect is a decision about where trustgate may go: one audit line, like a trust refusal.
      onRedirectRefused: (r) =>
        audit(sinks, { upstream: u.name, gun: `${u.gun}/${r.repo}`, repo: r.repo, ref: r.path.slice(r.path.lastIndexOf('/') + 1), decision: 'deny', policy: u.policy, code: r.code, reason: `redirect to ${r.target} refused: ${r.reason}`, durationMs: 0 }),
    });
    closers.push(() => registry.close());
    const dct = dctTrustFor(config, u, env, kv, clock, metrics);
    if (dct) closers.push(() => dct.close());
    const trust = dct?.service;
    const notation = notations[i];
    // Cosign keys and trusted root are read once, here: a bad file fails start naming its config key.
    const cosign = u.cosign ? new CosignVerifier(loadCosignTrustSelector(u, `upstreams[${i}]`), config.limits.maxSignatures) : undefined;
    upstreams.set(u.name, { config: u, registry, trust, notation, signatures: { ...(notation ? { notation: notationProofs(notation) } : {}), ...(cosign ? { cosign } : {}) } });
  });
  // Blob cache: partial files from a crash are discarded and the index rebuilt from disk before serving.
  const blobCacheMetrics = config.blobCache ? new BlobCacheMetrics(metrics.registry) : undefined;
  const cacheLog = log.child({ component: 'blobcache' });
  const blobCache = config.blobCache
    ? await BlobCache.open({ ...config.blobCache, metrics: blobCacheMetrics, log: cacheLog, onDiscard: (key, reason) => cacheLog.warn({ key, reason }, 'cached blob dropped') })
    : undefined;
  if (config.upstreams.some((u) => u.bundle)) closers.push(watchBundleExpiry(kv, config.limits.bundleWarnDays, log.child({ component: 'bundle' }), metrics, clock));
  const deps = {
    config,
    upstreams,
    manifests: new ManifestCache(64 * 1024 * 1024, kv),
    blobCache,
    blobCacheMetrics,
    sendBudget: new SendBudget(config.limits.sendBufferBytes),
    log,
    clock,
    metrics,
    kv,
    close: async () => {
      await Promise.allSettled(closers.map((c) => c()));
      await kv.close();
    },
  };
  sinks = deps;
  return deps;
}

/**
 * Air-gapped sites must refresh bundles before the timestamp expires: a gauge per repository and a
 * warning log line once it is closer than `warnDays`, checked at start and every minute.
 */
function watchBundleExpiry(kv: KvStore, warnDays: number, log: Logger, metrics: Metrics, clock: Clock): () => Promise<void> {
  const check = async () => {
    try {
      for (const [gun, e] of Object.entries(await readBundleIndex(kv))) {
        const left = secondsLeft(e, clock.now());
        metrics.bundleExpiry.set({ gun }, left);
        if (left < 0) log.error({ gun, expired: true }, 'imported trust bundle has expired: its tags are refused until a new bundle is imported');
        else if (left < warnDays * 86400) log.warn({ gun, secondsLeft: left }, 'imported trust bundle expires soon: export and import a fresh one');
      }
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'cannot read the bundle index');
    }
  };
  void check();
  const t = setInterval(() => void check(), 60_000);
  t.unref();
  return async () => clearInterval(t);
}

