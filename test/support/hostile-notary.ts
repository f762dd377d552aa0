// A small HTTPS server that serves Notary v1 metadata the test chose — genuine, tampered, replayed or
// hostile (endless, trickling, lying about its length) — at the notary server's paths. It plays the
// malicious server or mirror for the attack suite; the real notary-server is used everywhere else.
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';

export type Behaviour = 'endless' | 'trickle' | 'huge-content-length' | 'status-500';

export interface HostileNotary {
  url: string;
  /** Role file name without .json ('timestamp', 'targets/releases', '2.root') → bytes or a behaviour. */
  files: Map<string, Buffer | Behaviour>;
  /** Request paths seen, in order. */
  requests: string[];
  close(): Promise<void>;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * Checksum names (`snapshot.<sha256>.json`) are answered with the role's current file whatever the
 * hash, as a lying server would: the client's hash check, not a 404, must catch a substitution.
 */
function resolveName(files: HostileNotary['files'], name: string): Buffer | Behaviour | undefined {
  const direct = files.get(name);
  if (direct !== undefined) return direct;
  const m = /^(.*)\.([0-9a-f]{64})$/.exec(name);
  if (!m) return undefined;
  for (const [k, v] of files) if (Buffer.isBuffer(v) && k.startsWith(`${m[1]}`) && sha256(v) === m[2]) return v;
  return files.get(m[1]!);
}

export async function startHostileNotary(opts: { gun: string; key: string | Buffer; cert: string | Buffer }): Promise<HostileNotary> {
  const files: HostileNotary['files'] = new Map();
  const requests: string[] = [];
  const prefix = `/v2/${opts.gun}/_trust/tuf/`;
  const timers = new Set<NodeJS.Timeout>();
  const server: Server = createServer({ key: opts.key, cert: opts.cert }, (req, res) => {
    const path = (req.url ?? '').split('?')[0]!;
    requests.push(path);
    if (path === '/v2/' || path === '/v2') {
      // Clients (notary's among them) ping here first and treat anything but 200/401 as offline.
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      return;
    }
    if (!path.startsWith(prefix) || !path.endsWith('.json')) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"METADATA_NOT_FOUND"}]}');
      return;
    }
    const body = resolveName(files, path.slice(prefix.length, -'.json'.length));
    if (body === undefined) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"METADATA_NOT_FOUND"}]}');
      return;
    }
    if (Buffer.isBuffer(body)) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length }).end(body);
      return;
    }
    switch (body) {
      case 'status-500':
        res.writeHead(500).end('{"errors":[{"code":"UNKNOWN"}]}');
        return;
      case 'huge-content-length':
        res.writeHead(200, { 'content-length': String(10 * 1024 ** 3) });
        res.write('{"signed":');
        return; // never finishes; the client must refuse on the header alone
      case 'endless': {
        res.writeHead(200, { 'content-type': 'application/json' });
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        const pump = () => {
          while (!res.destroyed && res.write(chunk));
          if (!res.destroyed) res.once('drain', pump);
        };
        res.write('{"signed":');
        pump();
        return;
      }
      case 'trickle': {
        res.writeHead(200, { 'content-type': 'application/json' });
        const t = setInterval(() => (res.destroyed ? clearInterval(t) : res.write(' ')), 500);
        timers.add(t);
        return;
      }
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    files,
    requests,
    close: async () => {
      for (const t of timers) clearInterval(t);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
