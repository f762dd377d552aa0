// `trustgate start [--config FILE]`: load the config, build the dependencies, serve until SIGTERM.
import cluster from 'node:cluster';
import { once } from 'node:events';
import type { Server } from 'node:http';
import { parseArgs } from 'node:util';
import { DEFAULT_CONFIG_FILE, loadConfig, readConfigFile } from '../config/load.js';
import type { Config, UpstreamConfig } from '../config/schema.js';
import type { X509Certificate } from 'node:crypto';
import { NotationVerifier } from '../notation/notation-verifier.js';
import { CosignVerifier } from '../cosign/cosign-verifier.js';
import { loadCosignTrustSelector } from '../cosign/load-trust.js';
import type { DigestSignatureVerifier } from '../server/deps.js';
import { RevocationClient } from '../notation/revocation.js';
import { parseTrustPolicy } from '../notation/trust-policy.js';
import { loadTrustStore } from '../notation/trust-store.js';
import { audit, type AuditSinks, type Logger } from '../observe/logger.js';
import { openLogStreams, type LogStreams } from '../observe/log-streams.js';
import { RegistryClient } from '../registry/registry-client.js';
import type { ServerDeps, UpstreamDeps } from '../server/deps.js';
import { buildServer } from '../server/http-server.js';
import { ManifestCache } from '../store/manifest-cache.js';
import { BlobCache } from '../blobcache/blob-cache.js';
import { pruneCache } from '../blobcache/cache-admin.js';
import { BlobCacheMetrics } from '../blobcache/cache-metrics.js';
import { TrustClient, type Clock, type MetadataFetcher, type TrustStateStore } from '../trust/client.js';
import { Metrics } from '../observe/metrics.js';
import { KvTrustState } from '../store/kv-trust-state.js';
import type { KvStore } from '../store/kv.js';
import { OfflineFetcher } from '../trust/bundle.js';
import { CachingFetcher } from '../trust/fetch/caching-fetcher.js';
import { NotaryHttpFetcher } from '../trust/fetch/http-fetcher.js';
import { InstrumentedFetcher } from '../trust/fetch/instrumented-fetcher.js';
import { TrustService } from '../trust/trust-service.js';
import { readBundleIndex, secondsLeft } from './bundle.js';
import { buildKv, pinningOf } from './compose.js';
import { EXIT_OK, reportError, UsageError, type Io } from './output.js';
import { DRAIN_MESSAGE, REOPEN_MESSAGE, runPrimary, workerCount } from './cluster-primary.js';

/**
 * With workers, each indexes the blobs it wrote or found at start, so none sees the whole directory:
 * the primary prunes it to blobCache.maxBytes this often (it may overshoot by what is written meanwhile).
 */
const BLOB_SWEEP_MS = 5_000;

const START_USAGE = `usage: trustgate start [--config FILE]   (default ${DEFAULT_CONFIG_FILE}, or TRUSTGATE_CONFIG)`;

