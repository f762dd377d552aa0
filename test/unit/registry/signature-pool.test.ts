// Signature discovery has a connection pool of its own (issue 27): signature fetches that stall or
// queue (junk anyone may push) never hold the connections manifest pulls need, and queue among
// themselves. A node:http stand-in holds every signature request until released.
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../../src/registry/registry-client.js';

let server: Server;
let client: RegistryClient;
const held: ServerResponse[] = [];
let signatureRequests = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url?.includes('/blobs/')) {
      signatureRequests++;
      held.push(res);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end('{"schemaVersion":2}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  client = new RegistryClient({ registry: `http://127.0.0.1:${port}`, timeoutMs: 5000, manifestBytes: 1 << 20, connections: { blobs: 1, metadata: 1, signatures: 1 } });
});

afterAll(async () => {
  for (const r of held) r.end();
  await client.close();
  server.close();
});

describe('RegistryClient signature pool', () => {
  it('a stalled signature fetch leaves manifest pulls their pool, and further signature fetches queue behind it', async () => {
    const first = client.send('/v2/r/blobs/sha256:1', { method: 'GET', repo: 'r', pool: 'signatures' });
    const second = client.send('/v2/r/blobs/sha256:2', { method: 'GET', repo: 'r', pool: 'signatures' });
    await new Promise((r) => setTimeout(r, 100));
    // One connection in the signature pool: the second waits for the first.
    expect(signatureRequests).toBe(1);
    const t0 = performance.now();
    const m = await client.fetchManifest('r', 'v1', ['application/vnd.oci.image.manifest.v1+json']);
    expect(m?.bytes.toString()).toBe('{"schemaVersion":2}');
    expect(performance.now() - t0).toBeLessThan(1000);
    held.shift()!.writeHead(200).end('a');
    await (await first).body.dump();
    await new Promise((r) => setTimeout(r, 100));
    expect(signatureRequests).toBe(2);
    held.shift()!.writeHead(200).end('b');
    await (await second).body.dump();
  });
});
