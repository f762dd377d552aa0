// The composition root: a validated Config → the per-upstream runtime the proxy serves from (registry
// clients, DCT trust, Notation and cosign verifiers, store, blob cache). Commands other than `start`
// build their clients through ./upstream-clients.ts, so the same rules hold for all of them.
import type { Config, UpstreamConfig } from '../config/schema.js';
import { NotationVerifier } from '../signatures/notation/notation-verifier.js';
import { CosignVerifier } from '../signatures/cosign/cosign-verifier.js';
import { loadCosignTrustSelector, trustedRootCertificates } from '../signatures/cosign/load-trust.js';
import type { DigestSignatureVerifier, ServerDeps, SignatureSource, SignatureSources, UpstreamDeps } from '../server/deps.js';
import { notationRepositorySelector } from '../signatures/notation/select-repository.js';
import type { RegistryClient } from '../registry/registry-client.js';
import { RevocationClient } from '../signatures/notation/revocation.js';
import { audit, type AuditSinks, type Logger } from '../observe/logger.js';
import { ManifestCache } from '../store/manifest-cache.js';
import { BlobCache } from '../blobcache/blob-cache.js';
import { BlobCacheMetrics } from '../blobcache/cache-metrics.js';
import { SendBudget } from '../blobcache/send-budget.js';
import type { Clock } from '../signatures/dct/client.js';
import { certificateLabel, Metrics, type TrustMaterial } from '../observe/metrics.js';
import type { KvStore } from '../store/kv.js';
import { readBundleIndex, secondsLeft } from './bundle-index.js';
import { dctTrustFor } from './dct-trust.js';
import { loadNotationTrust } from './notation-trust.js';
import { buildKv, replicaTrustStateFor } from './store.js';
import { upstreamByGun } from './select-upstream.js';
import { CachedProver } from '../signatures/verdicts.js';
import { TagResolutions } from '../registry/tag-resolutions.js';
import { registryClientFor } from './upstream-clients.js';

/**
 * Notation's verdict as the proxy's signature proof (header and audit line). Signatures are read in the
 * repository's signature repository when one is configured (notation.repository: the first matching
 * repository entry's, else the upstream's), through the client of the upstream serving it.
 */
function notationProofs(nv: NotationVerifier, u: UpstreamConfig, sources: SignatureSources): DigestSignatureVerifier {
  const signatureRepository = notationRepositorySelector(
    u.notation?.repository,
    u.repositories.flatMap((r) => (r.notation ? [{ match: r.match, repository: r.notation.repository }] : [])),
  );
  return {
    async verify(registry, repositoryUri, repo, manifest) {
      const sigRepo = signatureRepository(repo);
      const at = sigRepo !== undefined ? sources(sigRepo) : { registry, repo };
      const r = await nv.verify(at.registry, repositoryUri, at.repo, manifest, sigRepo);
      return { kind: 'notation', by: `notation ${r.signature ?? '(skip policy)'} policy ${r.policy}${sigRepo !== undefined ? ` from ${sigRepo}` : ''}`, logged: r.logged, validUntil: r.validUntil };
    },
  };
}

/** Notation: the site's own trustpolicy.json and trust store directory, read and validated at start. */
async function buildNotation(u: UpstreamConfig, i: number, config: Config, clock: Clock, metrics: Metrics): Promise<NotationVerifier | undefined> {
  const trust = await loadNotationTrust(u, i);
  if (!trust) return undefined;
  for (const [store, certs] of trust.trustStores) for (const c of certs) addTrustMaterial(metrics, { upstream: u.name, kind: 'notation', name: `${store}/${certificateLabel(c)}`, notAfter: new Date(c.validTo) });
  return new NotationVerifier({ ...trust, maxSignatures: config.limits.maxSignatures, signatureBytes: config.limits.signatureBytes, revocation: new RevocationClient({ now: () => clock.now() }), now: () => clock.now() });
}

/** One series per certificate: the same certificate named twice (a store or root shared by repository entries) counts once. */
function addTrustMaterial(metrics: Metrics, m: TrustMaterial): void {
  if (!metrics.trustMaterial.some((x) => x.upstream === m.upstream && x.kind === m.kind && x.name === m.name)) metrics.trustMaterial.push(m);
}

/** Every signature repository the config names, resolved once: a repository no client serves fails start. */
function signatureSourcesFor(config: Config, registries: ReadonlyMap<string, RegistryClient>): SignatureSources {
  const resolved = new Map<string, SignatureSource>();
  const resolve = (name: string): SignatureSource => {
    const u = upstreamByGun(config, name);
    return { registry: registries.get(u.name)!, repo: name.slice(u.gun.length + 1), name };
  };
  for (const u of config.upstreams) {
    for (const c of [u.cosign, u.notation, ...u.repositories.flatMap((r) => [r.cosign, r.notation])]) {
      if (c?.repository !== undefined && !resolved.has(c.repository)) resolved.set(c.repository, resolve(c.repository));
    }
  }
  return (name) => resolved.get(name) ?? resolve(name);
}

