// Issue 15: the verified blob cache with a real docker-registry upstream. Upstream GETs are counted
// in the registry's own log; bytes are checked by their sha256 on the client side.
import { readdirSync, readFileSync, rmSync, mkdtempSync, openSync, writeSync, readSync, closeSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushBlob, sha256Of } from '../support/blob-push.js';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { pushImage, type PushedImage } from '../support/oci-image.js';
import { runCli, startTrustgate, type Trustgate } from '../support/trustgate-process.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

const REPO = 'cache/app';
const MiB = 1 << 20;
let dir: string;
let registry: Registry;
let proxy: Trustgate;
const config = () => ({ upstreams: [{ name: 'reg', registry: registry.url, gun: registry.host, policy: 'off' }], default: 'reg', log: { level: 'warn' } });
const cacheDir = () => join(dir, 'trustgate-data', 'blobcache');

/** Requests the registry answered, by method and path (its own log: one line per request). */
function upstreamCount(method: string, digest: string, repo = REPO): number {
  return readFileSync(registry.logFile, 'utf8')
    .split('\n')
    .filter((l) => l.includes('"msg":"response completed'))
    .map((l) => JSON.parse(l) as Record<string, string>)
    .filter((e) => e['http.request.method'] === method && e['http.request.uri'] === `/v2/${repo}/blobs/${digest}`).length;
}

async function pull(digest: string, init: { method?: 'GET' | 'HEAD'; range?: string; repo?: string; base?: string } = {}) {
  const r = await request(`${init.base ?? proxy.url}/v2/${init.repo ?? REPO}/blobs/${digest}`, { method: init.method ?? 'GET', headers: init.range ? { range: init.range } : {} });
  return r;
}

/** Read a whole body; resolves with the bytes received and whether the transfer failed. */
async function drain(body: AsyncIterable<unknown>): Promise<{ bytes: number; failed: boolean; digest: string }> {
  const h = (await import('node:crypto')).createHash('sha256');
  let bytes = 0;
  try {
    for await (const c of body) {
      bytes += (c as Buffer).length;
      h.update(c as Buffer);
    }
    return { bytes, failed: false, digest: `sha256:${h.digest('hex')}` };
  } catch {
    return { bytes, failed: true, digest: '' };
  }
}

async function metricValues(base = proxy.url): Promise<Record<string, number>> {
  const text = await (await request(`${base}/metrics`)).body.text();
  return Object.fromEntries([...text.matchAll(/^(trustgate_blobcache_\w+) (\S+)$/gm)].map((m) => [m[1]!, Number(m[2])]));
}

function cachedFiles(root: string): Array<{ name: string; size: number }> {
  const out: Array<{ name: string; size: number }> = [];
  const blobs = join(root, 'blobs');
  for (const u of readdirSync(blobs)) for (const n of readdirSync(join(blobs, u))) out.push({ name: `${u}/${n}`, size: statSync(join(blobs, u, n)).size });
  return out;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-blobcache-'));
  registry = await startRegistry(dir);
  proxy = await startTrustgate(dir, config());
});

afterAll(async () => {
  await proxy?.stop();
  await registry?.stop();
  if (dir && !process.env.KEEP) rmSync(dir, { recursive: true, force: true });
});

