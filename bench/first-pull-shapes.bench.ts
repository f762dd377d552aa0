// Which shape of first pull could match distribution's proxy mode here (issue 23)? Minimal servers in
// this process, each the first pull of a blob it never saw, in front of the same real docker-registry,
// curl as the client, round-robin with proxy mode's first pull and the direct registry, median of RUNS:
//   relay                      undici 1 MiB reads → client (what proxy mode's first client gets), with
//                              stream.pipeline and with the loop the other shapes use
//   relay + SHA-256            the same, hashed on the main thread, as trustgate must before the last byte
//   relay + SHA-256 in worker  the chunks copied into a SharedArrayBuffer ring, hashed by a worker thread
//   TCP relay                  net socket to net socket, no HTTP parsing or framing: the floor of any relay here
//   + file write               each of the two above also writing every chunk to a kept file (a cache),
//                              one write in flight, the upstream paused when 16 MiB are queued
// No shape here holds back a tail or serves late joiners: this bounds what any fill built on them
// could reach. `tsx bench/first-pull-shapes.bench.ts` (BLOB_MIB=256, RUNS=3).
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Worker } from 'node:worker_threads';
import { Agent, request } from 'undici';
import { pushBlob } from '../test/support/blob-push.js';
import { startRegistry } from '../test/support/docker-registry.js';
import { curlPull } from './lib/curl-pull.js';
import { median, printEnv, writeResults } from './lib/report.js';

const MiB = 1 << 20;
const SIZE = Number(process.env.BLOB_MIB ?? 256) * MiB;
const RUNS = Number(process.env.RUNS ?? 3);
const RING = 16 * MiB;
const TCP = 'TCP relay (net sockets piped; no HTTP)';

