// LineWriter: lines queued close together go out together, in order, cut only between lines;
// reopen() moves to a fresh file after logrotate renamed the old one.
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LineWriter, neverBlocks } from '../../../src/observe/line-writer.js';

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});
const temp = () => (dir = mkdtempSync(join(tmpdir(), 'tg-linewriter-')));

// Files are written synchronously by default (one write per batch); forced asynchronous, the same
// guarantees hold (the path pipes and terminals take).
describe.each([
  ['files: synchronous batches (default)', {}],
  ['asynchronous writes', { syncWrites: false }],
] as const)('LineWriter, %s', (_mode, extra) => {
  it('writes the first line of a turn at once, the rest batched behind it, in order, each write cut between lines', async () => {
    const file = join(temp(), 'sub', 'a.log');
    const w = new LineWriter({ ...extra, dest: file, maxWrite: 100 });
    const lines = Array.from({ length: 50 }, (_, i) => `line ${String(i).padStart(3, '0')} ${'é'.repeat(i % 7)}\n`);
    for (const l of lines) w.write(l);
    expect(readFileSync(file, 'utf8')).toBe(lines[0]); // the first at once; the rest wait for the batch (up to 1 ms)
    await w.drain();
    const text = readFileSync(file, 'utf8');
    expect(text).toBe(lines.join(''));
  });

  it('a client at a time: each line is in the file at once, even under a millisecond apart; lines of busy turns are batched', async () => {
    const file = join(temp(), 'seq.log');
    // Replayed loop readings (ms): what a sequential client looks like (0.47–0.86 ms apart, the loop
    // waiting 0.29–0.39 ms of it, measured), then load (lines microseconds apart, no waiting).
    let now = 100;
    let idle = 50;
    const w = new LineWriter({ ...extra, dest: file, maxWrite: 4096, loop: { now: () => now, idleTime: () => idle } });
    let expected = '';
    for (const [gap, waited] of [[0.465, 0.29], [0.856, 0.392], [0.577, 0.388], [2.797, 0]]) {
      now += gap!;
      idle += waited!;
      w.write(`seq ${gap}\n`);
      expected += `seq ${gap}\n`;
      expect(readFileSync(file, 'utf8')).toBe(expected);
    }
    now += 2; // after a quiet moment the first line goes at once, the rest of a busy turn waits
    for (let i = 0; i < 20; i++) {
      now += 0.02;
      idle += i % 5 === 0 ? 0.002 : 0;
      w.write(`busy ${i}\n`);
    }
    expect(readFileSync(file, 'utf8')).toBe(`${expected}busy 0\n`);
    await w.drain();
    expect(readFileSync(file, 'utf8')).toBe(expected + Array.from({ length: 20 }, (_, i) => `busy ${i}\n`).join(''));
  });

  it('batches a turn into few writes, none longer than maxWrite unless one line is', async () => {
    const file = join(temp(), 'b.log');
    const sizes: number[] = [];
    const w = new LineWriter({ ...extra, dest: file, maxWrite: 4096, onWrite: (n) => sizes.push(n) });
    const line = `${'x'.repeat(299)}\n`;
    for (let i = 0; i < 1000; i++) w.write(line);
    w.write(`${'y'.repeat(9999)}\n`);
    await w.drain();
    expect(readFileSync(file, 'utf8').length).toBe(300 * 1000 + 10_000);
    // 300 000 bytes in 4 KiB writes of whole lines: 13 lines each, not 1000 writes.
    expect(sizes.filter((n) => n <= 4096).every((n) => n % 300 === 0)).toBe(true);
    expect(sizes.length).toBeLessThan(100);
    expect(sizes).toContain(10_000);
  });

  it('a long backlog is written whole and in order (queue index and compaction)', async () => {
    const file = join(temp(), 'backlog.log');
    const w = new LineWriter({ ...extra, dest: file, maxWrite: 64 });
    const lines = Array.from({ length: 5000 }, (_, i) => `${i}\n`);
    for (const l of lines) w.write(l);
    await w.drain();
    expect(readFileSync(file, 'utf8')).toBe(lines.join(''));
  });

  it('reopen() after logrotate renamed the file: old lines stay in the old one, new lines in a new file', async () => {
    const file = join(temp(), 'audit.log');
    const w = new LineWriter({ ...extra, dest: file, maxWrite: 65536 });
    w.write('one\n');
    w.write('two\n');
    await w.drain();
    renameSync(file, `${file}.1`);
    await new Promise((r) => setTimeout(r, 5)); // a quiet moment: the next line is written at once
    w.write('three\n'); // written before the signal: still the old file, as logrotate expects
    w.write('four\n'); // queued behind it in the same turn
    w.reopen();
    w.write('five\n');
    await w.drain();
    expect(existsSync(file)).toBe(true);
    expect(readFileSync(`${file}.1`, 'utf8')).toBe('one\ntwo\nthree\n');
    expect(readFileSync(file, 'utf8')).toBe('four\nfive\n');
  });

  it('flushSync() writes the queue at once', () => {
    const file = join(temp(), 'c.log');
    const w = new LineWriter({ ...extra, dest: file, maxWrite: 64 });
    for (let i = 0; i < 20; i++) w.write(`${i}\n`);
    w.flushSync();
    expect(readFileSync(file, 'utf8')).toBe(Array.from({ length: 20 }, (_, i) => `${i}\n`).join(''));
  });
});

describe('LineWriter write mode', () => {
  it('regular files and /dev/null are written synchronously, pipes asynchronously', async () => {
    const d = temp();
    const file = openSync(join(d, 'f.log'), 'a');
    const devnull = openSync('/dev/null', 'a');
    const fifo = join(d, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const pipe = openSync(fifo, 'r+'); // read-write: opening does not wait for a reader
    expect([neverBlocks(file), neverBlocks(devnull), neverBlocks(pipe)]).toEqual([true, true, false]);
    // Through the pipe (asynchronous writes), every line arrives, in order.
    const w = new LineWriter({ dest: pipe, maxWrite: 4096 });
    const lines = Array.from({ length: 300 }, (_, i) => `${i}\n`);
    for (const l of lines) w.write(l);
    await w.drain();
    const buf = Buffer.alloc(65536);
    expect(buf.subarray(0, readSync(pipe, buf)).toString()).toBe(lines.join(''));
    for (const fd of [file, devnull, pipe]) closeSync(fd);
  });
});
