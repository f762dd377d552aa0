// `trustgate lookup --trusted-root`: a pinned root.json is the anchor; metadata whose root does not
// chain from it is refused. Runs the built CLI over repositories built in-process.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildRepo, makeCertKey, makeKey } from '../../support/signed-repo.js';
import { runCli } from '../../support/trustgate-process.js';

const GUN = 'example.com/pinned/app';
const work = mkdtempSync(join(tmpdir(), 'trustgate-pin-'));

function writeRepo(name: string): string {
  const files = buildRepo({ gun: GUN, root: [makeCertKey({ cn: GUN })], targets: [makeKey('ecdsa')], tags: { v1: Buffer.from('manifest') } });
  const dir = join(work, name);
  for (const [role, bytes] of files) {
    mkdirSync(dirname(join(dir, `${role}.json`)), { recursive: true });
    writeFileSync(join(dir, `${role}.json`), bytes);
  }
  return dir;
}

const genuine = writeRepo('genuine');
const impostor = writeRepo('impostor'); // same GUN, other keys: what an attacker's server would serve

describe('lookup --trusted-root', () => {
  it('accepts metadata whose root is the pinned one', async () => {
    const r = await runCli(['lookup', GUN, 'v1', '--metadata-dir', genuine, '--trusted-root', join(genuine, 'root.json')]);
    expect(r).toMatchObject({ code: 0, out: { gun: GUN, tag: 'v1', length: 8, role: 'targets' } });
  });

  it('refuses metadata whose root does not chain from the pinned one', async () => {
    // Without the pin the impostor would be trusted on first use…
    expect((await runCli(['lookup', GUN, 'v1', '--metadata-dir', impostor])).code).toBe(0);
    // …with it, it is refused.
    const r = await runCli(['lookup', GUN, 'v1', '--metadata-dir', impostor, '--trusted-root', join(genuine, 'root.json')]);
    expect(r).toMatchObject({ code: 1, out: { error: 'ROOT_ROTATION_FAILED' } });
  });

  it('is a usage error when the file cannot be read', async () => {
    const r = await runCli(['lookup', GUN, 'v1', '--metadata-dir', genuine, '--trusted-root', '/nonexistent/root.json']);
    expect(r).toMatchObject({ code: 2, out: { error: 'USAGE' } });
  });
});
