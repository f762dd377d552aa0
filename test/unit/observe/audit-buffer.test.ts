// The bounded audit buffer against a destination that always fails: /dev/full answers every write
// with ENOSPC, as a full disk does. Lines wait up to bufferBytes (refuse: admission stops there; serve:
// lines are dropped and counted), the stall is reported with its reason, and abandon() counts the lines
// never written. Recovery onto a disk that has space again is in test/integration/full-disk.test.ts.
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LineWriter } from '../../../src/observe/line-writer.js';
import { openLogStreams } from '../../../src/observe/log-streams.js';
import { audit } from '../../../src/observe/logger.js';

const rec = { upstream: 'lab', gun: 'h/r', repo: 'r', ref: 'v1', decision: 'allow' as const, policy: 'enforce', durationMs: 1 };
let dir: string | undefined;
const fds: number[] = [];
afterEach(() => {
  for (const fd of fds.splice(0)) closeSync(fd);
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});
const temp = () => (dir ??= mkdtempSync(join(tmpdir(), 'tg-auditbuf-')));
const full = () => {
  const fd = openSync('/dev/full', 'w');
  fds.push(fd);
  return fd;
};
const line = (i: number) => `${String(i).padStart(99, '0')}\n`; // 100 bytes

describe('LineWriter on a destination that fails (ENOSPC)', () => {
  it('keeps lines up to bufferBytes, then drops and counts; reserved lines use the room above it', () => {
    const errors: string[] = [];
    const w = new LineWriter({ dest: full(), maxWrite: 4096, bufferBytes: 1000, reserveBytes: 300 });
    w.onError = (e) => errors.push((e as NodeJS.ErrnoException).code ?? e.message);
    for (let i = 0; i < 10; i++) expect(w.write(line(i))).toBe(true);
    expect(errors[0]).toBe('ENOSPC');
    expect(w.stalled()?.error).toBe('ENOSPC');
    expect(w.backlogBytes()).toBe(1000);
    expect(w.accepting()).toBe(false);
    expect(w.write(line(10))).toBe(false);
    expect(w.droppedLines).toBe(1);
    for (let i = 0; i < 3; i++) expect(w.write(line(11 + i), true)).toBe(true);
    expect(w.write(line(14), true)).toBe(false);
    expect(w.droppedLines).toBe(2);
    expect(w.unwrittenLines()).toBe(13);
    // Shutdown: one last try, then every unwritten line is counted, and nothing more is taken.
    expect(w.abandon()).toBe(13);
    expect(w.write(line(15), true)).toBe(false);
  });

  it('retries the waiting bytes (backing off) without ever dropping them', async () => {
    const sizes: number[] = [];
    const w = new LineWriter({ dest: full(), maxWrite: 4096, bufferBytes: 10_000, onWrite: (n) => sizes.push(n) });
    for (let i = 0; i < 5; i++) w.write(line(i));
    await new Promise((r) => setTimeout(r, 300));
    expect(w.unwrittenLines()).toBe(5);
    // Tried again and again (10, 20, 40, … ms apart), the same 500 bytes each time, not more.
    expect(sizes.length).toBeGreaterThan(3);
    expect(sizes.length).toBeLessThan(30);
    expect(new Set(sizes.slice(1))).toEqual(new Set([500]));
    w.abandon();
  });

  it('a file whose last line was cut off (crash, full disk) gets the next line on a line of its own', async () => {
    const file = join(temp(), 'torn.log');
    writeFileSync(file, '{"a":1}\n{"b":');
    const w = new LineWriter({ dest: file, maxWrite: 4096 });
    w.write('{"c":3}\n');
    await w.drain();
    expect(readFileSync(file, 'utf8')).toBe('{"a":1}\n{"b":\n{"c":3}\n');
  });
});

describe('LineWriter on a pipe nobody reads', () => {
  it('a quiet line into a full (blocking) pipe does not block: it waits, and goes out once the reader reads', async () => {
    const fifo = join(temp(), 'fifo');
    execFileSync('mkfifo', [fifo]);
    const pipe = openSync(fifo, 'r+'); // blocking, both ends here
    fds.push(pipe);
    const size = 65536; // Linux's default pipe capacity
    writeSync(pipe, Buffer.alloc(size, 0x2e)); // now full: one more blocking write would wait for a reader
    const w = new LineWriter({ dest: pipe, maxWrite: 4096, bufferBytes: 10_000 });
    await new Promise((r) => setTimeout(r, 5)); // a quiet moment: the next line is written at once, if it can
    expect(w.write('after\n')).toBe(true); // returns: had it blocked, this test would time out
    expect(w.unwrittenLines()).toBe(1);
    // The reader drains the pipe: the waiting line follows what was there.
    const buf = Buffer.alloc(size + 100);
    let got = readSync(pipe, buf, 0, size, null);
    while (got < size) got += readSync(pipe, buf, got, size - got, null);
    await w.drain();
    expect(buf.subarray(0, readSync(pipe, buf, 0, 100, null)).toString()).toBe('after\n');
  });
});

