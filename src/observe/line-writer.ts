// An append-only line writer that batches under load. A line that comes after a quiet moment (no line
// for a millisecond, or the event loop mostly waiting since the last one) is written at once,
// synchronously: at low traffic every line is in the file
// before its response leaves, as before. Lines that come closer together are queued and written
// together a millisecond later (or as soon as a full write's worth is queued): one syscall and one
// buffer copy carry many lines. (Batching per event-loop turn left batches of 1–3 lines on a
// contended machine, where a turn serves few requests; bench:profile.) (sonic-boom with minLength 0 made one
// write per line under load here — each write completes before the next line comes — and with a
// minLength it holds lines until a timer fires; docs/benchmarks.md, "Audit at line rate".)
import { closeSync, constants, fstatSync, fsyncSync, openSync, readSync, write, writeSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { isatty } from 'node:tty';

export interface LineWriterOptions {
  /** A file path (appended, created with its directory) or an open descriptor (stdout: 1). */
  dest: string | number;
  /**
   * Largest single write, cut only between lines. For a pipe shared by several processes, PIPE_BUF
   * (4096) keeps every write atomic, so no other process's write lands inside a line.
   */
  maxWrite: number;
  /** Called with the size of every write handed to the kernel (metrics; tests check the batching). */
  onWrite?: (bytes: number) => void;
  /**
   * Write each batch synchronously. Default: for a regular file or a non-terminal character device
   * (/dev/null) — see neverBlocks(); a pipe, socket or terminal is written asynchronously.
   */
  syncWrites?: boolean;
  /** The clock and the event loop's idle time, both in ms (tests replay traffic through them). */
  loop?: LoopClock;
  /**
   * Bytes that may wait unwritten (the destination fails or is slow): past this, write() drops the
   * line and says so (false), and accepting() is false. Default: no bound.
   */
  bufferBytes?: number;
  /**
   * Room above bufferBytes for write(line, true): the lines of decisions admitted while accepting()
   * was still true (audit.onFailure: refuse) are kept even if they arrive after the buffer filled.
   */
  reserveBytes?: number;
}

export interface LoopClock {
  now(): number;
  /** Time the event loop has spent waiting for I/O since it started (performance.nodeTiming.idleTime). */
  idleTime(): number;
}

const realLoop: LoopClock = { now: () => performance.now(), idleTime: () => performance.nodeTiming.idleTime };

/**
 * A regular file takes a write into the page cache without waiting for a reader, and /dev/null takes
 * it at once: for these one synchronous write per batch is a copy, while an fs.write hands it to the
 * thread pool and wakes a thread — on 2 busy cores that wake-up cost more than the copy (writeBuffer
 * 5–6% of the warm HEAD path's samples; docs/benchmarks.md, "The warm HEAD path, second profile
 * pass"). A pipe or terminal can
 * block while its reader is slow: those keep the asynchronous write.
 */
export function neverBlocks(fd: number): boolean {
  try {
    const st = fstatSync(fd);
    return st.isFile() || (st.isCharacterDevice() && !isatty(fd));
  } catch {
    return false;
  }
}

const RETRY_MS = 10;
/** A destination that keeps failing is retried at most this far apart (backoff from RETRY_MS). */
const MAX_RETRY_MS = 250;
/** A line after this long without one is written at once (low traffic); closer together they batch. */
const IDLE_MS = 1;
/** …or when the loop waited more than 1/IDLE_SHARE of the time since the last line. */
const IDLE_SHARE = 4;
/** How long lines under steady traffic wait to be written together. */
const BATCH_MS = 1;

/** Why lines are waiting: the destination failed (ENOSPC, EIO, …) and has not taken them all since. */
export interface WriterStall {
  /** errno code (or message) of the last failed write. */
  error: string;
  /** Date.now() of the first failure of this stall. */
  since: number;
}

export class LineWriter {
  private fd: number;
  private sync: boolean;
  private readonly loop: LoopClock;
  private pending: string[] = [];
  /** Byte length of each pending line, measured once when it was queued. */
  private lens: number[] = [];
  /** First pending line not yet taken. */
  private start = 0;
  private pendingBytes = 0;
  /**
   * Bytes taken from the queue and not yet written: the write in flight, the unwritten tail of a
   * partial write, or what a failed write left for its retry. Always written before the queue.
   */
  private cur: Buffer | undefined;
  /** 'kernel': an fs.write of `cur` is in the thread pool; 'retry': a failed write waits for its timer. */
  private busy: 'kernel' | 'retry' | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryMs = RETRY_MS;
  private scheduled = false;
  private reopenAfterWrite = false;
  private waiters: Array<() => void> = [];
  private lastLine = -Infinity;
  /** The event loop's idle time (performance.nodeTiming.idleTime, ms) when the last line came. */
  private lastIdle = 0;
  /** A file that does not end in a newline (a line torn by a crash): the first write starts a fresh line. */
  private torn = false;
  private stall: WriterStall | undefined;
  private closed = false;
  private readonly bufferBytes: number;
  private readonly hardBytes: number;
  /** Lines refused by write() because the buffer was full, since the writer was made. */
  droppedLines = 0;
  /** Every failed write (not EAGAIN); lines stay buffered and are retried. */
  onError: (err: Error) => void = () => undefined;
  /** The destination took everything that waited after a stall. */
  onRecover: (stall: WriterStall) => void = () => undefined;

  constructor(private readonly opts: LineWriterOptions) {
    this.fd = this.open();
    this.sync = opts.syncWrites ?? neverBlocks(this.fd);
    this.loop = opts.loop ?? realLoop;
    this.bufferBytes = opts.bufferBytes ?? Infinity;
    this.hardBytes = this.bufferBytes + (opts.reserveBytes ?? 0);
  }

  private open(): number {
    if (typeof this.opts.dest === 'number') return nonBlockingPipe(this.opts.dest);
    mkdirSync(dirname(this.opts.dest), { recursive: true });
    // 'a+': appended (O_APPEND) and readable, for the torn-last-line check.
    const fd = openSync(this.opts.dest, 'a+');
    this.torn = endsTorn(fd);
    return fd;
  }

  /** Bytes waiting to be written (queued, in flight, or kept for a retry). */
  backlogBytes(): number {
    return this.pendingBytes + (this.cur?.length ?? 0);
  }

  /** Whole lines not yet written (a line written in part counts as unwritten). */
  unwrittenLines(): number {
    return this.queued() + (this.cur ? countLines(this.cur) : 0);
  }

  /** Room for another line: the backlog is under bufferBytes. */
  accepting(): boolean {
    return this.pendingBytes + (this.cur?.length ?? 0) < this.bufferBytes;
  }

  /** Set while a failed write's lines wait; cleared once the destination has taken every one. */
  stalled(): WriterStall | undefined {
    return this.stall;
  }

  /**
   * Queue one line (with its trailing newline). false: dropped, the buffer is full (counted in
   * droppedLines). `reserved`: the line may use reserveBytes above bufferBytes.
   */
  write(line: string, reserved = false): boolean {
    if (this.closed) {
      this.droppedLines++;
      return false;
    }
    const now = this.loop.now();
    const idleTime = this.loop.idleTime();
    // Quiet: no line for IDLE_MS, or the event loop spent a good part of the time since the last line
    // waiting for I/O — one client at a time, however fast: its line goes out before its response.
    // (Time alone took a sequential client's requests for load: on the warm path they come 0.5–1 ms
    // apart, the loop waiting 45–70% of it.) Lines of one turn come with no waiting in between, and
    // under load the loop barely waits: those are batched.
    const since = now - this.lastLine;
    const quiet = since > IDLE_MS || (idleTime - this.lastIdle) * IDLE_SHARE > since;
    this.lastLine = now;
    this.lastIdle = idleTime;
    if (quiet && !this.scheduled && !this.busy && !this.cur && this.queued() === 0 && !this.reopenAfterWrite) {
      // Nothing is waiting, so nothing is overtaken. The lines after it in this turn are not quiet
      // (no time, no waiting in between): they are batched, at most one quiet write per batch.
      if (this.writeNow(line)) return true;
    }
    const len = Buffer.byteLength(line);
    if (this.backlogBytes() + len > (reserved ? this.hardBytes : this.bufferBytes)) {
      this.droppedLines++;
      return false;
    }
    this.pending.push(line);
    this.lens.push(len);
    this.pendingBytes += len;
    if (!this.scheduled && !this.busy && !this.cur) this.schedule();
    return true;
  }

  private queued(): number {
    return this.pending.length - this.start;
  }

  /** Steady traffic: gather for up to BATCH_MS (or maxWrite bytes) so one write carries many lines. */
  private schedule(): void {
    this.scheduled = true;
    setTimeout(this.flushTurn, BATCH_MS);
  }

  /** One synchronous write; false (nothing written, the line is to be queued) when it fails. */
  private writeNow(line: string): boolean {
    const buf = Buffer.from(this.torn ? `\n${line}` : line);
    let n: number;
    try {
      n = writeSync(this.fd, buf);
    } catch (err) {
      // EAGAIN: the pipe is full. Anything else (ENOSPC, EIO): the line is queued and retried.
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') this.failedOnce(err as Error);
      return false;
    }
    this.torn = false;
    if (n === buf.length) return true;
    // A partial write (a pipe, or the last bytes a full disk had): the rest goes out first, before
    // anything queued after it.
    this.cur = buf.subarray(n);
    this.schedule();
    return true;
  }

  private readonly flushTurn = (): void => {
    this.scheduled = false;
    this.next();
  };

  /** Lines for one write: whole lines up to maxWrite bytes (at least one line). */
  private take(): Buffer {
    // An index into the queue rather than slicing it: with a backlog (a slow disk or reader), slicing
    // copied the whole rest of the queue on every write.
    let bytes = 0;
    let n = this.start;
    for (; n < this.pending.length; n++) {
      const b = this.lens[n]!;
      if (n > this.start && bytes + b > this.opts.maxWrite) break;
      bytes += b;
    }
    let text = this.start === 0 && n === this.pending.length ? this.pending.join('') : this.pending.slice(this.start, n).join('');
    this.pendingBytes -= bytes;
    if (n === this.pending.length) {
      this.pending = [];
      this.lens = [];
      this.start = 0;
    } else {
      this.start = n;
      // Drop the taken lines now and then (amortised): a queue that never empties must not grow.
      if (this.start > 1024 && this.start * 2 > this.pending.length) {
        this.pending = this.pending.slice(this.start);
        this.lens = this.lens.slice(this.start);
        this.start = 0;
      }
    }
    if (this.torn) {
      text = `\n${text}`;
      this.torn = false;
    }
    return Buffer.from(text);
  }

  /** Write what waits, `cur` first; synchronous destinations loop here, asynchronous ones go on in onWritten. */
  private next(): void {
    while (!this.busy && !this.closed) {
      if (!this.cur) {
        if (this.reopenAfterWrite) this.swapFile();
        if (this.queued() === 0) return this.caughtUp();
        this.cur = this.take();
      }
      if (!this.sync) return this.send(this.cur);
      const buf = this.cur;
      this.opts.onWrite?.(buf.length);
      let off = 0;
      try {
        while (off < buf.length) off += writeSync(this.fd, buf, off);
      } catch (err) {
        this.cur = buf.subarray(off);
        return this.failed(err as Error);
      }
      this.cur = undefined;
      if (!this.goOn()) return;
    }
  }

  private send(buf: Buffer): void {
    this.opts.onWrite?.(buf.length);
    this.busy = 'kernel';
    write(this.fd, buf, 0, buf.length, null, (err, n) => {
      this.busy = undefined;
      if (this.closed) return;
      if (err) return this.failed(err);
      if (n < buf.length) {
        this.cur = buf.subarray(n);
        return this.send(this.cur);
      }
      this.cur = undefined;
      if (this.goOn()) this.next();
    });
  }

  /** After a successful write: true to write again at once, else a batch is gathered (or nothing waits). */
  private goOn(): boolean {
    this.retryMs = RETRY_MS;
    // A full write's worth queued, someone waiting (drain), a reopen, or a backlog after a stall: at once.
    if (this.pendingBytes >= this.opts.maxWrite || this.waiters.length > 0 || this.reopenAfterWrite || this.stall) return true;
    if (this.queued() > 0) {
      if (!this.scheduled) this.schedule();
    } else this.caughtUp();
    return false;
  }

  /** Nothing waits: a stall is over, drain() resolves. */
  private caughtUp(): void {
    if (this.stall) {
      const s = this.stall;
      this.stall = undefined;
      this.onRecover(s);
    }
    for (const w of this.waiters.splice(0)) w();
  }

  private failedOnce(err: Error): void {
    const code = (err as NodeJS.ErrnoException).code ?? err.message;
    if (this.stall) this.stall.error = code;
    else this.stall = { error: code, since: Date.now() };
    this.onError(err);
  }

  /**
   * A write failed: the same bytes are tried again later (backing off), before anything queued
   * after them. EAGAIN is a full pipe (a slow reader); anything else (ENOSPC, EIO, EDQUOT) is a stall
   * that readiness and the audit admission see (log-streams.ts). The audit trail waits rather than drops.
   */
  private failed(err: Error): void {
    if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') this.failedOnce(err);
    this.busy = 'retry';
    this.retryTimer = setTimeout(() => {
      this.busy = undefined;
      this.retryTimer = undefined;
      this.next();
    }, this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
  }

  /** Resolves once every line queued so far is written (graceful shutdown; never while a stall lasts). */
  drain(): Promise<void> {
    if (!this.busy && !this.cur && this.queued() === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      if (!this.busy && !this.scheduled) this.next();
    });
  }

  /**
   * Write every waiting line now, synchronously: for 'exit' and fatal errors, where no callback runs
   * again. A write already in flight is left to the thread pool (it is not repeated). Gives up at the
   * first failure other than a full pipe, and on a full pipe after `untilMs` (Date.now() clock): the
   * process must be able to end whatever the destination does. Returns the lines still unwritten.
   */
  flushSync(untilMs = Date.now() + 1000): number {
    // After abandon() nothing is tried again: a write stuck in the thread pool would block this one.
    if (this.closed) return this.unwrittenLines();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.busy === 'kernel') this.cur = undefined; // the thread pool holds those bytes
    this.busy = undefined;
    out: while (this.cur || this.queued() > 0) {
      this.cur ??= this.take();
      while (this.cur.length > 0) {
        try {
          this.cur = this.cur.subarray(writeSync(this.fd, this.cur));
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EAGAIN' || Date.now() > untilMs) break out;
        }
      }
      this.cur = undefined;
    }
    if (typeof this.opts.dest === 'string') {
      try {
        fsyncSync(this.fd);
      } catch {
        /* best effort at exit */
      }
    }
    return this.unwrittenLines();
  }

  /**
   * Stop: no more retries, lines written from now on are dropped. Returns how many lines were never
   * written (the shutdown deadline passed with the destination still failing).
   */
  abandon(pipeWaitMs = 100): number {
    // A write stuck in the thread pool (a blocking pipe whose reader stopped): a synchronous write
    // would block behind it, forever. Nothing more is tried; its bytes and the queue are lost.
    const lost = this.busy === 'kernel' && !this.sync ? this.unwrittenLines() : this.flushSync(Date.now() + pipeWaitMs);
    this.closed = true;
    return lost;
  }

  /**
   * A write handed to the thread pool has not come back. Asked at the shutdown deadline: then it is
   * stuck (a blocking pipe nobody reads), and Node cannot exit with it — libuv joins its threads.
   */
  writeStuck(): boolean {
    return this.busy === 'kernel';
  }

  /** Reopen the file (logrotate moved it away); after the write in flight, so no line is split. */
  reopen(): void {
    if (typeof this.opts.dest === 'number') return;
    this.reopenAfterWrite = true;
    if (!this.busy && !this.cur) this.next();
  }

  private swapFile(): void {
    this.reopenAfterWrite = false;
    const old = this.fd;
    let fd: number;
    try {
      fd = this.open();
    } catch (err) {
      this.onError(err as Error); // keep writing to the old file rather than lose lines
      return;
    }
    this.fd = fd;
    this.sync = this.opts.syncWrites ?? neverBlocks(this.fd);
    closeSync(old);
  }
}

