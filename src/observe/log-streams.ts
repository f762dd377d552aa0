// Where log lines go. Two pino instances: the operational log (its level from `log.level`) and the
// audit stream, always at info whatever `log.level` says — an operator who turns logging down to
// `warn` must not silently lose the record of every trust decision.
//
// Both write through sonic-boom in asynchronous mode: a line is appended to an in-memory buffer and the
// next fs.write takes everything buffered while the previous one was in flight, so under load one
// syscall carries many lines and when idle a line is written at once. (Synchronous writes to stdout,
// pino's default, cost ~40% of warm-tag throughput; measured in README.) The price is that lines sit in
// memory for a moment: flushSync() writes them out on drain, fatal errors and exit, so none is lost.
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { AUDIT_MSG, REDACT_PATHS, type AuditRecord, type AuditWriter } from './logger.js';

/** The sonic-boom instance pino.destination() returns, with the calls we rely on. */
interface AsyncDestination extends DestinationStream {
  write(line: string): unknown;
  flushSync(): void;
  reopen(file?: string): void;
  once(event: 'ready' | 'error' | 'drain', fn: (err?: Error) => void): unknown;
  removeListener(event: 'drain', fn: () => void): unknown;
  readonly fd: number;
  // sonic-boom's own state: its flush(cb) returns at once when minLength is 0, so "everything is
  // written" is read from these two (an fs.write in flight, bytes still buffered).
  readonly _writing: boolean;
  readonly _len: number;
}

export interface LogStreams {
  /** Operational log at `log.level`. */
  log: Logger;
  /** Audit lines (`"audit":true`), always written. */
  audit: AuditWriter;
  /** Resolves once every destination has its file open. */
  ready: Promise<void>;
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

// Writes to a pipe of at most PIPE_BUF bytes are atomic, and sonic-boom only ever cuts its buffer
// between whole writes (lines): with several worker processes sharing stdout (docker's log pipe),
// no line is torn by another process's write. Regular files opened O_APPEND need no such bound.
const PIPE_BUF = 4096;

function openDestination(dest: string | number): AsyncDestination {
  return pino.destination({
    dest,
    sync: false,
    append: true,
    mkdir: typeof dest === 'string',
    maxWrite: typeof dest === 'number' ? PIPE_BUF : 16 * 1024,
  }) as unknown as AsyncDestination;
}

function whenReady(d: AsyncDestination): Promise<void> {
  if (d.fd >= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    d.once('ready', () => resolve());
    d.once('error', (err) => reject(err));
  });
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
    private readonly dest: AsyncDestination,
    worker: number | undefined,
  ) {
    this.base = `,"service":"trustgate",${worker === undefined ? '' : `"worker":${worker},`}"audit":true,`;
  }

  write(rec: AuditRecord): void {
    const body = JSON.stringify(rec);
    this.dest.write(`${this.head}${Date.now()}${this.base}${body.slice(1, -1)},"msg":"${AUDIT_MSG}"}\n`);
  }
}

async function drained(d: AsyncDestination): Promise<void> {
  while (d.fd >= 0 && (d._writing || d._len > 0)) {
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        d.removeListener('drain', done);
        resolve();
      };
      const t = setTimeout(done, 20); // 'drain' is not emitted on every state change: look again
      d.once('drain', done);
    });
  }
}

export function openLogStreams(opts: {
  level: LoggerOptions['level'];
  auditPath?: string | undefined;
  stdoutFd?: number;
  /** node:cluster worker id: on every line, so lines from several workers can be told apart. */
  worker?: number | undefined;
}): LogStreams {
  const stdout = openDestination(opts.stdoutFd ?? 1);
  const auditDest = opts.auditPath !== undefined ? openDestination(opts.auditPath) : stdout;
  const base = opts.worker === undefined ? { service: 'trustgate' } : { service: 'trustgate', worker: opts.worker };
  const log = pino({ level: opts.level, base, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, stdout);
  const audit = new AuditLines(auditDest, opts.worker);
  const dests = auditDest === stdout ? [stdout] : [stdout, auditDest];
  return {
    log,
    audit,
    ready: Promise.all(dests.map(whenReady)).then(() => undefined),
    drain: async () => {
      await Promise.all(dests.map(drained));
    },
    flushSync: () => {
      for (const d of dests) {
        // Not open yet (the file could not be created): nothing was written to it to lose.
        if (d.fd < 0) continue;
        try {
          d.flushSync();
        } catch {
          /* the destination is gone (closed pipe): nothing more can be done at exit */
        }
      }
    },
    reopen: () => {
      if (auditDest !== stdout) auditDest.reopen();
    },
  };
}
