// Sends a blob while its fill is still writing it: bytes go out as they land on disk (or in the fill's
// memory tail once it relays), not after the whole blob, and the last byte only once the digest matched. A fill that fails
// fails every sender, so no client ever gets a complete body of wrong bytes.
import type { Writable } from 'node:stream';
import type { Fill, FillReader } from './blob-cache.js';
import { sendFileRange, type SendResult } from './file-sender.js';
import type { SendBudget } from './send-budget.js';

// Two reused 512 KiB buffers per sender: 20 concurrent readers of a fill hold 20 MiB. Fresh buffers
// per read measured +109 MiB RSS for 20 × 256 MiB at 1 MiB (garbage), over the 64 MiB budget.
const STEP = 512 << 10;

/** How far a sender may read from `pos`: written bytes less the one held back until the commit. */
async function fillAvailable(fill: Fill, pos: number): Promise<number> {
  for (;;) {
    const limit = fill.complete ? fill.size : Math.max(0, fill.written - 1);
    if (pos < limit) return limit;
    if (fill.error && !fill.complete) throw fill.error;
    if (fill.complete) return limit;
    await fill.next();
  }
}

/**
 * Send a fill as it grows, through a reader attached beforehand (Fill.attach): the reader shares the
 * fill's file handle, and reads its memory tail when the fill relays.
 */
export async function sendGrowingFile(fill: Fill, reader: FillReader, out: Writable, onBytes?: (n: number) => void, budget?: SendBudget): Promise<SendResult> {
  try {
    await fill.fileReady;
    return await sendFileRange(reader, out, { start: 0, end: fill.size, bufferSize: STEP, available: (pos) => fillAvailable(fill, pos), onBytes, budget });
  } finally {
    reader.detach();
  }
}
