// Issue 13, blob bytes: an upstream that answers a blob GET with the right length but one byte
// changed. trustgate holds back the tail of the stream until the digest matches, so every real client
// (curl, skopeo, containerd's ctr, dockerd) is left with a short body and fails the pull; the same image with
// the right bytes pulls fine through the same proxy, so the failure is the substitution's. A 206 the
// client did not ask for (no Range) is refused rather than relayed as the whole blob.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startContainerd, writeHostsToml, type Containerd } from '../support/containerd.js';
import { pinHub, startDockerd, unpinHub, type Dockerd } from '../support/dockerd.js';
import { tarOneFile } from '../support/oci-image.js';
import { startTrustgate, type Trustgate } from '../support/trustgate-process.js';

const run = promisify(execFile);
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const GUN_HOST = 'sub.example';

interface Image {
  manifest: Buffer;
  blobs: Map<string, Buffer>;
  layer: string;
}

/** A one-layer image whose layer (gzip of 3 MiB of random bytes: several 1 MiB reads) is served as given. */
function makeImage(label: string): Image {
  const tar = tarOneFile('data.bin', Buffer.concat([Buffer.from(label), randomBytes(3 << 20)]));
  const layer = gzipSync(tar, { level: 1 });
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha(tar)] } }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(layer), size: layer.length }],
    }),
  );
  return { manifest, blobs: new Map([[sha(config), config], [sha(layer), layer]]), layer: sha(layer) };
}

let dir: string;
let upstream: Server;
let proxy: Trustgate;
/** The same, without the blob cache: the relay path (HoldBackVerifier) rather than the cache's fill. */
let relayProxy: Trustgate;
let containerd: Containerd;
let hostsDir: string;
let dockerd: Dockerd;
const upstreamSaw: string[] = [];
const images: Record<string, Image> = {};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-subst-'));
  images.good = makeImage('good');
  images.bad = makeImage('bad');
  upstream = createServer((req, res) => {
    const url = (req.url ?? '').split('?')[0]!;
    upstreamSaw.push(`${req.method} ${url}`);
    if (url === '/v2/') return void res.writeHead(200).end('{}');
    // good/app, bad/app (curl, skopeo, ctr); library/good, library/bad (dockerd's Docker Hub names).
    const m = /^\/v2\/(?:library\/)?(good|bad|partial)(?:\/app)?\/(manifests|blobs)\/(.+)$/.exec(url);
    if (!m) return void res.writeHead(404).end();
    const [, name, kind, ref] = m as unknown as [string, string, string, string];
    if (name === 'partial') {
      // A 206 whatever was asked: the first 10 bytes of the layer.
      const body = images.good!.blobs.get(images.good!.layer)!.subarray(0, 10);
      return void res.writeHead(206, { 'content-length': 10, 'content-range': `bytes 0-9/${images.good!.blobs.get(images.good!.layer)!.length}` }).end(body);
    }
    const img = images[name]!;
    if (kind === 'manifests') {
      if (ref !== 'v1' && ref !== sha(img.manifest)) return void res.writeHead(404).end();
      return void res
        .writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': img.manifest.length, 'docker-content-digest': sha(img.manifest) })
        .end(req.method === 'HEAD' ? undefined : img.manifest);
    }
    let blob = img.blobs.get(ref);
    if (!blob) return void res.writeHead(404).end();
    if (name === 'bad' && ref === img.layer) {
      // Same length, one byte changed, in the middle of the stream.
      blob = Buffer.from(blob);
      blob[blob.length >> 1]! ^= 0x01;
    }
    res.writeHead(200, { 'content-length': blob.length, 'content-type': 'application/octet-stream' });
    res.end(req.method === 'HEAD' ? undefined : blob);
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const upUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  proxy = await startTrustgate(dir, { upstreams: [{ name: 'sub', registry: upUrl, gun: GUN_HOST, policy: 'off' }], default: 'sub', log: { level: 'warn' } });
  relayProxy = await startTrustgate(dir, { upstreams: [{ name: 'sub', registry: upUrl, gun: GUN_HOST, policy: 'off' }], default: 'sub', log: { level: 'warn' }, blobCache: false }, 'relay');
  containerd = await startContainerd(dir);
  hostsDir = join(dir, 'hosts');
  writeHostsToml(hostsDir, GUN_HOST, proxy.url);
  pinHub();
  // One download attempt per layer: the retries (5 s, 10 s, …) would only repeat the same refusal.
  dockerd = await startDockerd(dir, proxy, { 'max-download-attempts': 1 });
}, 180_000);

