// `trustgate cache prune` on a large cache writes progress lines to stderr (issue 24), keeps its one
// JSON line on stdout, and says nothing extra on a small one unless asked with --progress.
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { stopAndRemove } from '../support/spawn-server.js';
import { runCli } from '../support/trustgate-process.js';

const dir = mkdtempSync(join(tmpdir(), 'trustgate-prune-progress-'));
afterAll(() => stopAndRemove(dir));

/** A blob cache directory as BlobCache lays it out (blobs/<upstream>/<hex>), `n` blobs of 15 bytes. */
function cacheWith(name: string, n: number): string {
  const path = join(dir, name);
  const blobs = join(path, 'blobs', 'lab');
  mkdirSync(blobs, { recursive: true });
  for (let i = 0; i < n; i++) writeFileSync(join(blobs, createHash('sha256').update(`${name}${i}`).digest('hex')), `blob ${String(i).padStart(10, '0')}`);
  const config = join(dir, `${name}.yaml`);
  writeFileSync(config, stringify({ upstreams: [{ name: 'lab', registry: 'http://127.0.0.1:5000', gun: '127.0.0.1:5000', policy: 'off' }], blobCache: { path } }));
  return config;
}

describe('cache prune progress', () => {
  it('a large cache: progress lines on stderr, the JSON result on stdout', async () => {
    const config = cacheWith('large', 1500);
    const r = await runCli(['cache', 'prune', '--all', '--config', config]);
    expect(r.out).toMatchObject({ removed: 1500, freedBytes: 1500 * 15, bytes: 0 });
    expect(r.code).toBe(0);
    const lines = r.stderr.split('\n').filter(Boolean);
    expect(lines[0]).toMatch(/^trustgate cache prune: 0\/1500 blobs looked at \(0%\), 0 removed, 0 bytes freed, \d+ s$/);
    expect(lines.at(-1)).toMatch(/^trustgate cache prune: 1500\/1500 blobs looked at \(100%\), 1500 removed, 22500 bytes freed, 0 bytes held, \d+ s$/);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    expect(readdirSync(join(dir, 'large', 'blobs', 'lab'))).toEqual([]);
  });

  it('a small cache: no progress lines, unless --progress', async () => {
    const quiet = await runCli(['cache', 'prune', '--all', '--config', cacheWith('small', 5)]);
    expect(quiet).toMatchObject({ code: 0, out: { removed: 5 }, stderr: '' });
    const asked = await runCli(['cache', 'prune', '--all', '--progress', '--config', cacheWith('asked', 5)]);
    expect(asked.out).toMatchObject({ removed: 5 });
    expect(asked.stderr).toMatch(/^trustgate cache prune: 5\/5 blobs looked at \(100%\), 5 removed, 75 bytes freed, 0 bytes held, \d+ s$/m);
  });
});