/** Everything the server needs, built from a validated config. */
export async function buildRuntime(
  config: Config,
  env: NodeJS.ProcessEnv,
  log: Logger,
  clock: Clock = { now: () => new Date(), nowMs: Date.now },
  metrics: Metrics = new Metrics(),
): Promise<ServerDeps & { close(): Promise<void>; lifecycle?: { draining: boolean } }> {
  metrics.freezeClock = () => clock.now().getTime();
  const kv = buildKv(config, log.child({ component: 'store' }), (layer, result) => metrics.store.inc({ layer, result }));
  // Before serving: what a crashed process left (temp files, torn values) is swept, the index built.
  await kv.open();
  const upstreams = new Map<string, UpstreamDeps>();
  // Where request-time audit lines go: the deps returned below, once the caller has set their stream.
  let sinks: AuditSinks = { log, metrics };
  const closers: Array<() => Promise<void>> = [];
  const replica = replicaTrustStateFor(config, kv, clock, log.child({ component: 'trust-state' }));
  closers.push(() => replica.close());
  const notations = await Promise.all(config.upstreams.map((u, i) => buildNotation(u, i, config, clock, metrics)));
  // Every upstream's client first: a signature repository may live on another upstream than the image's.
  const registries = new Map<string, RegistryClient>();
  for (const u of config.upstreams) {
    const registry = registryClientFor(config, u, env, {
      onTiming: (kind, seconds) => metrics.upstreamSeconds.observe({ upstream: u.name, kind }, seconds),
      connections: { blobs: config.limits.upstreamBlobConnections, metadata: config.limits.upstreamMetadataConnections, signatures: config.limits.upstreamSignatureConnections },
      // A refused redirect is a decision about where trustgate may go: one audit line, like a trust refusal.
      onRedirectRefused: (r) =>
        audit(sinks, { upstream: u.name, gun: `${u.gun}/${r.repo}`, repo: r.repo, ref: r.path.slice(r.path.lastIndexOf('/') + 1), decision: 'deny', policy: u.policy, code: r.code, reason: `redirect to ${r.target} refused: ${r.reason}`, durationMs: 0 }, false),
    });
    closers.push(() => registry.close());
    registries.set(u.name, registry);
  }
  const sources = signatureSourcesFor(config, registries);
  const nowMs = () => clock.nowMs?.() ?? clock.now().getTime();
  config.upstreams.forEach((u, i) => {
    const registry = registries.get(u.name)!;
    const dct = dctTrustFor(config, u, env, kv, clock, metrics, replica.state);
    if (dct) closers.push(() => dct.close());
    const trust = dct?.service;
    const notation = notations[i];
    // Cosign keys and trusted root are read once, here: a bad file fails start naming its config key.
    const cosignTrust = u.cosign ? loadCosignTrustSelector(u, `upstreams[${i}]`) : undefined;
    for (const t of cosignTrust?.trusts ?? []) for (const { role, cert } of t.root ? trustedRootCertificates(t.root) : []) addTrustMaterial(metrics, { upstream: u.name, kind: 'cosign', name: `${role}/${certificateLabel(cert)}`, notAfter: new Date(cert.validTo) });
    const cosign = cosignTrust ? new CosignVerifier(cosignTrust, { maxSignatures: config.limits.maxSignatures, signatureBytes: config.limits.signatureBytes }, sources) : undefined;
    // Verdicts are cached per prover (its trust material is fixed here), so warm requests neither list
    // nor verify signatures again (signatures/verdicts.ts); tag resolutions likewise (registry/tag-resolutions.ts).
    const cached = (kind: 'notation' | 'cosign', p: DigestSignatureVerifier) => {
      const c = new CachedProver(p, { nowMs, maxAgeMs: config.limits.trustCacheSeconds * 1000 });
      metrics.signatureProofs.push({ upstream: u.name, kind, earliestEnd: (n) => c.earliestProofEnd(n) });
      return c;
    };
    upstreams.set(u.name, {
      config: u,
      registry,
      trust,
      notation,
      signatures: { ...(notation ? { notation: cached('notation', notationProofs(notation, u, sources)) } : {}), ...(cosign ? { cosign: cached('cosign', cosign) } : {}) },
      tags: new TagResolutions(config.cache.tagTtlSeconds * 1000, nowMs),
    });
  });
  // Blob cache: partial files from a crash are discarded and the index rebuilt from disk before serving.
  const blobCacheMetrics = config.blobCache ? new BlobCacheMetrics(metrics.registry) : undefined;
  const cacheLog = log.child({ component: 'blobcache' });
  const blobCache = config.blobCache
    ? await BlobCache.open({ ...config.blobCache, metrics: blobCacheMetrics, log: cacheLog, onDiscard: (key, reason) => cacheLog.warn({ key, reason }, 'cached blob dropped') })
    : undefined;
  const manifests = new ManifestCache(64 * 1024 * 1024, kv);
  closers.push(watchForgotten(manifests, log.child({ component: 'store' })));
  if (config.upstreams.some((u) => u.bundle)) closers.push(watchBundleExpiry(kv, config.limits.bundleWarnDays, log.child({ component: 'bundle' }), metrics, clock));
  const deps = {
    config,
    upstreams,
    manifests,
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

/** `trustgate cache forget` from another process: each running one drops its memory copy within a second. */
function watchForgotten(manifests: ManifestCache, log: Logger): () => Promise<void> {
  let warned = false;
  const t = setInterval(() => {
    manifests.applyForgotten().then(
      () => (warned = false),
      (err) => {
        if (!warned) log.warn({ err: (err as Error).message }, 'cannot read the manifests withdrawn with cache forget');
        warned = true;
      },
    );
  }, 1000);
  t.unref();
  return async () => clearInterval(t);
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

