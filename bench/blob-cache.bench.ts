// The blob cache, in one run (ratios, not absolute figures):
//  1. which way Node sends a file to a socket fastest here (fs.createReadStream with several buffer
//     sizes, FileHandle.createReadStream, and the two reused buffers of src/blobcache/file-sender.ts);
//  2. for each layer size (BLOB_MIB, default 256 and 1024 MiB): the direct registry, distribution's
//     proxy mode first pull (a blob it never saw) and warm, and trustgate cold (first pull: upstream →
//     cache file → client) and warm (from its disk cache), with the CPU time each server process spent
//     per GiB (issue 23's peer for the first pull is proxy mode's first pull);
//  3. 20 concurrent cold pulls of the first size through trustgate: one upstream GET, RSS growth,
//     every copy hashed by the client;
//  4. where a cold pull's CPU goes, stage by stage (HTTP client, hash, file write).
// The client is curl (a C client, as fast as docker's or containerd's Go client here): an undici
// client in this process topped out at ~1.2 GB/s and made every path look alike. Every path here
// runs on the same 2 cores as its client and its upstream, so the figures are CPU-bound: see the
// CPU rows. Median of 5 runs each (RUNS), round-robin so load from elsewhere falls on every path
// alike. `npm run build && npm run bench:blob-cache`; BLOB_MIB=256 for one size, QUICK=1 for part 2 only.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, createWriteStream, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pipeline } from 'node:stream/promises';
import { getGlobalDispatcher, request } from 'undici';
import { sendFileRange } from '../src/blobcache/file-sender.js';
import { pseudoRandom, pushBlob } from '../test/support/blob-push.js';
import { startRegistry, type Registry } from '../test/support/docker-registry.js';
import { rssBytes, startTrustgate } from '../test/support/trustgate-process.js';
import { cpuSeconds, curlPull } from './lib/curl-pull.js';
import { updateBenchDocsBlobCache } from './lib/docs-blob-cache.js';
import { benchEnv, median, printEnv, writeResults } from './lib/report.js';

const MiB = 1 << 20;
/** BLOB_MIB: one size or several (`256,1024`); the first is also the stampede's and the stage table's. */
const SIZES = String(process.env.BLOB_MIB ?? '256,1024')
  .split(',')
  .map((x) => Number(x) * MiB);
const SIZE = SIZES[0]!;
const RUNS = Number(process.env.RUNS ?? 5);
const CONCURRENT = 20;
/** QUICK=1: only the interleaved table (iterating on the fill); no stampede, no stage table, nothing written. */
const QUICK = process.env.QUICK === '1';
/** COLDCOST=1: only the stage table (where a cold pull's CPU goes), nothing written. */
const COLDCOST = process.env.COLDCOST === '1';

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Download once with curl into /dev/null; MB/s, and the CPU seconds per GiB `pid` (the server) spent. */
const fetchOnce = (url: string, pid?: number, size = SIZE) => curlPull(url, size, pid);

/** Download once with curl, hashing what arrives: the sha256:<hex> of the body (the stampede: every copy right). */
async function fetchDigest(url: string): Promise<string> {
  const out = await new Promise<string>((resolve, reject) =>
    execFile('bash', ['-o', 'pipefail', '-c', `curl -sf "$0" | sha256sum`, url], (err, stdout) => (err ? reject(err) : resolve(stdout))),
  );
  return `sha256:${out.split(' ')[0]}`;
}


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
  methods['FileHandle.createReadStream, 1 MiB'] = createServer(async (_req, res) => {
    const fh = await open(file, 'r');
    head(res);
    await pipeline(fh.createReadStream({ highWaterMark: MiB }), res).catch(() => undefined);
  });
  methods['two reused 1 MiB buffers, read overlapping write (sendFileRange: what trustgate uses)'] = createServer(async (_req, res) => {
    const fh = await open(file, 'r');
    head(res);
    await sendFileRange(fh, res, { start: 0, end: SIZE, bufferSize: MiB }).finally(() => fh.close());
  });
  // Round-robin over the methods, so load from elsewhere on the machine falls on all of them alike.
  // (The servers share this process, not curl's: each serves alone while it is measured.)
  const urls: Record<string, string> = {};
  for (const [method, server] of Object.entries(methods)) urls[method] = await listen(server);
  const runs: Record<string, number[]> = Object.fromEntries(Object.keys(methods).map((m) => [m, []]));
  for (let i = 0; i < RUNS; i++) for (const [method, url] of Object.entries(urls)) runs[method]!.push((await fetchOnce(url)).MBps);
  for (const server of Object.values(methods)) server.close();
  const rows = Object.entries(runs).map(([method, r]) => ({ method, MBps: median(r) }));
  return rows;
}

