// LineWriter: lines queued in one event-loop turn go out together, in order, cut only between lines;
// reopen() moves to a fresh file after logrotate renamed the old one.
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LineWriter } from '../../../src/observe/line-writer.js';

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});
const temp = () => (dir = mkdtempSync(join(tmpdir(), 'tg-linewriter-')));

describe('LineWriter', () => {
  it('writes the first line of a turn at once, the rest at the end of the turn, in order, each write cut between lines', async () => {
    const file = join(temp(), 'sub', 'a.log');
    const w = new LineWriter({ dest: file, maxWrite: 100 });
    const lines = Array.from({ length: 50 }, (_, i) => `line ${String(i).padStart(3, '0')} ${'é'.repeat(i % 7)}\n`);
    for (const l of lines) w.write(l);
    expect(readFileSync(file, 'utf8')).toBe(lines[0]); // the first at once; the rest wait for the end of the turn
    await w.drain();
    const text = readFileSync(file, 'utf8');
    expect(text).toBe(lines.join(''));
  });

  it('batches a turn into few writes, none longer than maxWrite unless one line is', async () => {
    const file = join(temp(), 'b.log');
    const sizes: number[] = [];
    const w = new LineWriter({ dest: file, maxWrite: 4096, onWrite: (n) => sizes.push(n) });
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
    const w = new LineWriter({ dest: file, maxWrite: 64 });
    const lines = Array.from({ length: 5000 }, (_, i) => `${i}\n`);
    for (const l of lines) w.write(l);
    await w.drain();
    expect(readFileSync(file, 'utf8')).toBe(lines.join(''));
  });

  it('reopen() after logrotate renamed the file: old lines stay in the old one, new lines in a new file', async () => {
    const file = join(temp(), 'audit.log');
    const w = new LineWriter({ dest: file, maxWrite: 65536 });
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
    const w = new LineWriter({ dest: file, maxWrite: 64 });
    for (let i = 0; i < 20; i++) w.write(`${i}\n`);
    w.flushSync();
    expect(readFileSync(file, 'utf8')).toBe(Array.from({ length: 20 }, (_, i) => `${i}\n`).join(''));
  });
});