function password(env: NodeJS.ProcessEnv, name: string | undefined, key: string): string | undefined {
  if (name === undefined) return undefined;
  const v = env[name];
  if (v === undefined) throw new UsageError(`${key}: environment variable ${name} is not set`);
  return v;
}

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
export async function buildDeps(
  config: Config,
  env: NodeJS.ProcessEnv,
  log: Logger,
  clock: Clock = { now: () => new Date(), nowMs: Date.now },
  metrics: Metrics = new Metrics(),
): Promise<ServerDeps & { close(): Promise<void>; lifecycle?: { draining: boolean } }> {
  const pinning = pinningOf(config);
  // Rollback floors, trusted roots and verified metadata live in the store, so they survive restarts
  // and are shared by replicas.
  const kv = buildKv(config, log.child({ component: 'store' }), (layer, result) => metrics.store.inc({ layer, result }));
  const state: TrustStateStore = new KvTrustState(kv);
  const upstreams = new Map<string, UpstreamDeps>();
  // Where request-time audit lines go: the deps returned below, once the caller has set their stream.
  let sinks: AuditSinks = { log, metrics };
  const closers: Array<() => Promise<void>> = [];
  const notations = await Promise.all(config.upstreams.map((u, i) => buildNotation(u, i, config, clock)));
  config.upstreams.forEach((u, i) => {
    const registry = new RegistryClient({
      registry: u.registry,
      ca: u.ca ? readConfigFile(u.ca, `upstreams[${i}].ca`) : undefined,
      credentials: u.username ? { username: u.username, password: password(env, u.passwordEnv, `upstreams[${i}].passwordEnv`)! } : undefined,
      realmAllowlist: u.realms,
      insecure: u.insecure,
      timeoutMs: config.limits.upstreamTimeoutMs,
      manifestBytes: config.limits.manifestBytes,
      onTiming: (kind, seconds) => metrics.upstreamSeconds.observe({ upstream: u.name, kind }, seconds),
      connections: { blobs: config.limits.upstreamBlobConnections, metadata: config.limits.upstreamMetadataConnections },
      redirects: u.redirects,
      self: config.listen,
      // A refused redirect is a decision about where trustgate may go: one audit line, like a trust refusal.
      onRedirectRefused: (r) =>
        audit(sinks, { upstream: u.name, gun: `${u.gun}/${r.repo}`, repo: r.repo, ref: r.path.slice(r.path.lastIndexOf('/') + 1), decision: 'deny', policy: u.policy, code: r.code, reason: `redirect to ${r.target} refused: ${r.reason}`, durationMs: 0 }),
    });
    closers.push(() => registry.close());
    let trust: TrustService | undefined;
    let source: MetadataFetcher | undefined;
    if (u.notary) {
      const n = u.notary;
      const fetcher = new NotaryHttpFetcher({
        url: n.url,
        ca: n.ca ? readConfigFile(n.ca, `upstreams[${i}].notary.ca`) : undefined,
        credentials: n.username ? { username: n.username, password: password(env, n.passwordEnv, `upstreams[${i}].notary.passwordEnv`)! } : undefined,
        realmAllowlist: n.realms,
        timeoutMs: n.timeoutMs,
      });
      closers.push(() => fetcher.close());
      source = new InstrumentedFetcher(fetcher, metrics);
    } else if (u.bundle) {
      // Air-gapped: the last imported metadata is the current metadata (CachingFetcher `offline`),
      // verified on every update, so the upstream serves until the bundle's earliest expiry, then refuses.
      source = new OfflineFetcher();
    }
    if (source) {
      const cached = new CachingFetcher(source, kv, { freshSeconds: u.bundle ? 0 : config.limits.trustCacheSeconds, staleIfError: true, offline: u.bundle });
      trust = new TrustService({
        client: new TrustClient({ fetcher: cached, state, clock, pinning }),
        clock,
        cacheSeconds: config.limits.trustCacheSeconds,
        kv,
        fetcher: cached,
      });
    }
    const notation = notations[i];
    // Cosign keys and trusted root are read once, here: a bad file fails start naming its config key.
    const cosign = u.cosign ? new CosignVerifier(loadCosignTrustSelector(u, `upstreams[${i}]`), config.limits.maxSignatures) : undefined;
    upstreams.set(u.name, { config: u, registry, trust, notation, signatures: { ...(notation ? { notation: notationProofs(notation) } : {}), ...(cosign ? { cosign } : {}) } });
  });
  // Blob cache: partial files from a crash are discarded and the index rebuilt from disk before serving.
  const blobCacheMetrics = config.blobCache ? new BlobCacheMetrics(metrics.registry) : undefined;
  const cacheLog = log.child({ component: 'blobcache' });
  const blobCache = config.blobCache
    ? await BlobCache.open({ ...config.blobCache, metrics: blobCacheMetrics, onDiscard: (key, reason) => cacheLog.warn({ key, reason }, 'cached blob dropped') })
    : undefined;
  if (config.upstreams.some((u) => u.bundle)) closers.push(watchBundleExpiry(kv, config.limits.bundleWarnDays, log.child({ component: 'bundle' }), metrics, clock));
  const deps = {
    config,
    upstreams,
    manifests: new ManifestCache(64 * 1024 * 1024, kv),
    blobCache,
    blobCacheMetrics,
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

/**
 * Buffered log lines must survive every way out: SIGHUP reopens the audit file (logrotate moved it),
 * 'exit' writes what is still buffered synchronously, and a fatal error is logged, flushed, then
 * exits 1 (Node would otherwise print the stack and exit without running any of our code).
 */
function keepLinesAtExit(streams: LogStreams): void {
  process.on('SIGHUP', () => streams.reopen());
  process.once('exit', () => streams.flushSync());
  const fatal = (err: unknown) => {
    streams.log.fatal({ err }, 'fatal error: exiting');
    streams.flushSync();
    process.exit(1);
  };
  process.once('uncaughtException', fatal);
  process.once('unhandledRejection', fatal);
}

export async function runStart(argv: string[], io: Io, env: NodeJS.ProcessEnv): Promise<number> {
  let server: Server | undefined;
  try {
    let values: { config?: string | undefined };
    try {
      ({ values } = parseArgs({ args: argv, options: { config: { type: 'string' } } }));
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const file = values.config ?? env.TRUSTGATE_CONFIG ?? DEFAULT_CONFIG_FILE;
    const config = loadConfig(file, env);
    const worker = cluster.isWorker ? cluster.worker!.id : undefined;
    const streams = openLogStreams({ level: config.log.level, auditPath: config.audit.path, worker });
    keepLinesAtExit(streams);
    const log = streams.log;
    const workers = workerCount(config.workers);
    if (workers > 1 && cluster.isPrimary) {
      const bc = config.blobCache;
      const cacheLog = log.child({ component: 'blobcache' });
      const sweep = bc
        ? {
            everyMs: BLOB_SWEEP_MS,
            run: async () => {
              const r = await pruneCache(bc.path, bc.maxBytes);
              if (r.removed > 0) cacheLog.info(r, 'blob cache over its cap across workers: least recently used blobs removed');
            },
          }
        : undefined;
      const code = await runPrimary(workers, log, { sweep });
      await streams.drain();
      return code;
    }
    // A worker may be told to drain while it is still starting: remember it until it can.
    const fromPrimary = (m: unknown) => (m === DRAIN_MESSAGE ? stop() : m === REOPEN_MESSAGE ? streams.reopen() : undefined);
    let stop: () => void = () => void (drainEarly = true);
    let drainEarly = false;
    if (cluster.isWorker) process.on('message', fromPrimary);
    const deps = await buildDeps(config, env, log);
    deps.audit = streams.audit;
    server = buildServer(deps);
    const s = server;
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(config.listen.port, config.listen.host, resolve);
    });
    const addr = s.address();
    log.info({ listen: typeof addr === 'object' && addr ? `${addr.address}:${addr.port}` : addr, config: file, upstreams: config.upstreams.map((u) => u.name) }, 'trustgate listening');
    const lifecycle = { draining: false };
    deps.lifecycle = lifecycle;
    // SIGTERM: stop accepting, let in-flight requests (blob streams) finish within the grace period,
    // then cut what is left, close upstream pools and the store.
    stop = () => {
      if (lifecycle.draining) return;
      lifecycle.draining = true;
      const grace = config.limits.shutdownGraceSeconds;
      log.info({ graceSeconds: grace }, 'shutting down: draining in-flight requests');
      s.close();
      s.closeIdleConnections();
      const idle = setInterval(() => s.closeIdleConnections(), 250);
      const cut = setTimeout(() => {
        log.warn('grace period over: closing remaining connections');
        s.closeAllConnections();
      }, grace * 1000);
      s.once('close', () => {
        clearInterval(idle);
        clearTimeout(cut);
      });
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    if (drainEarly) stop();
    await once(s, 'close');
    await deps.close();
    log.info('stopped');
    // Every buffered line written before the process exits on its own (no write left in flight).
    await streams.drain();
    if (cluster.isWorker) {
      // The IPC channel would keep a worker alive: leave on purpose (an unexpected disconnect exits at once).
      process.off('message', fromPrimary);
      cluster.worker!.disconnect();
    }
    return EXIT_OK;
  } catch (err) {
    server?.close();
    // A worker that cannot start leaves, so the primary sees it exit (the IPC channel would keep it).
    if (cluster.isWorker) cluster.worker!.disconnect();
    return reportError(io, err, START_USAGE);
  }
}