/**
 * Where a cold pull's CPU goes: the same upstream GET received in this process in steps, each row
 * adding one stage of trustgate's fill (CPU seconds per GiB from process.cpuUsage, all threads):
 * a raw socket with a reused 1 MiB read buffer (the floor: no HTTP parsing), the undici client
 * trustgate uses, + SHA-256, + writing the cache file.
 */
async function coldCost(url: string): Promise<Array<{ stage: string; MBps: number; cpuSecondsPerGiB: number }>> {
  const u = new URL(url);
  const stages: Record<string, () => Promise<number>> = {
    'raw socket, no HTTP parsing (floor)': () =>
      new Promise((resolve, reject) => {
        let n = 0;
        const s = connect({ host: u.hostname, port: Number(u.port), onread: { buffer: Buffer.allocUnsafe(MiB), callback: (len: number) => ((n += len), true) } });
        s.on('error', reject);
        s.on('close', () => resolve(n));
        s.write(`GET ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\nConnection: close\r\n\r\n`);
      }),
  };
  const kept: string[] = [];
  const viaUndici = (hash: boolean, file: boolean, keep = false) => async () => {
    const res = await request(url, { highWaterMark: MiB });
    const h = createHash('sha256');
    const name = join(tmpdir(), `trustgate-coldcost-${process.pid}-${keep ? kept.length : 'x'}`);
    if (keep) kept.push(name);
    const fh = file ? await open(name, 'w') : undefined;
    let n = 0;
    for await (const c of res.body) {
      if (hash) h.update(c as Buffer);
      if (fh) await fh.write(c as Buffer, 0, (c as Buffer).length, n);
      n += (c as Buffer).length;
    }
    await fh?.close();
    if (fh && !keep) rmSync(name);
    return n;
  };
  // undici's low-level dispatch: the parser's body chunks handed to a handler, no Readable stream.
  const viaDispatch = (hash: boolean) => () =>
    new Promise<number>((resolve, reject) => {
      const h = createHash('sha256');
      let n = 0;
      getGlobalDispatcher().dispatch(
        { origin: u.origin, path: u.pathname, method: 'GET' },
        {
          onRequestStart: () => undefined,
          onResponseStart: () => undefined,
          onResponseData: (_c: unknown, chunk: Buffer) => {
            if (hash) h.update(chunk);
            n += chunk.length;
          },
          onResponseEnd: () => resolve(n),
          onResponseError: (_c: unknown, err: Error) => reject(err),
        },
      );
    });
  stages['undici client (what trustgate uses)'] = viaUndici(false, false);
  stages['undici dispatch handler (onResponseData chunks, no stream)'] = viaDispatch(false);
  stages['undici + SHA-256'] = viaUndici(true, false);
  stages['undici dispatch + SHA-256'] = viaDispatch(true);
  stages['undici + SHA-256 + cache file write (files kept, as a cache does)'] = viaUndici(true, true, true);
  // The file write alone, from one reused 1 MiB buffer: into pages the kernel never gave out since the
  // VM's balloon took them back (what a cache growing on this machine gets), and into pages freed a
  // moment before (the same file written, removed, written again at once).
  const bufW = Buffer.alloc(MiB, 1);
  const writeFile = async (name: string) => {
    const fh = await open(name, 'w');
    for (let off = 0; off < SIZE; off += MiB) await fh.write(bufW, 0, MiB, off);
    await fh.close();
    return SIZE;
  };
  stages['file write alone (1 MiB writes, no network), fresh page cache'] = async () => {
    const name = join(tmpdir(), `trustgate-coldcost-${process.pid}-w${kept.length}`);
    kept.push(name);
    return writeFile(name);
  };
  const recycled = join(tmpdir(), `trustgate-coldcost-${process.pid}-r`);
  const recycledStage = 'file write alone, into page cache freed just before';
  stages[recycledStage] = () => writeFile(recycled);
  const runs: Record<string, Array<{ MBps: number; cpu: number }>> = Object.fromEntries(Object.keys(stages).map((k) => [k, []]));
  for (let i = 0; i < RUNS; i++)
    for (const [stage, fn] of Object.entries(stages)) {
      if (stage === recycledStage) {
        await writeFile(recycled);
        rmSync(recycled);
      }
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const n = await fn();
      const c = process.cpuUsage(c0);
      runs[stage]!.push({ MBps: n / 1e6 / ((performance.now() - t0) / 1000), cpu: (c.user + c.system) / 1e6 / (n / 2 ** 30) });
    }
  for (const k of [...kept, recycled]) rmSync(k, { force: true });
  return Object.entries(runs).map(([stage, r]) => ({ stage, MBps: median(r.map((x) => x.MBps)), cpuSecondsPerGiB: median(r.map((x) => x.cpu)) }));
}