/** A worker hashing what the main thread copies into a shared ring; `digest()` once the last byte is in. */
function ringHasher() {
  const sab = new SharedArrayBuffer(RING);
  const ctl = new Int32Array(new SharedArrayBuffer(16)); // [write position, read position, done], positions mod RING
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     const { createHash } = require('node:crypto');
     const ring = Buffer.from(workerData.sab); const ctl = new Int32Array(workerData.ctl); const R = ring.length;
     const h = createHash('sha256'); let read = 0;
     for (;;) {
       const w = Atomics.load(ctl, 0);
       if (w === read) { if (Atomics.load(ctl, 2) === 1 && Atomics.load(ctl, 0) === read) break; Atomics.wait(ctl, 0, w, 50); continue; }
       let n = (w - read + R) % R; const at = read % R; n = Math.min(n, R - at);
       h.update(ring.subarray(at, at + n)); read = (read + n) % R; Atomics.store(ctl, 1, read); Atomics.notify(ctl, 1);
     }
     parentPort.postMessage(h.digest('hex'));`,
    { eval: true, workerData: { sab, ctl: ctl.buffer } },
  );
  const ring = Buffer.from(sab);
  let written = 0; // position mod RING
  let used = 0; // bytes written minus bytes the worker has read
  let lastRead = 0;
  const refresh = () => {
    const r = Atomics.load(ctl, 1);
    used -= (r - lastRead + RING) % RING;
    lastRead = r;
  };
  return {
    async push(chunk: Buffer): Promise<void> {
      let off = 0;
      while (off < chunk.length) {
        refresh();
        while (used >= RING - 1) {
          await Atomics.waitAsync(ctl, 1, Atomics.load(ctl, 1)).value;
          refresh();
        }
        const n = Math.min(chunk.length - off, RING - 1 - used, RING - written);
        chunk.copy(ring, written, off, off + n);
        written = (written + n) % RING;
        used += n;
        off += n;
        Atomics.store(ctl, 0, written);
        Atomics.notify(ctl, 0);
      }
    },
    digest(): Promise<string> {
      Atomics.store(ctl, 2, 1);
      Atomics.notify(ctl, 0);
      return new Promise((resolve) => worker.once('message', (d: string) => void worker.terminate().then(() => resolve(d))));
    },
  };
}

/** One write in flight, up to 16 MiB queued; `room()` waits while the queue is full. */
function fileQueue(fh: FileHandle) {
  let queued = 0;
  let offset = 0;
  let tail: Promise<unknown> = Promise.resolve();
  let waiters: Array<() => void> = [];
  return {
    push(chunk: Buffer) {
      const at = offset;
      offset += chunk.length;
      queued += chunk.length;
      tail = tail.then(async () => {
        await fh.write(chunk, 0, chunk.length, at);
        queued -= chunk.length;
        if (queued < 16 * MiB) for (const w of waiters.splice(0)) w();
      });
    },
    room: () => (queued < 16 * MiB ? Promise.resolve() : new Promise<void>((r) => waiters.push(r))),
    done: () => tail,
  };
}

type Shape = (upstreamUrl: string, res: ServerResponse, file: string) => Promise<void>;
const agent = new Agent({ connections: 8 });

function shape(hash: 'none' | 'main' | 'worker', disk: boolean): Shape {
  return async (url, res, file) => {
    const up = await request(url, { dispatcher: agent, highWaterMark: MiB });
    res.writeHead(200, { 'content-length': String(up.headers['content-length']), 'content-type': 'application/octet-stream' });
    const h = hash === 'main' ? createHash('sha256') : undefined;
    const w = hash === 'worker' ? ringHasher() : undefined;
    const fh = disk ? await open(file, 'w') : undefined;
    const q = fh ? fileQueue(fh) : undefined;
    for await (const c of up.body as AsyncIterable<Buffer>) {
      h?.update(c);
      if (w) await w.push(c);
      q?.push(c);
      res.write(c);
      if (q) await q.room();
      // Asked after the queue's wait: a drain that came during it must not be waited for again.
      if (res.writableNeedDrain) await new Promise((r) => res.once('drain', r));
    }
    await q?.done();
    await fh?.close();
    const hex = h ? h.digest('hex') : w ? await w.digest() : '';
    if (hash !== 'none' && !url.endsWith(hex)) throw new Error('digest mismatch');
    res.end();
  };
}

async function main(): Promise<void> {
  printEnv();
  const dir = mkdtempSync(join(tmpdir(), 'trustgate-shapes-'));
  const registry = await startRegistry(dir);
  const mirror = await startRegistry(dir, { proxyRemote: registry.url });
  const all: Record<string, Shape> = {
    'relay (stream.pipeline)': async (url, res) => {
      const up = await request(url, { dispatcher: agent, highWaterMark: MiB });
      res.writeHead(200, { 'content-length': String(up.headers['content-length']), 'content-type': 'application/octet-stream' });
      await pipeline(up.body, res);
    },
    relay: shape('none', false),
    'relay + SHA-256': shape('main', false),
    'relay + SHA-256 in a worker': shape('worker', false),
    'relay + SHA-256 + file write': shape('main', true),
    'relay + SHA-256 in a worker + file write': shape('worker', true),
  };
  // SHAPES=name,name: only those (and the direct registry and proxy mode).
  const only = process.env.SHAPES?.split(',');
  const shapes = Object.fromEntries(Object.entries(all).filter(([k]) => !only || only.includes(k)));
  const servers: Server[] = [];
  const urls: Record<string, string> = {};
  let files = 0;
  for (const [name, fn] of Object.entries(shapes)) {
    const s = createServer((req, res) => void fn(`${registry.url}${req.url}`, res, join(dir, `cache-${files++}`)).catch((e) => (console.error(name, e), res.destroy())));
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    servers.push(s);
    urls[name] = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  }
  // The floor of any relay in this process: bytes from the registry's socket to curl's, no HTTP on
  // either side (the request passed through as it came, the response the registry's own).
  if (!only || only.includes(TCP)) {
    const tcp = createNetServer((client) => {
      const up = connect({ host: '127.0.0.1', port: Number(new URL(registry.url).port) });
      client.pipe(up);
      up.pipe(client);
      const end = () => (client.destroy(), up.destroy());
      client.on('error', end).on('close', end);
      up.on('error', end).on('close', end);
    });
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
    servers.push(tcp as unknown as Server);
    urls[TCP] = `http://127.0.0.1:${(tcp.address() as AddressInfo).port}`;
  }
  const runs: Record<string, Array<{ MBps: number; cpuPerGiB: number }>> = { 'direct registry': [], 'distribution proxy mode, first pull': [], ...Object.fromEntries(Object.keys(urls).map((k) => [k, []])) };
  for (let i = 0; i < RUNS; i++) {
    // A blob per path per round, each fetched from the registry once first (its page cache is warm for every path).
    for (const name of Object.keys(runs)) {
      const digest = await pushBlob(registry.url, 'shapes/blob', SIZE, 1000 + i * 100 + Object.keys(runs).indexOf(name));
      const path = `/v2/shapes/blob/blobs/${digest}`;
      await curlPull(`${registry.url}${path}`, SIZE, registry.pid);
      if (name === 'direct registry') runs[name]!.push(await curlPull(`${registry.url}${path}`, SIZE, registry.pid));
      else if (name.startsWith('distribution')) {
        runs[name]!.push(await curlPull(`${mirror.url}${path}`, SIZE, mirror.pid));
        // its background store (a second upstream GET) finishes before the next path runs
        const hex = digest.slice(7);
        for (let t = 0; t < 600; t++) {
          try {
            if (statSync(join(mirror.storage, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data')).size === SIZE) break;
          } catch {}
          await new Promise((r) => setTimeout(r, 50));
        }
      } else runs[name]!.push(await curlPull(`${urls[name]}${path}`, SIZE, process.pid));
    }
  }
  const proxy = median(runs['distribution proxy mode, first pull']!.map((r) => r.MBps));
  const rows = Object.entries(runs).map(([path, r]) => ({ path, MBps: median(r.map((x) => x.MBps)), xProxyModeFirstPull: median(r.map((x) => x.MBps)) / proxy, serverCpuSecondsPerGiB: median(r.map((x) => x.cpuPerGiB)) }));
  console.log(`\n| ${SIZE / MiB} MiB first pull | MB/s | × proxy mode first pull | server CPU s/GiB |\n|---|---:|---:|---:|`);
  for (const r of rows) console.log(`| ${r.path} | ${r.MBps.toFixed(0)} | ${r.xProxyModeFirstPull.toFixed(2)} | ${r.serverCpuSecondsPerGiB.toFixed(2)} |`);
  writeResults('first-pull-shapes', { sizeMiB: SIZE / MiB, runs: RUNS, rows });
  for (const s of servers) s.close();
  await agent.close();
  await mirror.stop();
  await registry.stop();
  rmSync(dir, { recursive: true, force: true });
}

await main();
