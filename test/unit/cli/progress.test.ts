// Progress lines (issue 24): only for large sets or on request, at most one per interval, always a last one.
import { describe, expect, it } from 'vitest';
import { Progress } from '../../../src/cli/progress.js';

function capture() {
  const err: string[] = [];
  const out: string[] = [];
  return { io: { stdout: (l: string) => void out.push(l), stderr: (l: string) => void err.push(l) }, err, out };
}

describe('Progress', () => {
  it('says nothing for a small set', () => {
    const c = capture();
    const p = new Progress(c.io, 'cache prune', 10, 'blobs', { minTotal: 1000 });
    for (let i = 1; i <= 10; i++) p.tick(i);
    p.finish(10);
    expect(c.err).toEqual([]);
  });

  it('for a large set writes at most one line per interval, then the last one, on stderr only', () => {
    const c = capture();
    let t = 0;
    const p = new Progress(c.io, 'bundle export', 5000, 'references', { minTotal: 1000, everyMs: 1000, now: () => t });
    for (let i = 1; i <= 5000; i++) {
      t = i; // one item per millisecond: five seconds in all
      p.tick(i, `${i} repositories`);
    }
    p.finish(5000, 'writing b.json');
    expect(c.out).toEqual([]);
    expect(c.err).toEqual([
      'trustgate bundle export: 1/5000 references (0%), 1 repositories, 0 s',
      'trustgate bundle export: 1001/5000 references (20%), 1001 repositories, 1 s',
      'trustgate bundle export: 2001/5000 references (40%), 2001 repositories, 2 s',
      'trustgate bundle export: 3001/5000 references (60%), 3001 repositories, 3 s',
      'trustgate bundle export: 4001/5000 references (80%), 4001 repositories, 4 s',
      'trustgate bundle export: 5000/5000 references (100%), writing b.json, 5 s',
    ]);
  });

  it('--progress (force) writes lines for a small set too', () => {
    const c = capture();
    const p = new Progress(c.io, 'cache prune', 3, 'blobs', { minTotal: 1000, force: true, now: () => 0 });
    p.tick(1);
    p.tick(2); // same instant: within the interval
    p.finish(3);
    expect(c.err).toEqual(['trustgate cache prune: 1/3 blobs (33%), 0 s', 'trustgate cache prune: 3/3 blobs (100%), 0 s']);
  });
});