/**
 * PAGES=recycled: before each first pull, write and remove a file twice the layer's size, so the fill's
 * file writes get pages the kernel freed a moment before (as on a host whose memory is all in use by
 * the page cache) instead of pages this VM's balloon took back (free page reporting: a first touch
 * costs ~10×, see the stage table). Both first pulls get the same; the default measures as found.
 */
const RECYCLE = process.env.PAGES === 'recycled';
function recyclePages(size: number): void {
  if (!RECYCLE) return;
  const name = join(tmpdir(), `trustgate-recycle-${process.pid}`);
  const buf = Buffer.alloc(MiB, 1);
  const fd = openSync(name, 'w');
  for (let off = 0; off < 2 * size; off += MiB) writeSync(fd, buf, 0, MiB, off);
  closeSync(fd);
  rmSync(name);
}

type PathName = 'direct' | 'proxyCold' | 'proxyWarm' | 'tgWarm' | 'tgCold';
interface SizeRun {
  sizeMiB: number;
  rows: Array<{ path: string; MBps: number; xDirect: number; xProxyCold: number; xProxyMode: number; serverCpuSecondsPerGiB: number }>;
  runsMBps: Record<PathName, number[]>;
  runsCpu: Record<PathName, number[]>;
  /** distribution's proxy mode, first pull: its CPU until the client had the last byte (its storeLocal may still run). */
  proxyColdCpuToLastByte: number[];
}