describe('blob cache (real docker-registry upstream)', () => {
  let small: string;
  let big: string;
  let image: PushedImage;

  /** skopeo pulls the image by digest through trustgate (manifest from the file store, blobs from the cache). */
  async function skopeoByDigest(out: string): Promise<void> {
    await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${proxy.host}/cache/img@${image.digest}`, `dir:${join(dir, out)}`], { timeout: 60_000 });
  }

  it('skopeo pulls an image by digest through it (manifest and layers cached)', async () => {
    image = await pushImage(dir, registry.host, 'cache/img', 'v1');
    await skopeoByDigest('skopeo-1');
    for (const b of image.blobs) expect(upstreamCount('GET', b.digest, 'cache/img')).toBe(1);
  });

  it('10 sequential pulls make 1 upstream GET; HEAD and Range are served from disk', async () => {
    small = await pushBlob(registry.url, REPO, 4 * MiB, 11);
    const before = await metricValues();
    for (let i = 0; i < 10; i++) {
      const r = await pull(small);
      expect(r.statusCode).toBe(200);
      expect(r.headers['docker-content-digest']).toBe(small);
      expect(Number(r.headers['content-length'])).toBe(4 * MiB);
      expect(await sha256Of(r.body as never)).toBe(small);
    }
    expect(upstreamCount('GET', small)).toBe(1);
    const head = await pull(small, { method: 'HEAD' });
    await head.body.dump();
    expect(head.statusCode).toBe(200);
    expect(Number(head.headers['content-length'])).toBe(4 * MiB);
    const part = await pull(small, { range: 'bytes=100-199' });
    expect(part.statusCode).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 100-199/${4 * MiB}`);
    expect((await part.body.arrayBuffer()).byteLength).toBe(100);
    expect(upstreamCount('GET', small) + upstreamCount('HEAD', small)).toBe(1);
    const after = await metricValues();
    const delta = (name: string) => (after[name] ?? 0) - (before[name] ?? 0);
    // 9 GETs, HEAD and Range from disk; one miss that fetched the 4 MiB once.
    expect(delta('trustgate_blobcache_hits_total')).toBe(11);
    expect(delta('trustgate_blobcache_misses_total')).toBe(1);
    expect(delta('trustgate_blobcache_bytes')).toBe(4 * MiB);
    expect(delta('trustgate_blobcache_bytes_from_upstream_total')).toBe(4 * MiB);
    expect(delta('trustgate_blobcache_bytes_from_cache_total')).toBe(10 * 4 * MiB + 100);
  });

  it('20 concurrent cold pulls of a 64 MiB layer make 1 upstream GET and 20 correct copies', async () => {
    big = await pushBlob(registry.url, REPO, 64 * MiB, 12);
    const before = await metricValues();
    const results = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const r = await pull(big);
        expect(r.statusCode).toBe(200);
        return drain(r.body);
      }),
    );
    for (const r of results) expect(r).toEqual({ bytes: 64 * MiB, failed: false, digest: big });
    expect(upstreamCount('GET', big)).toBe(1);
    // Joiners from the same repository need no access confirmation either.
    expect(upstreamCount('HEAD', big)).toBe(0);
    const after = await metricValues();
    // One miss; the other 19 joined it (hits), and the upstream's bytes came once.
    expect(after.trustgate_blobcache_misses_total! - before.trustgate_blobcache_misses_total!).toBe(1);
    expect(after.trustgate_blobcache_hits_total! - before.trustgate_blobcache_hits_total!).toBe(19);
    expect(after.trustgate_blobcache_bytes_from_upstream_total! - before.trustgate_blobcache_bytes_from_upstream_total!).toBe(64 * MiB);
  }, 120_000);

  it("another repository's requester is confirmed against the upstream: refused where the upstream refuses", async () => {
    // `other/app` on the registry does not hold the blob (distribution links blobs per repository).
    const r = await pull(small, { repo: 'other/app' });
    expect(r.statusCode).toBe(404);
    expect(await r.body.json()).toMatchObject({ errors: [{ code: 'BLOB_UNKNOWN' }] });
    expect(upstreamCount('HEAD', small, 'other/app')).toBe(1);
    // Once the upstream holds it there too, one HEAD confirms it and the bytes come from disk.
    await pushBlob(registry.url, 'third/app', 4 * MiB, 11);
    const ok = await pull(small, { repo: 'third/app' });
    expect(ok.statusCode).toBe(200);
    expect(await sha256Of(ok.body as never)).toBe(small);
    expect(upstreamCount('GET', small, 'third/app')).toBe(0);
    expect(upstreamCount('HEAD', small, 'third/app')).toBe(1);
  });

  it('eviction keeps the directory under a small cap, least recently used first', async () => {
    const capped = await startTrustgate(dir, { ...config(), blobCache: { path: join(dir, 'capped'), maxBytes: 5 * MiB } }, 'capped');
    try {
      const digests: string[] = [];
      for (let i = 0; i < 6; i++) digests.push(await pushBlob(registry.url, REPO, 2 * MiB, 20 + i));
      for (const d of digests) {
        const r = await pull(d, { base: capped.url });
        expect(await sha256Of(r.body as never)).toBe(d);
        const files = cachedFiles(join(dir, 'capped'));
        expect(files.reduce((a, f) => a + f.size, 0)).toBeLessThanOrEqual(5 * MiB);
      }
      // The two most recent are held; the oldest were evicted.
      const held = cachedFiles(join(dir, 'capped')).map((f) => `sha256:${f.name.split('/')[1]}`);
      expect(held.sort()).toEqual(digests.slice(-2).sort());
      const metrics = await (await request(`${capped.url}/metrics`)).body.text();
      expect(metrics).toMatch(/^trustgate_blobcache_evictions_total 4$/m);

      // trustgate cache status|prune on the same configuration, while it runs.
      const cfg = join(dir, readdirSync(dir).find((f) => f.startsWith('capped-') && f.endsWith('.yaml'))!);
      const status = await runCli(['cache', 'status', '--config', cfg]);
      expect(status.code).toBe(0);
      expect(status.out).toMatchObject({ blobs: 2, bytes: 4 * MiB, maxBytes: 5 * MiB, partials: 0, upstreams: { reg: { blobs: 2, bytes: 4 * MiB } } });
      const prune = await runCli(['cache', 'prune', '--config', cfg, '--max-bytes', String(2 * MiB)]);
      expect(prune.out).toMatchObject({ removed: 1, freedBytes: 2 * MiB, bytes: 2 * MiB });
      expect(cachedFiles(join(dir, 'capped')).map((f) => `sha256:${f.name.split('/')[1]}`)).toEqual([digests[5]]);
      // The running server notices the pruned file and fetches it again.
      const again = await pull(digests[4]!, { base: capped.url });
      expect(await sha256Of(again.body as never)).toBe(digests[4]);
      expect(upstreamCount('GET', digests[4]!)).toBe(2);
      const all = await runCli(['cache', 'prune', '--config', cfg, '--all']);
      expect(all.out).toMatchObject({ bytes: 0 });
      expect(cachedFiles(join(dir, 'capped'))).toEqual([]);
      expect((await runCli(['cache', 'prune', '--config', cfg, '--all', '--max-bytes', '1'])).code).toBe(2);
    } finally {
      await capped.stop();
    }
  });

  it('upstream stopped: the cached layer is served (GET, HEAD, Range); an uncached one is not', async () => {
    await registry.stop();
    const r = await pull(big);
    expect(r.statusCode).toBe(200);
    expect(await drain(r.body)).toEqual({ bytes: 64 * MiB, failed: false, digest: big });
    const head = await pull(small, { method: 'HEAD' });
    await head.body.dump();
    expect(head.statusCode).toBe(200);
    const part = await pull(small, { range: 'bytes=-10' });
    expect(part.statusCode).toBe(206);
    expect((await part.body.arrayBuffer()).byteLength).toBe(10);
    const missing = await pull(`sha256:${'1'.repeat(64)}`);
    await missing.body.dump();
    expect(missing.statusCode).toBe(502);
  });

  it('after a restart (upstream still down) the index is rebuilt and layers are still served, verified', async () => {
    await proxy.stop();
    proxy = await startTrustgate(dir, config());
    const r = await pull(big);
    expect(r.statusCode).toBe(200);
    expect(await drain(r.body)).toEqual({ bytes: 64 * MiB, failed: false, digest: big });
    const s = await pull(small, { repo: 'third/app' });
    expect(s.statusCode).toBe(200);
    expect(await sha256Of(s.body as never)).toBe(small);
    // Manifests by digest survive the restart in the file store, blobs in the cache: a whole image.
    const m = await request(`${proxy.url}/v2/cache/img/manifests/${image.digest}`, { headers: { accept: image.mediaType } });
    expect(m.statusCode).toBe(200);
    expect(Buffer.from(await m.body.arrayBuffer()).equals(image.manifest)).toBe(true);
    await skopeoByDigest('skopeo-2');
  });

  it('a byte flipped in a cached file: not served complete after restart, and dropped', async () => {
    await proxy.stop();
    const file = join(cacheDir(), 'blobs', 'reg', big.slice(7));
    const fd = openSync(file, 'r+');
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, 32 * MiB);
    b[0]! ^= 0xff;
    writeSync(fd, b, 0, 1, 32 * MiB);
    closeSync(fd);
    proxy = await startTrustgate(dir, config());
    const r = await pull(big);
    const got = await drain(r.body);
    expect(got.failed).toBe(true);
    expect(got.bytes).toBeLessThan(64 * MiB);
    // Dropped: with the upstream down there is nowhere left to get it from.
    const again = await pull(big);
    await again.body.dump();
    expect(again.statusCode).toBe(502);
    expect(() => statSync(file)).toThrow();
  });

  it('a cached file truncated on disk is not served (size checked on every open)', async () => {
    const file = join(cacheDir(), 'blobs', 'reg', small.slice(7));
    truncateSync(file, MiB);
    const r = await pull(small);
    await r.body.dump().catch(() => undefined);
    expect(r.statusCode).toBe(502);
  });
});
