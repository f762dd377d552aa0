// The audit stream ignores log.level, and buffered lines are all written by drain() and flushSync().
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { audit, auditPrepared, PreparedAudit } from '../../../src/observe/logger.js';
import { openLogStreams } from '../../../src/observe/log-streams.js';

const rec = { upstream: 'lab', gun: 'h/r', repo: 'r', ref: 'v1', decision: 'allow' as const, policy: 'enforce', durationMs: 1 };
let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function tempFd(): { fd: number; file: string } {
  dir = mkdtempSync(join(tmpdir(), 'tg-logstreams-'));
  const file = join(dir, 'out.log');
  return { fd: openSync(file, 'a'), file };
}
const read = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

describe('openLogStreams', () => {
  it('writes audit lines at log.level silent, and drain() waits until all of them are in the file', async () => {
    const { fd, file } = tempFd();
    const s = openLogStreams({ level: 'silent', stdoutFd: fd });
    const decisions: string[] = [];
    const metrics = { decision: (_u: string, d: string) => void decisions.push(d) };
    for (let i = 0; i < 2000; i++) audit({ log: s.log, audit: s.audit, metrics }, { ...rec, ref: `t${i}` });
    s.log.error('silent drops even errors from the operational log');
    await s.drain();
    const lines = read(file);
    expect(lines.filter((l) => l.audit === true).map((l) => l.ref)).toEqual(Array.from({ length: 2000 }, (_, i) => `t${i}`));
    expect(lines.filter((l) => l.audit !== true)).toHaveLength(0);
    expect(decisions).toHaveLength(2000);
    closeSync(fd);
  });

  it('flushSync() writes out what is still buffered, with no callback left to run', async () => {
    const { fd, file } = tempFd();
    const s = openLogStreams({ level: 'info', stdoutFd: fd });
    for (let i = 0; i < 500; i++) audit({ log: s.log, audit: s.audit }, { ...rec, ref: `t${i}` });
    s.log.info('last operational line');
    s.flushSync();
    // Synchronously, before the end-of-turn write could run: every line is on disk, in order.
    const now = read(file);
    expect(now.filter((l) => l.audit === true).map((l) => l.ref)).toEqual(Array.from({ length: 500 }, (_, i) => `t${i}`));
    expect(now.at(-1)?.msg).toBe('last operational line');
    await s.drain();
    expect(read(file)).toHaveLength(501); // and nothing is written twice
    closeSync(fd);
  });

  it('writes audit lines in pino\'s format, escaping whatever a reason contains', async () => {
    const { fd, file } = tempFd();
    const s = openLogStreams({ level: 'info', stdoutFd: fd });
    const reason = 'TAG_NOT_SIGNED: "quoted"\nnew line \u2028 \\ end';
    const t0 = Date.now();
    audit({ log: s.log, audit: s.audit }, { ...rec, decision: 'deny', code: 'TAG_NOT_SIGNED', reason, digest: undefined });
    s.log.info({ other: 1 }, 'pino line');
    await s.drain();
    const [a, p] = read(file);
    expect(a).toEqual({ level: 30, time: expect.any(Number), service: 'trustgate', audit: true, ...rec, decision: 'deny', code: 'TAG_NOT_SIGNED', reason, msg: 'trust decision' });
    expect(a!.time).toBeGreaterThanOrEqual(t0);
    // The same leading keys, in the same order, as pino's own lines.
    expect(Object.keys(a!).slice(0, 3)).toEqual(Object.keys(p!).slice(0, 3));
    closeSync(fd);
  });

  it('a prepared record writes the very line audit() writes for the same record, and counts the decision', async () => {
    const { fd, file } = tempFd();
    const s = openLogStreams({ level: 'info', stdoutFd: fd, worker: 3 });
    const decisions: string[] = [];
    const metrics = { decision: (u: string, d: string, c: string) => void decisions.push(`${u} ${d} ${c}`) };
    const { durationMs: _unused, ...fixed } = rec;
    const records = [
      { upstream: 'lab', gun: 'h/r', repo: 'r', ref: 'v1', policy: 'enforce', require: 'dct', digest: `sha256:${'a'.repeat(64)}`, role: 'targets/releases', decision: 'allow' as const, satisfiedBy: 'dct targets/releases', stale: true },
      { ...fixed, decision: 'deny' as const, code: 'TAG_NOT_SIGNED', reason: 'a "quote"\n\u2028 \\ \u0000 é', role: undefined },
    ];
    for (const [i, r] of records.entries()) {
      for (const durationMs of [0, 12.3, Number.NaN]) {
        audit({ log: s.log, audit: s.audit, metrics }, { ...r, durationMs });
        auditPrepared({ log: s.log, audit: s.audit, metrics }, new PreparedAudit(r), durationMs);
      }
      expect(decisions.splice(0)).toEqual(Array(6).fill(i === 0 ? 'lab allow OK' : 'lab deny TAG_NOT_SIGNED'));
    }
    await s.drain();
    // Byte for byte, but for the time each line was written at.
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => l.replace(/^\{"level":30,"time":\d+,/, '{"level":30,"time":0,'));
    expect(lines).toHaveLength(12);
    for (let i = 0; i < 12; i += 2) expect(lines[i + 1]).toBe(lines[i]);
    expect(JSON.parse(lines[2]!)).toMatchObject({ worker: 3, audit: true, ...records[0], durationMs: 12.3, msg: 'trust decision' });
    expect(JSON.parse(lines[4]!).durationMs).toBeNull();
    closeSync(fd);
  });

  it('every line carries the time it was written at, to the millisecond', async () => {
    const { fd, file } = tempFd();
    const s = openLogStreams({ level: 'info', stdoutFd: fd });
    const { durationMs: _unused, ...fixed } = rec;
    const p = new PreparedAudit(fixed);
    const bounds: Array<[number, number]> = [];
    for (let i = 0; i < 6; i++) {
      const before = Date.now();
      if (i % 2) auditPrepared({ log: s.log, audit: s.audit }, p, 1);
      else audit({ log: s.log, audit: s.audit }, rec);
      bounds.push([before, Date.now()]);
      await new Promise((r) => setTimeout(r, 3));
    }
    await s.drain();
    const times = read(file).map((l) => l.time as number);
    expect(times).toHaveLength(6);
    times.forEach((t, i) => {
      expect(t).toBeGreaterThanOrEqual(bounds[i]![0]);
      expect(t).toBeLessThanOrEqual(bounds[i]![1]);
    });
    expect(new Set(times).size).toBe(6); // 3 ms apart: no line kept an earlier line's time
    closeSync(fd);
  });

  it('without a stream of its own a prepared record goes through the logger like any record', async () => {
    const { fd, file } = tempFd();
    const s = openLogStreams({ level: 'info', stdoutFd: fd });
    const { durationMs: _unused, ...fixed } = rec;
    auditPrepared({ log: s.log }, new PreparedAudit({ ...fixed, ref: 'p' }), 4);
    await s.drain();
    expect(read(file)).toEqual([expect.objectContaining({ audit: true, ...rec, ref: 'p', durationMs: 4, msg: 'trust decision' })]);
    closeSync(fd);
  });

  it('without a dedicated stream (tests building their own deps) the line follows the log level', async () => {
    const { fd, file } = tempFd();
    for (const level of ['warn', 'info'] as const) {
      const s = openLogStreams({ level, stdoutFd: fd });
      audit({ log: s.log }, { ...rec, ref: level });
      await s.drain();
    }
    expect(read(file).map((l) => [l.ref, l.audit])).toEqual([['info', true]]);
    closeSync(fd);
  });
});
