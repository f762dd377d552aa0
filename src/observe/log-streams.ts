// Where log lines go. Two pino instances: the operational log (its level from `log.level`) and the
// audit stream, always at info whatever `log.level` says — an operator who turns logging down to
// `warn` must not silently lose the record of every trust decision.
//
// Both go through LineWriter (line-writer.ts): under load lines are queued and written together up to
// a millisecond later, so one write carries many lines. (One synchronous write per line to stdout,
// pino's default, cost ~40% of warm-tag throughput; measured in docs/benchmarks.md, "Audit at line rate".) The price is that a line sits
// in memory for up to that millisecond: drain() and flushSync() write everything out on SIGTERM drain,
// fatal errors and exit, so none is lost.
//
// When the audit destination fails (ENOSPC, EIO, a stuck pipe) its lines wait, in order, in a buffer
// bounded by `audit.bufferBytes`, and are written once it takes them again. Past the bound,
// `audit.onFailure: refuse` (default) stops new trust decisions (accepting() false: the server answers
// AUDIT_UNAVAILABLE), so no decision is served without its line; `serve` drops the lines instead, and
// counts every one (droppedLines(): the metric trustgate_audit_dropped_lines_total, and stderr).
import { fstatSync, writeSync } from 'node:fs';
import { isatty } from 'node:tty';
import { pino, type Logger, type LoggerOptions } from 'pino';
import { LineWriter } from './line-writer.js';
import { AUDIT_MSG, REDACT_PATHS, prettySink, type AuditRecord, type AuditWriter, type LogFormat, type PreparedAudit } from './logger.js';

export interface LogStreams {
  /** Operational log at `log.level`. */
  log: Logger;
  /** Audit lines (`"audit":true`), always written. */
  audit: AuditWriter;
  /** Resolves once everything buffered is written (graceful shutdown: no write left in flight). */
  drain(): Promise<void>;
  /**
   * Write out everything buffered, synchronously: for the 'exit' event and fatal errors, where no
   * callback will run again. An fs.write already handed to the thread pool is not repeated.
   */
  flushSync(): void;
  /** Reopen the audit file (logrotate moved it away on SIGHUP); no-op for stdout. */
  reopen(): void;
  /** Why audit lines are waiting or refused (readiness 503 with this reason); undefined when they are not. */
  auditProblem(): string | undefined;
  /** Audit bytes waiting to be written (trustgate_audit_backlog_bytes). */
  auditBacklogBytes(): number;
  /** Audit lines dropped since start (trustgate_audit_dropped_lines_total). */
  auditDroppedLines(): number;
  /**
   * The shutdown deadline passed: one last synchronous attempt, then stop retrying. Returns the audit
   * lines that were never written (also reported on stderr here, by count), 0 when none was lost.
   * `pipeWaitMs`: how long a full pipe (EAGAIN) is waited for in that last attempt.
   */
  abandon(pipeWaitMs?: number): number;
  /** After abandon(): a write is stuck in the thread pool, so process.exit() would hang (start.ts kills instead). */
  stuck(): boolean;
}

export type AuditOnFailure = 'refuse' | 'serve';

/**
 * Room above audit.bufferBytes for the lines of decisions admitted just before the buffer filled
 * (they were being decided while it did): with `refuse`, a line of a served decision is never dropped
 * for want of it short of ~2500 decisions in flight at once.
 */
const RESERVE_BYTES = 1024 * 1024;

/**
 * Dropped audit lines said on stderr, by count: at once for the first, then at most once a second
 * (a flood of one line per drop would bury them). Written synchronously to fd 2: stdout or the
 * audit file may be the destination that fails.
 */
class DropReport {
  private total = 0;
  private reported = 0;
  private timer: NodeJS.Timeout | undefined;
  private last = 0;

  constructor(
    private readonly base: Record<string, unknown>,
    private readonly reason: () => string,
    private readonly fd = 2,
  ) {}

  dropped(): void {
    this.total++;
    if (this.timer) return;
    const wait = Math.max(0, this.last + 1000 - Date.now());
    this.timer = setTimeout(() => this.flush(), wait);
    this.timer.unref();
  }

