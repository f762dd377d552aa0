// A small HTTPS server that serves Notary v1 metadata the test chose — genuine, tampered, replayed or
// hostile (endless, trickling, lying about its length, a wrong content type, a redirect) — at the
// notary server's paths. It plays the malicious server or mirror for the attack suite. With `upstream`
// it is a man in the middle in front of a real notary-server: whatever the test did not choose is
// forwarded, and `once` replaces one answer for a role and then lets the genuine ones through (for
// snapshot, targets and delegations: the answer by checksum, and any request by name before it).
import { createHash } from 'node:crypto';
import { createServer, request as httpsRequest, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';

export type Behaviour = 'endless' | 'trickle' | 'huge-content-length' | 'status-500';
/** Answers no ordinary server gives: a redirect elsewhere, or a body under the wrong content type. */
export type Special = { redirect: string } | { contentType: string; body: Buffer };

export interface HostileNotary {
  url: string;
  /** Role file name without .json ('timestamp', 'targets/releases', '2.root') → bytes or a behaviour. */
  files: Map<string, Buffer | Behaviour | Special>;
  /** Role → one answer, used for the next request of that role (by name or checksum name) only. */
  once: Map<string, Buffer | Behaviour | Special>;
  /** Request paths seen, in order. */
  requests: string[];
  close(): Promise<void>;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * Checksum names (`snapshot.<sha256>.json`) are answered with the role's current file whatever the
 * hash, as a lying server would: the client's hash check, not a 404, must catch a substitution.
 */
function resolveName(files: HostileNotary['files'], name: string): Buffer | Behaviour | Special | undefined {
  const direct = files.get(name);
  if (direct !== undefined) return direct;
  const m = /^(.*)\.([0-9a-f]{64})$/.exec(name);
  if (!m) return undefined;
  for (const [k, v] of files) if (Buffer.isBuffer(v) && k.startsWith(`${m[1]}`) && sha256(v) === m[2]) return v;
  return files.get(m[1]!);
}

export async function startHostileNotary(opts: {
  gun: string;
  key: string | Buffer;
  cert: string | Buffer;
  /** A real notary-server to forward to, and the CA its certificate is signed by. */
  upstream?: { url: string; ca: string | Buffer };
}): Promise<HostileNotary> {
  const files: HostileNotary['files'] = new Map();
  const once: HostileNotary['once'] = new Map();
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
    const name = path.slice(prefix.length, -'.json'.length);
    const byChecksum = /^(.*)\.[0-9a-f]{64}$/.exec(name)?.[1];
    const role = byChecksum ?? name;
    // Snapshot, targets and delegations are asked for by checksum. A request for one of them by plain
    // name is trustgate's first-contact prefetch (a candidate it uses only if it hashes right): it gets
    // the replacement too, which is spent only by the request by checksum the test means to answer.
    const byNameCandidate = byChecksum === undefined && role !== 'timestamp' && role !== 'root' && !/^\d+\.root$/.test(role);
    let body = once.get(role);
    if (body === undefined) body = resolveName(files, name);
    else if (!byNameCandidate) once.delete(role);
    if (body === undefined && opts.upstream) {
      const up = httpsRequest(new URL(req.url ?? '/', opts.upstream.url), { method: req.method, headers: req.headers, ca: opts.upstream.ca }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
      return;
    }
    if (body === undefined) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"METADATA_NOT_FOUND"}]}');
      return;
    }
    if (Buffer.isBuffer(body)) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length }).end(body);
      return;
    }
    if (typeof body === 'object') {
      if ('redirect' in body) res.writeHead(302, { location: body.redirect }).end();
      else res.writeHead(200, { 'content-type': body.contentType, 'content-length': body.body.length }).end(body.body);
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
    once,
    requests,
    close: async () => {
      for (const t of timers) clearInterval(t);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