afterAll(async () => {
  await dockerd?.stop();
  unpinHub();
  await containerd?.stop();
  await proxy?.stop();
  await relayProxy?.stop();
  upstream?.closeAllConnections();
  upstream?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function curl(path: string, via: Trustgate = proxy): Promise<{ code: number; size: number; err: string }> {
  const out = join(dir, `curl-${randomBytes(4).toString('hex')}`);
  try {
    await run('curl', ['-sS', '-o', out, `${via.url}${path}`]);
    return { code: 0, size: statSync(out).size, err: '' };
  } catch (e) {
    const x = e as { code: number; stderr: string };
    let size = 0;
    try {
      size = statSync(out).size;
    } catch {
      /* nothing written */
    }
    return { code: x.code, size, err: x.stderr };
  }
}

async function skopeoCopy(repo: string): Promise<{ ok: boolean; out: string }> {
  try {
    await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${proxy.host}/${repo}:v1`, `dir:${join(dir, `skopeo-${repo.replace('/', '_')}`)}`], { timeout: 120_000 });
    return { ok: true, out: '' };
  } catch (e) {
    return { ok: false, out: String((e as { stderr?: string }).stderr) };
  }
}

describe('same-length blob substitution through trustgate', () => {
  it.each([
    ['with the blob cache (fill, growing-file readers)', () => proxy],
    ['without it (relay through the hold-back verifier)', () => relayProxy],
  ])('curl gets the right layer whole, and the substituted one cut short (transfer error, fewer bytes), %s', async (_n, via) => {
    const good = await curl(`/v2/good/app/blobs/${images.good!.layer}`, via());
    expect(good.code).toBe(0);
    expect(good.size).toBe(images.good!.blobs.get(images.good!.layer)!.length);
    const size = images.bad!.blobs.get(images.bad!.layer)!.length;
    const bad = await curl(`/v2/bad/app/blobs/${images.bad!.layer}`, via());
    expect(bad.code, bad.err).not.toBe(0);
    expect(bad.size).toBeLessThan(size);
  });

  it('skopeo copies the right image and fails the substituted one', async () => {
    expect((await skopeoCopy('good/app')).ok).toBe(true);
    const bad = await skopeoCopy('bad/app');
    expect(bad.ok).toBe(false);
  });

  it('containerd (ctr, hosts.toml mirror) pulls the right image and fails the substituted one', async () => {
    const good = await containerd.pull(`${GUN_HOST}/good/app:v1`, hostsDir);
    expect(good.ok, good.out).toBe(true);
    const bad = await containerd.pull(`${GUN_HOST}/bad/app:v1`, hostsDir);
    expect(bad.ok, bad.out).toBe(false);
  });

  it('dockerd (registry-mirrors) pulls the right image and fails the substituted one', async () => {
    const docker = dockerd.docker;
    const good = await docker(['pull', 'good:v1']);
    expect(good.ok, good.out).toBe(true);
    const bad = await docker(['pull', 'bad:v1']);
    expect(bad.ok, bad.out).toBe(false);
    // It failed on the layer trustgate cut, fetched through the mirror (not on anything before it).
    expect(upstreamSaw).toContain(`GET /v2/library/bad/blobs/${images.bad!.layer}`);
    expect((await docker(['image', 'inspect', 'bad:v1'])).ok).toBe(false);
  });

  it('a 206 answered to a request without Range is refused (UPSTREAM_INVALID), and relayed when Range was sent', async () => {
    // A digest nothing else asked for: not in trustgate's blob cache, so the request reaches the upstream.
    const digest = `sha256:${'f'.repeat(64)}`;
    const r = await request(`${proxy.url}/v2/partial/app/blobs/${digest}`);
    expect(r.statusCode).toBe(502);
    expect(await r.body.json()).toMatchObject({ errors: [{ detail: { code: 'UPSTREAM_INVALID' } }] });
    const ranged = await request(`${proxy.url}/v2/partial/app/blobs/${digest}`, { headers: { range: 'bytes=0-9' } });
    expect(ranged.statusCode).toBe(206);
    expect((await ranged.body.arrayBuffer()).byteLength).toBe(10);
  });
});
