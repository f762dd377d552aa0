// Blobs stream through trustgate with flat memory: a 1 GiB blob, pushed to a real docker-registry,
// pulled through the proxy while its resident memory is sampled; plus Range and HEAD on blobs.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pseudoRandom, pushBlob as pushBlobTo, sha256Of } from '../support/blob-push.js';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { rssBytes, startTrustgate, type Trustgate } from '../support/trustgate-process.js';

const REPO = 'big/blob';
const GiB = 1024 ** 3;
let dir: string;
let registry: Registry;
let proxy: Trustgate;

const pushBlob = (size: number) => pushBlobTo(registry.url, REPO, size);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-stream-'));
  registry = await startRegistry(dir);
  // Blobs are content-addressed and need no notary: policy off, no trust server involved.
  proxy = await startTrustgate(dir, { upstreams: [{ name: 'reg', registry: registry.url, gun: registry.host, policy: 'off' }], default: 'reg', log: { level: 'warn' } }, 'trustgate', process.env.TG_NODE_OPTIONS ? { NODE_OPTIONS: process.env.TG_NODE_OPTIONS } : {});
});

afterAll(async () => {
  await proxy?.stop();
  await registry?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('blob streaming', () => {
  it('streams a 1 GiB blob with resident memory growing by less than 64 MiB', async () => {
    const digest = await pushBlob(GiB);
    // Warm up first: the first request loads and compiles the client/server code paths, which is
    // start-up cost, not streaming cost. The 1 GiB pull is measured from there.
    const warm = await pushBlob(16 << 20);
    const w = await request(`${proxy.url}/v2/${REPO}/blobs/${warm}`);
    expect(await sha256Of(w.body)).toBe(warm);
    const before = rssBytes(proxy.pid);
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(proxy.pid))), 50);
    const t0 = performance.now();
    const res = await request(`${proxy.url}/v2/${REPO}/blobs/${digest}`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['docker-content-digest']).toBe(digest);
    expect(Number(res.headers['content-length'])).toBe(GiB);
    const got = await sha256Of(res.body);
    const seconds = (performance.now() - t0) / 1000;
    clearInterval(sampler);
    expect(got).toBe(digest);
    const growthMiB = (peak - before) / 2 ** 20;
    console.log(`1 GiB through trustgate in ${seconds.toFixed(1)} s (${(1 / seconds).toFixed(2)} GiB/s); RSS ${(before / 2 ** 20).toFixed(0)} → peak ${(peak / 2 ** 20).toFixed(0)} MiB`);
    expect(growthMiB).toBeLessThan(64);
  }, 300_000);

  it('serves Range requests and HEAD on blobs', async () => {
    const digest = await pushBlob(1 << 20);
    const head = await request(`${proxy.url}/v2/${REPO}/blobs/${digest}`, { method: 'HEAD' });
    await head.body.dump();
    expect(head.statusCode).toBe(200);
    expect(Number(head.headers['content-length'])).toBe(1 << 20);
    const part = await request(`${proxy.url}/v2/${REPO}/blobs/${digest}`, { headers: { range: 'bytes=100-199' } });
    expect(part.statusCode).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 100-199/${1 << 20}`);
    const bytes = Buffer.from(await part.body.arrayBuffer());
    const whole: Buffer[] = [];
    for await (const c of pseudoRandom(1 << 20)) whole.push(c as Buffer);
    expect(bytes.equals(Buffer.concat(whole).subarray(100, 200))).toBe(true);
  });

  it('answers BLOB_UNKNOWN for a blob the upstream does not have', async () => {
    const res = await request(`${proxy.url}/v2/${REPO}/blobs/sha256:${'0'.repeat(64)}`);
    expect(res.statusCode).toBe(404);
    expect(await res.body.json()).toMatchObject({ errors: [{ code: 'BLOB_UNKNOWN' }] });
  });
});
