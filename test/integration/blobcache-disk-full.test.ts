// Issue 26, "the blob cache degrades to a relay": blobCache.path on a real 16 MiB tmpfs (mounted here
// as root; if mount is not permitted the test fails, it never skips), a real docker-registry upstream.
// Layers of 64 and 256 MiB, and a fill that hits ENOSPC half-way (a TCP forwarder between trustgate and
// the registry holds the upstream bytes while the disk is filled), must reach the client whole and with
// the right sha256; no temporary file is left; the metrics say filling stopped.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushBlob } from '../support/blob-push.js';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { runCli, startTrustgate, type Trustgate } from '../support/trustgate-process.js';

const MiB = 1 << 20;
const REPO = 'full/app';
let dir: string;
let mnt: string;
let mounted = false;
let registry: Registry;
let proxy: Trustgate;
let forwarder: Forwarder;

/** A TCP forwarder to the registry that can hold the registry's bytes once `holdAfter` have passed. */
interface Forwarder {
  url: string;
  server: Server;
  holdAfter(bytes: number): Promise<void>;
  release(): void;
}

async function startForwarder(target: { host: string; port: number }): Promise<Forwarder> {
  let limit = Infinity;
  let held: Socket[] = [];
  let onHeld: (() => void) | undefined;
  const server = createServer((client) => {
    const up = connect(target.port, target.host);
    let passed = 0;
    client.pipe(up);
    up.on('data', (c: Buffer) => {
      passed += c.length;
      if (!client.write(c)) up.pause();
      if (passed >= limit && !held.includes(up)) {
        up.pause();
        held.push(up);
        onHeld?.();
      }
    });
    client.on('drain', () => {
      if (!held.includes(up)) up.resume();
    });
    up.on('end', () => client.end());
    const close = () => {
      client.destroy();
      up.destroy();
    };
    up.on('error', close);
    client.on('error', close);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    holdAfter: (bytes) => {
      limit = bytes;
      return new Promise((r) => (onHeld = r));
    },
    release: () => {
      limit = Infinity;
      onHeld = undefined;
      const h = held;
      held = [];
      for (const s of h) s.resume();
    },
  };
}

async function pullDigest(digest: string): Promise<{ status: number; bytes: number; digest: string; failed: boolean }> {
  const r = await request(`${proxy.url}/v2/${REPO}/blobs/${digest}`);
  const h = (await import('node:crypto')).createHash('sha256');
  let bytes = 0;
  try {
    for await (const c of r.body) {
      bytes += c.length;
      h.update(c);
    }
    return { status: r.statusCode, bytes, digest: `sha256:${h.digest('hex')}`, failed: false };
  } catch {
    return { status: r.statusCode, bytes, digest: '', failed: true };
  }
}

async function metrics(): Promise<Record<string, number>> {
  const text = await (await request(`${proxy.url}/metrics`)).body.text();
  return Object.fromEntries([...text.matchAll(/^(trustgate_blobcache_\w+) (\S+)$/gm)].map((m) => [m[1]!, Number(m[2])]));
}

/** Files under the cache's tmp directory (fills in progress or left behind). */
function tempFiles(): string[] {
  const tmp = join(mnt, 'tmp');
  if (!existsSync(tmp)) return [];
  return readdirSync(tmp).flatMap((d) => readdirSync(join(tmp, d)).map((f) => `${d}/${f}`));
}

/** Fill the tmpfs until ENOSPC with a file of its own (removed with `freeDisk`). */
function fillDisk(name = 'filler'): void {
  try {
    execFileSync('dd', ['if=/dev/zero', `of=${join(mnt, name)}`, 'bs=64k'], { stdio: 'ignore' });
  } catch {
    /* dd ends with "No space left on device": that is the point */
  }
}

function freeDisk(name = 'filler'): void {
  rmSync(join(mnt, name), { force: true });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-diskfull-'));
  mnt = join(dir, 'cachefs');
  mkdirSync(mnt);
  // Fails the test (never skips) where mount is not permitted.
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mnt]);
  mounted = true;
  registry = await startRegistry(dir);
  const [host, port] = registry.host.split(':');
  forwarder = await startForwarder({ host: host!, port: Number(port) });
  proxy = await startTrustgate(dir, {
    upstreams: [{ name: 'reg', registry: forwarder.url, gun: registry.host, policy: 'off' }],
    default: 'reg',
    log: { level: 'warn' },
    blobCache: { path: mnt, maxBytes: 1024 * MiB },
  });
});