describe('audit streams on a failing destination', () => {
  const stderr = () => {
    const file = join(temp(), `stderr-${fds.length}.log`);
    const fd = openSync(file, 'a');
    fds.push(fd);
    return { fd, read: () => readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
  };
  const stdout = () => {
    const fd = openSync(join(temp(), `stdout-${fds.length}.log`), 'a');
    fds.push(fd);
    return fd;
  };

  it('refuse: admission stops once the buffer is full, the reason names the destination and the error', () => {
    const err = stderr();
    const s = openLogStreams({ level: 'silent', auditPath: '/dev/full', stdoutFd: stdout(), stderrFd: err.fd, bufferBytes: 4096 });
    expect(s.auditProblem()).toBeUndefined();
    expect(s.audit.accepting?.()).toBe(true);
    let n = 0;
    while (s.audit.accepting?.()) {
      audit({ log: s.log, audit: s.audit }, { ...rec, ref: `t${n++}` });
      expect(n).toBeLessThan(100);
    }
    expect(s.auditProblem()).toMatch(/cannot write the audit trail to \/dev\/full \(ENOSPC\).*buffer full.*trust decisions are refused/);
    expect(s.audit.problem?.()).toBe(s.auditProblem());
    expect(s.auditBacklogBytes()).toBeGreaterThanOrEqual(4096);
    // A decision admitted just before the buffer filled still has its line: nothing dropped.
    audit({ log: s.log, audit: s.audit }, { ...rec, ref: 'late' });
    expect(s.auditDroppedLines()).toBe(0);
    expect(s.abandon()).toBe(n + 1);
    const lost = err.read().find((l) => l.msg === 'audit lines lost at shutdown');
    expect(lost).toMatchObject({ lostLines: n + 1, path: '/dev/full', reason: 'ENOSPC', level: 50 });
    expect(err.read().some((l) => l.msg === 'cannot write the audit trail: lines are kept, in order, and retried' && l.err !== undefined)).toBe(true);
  });

  it('serve: never refuses; lines past the buffer are dropped, counted, and said on stderr', () => {
    const err = stderr();
    const s = openLogStreams({ level: 'silent', auditPath: '/dev/full', stdoutFd: stdout(), stderrFd: err.fd, bufferBytes: 4096, onFailure: 'serve' });
    for (let i = 0; i < 100; i++) {
      audit({ log: s.log, audit: s.audit }, { ...rec, ref: `t${i}` });
      expect(s.audit.accepting?.()).toBe(true);
    }
    const kept = s.abandon();
    expect(kept + s.auditDroppedLines()).toBe(100);
    expect(s.auditDroppedLines()).toBeGreaterThan(50);
    const said = err.read().filter((l) => l.msg === 'audit lines dropped');
    expect(said.at(-1)).toMatchObject({ droppedTotal: s.auditDroppedLines() });
    expect(said.reduce((a, l) => a + (l.dropped as number), 0)).toBe(s.auditDroppedLines());
  });

  it('audit on a failing stdout: operational lines are dropped at the bound, audit lines keep the reserved room', () => {
    const err = stderr();
    const s = openLogStreams({ level: 'info', stdoutFd: full(), stderrFd: err.fd, bufferBytes: 4096 });
    let n = 0;
    while (s.audit.accepting?.()) {
      audit({ log: s.log, audit: s.audit }, { ...rec, ref: `t${n++}` });
      expect(n).toBeLessThan(100);
    }
    expect(s.auditProblem()).toMatch(/cannot write the audit trail to stdout \(ENOSPC\)/);
    const before = s.auditBacklogBytes();
    for (let i = 0; i < 50; i++) s.log.info({ i }, 'an operational line');
    expect(s.auditBacklogBytes()).toBe(before); // none of them took the audit's room
    audit({ log: s.log, audit: s.audit }, { ...rec, ref: 'admitted' });
    expect(s.auditDroppedLines()).toBe(0);
    expect(s.abandon()).toBe(n + 1);
  });
});
