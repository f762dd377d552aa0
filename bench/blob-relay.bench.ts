// Which HTTP client relays blobs fastest here: undici (what trustgate uses, with default and 1 MiB
// reads), node:http, or http-proxy? Three minimal relays in front of the same real docker-registry, each streaming the same
// 256 MiB blob with stream.pipeline; median of 3 runs, as a ratio to fetching from the registry itself.
import { createServer, request as httpRequest, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import httpProxy from 'http-proxy';
import { Agent, request } from 'undici';
import { pushBlob } from '../test/support/blob-push.js';
import { startRegistry } from '../test/support/docker-registry.js';
import { printEnv, writeResults } from './lib/report.js';

const SIZE = Number(process.env.BLOB_MIB ?? 256) << 20;
const RUNS = 3;

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function main(): Promise<void> {
  printEnv();
  const dir = mkdtempSync(join(tmpdir(), 'trustgate-relay-'));
  const registry = await startRegistry(dir);
  try {
    const digest = await pushBlob(registry.url, 'relay/blob', SIZE);
    const path = `/v2/relay/blob/blobs/${digest}`;
    const upstream = new URL(registry.url);
    const agent = new Agent({ connections: 8 });
    const relays: Record<string, Server> = {
      'undici request + pipeline': createServer(async (req, res) => {
        const up = await request(`${registry.url}${req.url}`, { dispatcher: agent });
        res.writeHead(up.statusCode, { 'content-length': String(up.headers['content-length']) });
        await pipeline(up.body, res).catch(() => undefined);
      }),
      'undici request (highWaterMark 1 MiB) + pipeline': createServer(async (req, res) => {
        const up = await request(`${registry.url}${req.url}`, { dispatcher: agent, highWaterMark: 1 << 20 });
        res.writeHead(up.statusCode, { 'content-length': String(up.headers['content-length']) });
        await pipeline(up.body, res).catch(() => undefined);
      }),
      'node:http request + pipeline': createServer((req, res) => {
        httpRequest({ host: upstream.hostname, port: upstream.port, path: req.url, agent: undefined }, (up) => {
          res.writeHead(up.statusCode ?? 502, { 'content-length': String(up.headers['content-length']) });
          pipeline(up, res).catch(() => undefined);
        }).end();
      }),
      'http-proxy': (() => {
        const proxy = httpProxy.createProxyServer({ target: registry.url });
        return createServer((req, res) => proxy.web(req, res));
      })(),
    };
    const urls: Record<string, string> = { 'direct registry': registry.url };
    for (const [name, server] of Object.entries(relays)) urls[name] = await listen(server);
    const rows: Array<{ path: string; MBps: number; ratio: number }> = [];
    let direct = 0;
    for (const [name, base] of Object.entries(urls)) {
      const runs: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const t0 = performance.now();
        const r = await request(`${base}${path}`);
        let n = 0;
        for await (const c of r.body) n += (c as Buffer).length;
        if (n !== SIZE) throw new Error(`${name}: ${n} bytes`);
        runs.push(SIZE / 1e6 / ((performance.now() - t0) / 1000));
      }
      const MBps = runs.sort((a, b) => a - b)[1]!;
      if (name === 'direct registry') direct = MBps;
      rows.push({ path: name, MBps, ratio: MBps / direct });
    }
    console.log(`| ${SIZE >> 20} MiB blob via | MB/s | × direct |\n|---|---:|---:|`);
    for (const r of rows) console.log(`| ${r.path} | ${r.MBps.toFixed(0)} | ${r.ratio.toFixed(2)} |`);
    console.log(writeResults('blob-relay', { sizeMiB: SIZE >> 20, runs: RUNS, rows }));
    for (const s of Object.values(relays)) s.close();
    await agent.close();
  } finally {
    await registry.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
