// Reads a blob while its fill is still writing it: bytes are delivered as they land on disk, not
// after the whole blob, and the last byte only once the fill has committed (verified digest). A
// fill that fails destroys every reader, so no client ever gets a complete body of wrong bytes.
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { Fill } from './blob-cache.js';

// 256 KiB reads: 20 concurrent readers of a fill hold ~20 × 3 steps in buffers; 1 MiB steps measured
// +109 MiB RSS for 20 × 256 MiB (bench/blob-cache.bench.ts), over the 64 MiB budget.
const STEP = 256 << 10;

export class GrowingFileReader extends Readable {
  private pos = 0;
  private file: FileHandle | undefined;
  private busy = false;

  constructor(
    private readonly fill: Fill,
    private readonly onBytes?: (n: number) => void,
  ) {
    super({ highWaterMark: STEP });
  }

  /** Until committed, one byte is held back: with Content-Length framing the client cannot finish. */
  private limit(): number {
    return this.fill.committed ? this.fill.size : Math.max(0, this.fill.written - 1);
  }

  private async openFile(): Promise<FileHandle> {
    try {
      await this.fill.fileReady;
      return await open(this.fill.tmpPath, 'r');
    } catch (err) {
      // Committed (renamed) between our lookup and this open: the final file has the same bytes.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && this.fill.committed) return open(this.fill.finalPath, 'r');
      throw this.fill.error ?? err;
    }
  }

  override _read(): void {
    if (!this.busy) void this.pump();
  }

  private async pump(): Promise<void> {
    this.busy = true;
    try {
      this.file ??= await this.openFile();
      for (;;) {
        if (this.destroyed) return;
        if (this.fill.error) throw this.fill.error;
        const limit = this.limit();
        if (this.pos < limit) {
          const buf = Buffer.allocUnsafe(Math.min(STEP, limit - this.pos));
          const { bytesRead } = await this.file.read(buf, 0, buf.length, this.pos);
          if (bytesRead === 0) throw new Error(`blob cache: ${this.fill.key} shorter on disk than written`);
          this.pos += bytesRead;
          this.onBytes?.(bytesRead);
          if (!this.push(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead))) return;
        } else if (this.fill.committed && this.pos === this.fill.size) {
          this.push(null);
          return;
        } else {
          await this.fill.next();
        }
      }
    } catch (err) {
      this.destroy(err as Error);
    } finally {
      this.busy = false;
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const f = this.file;
    this.file = undefined;
    if (f) f.close().then(() => cb(err), () => cb(err));
    else cb(err);
  }
}
