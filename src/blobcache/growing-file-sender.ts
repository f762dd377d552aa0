// Sends a blob while its fill is still writing it: bytes go out as they land on disk, not after the
// whole blob, and the last byte only once the fill has committed (verified digest). A fill that fails
// fails every sender, so no client ever gets a complete body of wrong bytes.
import { open, type FileHandle } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import type { Fill } from './blob-cache.js';
import { sendFileRange, type SendResult } from './file-sender.js';

// Two reused 512 KiB buffers per sender: 20 concurrent readers of a fill hold 20 MiB. Fresh buffers
// per read measured +109 MiB RSS for 20 × 256 MiB at 1 MiB (garbage), over the 64 MiB budget.
const STEP = 512 << 10;

/** How far a sender may read from `pos`: written bytes less the one held back until the commit. */
async function fillAvailable(fill: Fill, pos: number): Promise<number> {
  for (;;) {
    if (fill.error) throw fill.error;
    const limit = fill.committed ? fill.size : Math.max(0, fill.written - 1);
    if (pos < limit) return limit;
    await fill.next();
  }
}

async function openFill(fill: Fill): Promise<FileHandle> {
  try {
    await fill.fileReady;
    return await open(fill.tmpPath, 'r');
  } catch (err) {
    // Renamed into place between the lookup and this open: the final file has the same bytes. The fill
    // counts as committed only once its commit steps after the rename are done, so wait for its outcome
    // (answering with an error here cut a joining client before its first byte: seen once in CI).
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      await fill.done;
      if (fill.committed) return open(fill.finalPath, 'r');
    }
    throw fill.error ?? err;
  }
}

export async function sendGrowingFile(fill: Fill, out: Writable, onBytes?: (n: number) => void): Promise<SendResult> {
  const file = await openFill(fill);
  try {
    return await sendFileRange(file, out, { start: 0, end: fill.size, bufferSize: STEP, available: (pos) => fillAvailable(fill, pos), onBytes });
  } finally {
    await file.close().catch(() => undefined);
  }
}
