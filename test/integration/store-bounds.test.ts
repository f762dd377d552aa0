// Unbounded disk (issue 13): 5,000 requests for repositories nobody signed, against a real notary-server
// and docker-registry, with store.maxBytes: 4194304 — the store directory stays under the cap (each
// unknown name used to leave a negative-cache file behind), every request is refused with its code,
// and the signed tag is still served afterwards.
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { NotaryCli } from '../support/notary-cli.js';
import { startNotary, type NotaryLab } from '../support/notary-server.js';
import { pushImage, type PushedImage } from '../support/oci-image.js';
import { makePki } from '../support/pki.js';
import { rssBytes, startTrustgate, type Trustgate } from '../support/trustgate-process.js';

const CAP = 4194304;
let dir: string;
let registry: Registry;
let notary: NotaryLab;
let image: PushedImage;
let proxy: Trustgate;
let storePath: string;

/** Bytes the store occupies on disk: allocated blocks of every file and directory under it. */
function diskUsage(path: string): number {
  let total = statSync(path).blocks * 512;
  for (const e of readdirSync(path, { withFileTypes: true })) {
    const p = join(path, e.name);
    total += e.isDirectory() ? diskUsage(p) : statSync(p).blocks * 512;
  }
  return total;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-bounds-'));
  const pki = await makePki(dir);
  [registry, notary] = await Promise.all([startRegistry(dir), startNotary(dir, pki, { signer: 'local' })]);
  const cli = new NotaryCli(notary.url, notary.caFile, join(dir, 'trust'));
  await cli.initRepo(`${registry.host}/team/app`);
  image = await pushImage(dir, registry.host, 'team/app', 'v1');
  writeFileSync(join(dir, 'v1'), image.manifest);
  await cli.sign(`${registry.host}/team/app`, 'v1', join(dir, 'v1'));
  storePath = join(dir, 'store');
  proxy = await startTrustgate(dir, {
    upstreams: [{ name: 'lab', registry: registry.url, gun: registry.host, notary: { url: notary.url, ca: notary.caFile }, policy: 'enforce' }],
    default: 'lab',
    store: { kind: 'file', path: storePath, maxBytes: CAP },
    log: { level: 'warn' },
  });
});

afterAll(async () => {
  await proxy?.stop();
  await notary?.stop();
  await registry?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('file store bounds', () => {
  it('5,000 requests for unknown repositories keep the store under store.maxBytes', async () => {
    const pool = new Pool(proxy.url, { connections: 16 });
    const codes = new Map<string, number>();
    let next = 0;
    const worker = async () => {
      while (next < 5000) {
        const i = next++;
        const res = await pool.request({ path: `/v2/unknown/r${i}/manifests/latest`, method: 'GET' });
        const body = (await res.body.json()) as { errors?: Array<{ detail?: { code?: string } }> };
        const key = `${res.statusCode} ${body.errors?.[0]?.detail?.code}`;
        codes.set(key, (codes.get(key) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    await pool.close();
    expect(Object.fromEntries(codes)).toEqual({ '403 TRUST_DATA_MISSING': 5000 });
    expect(diskUsage(storePath)).toBeLessThan(CAP);
    expect(rssBytes(proxy.pid)).toBeLessThan(300 * 1024 * 1024);
    // The signed tag is still served from the same store.
    const res = await fetch(`${proxy.url}/v2/team/app/manifests/v1`, { headers: { accept: image.mediaType } });
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-content-digest')).toBe(image.digest);
    expect(diskUsage(storePath)).toBeLessThan(CAP);
  });
});