  count(): number {
    return this.total;
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.total === this.reported) return;
    this.last = Date.now();
    stderrLine(this.fd, { level: 40, ...this.base, msg: 'audit lines dropped', dropped: this.total - this.reported, droppedTotal: this.total, reason: this.reason() });
    this.reported = this.total;
  }
}

function stderrLine(fd: number, rec: Record<string, unknown>): void {
  const { level, ...rest } = rec;
  try {
    writeSync(fd, `${JSON.stringify({ level, time: Date.now(), ...rest })}\n`);
  } catch {
    /* stderr gone too: nothing left to tell */
  }
}

// Writes to a pipe of at most PIPE_BUF bytes are atomic and LineWriter cuts only between lines: with
// several worker processes sharing stdout (docker's log pipe), no line is torn by another process's
// write. Regular files are opened O_APPEND; larger writes are fine there.
const PIPE_BUF = 4096;

function isPipe(fd: number): boolean {
  try {
    const st = fstatSync(fd);
    return st.isFIFO() || st.isSocket() || st.isCharacterDevice();
  } catch {
    return true; // unknown: the safe bound
  }
}

/**
 * Audit records serialised straight to their destination, in pino's line format (level, time,
 * service, `"audit":true`, the record's fields, msg) so they read and parse like every other
 * line. DEVIATION from "one root pino logger" (STYLE.md): pino walked and stringified each field and ran
 * redaction per line, ~5% of the warm tag path in the profile; one native JSON.stringify of a fixed,
 * credential-free record does the same job. Operational lines stay on pino.
 */
class AuditLines implements AuditWriter {
  private readonly head = '{"level":30,"time":';
  private readonly base: string;

  private readonly reserved: boolean;

  constructor(
    private readonly dest: LineWriter,
    worker: number | undefined,
    onFailure: AuditOnFailure,
    private readonly drops: DropReport,
    readonly problem: () => string | undefined,
  ) {
    this.base = `,"service":"trustgate",${worker === undefined ? '' : `"worker":${worker},`}"audit":true,`;
    // refuse: a decision admitted by accepting() keeps its line even if the buffer filled meanwhile.
    this.reserved = onFailure === 'refuse';
  }

  write(rec: AuditRecord): void {
    const body = JSON.stringify(rec);
    if (!this.dest.write(`${this.head}${Date.now()}${this.base}${body.slice(1, -1)},"msg":"${AUDIT_MSG}"}\n`, this.reserved)) this.drops.dropped();
  }

  // The line write({ ...p.rec, durationMs }) gives: durationMs comes last, and a finite number prints
  // the same in a template as in JSON (JSON has null for the others).
  writePrepared(p: PreparedAudit, durationMs: number): void {
    const d = Number.isFinite(durationMs) ? durationMs : null;
    if (!this.dest.write(`${this.head}${Date.now()}${this.base}${p.fields},"durationMs":${d},"msg":"${AUDIT_MSG}"}\n`, this.reserved)) this.drops.dropped();
  }

  /** serve never refuses; refuse does while the buffer is full. One comparison on the warm path. */
  accepting(): boolean {
    return !this.reserved || this.dest.accepting();
  }
}