/** Lines in a buffer of whole lines (a partial last line counts too). */
function countLines(buf: Buffer): number {
  let n = 0;
  for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, i + 1)) n++;
  return buf.length > 0 && buf[buf.length - 1] !== 10 ? n + 1 : n;
}

/** The file is not empty and its last byte is not a newline: a line cut off by a crash or a full disk. */
function endsTorn(fd: number): boolean {
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return false;
    const b = Buffer.alloc(1);
    return readSync(fd, b, 0, 1, size - 1) === 1 && b[0] !== 10;
  } catch {
    return false; // opened write-only, or not seekable: nothing to repair
  }
}

/**
 * A pipe (stdout into docker's or a collector's pipe) reopened through /proc as a file description of
 * our own with O_NONBLOCK: a write into a full pipe then fails with EAGAIN (queued and retried) instead
 * of blocking — the event loop, for a quiet line written at once, or a thread-pool thread that Node
 * cannot exit without. The inherited description is left as it was, for whoever else shares it.
 * Anything else (a file, a terminal, a socket: /proc cannot reopen those) is used as given.
 */
function nonBlockingPipe(fd: number): number {
  try {
    if (!fstatSync(fd).isFIFO()) return fd;
    return openSync(`/proc/self/fd/${fd}`, constants.O_WRONLY | constants.O_NONBLOCK);
  } catch {
    return fd;
  }
}
