// Blob file operations (opening a cached blob, reading it, touching and closing it) take at most two of
// libuv's four threadpool threads at once; the other two stay free for the file store and metadata.
// Hundreds of blob sends starting at once used to queue every other file operation behind theirs: a
// signed pull waited ~12 s while 600 slow readers started (connection-limits test), and, once reads
// alone were gated, still 50–170 ms behind the 600 sends' open, fstat and utimes.
//
// Waiting operations are served least-moved first: the send that has written the fewest bytes so far
// takes the next free slot (a new request's open moves 0). A FIFO put a signed pull's config blob
// behind the next reads of 600 slow readers (55–65 ms of its ~60–100 ms, while a HEAD of the same blob
// took 2 ms); splitting at 1 MiB moved did not help, since each slow reader moves under 2 MiB in all.
// A long send cannot starve: every other send it yields to moves ahead of it.
import { MinQueue } from './min-queue.js';

const SLOTS = 2;
let inFlight = 0;
const waiting = new MinQueue<() => void>();

/** Run `op` in one of the blob I/O slots; `moved` orders the wait (bytes the send has written so far). */
export async function gatedIo<T>(moved: number, op: () => Promise<T>): Promise<T> {
  if (inFlight >= SLOTS) await new Promise<void>((r) => waiting.push(moved, r));
  inFlight++;
  try {
    return await op();
  } finally {
    inFlight--;
    waiting.pop()?.();
  }
}
