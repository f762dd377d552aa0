// `workers: N | auto`: the primary process forks N workers (node:cluster), each a full trustgate that
// listens on the shared socket; the primary only supervises. Shared state — verified metadata,
// rollback floors, manifests and the single-flight update lock — lives in the file store or Redis,
// which is what lets a stampede across workers still make one notary fetch per role.
import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Logger } from '../observe/logger.js';

/** Sent by the primary on SIGTERM: the worker drains like a single process would on its own SIGTERM. */
export const DRAIN_MESSAGE = 'trustgate:drain';
/** Sent on SIGHUP: logrotate signals the pid it knows, the primary's; every worker reopens its audit file. */
export const REOPEN_MESSAGE = 'trustgate:reopen';

export function workerCount(workers: number | 'auto'): number {
  return workers === 'auto' ? availableParallelism() : workers;
}

/**
 * Fork `n` workers and supervise them until SIGTERM/SIGINT, then have every one drain and wait for all
 * of them. A worker that dies while serving is replaced; one that dies before it ever listened (bad
 * config, port taken) stops the whole thing, because its replacement would fail the same way.
 */
export interface PrimaryChores {
  /**
   * Run every `everyMs` while the workers serve (not overlapping itself): the blob cache's cap over
   * the whole directory, which no single worker sees (each one indexes what it wrote or found at start).
   */
  sweep?: { everyMs: number; run: () => Promise<unknown> };
  /**
   * After SIGTERM, how long the workers may take to end (each bounds itself by limits.shutdownGraceSeconds
   * + limits.shutdownSeconds); one still alive then is killed, so the whole thing always ends.
   */
  shutdownMs?: number;
}

export async function runPrimary(n: number, log: Logger, chores: PrimaryChores = {}): Promise<number> {
  let draining = false;
  let failed = false;
  const live = new Set<Worker>();
  const listenedSet = new WeakSet<Worker>();
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  let listening = 0;

  const fork = () => {
    const w = cluster.fork();
    live.add(w);
    let listened = false;
    w.once('listening', () => {
      listened = true;
      listenedSet.add(w);
      // A worker still starting when SIGTERM came had no message handler yet (IPC messages without a
      // listener are dropped): it is told now.
      if (draining) w.send(DRAIN_MESSAGE);
      if (++listening === n) log.info({ workers: n }, 'all workers listening');
    });
    w.once('exit', (code, signal) => {
      live.delete(w);
      if (draining || !listened) {
        if (!draining && !listened) {
          log.error({ worker: w.id, code, signal }, 'worker failed before listening: stopping');
          failed = true;
          stop();
        }
        if (code !== 0 && code !== null) failed = true;
        if (live.size === 0) resolveDone();
        return;
      }
      log.error({ worker: w.id, code, signal }, 'worker exited while serving: starting another');
      listening--;
      fork();
    });
  };

  // Sent over IPC rather than as a signal: a service manager may SIGTERM the whole process group, and
  // a second SIGTERM would hit a worker after its own handler ran, killing it mid-drain.
  const stop = () => {
    if (draining) return;
    draining = true;
    log.info({ workers: live.size }, 'shutting down: every worker drains');
    for (const w of live) if (w.isConnected() && listenedSet.has(w)) w.send(DRAIN_MESSAGE);
    if (live.size === 0) resolveDone();
    if (chores.shutdownMs !== undefined) {
      setTimeout(() => {
        for (const w of live) {
          log.error({ worker: w.id, afterMs: chores.shutdownMs }, 'worker did not end within its shutdown limits: killed');
          failed = true;
          w.process.kill('SIGKILL');
        }
      }, chores.shutdownMs).unref();
    }
  };
  const reopen = () => {
    for (const w of live) if (w.isConnected()) w.send(REOPEN_MESSAGE);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('SIGHUP', reopen);
  for (let i = 0; i < n; i++) fork();
  let sweeping = false;
  const sweep = chores.sweep;
  const sweeper = sweep
    ? setInterval(() => {
        if (sweeping || draining) return;
        sweeping = true;
        sweep.run().then(
          () => (sweeping = false),
          (err: unknown) => {
            sweeping = false;
            log.warn({ err }, 'sweep failed');
          },
        );
      }, sweep.everyMs)
    : undefined;
  await done;
  if (sweeper) clearInterval(sweeper);
  process.off('SIGTERM', stop);
  process.off('SIGINT', stop);
  process.off('SIGHUP', reopen);
  log.info('stopped');
  return failed ? 1 : 0;
}
