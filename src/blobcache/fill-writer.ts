// The disk end of a fill: hashes what arrives and writes it at the fill's offset. Chunks are hashed
// the moment they arrive and queued; one writev at a time takes everything queued since the last one,
// so hashing, reading the upstream socket and writing the disk overlap instead of taking turns
// (hashing inside the write step, before each writev, measured ~25% slower: bench/; docs/benchmarks.md, "Blob cache (measured)"). At most
// MAX_QUEUED bytes wait in memory; past that the write callback is held, which pipeline() carries back
// to the upstream socket.
//
// A disk that refuses a write (ENOSPC, EIO, EDQUOT, EROFS: isDiskError) does not fail the fill: the
// unwritten bytes and everything after go to the fill's memory tail (Fill.beginRelay), the clients
// reading it go on, and the write callback is held while the slowest of them is MAX_QUEUED behind.
// `onRelay` tells the cache, which drops the fill from its index and removes the temporary file.
import type { Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { fail } from '../errors.js';
import type { Fill } from './blob-cache.js';

const MAX_QUEUED = 4 << 20;

/** Errors that mean "this disk cannot take the fill", not "these bytes are wrong": the fill goes on as a relay. */
const DISK_ERRORS = new Set(['ENOSPC', 'EIO', 'EDQUOT', 'EROFS', 'EFBIG']);
export function isDiskError(err: unknown): boolean {
  return DISK_ERRORS.has((err as NodeJS.ErrnoException | undefined)?.code ?? '');
}

type Callback = (err?: Error | null) => void;

export class FillWriter extends Writable {
  private queued: Buffer[] = [];
  private queuedBytes = 0;
  /** Bytes accepted (hashed), written or not. */
  private accepted = 0;
  private writing = false;
  private failed: Error | undefined;
  /** The write callback held back while MAX_QUEUED bytes wait. */
  private blocked: Callback | undefined;
  private finalCb: Callback | undefined;
  private relaying = false;

  constructor(
    private readonly fh: FileHandle | undefined,
    private readonly fill: Fill,
    private readonly hash: Hash,
    private readonly digest: string,
    private readonly hooks: {
      /** Make room for n bytes before they are written (eviction). */
      beforeWrite?: (n: number) => Promise<void>;
      afterWrite?: (n: number) => void;
      /** The disk refused a write: the fill relays from now on. */
      onRelay?: (err: Error) => void;
    } = {},
  ) {
    super({ highWaterMark: 1 << 20 });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: Callback): void {
    if (this.failed) return cb(this.failed);
    if (this.accepted + chunk.length > this.fill.size) return cb(fail('DIGEST_MISMATCH', `blob ${this.digest}: more than the announced ${this.fill.size} bytes`));
    this.accepted += chunk.length;
    this.hash.update(chunk);
    if (this.relaying) return this.relayChunk(chunk, cb);
    this.queued.push(chunk);
    this.queuedBytes += chunk.length;
    this.startWrite();
    if (this.queuedBytes < MAX_QUEUED) cb();
    else this.blocked = cb;
  }

  override _final(cb: Callback): void {
    if (this.failed) return cb(this.failed);
    if (this.relaying) return cb();
    this.finalCb = cb;
    this.startWrite();
  }

  /** One writev at a time, of everything queued; the final callback once nothing is left. */
  private startWrite(): void {
    if (this.writing || this.failed) return;
    if (this.queued.length === 0) {
      const done = this.finalCb;
      this.finalCb = undefined;
      done?.();
      return;
    }
    const bufs = this.queued;
    const n = this.queuedBytes;
    this.queued = [];
    this.queuedBytes = 0;
    this.writing = true;
    const start = this.fill.written;
    void this.writeAll(bufs, n, start).then(
      () => {
        this.writing = false;
        this.fill.written += n;
        this.fill.onDisk = this.fill.written;
        this.hooks.afterWrite?.(n);
        this.fill.notify();
        this.startWrite();
        const cb = this.blocked;
        this.blocked = undefined;
        cb?.();
      },
      (err: Error) => {
        this.writing = false;
        if (isDiskError(err)) return this.startRelay(bufs, err);
        this.failed = err;
        const cb = this.blocked ?? this.finalCb;
        this.blocked = this.finalCb = undefined;
        if (cb) cb(err);
        else this.destroy(err);
      },
    );
  }

  /** Written bytes stay readable from the file; `unwritten` and all queued after them go to the tail. */
  startRelay(unwritten: Buffer[], err: Error): void {
    this.relaying = true;
    const pending = [...unwritten, ...this.queued];
    this.queued = [];
    this.queuedBytes = 0;
    this.fill.onReadersMoved = () => this.roomMade();
    this.fill.beginRelay(pending);
    this.hooks.onRelay?.(err);
    this.fill.notify();
    const done = this.finalCb;
    this.finalCb = undefined;
    done?.();
    this.roomMade();
  }

  private relayChunk(chunk: Buffer, cb: Callback): void {
    if (this.fill.readerCount === 0) return cb(new Error('relayed blob: no client is reading it any more'));
    this.fill.pushTail(chunk);
    this.fill.notify();
    if (this.fill.tailLag < MAX_QUEUED) cb();
    else this.blocked = cb;
  }

  /** Readers moved on or left: release a held write, or end a relay nobody reads. */
  private roomMade(): void {
    if (!this.relaying) return;
    if (this.fill.readerCount === 0 && !this.fill.verified) {
      const cb = this.blocked;
      this.blocked = undefined;
      const err = new Error('relayed blob: no client is reading it any more');
      if (cb) cb(err);
      else if (!this.writableFinished) this.destroy(err);
      return;
    }
    if (this.blocked && this.fill.tailLag < MAX_QUEUED) {
      const cb = this.blocked;
      this.blocked = undefined;
      cb();
    }
  }

  private async writeAll(bufs: Buffer[], n: number, start: number): Promise<void> {
    await this.hooks.beforeWrite?.(n);
    let done = 0;
    while (done < n) {
      const { bytesWritten } = await this.fh!.writev(bufs, start + done);
      done += bytesWritten;
      if (done < n) bufs = remaining(bufs, bytesWritten);
    }
  }
}

/** What is left of `bufs` after the first `n` bytes were written (a short writev). */
function remaining(bufs: Buffer[], n: number): Buffer[] {
  const out: Buffer[] = [];
  for (const b of bufs) {
    if (n >= b.length) {
      n -= b.length;
      continue;
    }
    out.push(n > 0 ? b.subarray(n) : b);
    n = 0;
  }
  return out;
}