export function openLogStreams(opts: {
  level: LoggerOptions['level'];
  auditPath?: string | undefined;
  stdoutFd?: number;
  /** node:cluster worker id: on every line, so lines from several workers can be told apart. */
  worker?: number | undefined;
  /**
   * `log.format` as resolved (logFormatFor). Pretty applies to the operational log only: audit lines
   * stay JSON wherever they go, they are the record collectors and `jq` read.
   */
  format?: LogFormat | undefined;
  /** audit.bufferBytes: audit bytes that may wait for a failing destination (default 64 MiB). */
  bufferBytes?: number | undefined;
  /** audit.onFailure (default refuse). */
  onFailure?: AuditOnFailure | undefined;
  /** Where drops and lost lines are said (default 2, stderr). */
  stderrFd?: number;
}): LogStreams {
  const fd = opts.stdoutFd ?? 1;
  const errFd = opts.stderrFd ?? 2;
  const bufferBytes = opts.bufferBytes ?? 64 * 1024 * 1024;
  const onFailure = opts.onFailure ?? 'refuse';
  const bounds = { bufferBytes, reserveBytes: onFailure === 'refuse' ? RESERVE_BYTES : 0 };
  // stdout is bounded too: operational lines past bufferBytes are dropped (never reserved room), and
  // when audit lines share it they are admitted as the audit's own file would admit them.
  const stdout = new LineWriter({ dest: fd, maxWrite: isPipe(fd) ? PIPE_BUF : 64 * 1024, ...bounds });
  const auditDest = opts.auditPath !== undefined ? new LineWriter({ dest: opts.auditPath, maxWrite: 64 * 1024, ...bounds }) : stdout;
  const where = opts.auditPath ?? 'stdout';
  const base = opts.worker === undefined ? { service: 'trustgate' } : { service: 'trustgate', worker: opts.worker };
  // Pretty lines go through pino's own transport to a worker thread; the audit stream never does.
  const pretty = opts.format === 'pretty' ? prettySink(fd, isatty(fd)) : undefined;
  const log = pino({ level: opts.level, base, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, pretty?.stream ?? stdout);
  const problem = (): string | undefined => {
    const stall = auditDest.stalled();
    const full = !auditDest.accepting();
    if (!stall && !full) return undefined;
    const waiting = `${auditDest.unwrittenLines()} audit lines (${auditDest.backlogBytes()} bytes) waiting`;
    const cause = stall ? `cannot write the audit trail to ${where} (${stall.error}): ${waiting}` : `the audit destination ${where} is not keeping up: ${waiting}`;
    if (!full) return cause;
    return `${cause}; buffer full (audit.bufferBytes ${bufferBytes}): ${onFailure === 'refuse' ? 'trust decisions are refused (audit.onFailure: refuse)' : 'new audit lines are dropped (audit.onFailure: serve)'}`;
  };
  const drops = new DropReport(base, () => problem() ?? 'audit buffer full', errFd);
  const audit = new AuditLines(auditDest, opts.worker, onFailure, drops, problem);
  const dests = auditDest === stdout ? [stdout] : [stdout, auditDest];
  // A failing audit destination is said on stdout once per error kind (stdout may be the one failing:
  // stderr too); its lines stay queued and are retried.
  const reported = new Set<string>();
  auditDest.onError = (err) => {
    const code = (err as NodeJS.ErrnoException).code ?? err.message;
    if (reported.has(code)) return;
    reported.add(code);
    const msg = 'cannot write the audit trail: lines are kept, in order, and retried';
    if (auditDest !== stdout) log.error({ err: err.message, path: opts.auditPath, bufferBytes }, msg);
    stderrLine(errFd, { level: 50, ...base, msg, err: err.message, path: where, bufferBytes });
  };
  auditDest.onRecover = (stall) => {
    reported.clear();
    log.info({ path: where, stalledMs: Date.now() - stall.since }, 'audit trail writable again: every waiting line written');
  };
  let lost: number | undefined;
  return {
    log,
    audit,
    drain: async () => {
      await Promise.all([...dests.map((d) => d.drain()), pretty?.drain()]);
    },
    flushSync: () => {
      for (const d of dests) d.flushSync();
      pretty?.flushSync();
      drops.flush();
    },
    reopen: () => {
      if (auditDest !== stdout) auditDest.reopen();
    },
    stuck: () => dests.some((d) => d.writeStuck()),
    auditProblem: problem,
    auditBacklogBytes: () => auditDest.backlogBytes(),
    auditDroppedLines: () => drops.count(),
    abandon: (pipeWaitMs = 100) => {
      if (lost !== undefined) return lost;
      const stall = auditDest.stalled();
      for (const d of dests) if (d !== auditDest) d.abandon(pipeWaitMs);
      // Counted as written lines: the operational ones sharing stdout with the audit are lines too,
      // but only audit lines are owed; with a shared stdout every unwritten line is counted (an upper bound).
      lost = auditDest.abandon(pipeWaitMs);
      drops.flush();
      if (lost > 0) stderrLine(errFd, { level: 50, ...base, msg: 'audit lines lost at shutdown', lostLines: lost, path: where, reason: stall?.error ?? 'not written before limits.shutdownSeconds' });
      return lost;
    },
  };
}
