// An append-only line writer that batches under load. A line that comes after a quiet moment (no line
// for a millisecond, or the event loop mostly waiting since the last one) is written at once,
// synchronously: at low traffic every line is in the file
// before its response leaves, as before. Lines that come closer together are queued and written
// together a millisecond later (or as soon as a full write's worth is queued): one syscall and one
// buffer copy carry many lines. (Batching per event-loop turn left batches of 1–3 lines on a
// contended machine, where a turn serves few requests; bench:profile.) (sonic-boom with minLength 0 made one
// write per line under load here — each write completes before the next line comes — and with a
// minLength it holds lines until a timer fires; docs/benchmarks.md, "Audit at line rate".)
import { closeSync, fstatSync, fsyncSync, openSync, write, writeSync, mkdirSync } from 'node:fs';
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
/** A line after this long without one is written at once (low traffic); closer together they batch. */
const IDLE_MS = 1;
/** …or when the loop waited more than 1/IDLE_SHARE of the time since the last line. */
const IDLE_SHARE = 4;
/** How long lines under steady traffic wait to be written together. */
const BATCH_MS = 1;

export class LineWriter {
  private fd: number;
  private sync: boolean;
  private readonly loop: LoopClock;
  private pending: string[] = [];
  /** Byte length of each pending line, measured once when it was queued. */
  private lens: number[] = [];
  /** First pending line not yet taken. */
  private start = 0;
  /** The unwritten tail of a partial synchronous write: sent before the queue. */
  private head: Buffer | undefined;
  private pendingBytes = 0;
  private writing = false;
  private scheduled = false;
  private reopenAfterWrite = false;
  private waiters: Array<() => void> = [];
  private lastLine = -Infinity;
  /** The event loop's idle time (performance.nodeTiming.idleTime, ms) when the last line came. */
  private lastIdle = 0;
  /** Last write error, reported once; lines keep being buffered and retried. */
  onError: (err: Error) => void = () => undefined;

  constructor(private readonly opts: LineWriterOptions) {
    this.fd = this.open();
    this.sync = opts.syncWrites ?? neverBlocks(this.fd);
    this.loop = opts.loop ?? realLoop;
  }

  private open(): number {
    if (typeof this.opts.dest === 'number') return this.opts.dest;
    mkdirSync(dirname(this.opts.dest), { recursive: true });
    return openSync(this.opts.dest, 'a');
  }

  /** Queue one line (with its trailing newline). */
  write(line: string): void {
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
    if (quiet && !this.scheduled && !this.writing && this.queued() === 0 && !this.reopenAfterWrite) {
      // Nothing is waiting, so nothing is overtaken. The lines after it in this turn are not quiet
      // (no time, no waiting in between): they are batched, at most one quiet write per batch.
      if (this.writeNow(line)) return;
    }
    const len = Buffer.byteLength(line);
    this.pending.push(line);
    this.lens.push(len);
    this.pendingBytes += len;
    if (!this.scheduled && !this.writing) this.schedule();
  }

  private queued(): number {
    return this.pending.length - this.start;
  }

  /** Steady traffic: gather for up to BATCH_MS (or maxWrite bytes) so one write carries many lines. */
  private schedule(): void {
    this.scheduled = true;
    setTimeout(this.flushTurn, BATCH_MS);
  }

  /** One synchronous write; false (nothing written) when the pipe is full or the write fails. */
  private writeNow(line: string): boolean {
    const buf = Buffer.from(line);
    let n: number;
    try {
      n = writeSync(this.fd, buf);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') this.onError(err as Error);
      return false;
    }
    if (n === buf.length) return true;
    // A partial write to a pipe: the rest goes out first, before anything queued after it.
    this.head = buf.subarray(n);
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
    const text = this.start === 0 && n === this.pending.length ? this.pending.join('') : this.pending.slice(this.start, n).join('');
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
    return Buffer.from(text);
  }

  private next(): void {
    if (this.writing) return;
    if (this.head) {
      const h = this.head;
      this.head = undefined;
      this.writing = true;
      this.send(h);
      return;
    }
    if (this.reopenAfterWrite) this.swapFile();
    if (this.queued() === 0) {
      for (const w of this.waiters.splice(0)) w();
      return;
    }
    this.writing = true;
    const buf = this.take();
    if (this.sync) this.sendSync(buf);
    else this.send(buf);
  }

  private send(buf: Buffer): void {
    this.opts.onWrite?.(buf.length);
    write(this.fd, buf, 0, buf.length, null, (err, n) => {
      if (err) {
        // EAGAIN: a non-blocking pipe is full (the reader is slow); anything else is reported and the
        // same bytes tried again later: the audit trail prefers waiting to dropping.
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') this.onError(err);
        setTimeout(() => this.send(buf), RETRY_MS);
        return;
      }
      if (n < buf.length) return this.send(buf.subarray(n));
      this.written();
    });
  }

  /** One batch written synchronously (neverBlocks); a failure is retried as send() retries it. */
  private sendSync(buf: Buffer): void {
    this.opts.onWrite?.(buf.length);
    let off = 0;
    try {
      while (off < buf.length) off += writeSync(this.fd, buf, off);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') this.onError(err as Error);
      const rest = buf.subarray(off);
      setTimeout(() => this.send(rest), RETRY_MS);
      return;
    }
    this.written();
  }

  private written(): void {
    this.writing = false;
    // A full write's worth queued, or someone waiting (drain): go on at once; else gather a batch.
    if (this.pendingBytes >= this.opts.maxWrite || this.waiters.length > 0 || this.reopenAfterWrite) this.next();
    else if (this.queued() > 0 && !this.scheduled) this.schedule();
  }

  /** Resolves once every line queued so far is written (graceful shutdown). */
  drain(): Promise<void> {
    if (!this.writing && this.queued() === 0 && !this.head) return Promise.resolve();
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      if (!this.writing && !this.scheduled) this.next();
    });
  }

  /**
   * Write every queued line now, synchronously: for 'exit' and fatal errors, where no callback runs
   * again. A write already in flight is left to the thread pool (it is not repeated).
   */
  flushSync(): void {
    while (this.queued() > 0 || this.head) {
      let buf = this.head ?? this.take();
      this.head = undefined;
      while (buf.length > 0) {
        try {
          buf = buf.subarray(writeSync(this.fd, buf));
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') return;
        }
      }
    }
    if (typeof this.opts.dest === 'string') {
      try {
        fsyncSync(this.fd);
      } catch {
        /* best effort at exit */
      }
    }
  }

  /** Reopen the file (logrotate moved it away); after the write in flight, so no line is split. */
  reopen(): void {
    if (typeof this.opts.dest === 'number') return;
    this.reopenAfterWrite = true;
    if (!this.writing) this.next();
  }

  private swapFile(): void {
    this.reopenAfterWrite = false;
    const old = this.fd;
    try {
      this.fd = this.open();
    } catch (err) {
      this.onError(err as Error); // keep writing to the old file rather than lose lines
      return;
    }
    this.sync = this.opts.syncWrites ?? neverBlocks(this.fd);
    closeSync(old);
  }
}
