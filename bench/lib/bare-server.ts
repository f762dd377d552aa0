// The floor for any Node proxy on this machine: a bare node:http server answering a manifest's bytes
// and headers from memory, with no trust, routing or upstream work at all.
import { createServer, type Server } from 'node:http';
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { freePort, spawnServer, type RunningServer } from '../../test/support/spawn-server.js';

export async function startBareServer(manifest: Buffer, mediaType: string, digest: string, port = 0): Promise<{ url: string; close(): Promise<void> }> {
  const headers = { 'content-type': mediaType, 'content-length': manifest.length, 'docker-content-digest': digest, 'docker-distribution-api-version': 'registry/2.0' };
  const server: Server = createServer((req, res) => {
    res.writeHead(200, headers);
    res.end(req.method === 'HEAD' ? undefined : manifest);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/**
 * The same floor as a process of its own, as trustgate runs: inside the bench process it would share
 * one thread with the load generator and look slower than it is (it did: trustgate measured above
 * "bare" for GET in such a run).
 */
export async function startBareProcess(dir: string, manifest: Buffer, mediaType: string, digest: string): Promise<RunningServer & { url: string }> {
  const file = join(dir, 'bare-manifest');
  writeFileSync(file, manifest);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const main = new URL('./bare-process.ts', import.meta.url).pathname;
  const srv = await spawnServer({
    cmd: process.execPath,
    args: ['--import', 'tsx', main, file, mediaType, digest, String(port)],
    logFile: join(dir, 'bare.log'),
    ready: async () => (await fetch(`${url}/`)).status === 200,
  });
  return { ...srv, url };
}