/** The blob distribution's proxy mode stored for `digest` (its background storeLocal), or -1. */
function proxyStored(storage: string, digest: string): number {
  const hex = digest.slice('sha256:'.length);
  try {
    return statSync(join(storage, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data')).size;
  } catch {
    return -1;
  }
}

/**
 * One size, every path once per round, round-robin: the direct registry, distribution's proxy mode
 * first pull (a blob it never saw: its storage is cold for it) and warm, trustgate first pull (cold) and
 * warm. The two first pulls take turns going first.
 */
async function interleaved(size: number, repo: string, path: (d: string) => string, registry: Registry, mirror: Registry, tg: { url: string; pid: number }) {
  const warm = await pushBlob(registry.url, repo, size, 1 + size / MiB);
  // Cold runs each need a blob nobody fetched yet.
  const colds: string[] = [];
  for (let i = 0; i < RUNS; i++) colds.push(await pushBlob(registry.url, repo, size, 10 + i + size / MiB));
  await fetchOnce(`${mirror.url}${path(warm)}`, undefined, size); // fill the proxy-mode registry's storage
  for (let t = 0; proxyStored(mirror.storage, warm) !== size && t < 600; t++) await sleep(100); // its storeLocal runs after the response
  await fetchOnce(`${tg.url}${path(warm)}`, undefined, size); // and trustgate's cache
  const r: Record<PathName, number[]> = { direct: [], proxyCold: [], proxyWarm: [], tgWarm: [], tgCold: [] };
  const cpu: Record<PathName, number[]> = { direct: [], proxyCold: [], proxyWarm: [], tgWarm: [], tgCold: [] };
  const proxyColdCpuToLastByte: number[] = [];
  const run = async (name: PathName, url: string, pid: number) => {
    if (name === 'tgCold') recyclePages(size);
    const got = await fetchOnce(url, pid, size);
    r[name].push(got.MBps);
    cpu[name].push(got.cpuPerGiB);
  };
  const proxyCold = async (digest: string) => {
    recyclePages(size);
    const cpu0 = cpuSeconds(mirror.pid);
    const got = await fetchOnce(`${mirror.url}${path(digest)}`, mirror.pid, size);
    // distribution 2.8 sends the client's copy straight from the upstream and stores the blob with a
    // second upstream GET in the background: its work for a first pull ends when that blob is stored.
    for (let t = 0; proxyStored(mirror.storage, digest) !== size && t < 600; t++) await sleep(50);
    await sleep(200);
    r.proxyCold.push(got.MBps);
    proxyColdCpuToLastByte.push(got.cpuPerGiB);
    cpu.proxyCold.push((cpuSeconds(mirror.pid) - cpu0) / (size / 2 ** 30));
  };
  for (let i = 0; i < RUNS; i++) {
    // The new blob is fetched from the registry directly first, so its bytes are in the registry's
    // page cache for both first pulls: they measure the fill, not the registry's disk.
    await run('direct', `${registry.url}${path(colds[i]!)}`, registry.pid);
    if (i % 2 === 0) {
      await run('tgCold', `${tg.url}${path(colds[i]!)}`, tg.pid);
      await proxyCold(colds[i]!);
    } else {
      await proxyCold(colds[i]!);
      await run('tgCold', `${tg.url}${path(colds[i]!)}`, tg.pid);
    }
    await run('direct', `${registry.url}${path(warm)}`, registry.pid);
    await run('proxyWarm', `${mirror.url}${path(warm)}`, mirror.pid);
    await run('tgWarm', `${tg.url}${path(warm)}`, tg.pid);
  }
  const [direct, pCold, pWarm] = [median(r.direct), median(r.proxyCold), median(r.proxyWarm)];
  const rows = (
    [
      ['direct', 'direct registry'],
      ['proxyCold', 'distribution proxy mode, first pull (CPU until its background store is done)'],
      ['proxyWarm', 'distribution proxy mode (warm)'],
      ['tgCold', 'trustgate cold (first pull: upstream → cache file → client, digest checked)'],
      ['tgWarm', 'trustgate warm (from its disk cache)'],
    ] as Array<[PathName, string]>
  ).map(([k, label]) => ({ path: label, MBps: median(r[k]), xDirect: median(r[k]) / direct, xProxyCold: median(r[k]) / pCold, xProxyMode: median(r[k]) / pWarm, serverCpuSecondsPerGiB: median(cpu[k]) }));
  return { warm, run: { sizeMiB: size / MiB, rows, runsMBps: r, runsCpu: cpu, proxyColdCpuToLastByte } satisfies SizeRun };
}

async function main(): Promise<void> {
  printEnv();
  const load = loadavg();
  const dir = mkdtempSync(join(tmpdir(), 'trustgate-bcbench-'));
  const registry = await startRegistry(dir);
  const mirror = await startRegistry(dir, { proxyRemote: registry.url });
  const tgConfig = (name: string, upstreamUrl: string) => ({
    upstreams: [{ name: 'reg', registry: upstreamUrl, gun: registry.host, policy: 'off' }],
    default: 'reg',
    blobCache: { path: join(dir, `${name}-cache`), maxBytes: 64 * 1024 ** 3 },
  });
  const tg = await startTrustgate(dir, tgConfig('tg', registry.url), 'tg');
  try {
    if (COLDCOST) {
      const d = await pushBlob(registry.url, 'bench/blob', SIZE, 7);
      await fetchOnce(`${registry.url}/v2/bench/blob/blobs/${d}`);
      for (const c of await coldCost(`${registry.url}/v2/bench/blob/blobs/${d}`)) console.log(`| ${c.stage} | ${c.MBps.toFixed(0)} | ${c.cpuSecondsPerGiB.toFixed(2)} |`);
      return;
    }
    const sendfile = QUICK ? [] : await fileToSocket(dir);
    rmSync(join(dir, 'blob.bin'), { force: true });
    if (!QUICK) console.log(`\n| ${SIZE / MiB} MiB file → socket | MB/s |\n|---|---:|`);
    for (const r of sendfile) console.log(`| ${r.method} | ${r.MBps.toFixed(0)} |`);

    const repo = 'bench/blob';
    const path = (d: string) => `/v2/${repo}/blobs/${d}`;
    const sizes: SizeRun[] = [];
    let warm = '';
    for (const size of SIZES) {
      const got = await interleaved(size, repo, path, registry, mirror, tg);
      sizes.push(got.run);
      if (size === SIZE) warm = got.warm;
      console.log(`\n| ${size / MiB} MiB layer via | MB/s | × direct | × proxy mode first pull | × proxy mode warm | server CPU s/GiB |\n|---|---:|---:|---:|---:|---:|`);
      for (const r of got.run.rows) console.log(`| ${r.path} | ${r.MBps.toFixed(0)} | ${r.xDirect.toFixed(2)} | ${r.xProxyCold.toFixed(2)} | ${r.xProxyMode.toFixed(2)} | ${r.serverCpuSecondsPerGiB.toFixed(2)} |`);
    }
    if (QUICK) return; // iterating: the interleaved table only, nothing written

    // 20 concurrent cold pulls of one new blob, on a fresh trustgate.
    const stampedeBlob = await pushBlob(registry.url, repo, SIZE, 99);
    const tg2 = await startTrustgate(dir, tgConfig('tg2', registry.url), 'tg2');
    let stampede: { clients: number; seconds: number; aggregateMBps: number; rssBeforeMiB: number; rssPeakMiB: number; rssGrowthMiB: number; upstreamGets: number; copiesRight: number };
    try {
      await fetchOnce(`${tg2.url}${path(warm)}`); // warm the code paths, as the streaming test does
      const before = rssBytes(tg2.pid);
      let peak = before;
      const timer = setInterval(() => (peak = Math.max(peak, rssBytes(tg2.pid))), 50);
      const t0 = performance.now();
      const digests = await Promise.all(Array.from({ length: CONCURRENT }, () => fetchDigest(`${tg2.url}${path(stampedeBlob)}`)));
      const seconds = (performance.now() - t0) / 1000;
      const copiesRight = digests.filter((d) => d === stampedeBlob).length;
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
        copiesRight,
      };
    } finally {
      await tg2.stop();
    }
    console.log(
      `\n${CONCURRENT} concurrent cold pulls of ${SIZE / MiB} MiB: ${stampede.seconds.toFixed(1)} s, ${stampede.aggregateMBps.toFixed(0)} MB/s in all, ` +
        `${stampede.upstreamGets} upstream GET(s), ${stampede.copiesRight}/${CONCURRENT} copies hash to the digest, RSS ${stampede.rssBeforeMiB.toFixed(0)} → peak ${stampede.rssPeakMiB.toFixed(0)} MiB (+${stampede.rssGrowthMiB.toFixed(1)} MiB)`,
    );
    const cold = await coldCost(`${registry.url}${path(warm)}`);
    console.log(`\n| cold pull, stage by stage (${SIZE / MiB} MiB from the registry, in one process) | MB/s | CPU s/GiB |\n|---|---:|---:|`);
    for (const c of cold) console.log(`| ${c.stage} | ${c.MBps.toFixed(0)} | ${c.cpuSecondsPerGiB.toFixed(2)} |`);
    const results = { sizeMiB: SIZE / MiB, runs: RUNS, load, fileToSocket: sendfile, sizes, stampede, coldCost: cold };
    console.log(writeResults('blob-cache', results));
    updateBenchDocsBlobCache({ ...results, env: benchEnv() });
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