afterAll(async () => {
  await proxy?.stop();
  await registry?.stop();
  forwarder?.server.close();
  if (mounted) execFileSync('umount', [mnt]);
  if (dir && !process.env.KEEP) rmSync(dir, { recursive: true, force: true });
});

describe('blob cache on a full disk (16 MiB tmpfs)', () => {
  it('a 64 MiB layer bigger than the cache filesystem reaches the client whole', async () => {
    const big = await pushBlob(registry.url, REPO, 64 * MiB, 21);
    expect(await pullDigest(big)).toEqual({ status: 200, bytes: 64 * MiB, digest: big, failed: false });
    expect(tempFiles()).toEqual([]);
  });

  it('a fill that hits ENOSPC half-way goes on from the upstream: right bytes, temp file removed', async () => {
    const mid = await pushBlob(registry.url, REPO, 12 * MiB, 22);
    const held = forwarder.holdAfter(4 * MiB);
    const pulled = pullDigest(mid);
    await held;
    // The fill has started writing (its temp file exists); now the disk fills up under it.
    await expect.poll(() => tempFiles().length, { timeout: 5000 }).toBe(1);
    fillDisk();
    forwarder.release();
    expect(await pulled).toEqual({ status: 200, bytes: 12 * MiB, digest: mid, failed: false });
    await expect.poll(() => tempFiles(), { timeout: 5000 }).toEqual([]);
    const m = await metrics();
    expect(m.trustgate_blobcache_filling).toBe(0);
    expect(m.trustgate_blobcache_free_bytes).toBeLessThan(MiB);
    expect(existsSync(join(mnt, 'blobs', 'reg')) ? readdirSync(join(mnt, 'blobs', 'reg')) : []).toEqual([]);
    const log = (await import('node:fs')).readFileSync(proxy.logFile, 'utf8');
    expect(log).toMatch(/blob cache write failed/); // the relay path, not the pre-check
    expect(log).toMatch(/blob cache stopped filling/);
    expect(m.trustgate_blobcache_relayed_total).toBe(1);
  });

  it('while the disk is full, 64 MiB and 256 MiB layers and a small one complete with the right bytes', async () => {
    fillDisk('filler2');
    const [l64, l256, small] = [await pushBlob(registry.url, REPO, 64 * MiB, 23), await pushBlob(registry.url, REPO, 256 * MiB, 24), await pushBlob(registry.url, REPO, 2 * MiB, 25)];
    const results = await Promise.all([pullDigest(l64), pullDigest(l256), pullDigest(small)]);
    expect(results).toEqual([
      { status: 200, bytes: 64 * MiB, digest: l64, failed: false },
      { status: 200, bytes: 256 * MiB, digest: l256, failed: false },
      { status: 200, bytes: 2 * MiB, digest: small, failed: false },
    ]);
    expect(tempFiles()).toEqual([]);
    const m = await metrics();
    expect(m.trustgate_blobcache_filling).toBe(0);
    expect(m.trustgate_blobcache_bytes).toBe(0);
    // Space freed: a scrape says so at once (no miss needed), and the next pull fills the cache again.
    freeDisk();
    freeDisk('filler2');
    const freed = await metrics();
    expect(freed.trustgate_blobcache_filling).toBe(1);
    expect(freed.trustgate_blobcache_free_bytes).toBeGreaterThan(15 * MiB);
    await expect.poll(async () => (await pullDigest(small)).digest === small && (await metrics()).trustgate_blobcache_bytes === 2 * MiB, { timeout: 10_000 }).toBe(true);
    expect((await metrics()).trustgate_blobcache_filling).toBe(1);
  });

  it('config check warns when blobCache.maxBytes exceeds the filesystem', async () => {
    const file = join(dir, 'check.yaml');
    writeFileSync(file, JSON.stringify({ listen: '127.0.0.1:5999', upstreams: [{ name: 'reg', registry: registry.url, gun: registry.host, policy: 'off' }], blobCache: { path: mnt, maxBytes: 1024 * MiB } }));
    const r = await runCli(['config', 'check', file]);
    expect(r.code).toBe(0);
    expect(r.out.ok).toBe(true);
    expect((r.out as { warnings?: string[] }).warnings?.join('\n')).toMatch(/blobCache\.maxBytes .* exceeds the size of the filesystem/);
  });
});
