// `trustgate config check` reads cosign keys and trusted roots as `start` does: a bad file is refused
// with the config key named, before anything is started.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { makeCosignKey } from '../support/cosign-sign.js';
import { runCli } from '../support/trustgate-process.js';

const dir = mkdtempSync(join(tmpdir(), 'trustgate-cosign-check-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function configWith(cosign: Record<string, unknown>, repoCosign?: Record<string, unknown>): string {
  const file = join(dir, `c-${Math.random().toString(36).slice(2)}.yaml`);
  const upstream = { name: 'lab', registry: 'http://127.0.0.1:5000', gun: '127.0.0.1:5000', policy: 'enforce', require: 'cosign', cosign, repositories: repoCosign ? [{ match: 'team/**', policy: 'enforce', cosign: repoCosign }] : [] };
  writeFileSync(file, stringify({ listen: '127.0.0.1:5050', upstreams: [upstream], default: 'lab' }));
  return file;
}

describe('config check with cosign', () => {
  const good = join(dir, 'good.pub');
  writeFileSync(good, makeCosignKey().publicPem);
  const junk = join(dir, 'junk.pub');
  writeFileSync(junk, 'not a key');

  it('accepts readable PEM keys', async () => {
    const r = await runCli(['config', 'check', configWith({ keys: [good] })]);
    expect(r.code, r.stdout).toBe(0);
    expect(r.out).toMatchObject({ ok: true, upstreams: ['lab'] });
  });

  it('refuses a key file that is not a key, naming the key', async () => {
    const r = await runCli(['config', 'check', configWith({ keys: [good, junk] })]);
    expect(r.code).toBe(1);
    expect(r.out.error).toBe('CONFIG_INVALID');
    expect(r.out.message).toMatch(/^upstreams\[0\]\.cosign\.keys\[1\]: .*junk\.pub is not a PEM public key/);
  });

  it("refuses a repository entry's unreadable trusted root, naming the entry", async () => {
    const r = await runCli(['config', 'check', configWith({ keys: [good] }, { trustedRoot: join(dir, 'absent.json'), identities: [{ issuer: 'https://issuer.test', subject: 'a@b.test' }] })]);
    expect(r.code).toBe(1);
    expect(r.out.message).toMatch(/^upstreams\[0\]\.repositories\[0\]\.cosign\.trustedRoot: cannot read/);
  });
});
