// `trustgate start [--config FILE]`: load the config, build the dependencies, serve until SIGTERM.
import cluster from 'node:cluster';
import { once } from 'node:events';
import type { Server } from 'node:http';
import { parseArgs } from 'node:util';
import { DEFAULT_CONFIG_FILE, loadConfig } from '../config/load.js';
import { descriptorWarning } from '../config/schema.js';
import { openLogStreams, type LogStreams } from '../observe/log-streams.js';
import { logFormatFor } from '../observe/logger.js';
import { buildServer } from '../server/http-server.js';
import { pruneCache } from '../blobcache/cache-admin.js';
import { buildRuntime } from '../app/runtime.js';
import { EXIT_OK, reportError, UsageError, type Io } from './output.js';
import { DRAIN_MESSAGE, REOPEN_MESSAGE, runPrimary, workerCount } from './cluster-primary.js';

/**
 * With workers, each indexes the blobs it wrote or found at start, so none sees the whole directory:
 * the primary prunes it to blobCache.maxBytes this often (it may overshoot by what is written meanwhile).
 */
const BLOB_SWEEP_MS = 5_000;

const START_USAGE = `usage: trustgate start [--config FILE]   (default ${DEFAULT_CONFIG_FILE}, or TRUSTGATE_CONFIG)`;

/**
 * Buffered log lines must survive every way out: SIGHUP reopens the audit file (logrotate moved it),
 * 'exit' writes what is still buffered synchronously, and a fatal error is logged, flushed, then
 * exits 1 (Node would otherwise print the stack and exit without running any of our code).
 */
function keepLinesAtExit(streams: LogStreams): void {
  process.on('SIGHUP', () => streams.reopen());
  // abandon(): one last synchronous write, and the audit lines it could not write are said on stderr
  // by count (once: a shutdown that passed its deadline has already said them).
  // At exit (after drain(), or a fatal error) a slow pipe reader gets up to a second, not forever.
  process.once('exit', () => void streams.abandon(1000));
  const fatal = (err: unknown) => {
    streams.log.fatal({ err }, 'fatal error: exiting');
    streams.flushSync();
    process.exit(1);
  };
  process.once('uncaughtException', fatal);
  process.once('unhandledRejection', fatal);
}

/**
 * process.exit — unless a log write is stuck in the thread pool (stdout a blocking pipe whose reader
 * stopped): Node's exit joins the pool's threads and would wait for it forever, so the process kills
 * itself (SIGKILL, exit status 137) after the lost lines were said on stderr.
 */
function exitNow(streams: LogStreams, code: number): never {
  if (streams.stuck()) process.kill(process.pid, 'SIGKILL');
  process.exit(code);
}

/** true when `p` settles within `ms`; false when it has not by then (it is left running). */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([p.then(() => true), late]);
  } finally {
    clearTimeout(timer);
  }
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
    const streams = openLogStreams({
      level: config.log.level,
      auditPath: config.audit.path,
      worker,
      format: logFormatFor(config.log.format, process.stdout.isTTY === true),
      bufferBytes: config.audit.bufferBytes,
      onFailure: config.audit.onFailure,
    });
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
      // Each worker ends within shutdownGraceSeconds + shutdownSeconds of being told to drain; one that
      // has not a second later is killed (runPrimary).
      const shutdownMs = (config.limits.shutdownGraceSeconds + config.limits.shutdownSeconds) * 1000 + 1000;
      const code = await runPrimary(workers, log, { sweep, shutdownMs });
      if (!(await within(streams.drain(), config.limits.shutdownSeconds * 1000))) {
        const lost = streams.abandon();
        setTimeout(() => exitNow(streams, lost > 0 ? 1 : code), 50).unref();
        return lost > 0 ? 1 : code;
      }
      return code;
    }
    // A worker may be told to drain while it is still starting: remember it until it can.
    const fromPrimary = (m: unknown) => (m === DRAIN_MESSAGE ? stop() : m === REOPEN_MESSAGE ? streams.reopen() : undefined);
    let stop: () => void = () => void (drainEarly = true);
    let drainEarly = false;
    if (cluster.isWorker) process.on('message', fromPrimary);
    const deps = await buildRuntime(config, env, log);
    deps.audit = streams.audit;
    if (deps.metrics) deps.metrics.audit = { backlogBytes: () => streams.auditBacklogBytes(), droppedLines: () => streams.auditDroppedLines() };
    server = buildServer(deps);
    const s = server;
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(config.listen.port, config.listen.host, resolve);
    });
    const addr = s.address();
    log.info({ listen: typeof addr === 'object' && addr ? `${addr.address}:${addr.port}` : addr, config: file, upstreams: config.upstreams.map((u) => u.name) }, 'trustgate listening');
    const fds = descriptorWarning(config);
    if (fds) log.warn(fds);
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
      // The last resort, whatever hangs (the listener never closing, a store that does not answer):
      // the process ends by this, saying on stderr how many audit lines were lost.
      setTimeout(() => leave('shutdown deadline passed (limits.shutdownGraceSeconds + limits.shutdownSeconds)'), (grace + config.limits.shutdownSeconds) * 1000 + 500).unref();
      s.once('close', () => {
        clearInterval(idle);
        clearTimeout(cut);
      });
    };
    const leave = (why: string): never => {
      const lost = streams.abandon();
      log.error({ lostLines: lost }, why); // said on stderr by abandon(); the log may be the stuck one
      exitNow(streams, 1);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    if (drainEarly) stop();
    await once(s, 'close');
    // Every buffered line written before the process exits on its own (no write left in flight) — but
    // within limits.shutdownSeconds: a full or stuck audit destination must not keep the process (a
    // rolling deploy waits for it). Past that, the lines still waiting are counted on stderr (abandon).
    const finished = await within(
      (async () => {
        await deps.close();
        log.info('stopped');
        await streams.drain();
      })(),
      // Less a margin for the last synchronous attempt (abandon) and the exit itself, so that with
      // nothing in flight the process is gone within shutdownSeconds of SIGTERM, not just after.
      config.limits.shutdownSeconds * 1000 - Math.min(500, config.limits.shutdownSeconds * 250),
    );
    let code = EXIT_OK;
    if (!finished) {
      const lost = streams.abandon();
      // Said on stderr by abandon(); stdout may be the destination that is stuck (then this line is lost too).
      log.error({ lostLines: lost, shutdownSeconds: config.limits.shutdownSeconds }, 'limits.shutdownSeconds passed: exiting with audit lines unwritten');
      code = lost > 0 ? 1 : EXIT_OK;
      // Whatever still holds the event loop (a retry, a store connection) must not keep the process.
      setTimeout(() => exitNow(streams, code), 50).unref();
    }
    if (cluster.isWorker) {
      // The IPC channel would keep a worker alive: leave on purpose (an unexpected disconnect exits at once).
      process.off('message', fromPrimary);
      cluster.worker!.disconnect();
    }
    return code;
  } catch (err) {
    server?.close();
    // A worker that cannot start leaves, so the primary sees it exit (the IPC channel would keep it).
    if (cluster.isWorker) cluster.worker!.disconnect();
    return reportError(io, err, START_USAGE);
  }
}
