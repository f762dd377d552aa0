// Sends a byte range of an open file to an http response, the fastest way measured here without
// sendfile (node:http has none): two reused buffers per response (leased from the global budget,
// send-budget.ts: smaller when many responses are in flight), the next read overlapping the
// previous write, and a buffer refilled only after the write that carried it completed (its callback:
// the bytes are in the kernel). Fresh buffers per chunk (fs/FileHandle.createReadStream) made the
// garbage collector a bottleneck that took several 256 MiB pulls to warm up: 0.75 → 1.5 GB/s, while
// reused buffers start at ~2.5 GB/s with curl as the client (bench/blob-cache.bench.ts;
// docs/benchmarks.md, "Blob cache (measured)").
//
// A file that may still grow (a fill in progress) is read up to what `available` allows, waiting for
// more; a body that must be verified is hashed on the way and its last chunk written only after the
// digest matched, so a client is never handed a complete body of wrong bytes.
import { createHash, type Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { fail } from '../errors.js';
import { gatedIo } from './io-gate.js';
import type { SendBudget } from './send-budget.js';

export interface SendOptions {
  /** First byte to send. */
  start: number;
  /** One past the last byte to send. */
  end: number;
  /** Size of each of the two buffers. */
  bufferSize: number;
  /** For a growing file: how far bytes from `pos` may be read now; resolves once more than `pos` is there. */
  available?: (pos: number) => number | Promise<number>;
  /** The bytes [start, end) must hash to this `sha256:<hex>` digest; the last chunk waits for the match. */
  verify?: { digest: string; onVerified?: () => void };
  onBytes?: (n: number) => void;
  /** The global buffer budget (limits.sendBufferBytes): the buffers are leased from it, maybe smaller. */
  budget?: SendBudget | undefined;
}

/** What happened: every byte written and the response ended, or the client went away first. */
export type SendResult = 'sent' | 'client-gone';

/** What is read from: an open file, or a fill's reader (file, then memory tail). */
export type ReadAt = Pick<FileHandle, 'read'> | { read(buf: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> };

export async function sendFileRange(file: ReadAt, out: Writable, o: SendOptions): Promise<SendResult> {
  const len = Math.max(1, Math.min(o.bufferSize, o.end - o.start));
  const lease = o.budget?.lease(len);
  const bufs = lease?.buffers ?? [Buffer.allocUnsafe(len), Buffer.allocUnsafe(len)];
  const hash = o.verify ? createHash('sha256') : undefined;
  // The client going away must end the loop even while a write callback is outstanding.
  let gone = false;
  let onGone: () => void = () => {};
  const closed = new Promise<void>((r) => (onGone = r));
  const onClose = () => {
    if (out.writableFinished || gone) return;
    gone = true;
    onGone();
  };
  out.once('close', onClose);
  // Writes handed to the response whose callbacks have not run: their buffers may still be read.
  let pending = 0;
  try {
    if (o.start >= o.end && hash) checkDigest(hash, o.verify!); // an empty body is verified too
    let pos = o.start;
    let turn = 0;
    let inFlight: Promise<void> | undefined;
    while (pos < o.end) {
      let limit = o.end;
      if (o.available) {
        const a = await Promise.race([o.available(pos), closed]);
        if (gone) return 'client-gone';
        limit = Math.min(o.end, a as number);
      }
      const buf = bufs[turn++ & 1]!;
      const { bytesRead } = await gatedIo(pos - o.start, () => file.read(buf, 0, Math.min(buf.length, limit - pos), pos));
      if (bytesRead === 0) throw new Error(`file shorter on disk than ${o.end} bytes (read at ${pos})`);
      const chunk = bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
      pos += bytesRead;
      if (hash) {
        hash.update(chunk);
        if (pos === o.end) checkDigest(hash, o.verify!);
      }
      // The other buffer's write must be done before this one is handed over, and before the next
      // read refills that other buffer.
      if (inFlight) await Promise.race([inFlight, closed]);
      if (gone) return 'client-gone';
      pending++;
      inFlight = write(out, chunk, onClose).then(() => void pending--);
      o.onBytes?.(bytesRead);
    }
    if (inFlight) await Promise.race([inFlight, closed]);
    if (gone) return 'client-gone';
    out.end();
    return 'sent';
  } finally {
    // A buffer still carried by a queued write (the send failed or the client went mid-way) is never
    // handed to another send: it would put that send's bytes into this response.
    lease?.release(pending === 0);
    out.removeListener('close', onClose);
  }
}

function checkDigest(hash: Hash, v: NonNullable<SendOptions['verify']>): void {
  const got = `sha256:${hash.digest('hex')}`;
  if (got !== v.digest) throw fail('DIGEST_MISMATCH', `blob hashes to ${got}, not ${v.digest}`);
  v.onVerified?.();
}

/** Resolves when the chunk is written; a failed write (the client reset the connection) counts as the client gone. */
function write(out: Writable, chunk: Buffer, onFail: () => void): Promise<void> {
  return new Promise((resolve) =>
    out.write(chunk, (err) => {
      if (err) onFail();
      resolve();
    }),
  );
}
