// The floor for any Node proxy on this machine: a bare node:http server answering a manifest's bytes
// and headers from memory, with no trust, routing or upstream work at all.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

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
