// sendFileRange: the right bytes for a range, never a buffer refilled before its write was done,
// the last chunk of a verified body only after the digest matched, and a client that goes away ends
// the send without an error.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sendFileRange } from '../../../src/blobcache/file-sender.js';

const digestOf = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
let dir: string;
let file: FileHandle;
const bytes = randomBytes(1_000_003); // not a multiple of the buffer size

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'file-sender-'));
  writeFileSync(join(dir, 'f'), bytes);
  file = await open(join(dir, 'f'), 'r');
});
afterEach(async () => {
  await file.close();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * A sink that keeps a reference to each chunk (as a socket does) and copies it only when it completes
 * the write, later: had the sender refilled the buffer before the callback, the copy shows other bytes.
 */
function slowSink(delayMs = 1): { sink: Writable; received: () => Buffer } {
  const held: Buffer[] = [];
  const sink = new Writable({
    highWaterMark: 1,
    write(c: Buffer, _e, cb) {
      setTimeout(() => {
        held.push(Buffer.from(c));
        cb();
      }, delayMs);
    },
  });
  return { sink, received: () => Buffer.concat(held) };
}

describe('sendFileRange', () => {
  it('sends the whole file and ends the response; buffers are reused only after their write completed', async () => {
    const { sink, received } = slowSink();
    expect(await sendFileRange(file, sink, { start: 0, end: bytes.length, bufferSize: 64 * 1024 })).toBe('sent');
    expect(sink.writableEnded).toBe(true);
    expect(received().equals(bytes)).toBe(true);
  });

  it('sends exactly a range', async () => {
    const { sink, received } = slowSink(0);
    await sendFileRange(file, sink, { start: 12_345, end: 700_001, bufferSize: 100_000 });
    expect(received().equals(bytes.subarray(12_345, 700_001))).toBe(true);
  });

  it('a verified body whose hash matches is sent whole and reported verified', async () => {
    const { sink, received } = slowSink(0);
    let verified = false;
    await sendFileRange(file, sink, { start: 0, end: bytes.length, bufferSize: 256 * 1024, verify: { digest: digestOf(bytes), onVerified: () => (verified = true) } });
    expect(verified).toBe(true);
    expect(received().equals(bytes)).toBe(true);
  });

  it('a verified body that does not match: DIGEST_MISMATCH before the last chunk, the response not ended', async () => {
    const { sink, received } = slowSink(0);
    const err = await sendFileRange(file, sink, { start: 0, end: bytes.length, bufferSize: 256 * 1024, verify: { digest: `sha256:${'0'.repeat(64)}` } }).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('DIGEST_MISMATCH');
    expect(sink.writableEnded).toBe(false);
    expect(received().length).toBeLessThan(bytes.length);
    expect(received().equals(bytes.subarray(0, received().length))).toBe(true);
  });

  it('an empty range under verification is still checked', async () => {
    const { sink } = slowSink(0);
    const err = await sendFileRange(file, sink, { start: 0, end: 0, bufferSize: 1024, verify: { digest: `sha256:${'0'.repeat(64)}` } }).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('DIGEST_MISMATCH');
    const ok = slowSink(0);
    expect(await sendFileRange(file, ok.sink, { start: 0, end: 0, bufferSize: 1024, verify: { digest: digestOf(Buffer.alloc(0)) } })).toBe('sent');
  });

  it('a client that goes away mid-body ends the send as client-gone, without an error', async () => {
    const { sink } = slowSink(5);
    const send = sendFileRange(file, sink, { start: 0, end: bytes.length, bufferSize: 16 * 1024 });
    setTimeout(() => sink.destroy(), 20);
    expect(await send).toBe('client-gone');
  });

  it('a growing file is read only as far as `available` allows, waiting for more', async () => {
    const { sink, received } = slowSink(0);
    let limit = 100_000;
    const waits: number[] = [];
    let grow: () => void = () => {};
    const send = sendFileRange(file, sink, {
      start: 0,
      end: bytes.length,
      bufferSize: 64 * 1024,
      available: (pos) => {
        if (pos < limit) return limit;
        waits.push(pos);
        return new Promise<number>((r) => (grow = () => r((limit = bytes.length))));
      },
    });
    for (let t = 0; t < 100 && waits.length === 0; t++) await new Promise((r) => setTimeout(r, 5));
    expect(waits).toEqual([100_000]);
    expect(received().length).toBeLessThanOrEqual(100_000);
    grow();
    expect(await send).toBe('sent');
    expect(received().equals(bytes)).toBe(true);
  });
});
