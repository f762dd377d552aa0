// Where log lines go. Two pino instances: the operational log (its level from `log.level`) and the
// audit stream, always at info whatever `log.level` says — an operator who turns logging down to
// `warn` must not silently lose the record of every trust decision.
//
// Both go through LineWriter (line-writer.ts): under load lines are queued and written together up to
// a millisecond later, so one write carries many lines. (One synchronous write per line to stdout,
// pino's default, cost ~40% of warm-tag throughput; measured in docs/benchmarks.md, "Audit at line rate".) The price is that a line sits
// in memory for up to that millisecond: drain() and flushSync() write everything out on SIGTERM drain,
// fatal errors and exit, so none is lost.
import { fstatSync } from 'node:fs';
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

  constructor(
    private readonly dest: LineWriter,
    worker: number | undefined,
  ) {
    this.base = `,"service":"trustgate",${worker === undefined ? '' : `"worker":${worker},`}"audit":true,`;
  }

  write(rec: AuditRecord): void {
    const body = JSON.stringify(rec);
    this.dest.write(`${this.head}${Date.now()}${this.base}${body.slice(1, -1)},"msg":"${AUDIT_MSG}"}\n`);
  }

  // The line write({ ...p.rec, durationMs }) gives: durationMs comes last, and a finite number prints
  // the same in a template as in JSON (JSON has null for the others).
  writePrepared(p: PreparedAudit, durationMs: number): void {
    const d = Number.isFinite(durationMs) ? durationMs : null;
    this.dest.write(`${this.head}${Date.now()}${this.base}${p.fields},"durationMs":${d},"msg":"${AUDIT_MSG}"}\n`);
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
}): LogStreams {
  const fd = opts.stdoutFd ?? 1;
  const stdout = new LineWriter({ dest: fd, maxWrite: isPipe(fd) ? PIPE_BUF : 64 * 1024 });
  const auditDest = opts.auditPath !== undefined ? new LineWriter({ dest: opts.auditPath, maxWrite: 64 * 1024 }) : stdout;
  const base = opts.worker === undefined ? { service: 'trustgate' } : { service: 'trustgate', worker: opts.worker };
  const pretty = opts.format === 'pretty' ? prettySink(fd, isatty(fd)) : undefined;
  const log = pino({ level: opts.level, base, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, pretty?.stream ?? stdout);
  const audit = new AuditLines(auditDest, opts.worker);
  const dests: Array<{ drain(): Promise<void>; flushSync(): void }> = auditDest === stdout ? [stdout] : [stdout, auditDest];
  if (pretty) dests.push(pretty);
  // A failing audit file is said on stdout once per error kind; its lines stay queued and are retried.
  const reported = new Set<string>();
  auditDest.onError = (err) => {
    const code = (err as NodeJS.ErrnoException).code ?? err.message;
    if (auditDest !== stdout && !reported.has(code)) {
      reported.add(code);
      log.error({ err: err.message, path: opts.auditPath }, 'cannot write the audit file: lines are kept and retried');
    }
  };
  return {
    log,
    audit,
    drain: async () => {
      await Promise.all(dests.map((d) => d.drain()));
    },
    flushSync: () => {
      for (const d of dests) d.flushSync();
    },
    reopen: () => {
      if (auditDest !== stdout) auditDest.reopen();
    },
  };
}
