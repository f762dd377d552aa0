// The blob cache, in one run (ratios, not absolute figures):
//  1. which way Node sends a file to a socket fastest here (fs.createReadStream with several buffer
//     sizes, FileHandle.read into reused buffers with res.write, readFile-free only);
//  2. a 256 MiB layer from the direct registry, from distribution's proxy mode (warm), and through
//     trustgate cold (first pull: upstream → temp file → client) and warm (from its disk cache);
//  3. 20 concurrent cold pulls of 256 MiB through trustgate: one upstream GET, RSS growth.
// Median of 5 runs each (RUNS), round-robin so load from elsewhere falls on every path alike. `npm run build && npm run bench:blob-cache`; BLOB_MIB to change the size.
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { request } from 'undici';
import { pseudoRandom, pushBlob } from '../test/support/blob-push.js';
import { startRegistry } from '../test/support/docker-registry.js';
import { rssBytes, startTrustgate } from '../test/support/trustgate-process.js';
import { printEnv, writeResults } from './lib/report.js';

const MiB = 1 << 20;
const SIZE = Number(process.env.BLOB_MIB ?? 256) * MiB;
const RUNS = Number(process.env.RUNS ?? 5);
const CONCURRENT = 20;

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Download once; MB/s. Bytes are counted, not hashed: the client should not be the bottleneck. */
async function fetchOnce(url: string, size = SIZE): Promise<number> {
  const t0 = performance.now();
  const r = await request(url);
  let n = 0;
  for await (const c of r.body) n += (c as Buffer).length;
  if (r.statusCode !== 200 || n !== size) throw new Error(`${url}: ${r.statusCode}, ${n} bytes`);
  return size / 1e6 / ((performance.now() - t0) / 1000);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function fileToSocket(dir: string): Promise<Array<{ method: string; MBps: number }>> {
  const file = join(dir, 'blob.bin');
  await pipeline(pseudoRandom(SIZE), createWriteStream(file));
  const head = (res: import('node:http').ServerResponse) => res.writeHead(200, { 'content-length': String(SIZE), 'content-type': 'application/octet-stream' });
  const methods: Record<string, Server> = {};
  for (const hwm of [64 * 1024, MiB, 4 * MiB]) {
    methods[`fs.createReadStream, highWaterMark ${hwm >= MiB ? `${hwm / MiB} MiB` : `${hwm / 1024} KiB`}`] = createServer((_req, res) => {
      head(res);
      void pipeline(createReadStream(file, { highWaterMark: hwm }), res).catch(() => undefined);
    });
  }
  methods['FileHandle.createReadStream, 1 MiB (what trustgate uses)'] = createServer(async (_req, res) => {
    const fh = await open(file, 'r');
    head(res);
    await pipeline(fh.createReadStream({ highWaterMark: MiB }), res).catch(() => undefined);
  });
  methods['FileHandle.read into 2 reused 1 MiB buffers + res.write'] = createServer(async (_req, res) => {
    const fh = await open(file, 'r');
    head(res);
    const bufs = [Buffer.allocUnsafe(MiB), Buffer.allocUnsafe(MiB)];
    let pos = 0;
    let i = 0;
    while (pos < SIZE) {
      const buf = bufs[i++ % 2]!;
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      pos += bytesRead;
      // Copy-free only if the previous write has been flushed: wait for it before reusing its buffer.
      await new Promise<void>((r) => res.write(buf.subarray(0, bytesRead), () => r()));
    }
    res.end();
    await fh.close();
  });
  // Round-robin over the methods, so load from elsewhere on the machine falls on all of them alike.
  const urls: Record<string, string> = {};
  for (const [method, server] of Object.entries(methods)) urls[method] = await listen(server);
  const runs: Record<string, number[]> = Object.fromEntries(Object.keys(methods).map((m) => [m, []]));
  for (let i = 0; i < RUNS; i++) for (const [method, url] of Object.entries(urls)) runs[method]!.push(await fetchOnce(url));
  for (const server of Object.values(methods)) server.close();
  const rows = Object.entries(runs).map(([method, r]) => ({ method, MBps: median(r) }));
  return rows;
}

async function main(): Promise<void> {
  printEnv();
  const dir = mkdtempSync(join(tmpdir(), 'trustgate-bcbench-'));
  const registry = await startRegistry(dir);
  const mirror = await startRegistry(dir, { proxyRemote: registry.url });
  const tgConfig = (name: string, upstreamUrl: string) => ({
    upstreams: [{ name: 'reg', registry: upstreamUrl, gun: registry.host, policy: 'off' }],
    default: 'reg',
    log: { level: 'warn' },
    blobCache: { path: join(dir, `${name}-cache`), maxBytes: 64 * 1024 ** 3 },
  });
  const tg = await startTrustgate(dir, tgConfig('tg', registry.url), 'tg');
  try {
    const sendfile = await fileToSocket(dir);
    rmSync(join(dir, 'blob.bin'));
    console.log(`\n| ${SIZE / MiB} MiB file → socket | MB/s |\n|---|---:|`);
    for (const r of sendfile) console.log(`| ${r.method} | ${r.MBps.toFixed(0)} |`);

    const repo = 'bench/blob';
    const warm = await pushBlob(registry.url, repo, SIZE, 1);
    // Cold runs each need a blob nobody fetched yet.
    const colds: string[] = [];
    for (let i = 0; i < RUNS; i++) colds.push(await pushBlob(registry.url, repo, SIZE, 10 + i));
    const path = (d: string) => `/v2/${repo}/blobs/${d}`;
    await fetchOnce(`${mirror.url}${path(warm)}`); // fill the proxy-mode registry's storage
    await new Promise((r) => setTimeout(r, 3000)); // its storeLocal runs after the response
    await fetchOnce(`${tg.url}${path(warm)}`); // and trustgate's cache
    // Round-robin again: one run of each path per round, cold on a blob nobody fetched yet.
    const r: Record<'direct' | 'proxyWarm' | 'tgWarm' | 'tgCold', number[]> = { direct: [], proxyWarm: [], tgWarm: [], tgCold: [] };
    for (let i = 0; i < RUNS; i++) {
      // The new blob is fetched from the registry directly first, so its bytes are in the registry's
      // page cache for trustgate's cold pull too: cold measures trustgate's fill, not the registry's disk.
      r.direct.push(await fetchOnce(`${registry.url}${path(colds[i]!)}`));
      r.tgCold.push(await fetchOnce(`${tg.url}${path(colds[i]!)}`));
      r.direct.push(await fetchOnce(`${registry.url}${path(warm)}`));
      r.proxyWarm.push(await fetchOnce(`${mirror.url}${path(warm)}`));
      r.tgWarm.push(await fetchOnce(`${tg.url}${path(warm)}`));
    }
    const [direct, proxyWarm, tgWarm, tgCold] = [median(r.direct), median(r.proxyWarm), median(r.tgWarm), median(r.tgCold)];
    const rows = [
      { path: 'direct registry', MBps: direct },
      { path: 'distribution proxy mode (warm)', MBps: proxyWarm },
      { path: 'trustgate cold (upstream → cache file → client, digest checked)', MBps: tgCold },
      { path: 'trustgate warm (from its disk cache)', MBps: tgWarm },
    ].map((r) => ({ ...r, xDirect: r.MBps / direct, xProxyMode: r.MBps / proxyWarm }));
    console.log(`\n| ${SIZE / MiB} MiB layer via | MB/s | × direct | × proxy mode warm |\n|---|---:|---:|---:|`);
    for (const r of rows) console.log(`| ${r.path} | ${r.MBps.toFixed(0)} | ${r.xDirect.toFixed(2)} | ${r.xProxyMode.toFixed(2)} |`);

    // 20 concurrent cold pulls of one new blob, on a fresh trustgate.
    const stampedeBlob = await pushBlob(registry.url, repo, SIZE, 99);
    const tg2 = await startTrustgate(dir, tgConfig('tg2', registry.url), 'tg2');
    let stampede: { clients: number; seconds: number; aggregateMBps: number; rssBeforeMiB: number; rssPeakMiB: number; rssGrowthMiB: number; upstreamGets: number };
    try {
      await fetchOnce(`${tg2.url}${path(warm)}`); // warm the code paths, as the streaming test does
      const before = rssBytes(tg2.pid);
      let peak = before;
      const timer = setInterval(() => (peak = Math.max(peak, rssBytes(tg2.pid))), 50);
      const t0 = performance.now();
      await Promise.all(Array.from({ length: CONCURRENT }, () => fetchOnce(`${tg2.url}${path(stampedeBlob)}`)));
      const seconds = (performance.now() - t0) / 1000;
      clearInterval(timer);
      const upstreamGets = readFileSync(registry.logFile, 'utf8')
        .split('\n')
        .filter((l) => l.includes('"msg":"response completed'))
        .map((l) => JSON.parse(l) as Record<string, string>)
        .filter((e) => e['http.request.method'] === 'GET' && e['http.request.uri'] === path(stampedeBlob)).length;
      stampede = {
        clients: CONCURRENT,
        seconds,
        aggregateMBps: (CONCURRENT * SIZE) / 1e6 / seconds,
        rssBeforeMiB: before / MiB,
        rssPeakMiB: peak / MiB,
        rssGrowthMiB: (peak - before) / MiB,
        upstreamGets,
      };
    } finally {
      await tg2.stop();
    }
    console.log(
      `\n${CONCURRENT} concurrent cold pulls of ${SIZE / MiB} MiB: ${stampede.seconds.toFixed(1)} s, ${stampede.aggregateMBps.toFixed(0)} MB/s in all, ` +
        `${stampede.upstreamGets} upstream GET(s), RSS ${stampede.rssBeforeMiB.toFixed(0)} → peak ${stampede.rssPeakMiB.toFixed(0)} MiB (+${stampede.rssGrowthMiB.toFixed(1)} MiB)`,
    );
    console.log(writeResults('blob-cache', { sizeMiB: SIZE / MiB, runs: RUNS, fileToSocket: sendfile, rows, runsMBps: r, stampede }));
  } finally {
    await tg.stop();
    await mirror.stop();
    await registry.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
