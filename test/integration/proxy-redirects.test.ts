// Redirects from a hostile upstream (issue 13): a node:http stand-in in front of a real docker-registry
// sends blob GETs where a compromised registry would — a "cloud metadata" server on 127.0.0.2, the
// link-local metadata address, trustgate itself, plain http from https — and trustgate refuses with
// UPSTREAM_INVALID and an audit line, never fetching the target; allowed targets still serve the bytes.
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushBlob } from '../support/blob-push.js';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { makePki, type Pki } from '../support/pki.js';
import { startTrustgate, type Trustgate } from '../support/trustgate-process.js';

let dir: string;
let pki: Pki;
let registry: Registry;
let digest: string;
const servers: Server[] = [];
const internalHits: string[] = [];
let internal: string; // http://127.0.0.2:PORT
let plainUpstream: string;
let tlsUpstream: string;
let prefixed: string;
let selfTarget = '';
const proxies: Trustgate[] = [];

/** Forward a request to the real registry, optionally under a rewritten path. */
function forward(req: IncomingMessage, res: ServerResponse, path: string): void {
  const up = httpRequest(`${registry.url}${path}`, { method: req.method, headers: { ...req.headers, host: registry.host } }, (r) => {
    res.writeHead(r.statusCode ?? 502, r.headers);
    r.pipe(res);
  });
  up.on('error', () => res.destroy());
  req.pipe(up);
}

/** The hostile registry: real answers, except that blob GETs of some repositories redirect. */
function hostile(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '/';
  const m = /^\/v2\/(.+)\/blobs\/(sha256:[0-9a-f]{64})$/.exec(url);
  if (m && req.method === 'GET') {
    const [, repo, d] = m;
    const target: Record<string, string> = {
      internal: `${internal}/latest/meta-data/iam`,
      'internal-storage': `${internal}/storage/${d}`,
      metadata: 'http://169.254.169.254/latest/meta-data/',
      self: `${selfTarget}/v2/storage/blobs/${d}`,
      storage: `${registry.url}/v2/storage/blobs/${d}`, // same host as the upstream: allowed
      downgrade: `${registry.url}/v2/storage/blobs/${d}`,
    };
    if (target[repo!]) return void res.writeHead(307, { location: target[repo!] }).end();
  }
  forward(req, res, url);
}

async function listen(s: Server, host = '127.0.0.1'): Promise<number> {
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, host, r));
  return (s.address() as AddressInfo).port;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-redirects-'));
  [pki, registry] = await Promise.all([makePki(dir), startRegistry(dir)]);
  digest = await pushBlob(registry.url, 'storage', 4096);
  internal = `http://127.0.0.2:${await listen(
    createHttpServer((req, res) => {
      internalHits.push(req.url ?? '');
      // Blob storage on the private network (the allowed case), or a metadata service (the attack).
      if (req.url?.startsWith('/storage/')) return forward(req, res, `/v2/storage/blobs/${req.url.slice('/storage/'.length)}`);
      res.writeHead(200, { 'content-type': 'text/plain' }).end('AKIA-SECRET-CREDENTIALS');
    }),
    '127.0.0.2',
  )}`;
  plainUpstream = `http://127.0.0.1:${await listen(createHttpServer(hostile))}`;
  tlsUpstream = `https://127.0.0.1:${await listen(createHttpsServer({ key: readFileSync(pki.keyFile), cert: readFileSync(pki.certFile) }, hostile))}`;
  // A registry served under a path prefix (a reverse proxy's /mirror/ location).
  prefixed = `http://127.0.0.1:${await listen(
    createHttpServer((req, res) => {
      const url = req.url ?? '/';
      if (!url.startsWith('/mirror/v2/')) return void res.writeHead(404).end();
      forward(req, res, url.slice('/mirror'.length));
    }),
  )}/mirror`;
});

afterAll(async () => {
  for (const p of proxies) await p.stop();
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
  await registry?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function proxy(name: string, upstream: Record<string, unknown>): Promise<Trustgate> {
  // No blob cache: every blob GET must reach the upstream for its redirect to be judged (a cached blob
  // is served from disk after a per-repository HEAD, and the redirect never happens).
  const p = await startTrustgate(dir, { upstreams: [{ name: 'up', gun: 'hostile.example', policy: 'off', ...upstream }], default: 'up', log: { level: 'info' }, blobCache: false }, name);
  proxies.push(p);
  return p;
}

async function blob(p: Trustgate, repo: string) {
  const res = await request(`${p.url}/v2/${repo}/blobs/${digest}`);
  const body = await res.body.text();
  return { status: res.statusCode, body, json: res.headers['content-type']?.toString().includes('json') ? JSON.parse(body) : undefined };
}

const auditLines = (p: Trustgate) =>
  readFileSync(p.logFile, 'utf8')
    .split('\n')
    .filter((l) => l.includes('"audit":true'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('redirects from the upstream', () => {
  it('refuses a redirect to an internal address: UPSTREAM_INVALID, the target never contacted, one audit line', async () => {
    const p = await proxy('plain', { registry: plainUpstream });
    internalHits.length = 0;
    for (const repo of ['internal', 'metadata']) {
      const r = await blob(p, repo);
      expect(r.status, r.body).toBe(502);
      expect(r.json).toMatchObject({ errors: [{ code: 'UNAVAILABLE', detail: { code: 'UPSTREAM_INVALID' } }] });
      expect(r.body).not.toContain('AKIA');
    }
    expect(internalHits).toEqual([]);
    // The log goes through the process's stdout to a file: give the last line a moment to land.
    let lines = auditLines(p).filter((l) => l.code === 'UPSTREAM_INVALID');
    for (let i = 0; lines.length < 2 && i < 20; i++) {
      await new Promise((r) => setTimeout(r, 100));
      lines = auditLines(p).filter((l) => l.code === 'UPSTREAM_INVALID');
    }
    expect(lines.map((l) => l.repo)).toEqual(['internal', 'metadata']);
    expect(lines[0]).toMatchObject({ decision: 'deny', upstream: 'up', ref: digest });
    expect(String(lines[0]!.reason)).toContain('127.0.0.2');
  });

  it("follows a redirect on the upstream's own host and serves the real bytes", async () => {
    const p = proxies.find((x) => x.logFile.includes('plain'))!;
    const r = await request(`${p.url}/v2/storage/blobs/${digest}`);
    const bytes = Buffer.from(await r.body.arrayBuffer());
    expect(r.statusCode).toBe(200);
    expect(bytes.length).toBe(4096);
  });

  it('follows an internal storage host once it is listed in redirects.allowHosts', async () => {
    const plain = proxies.find((x) => x.logFile.includes('plain'))!;
    internalHits.length = 0;
    expect((await blob(plain, 'internal-storage')).status).toBe(502);
    expect(internalHits).toEqual([]);
    const p = await proxy('allowed', { registry: plainUpstream, redirects: { allowHosts: ['127.0.0.2'] } });
    const r = await request(`${p.url}/v2/internal-storage/blobs/${digest}`);
    const bytes = Buffer.from(await r.body.arrayBuffer());
    expect(r.statusCode).toBe(200);
    expect(bytes.length).toBe(4096);
    expect(internalHits).toEqual([`/storage/${digest}`]);
  });

  it("never follows a redirect to trustgate's own listen address, even with allowPrivate", async () => {
    const p = await proxy('loop', { registry: plainUpstream, redirects: { allowPrivate: true } });
    selfTarget = p.url;
    const r = await blob(p, 'self');
    expect(r.status).toBe(502);
    expect(r.json).toMatchObject({ errors: [{ detail: { code: 'UPSTREAM_INVALID' } }] });
    expect(r.json.errors[0].message).toContain("trustgate's own address");
  });

  it('refuses an https → http downgrade from a TLS upstream (its own ca configured)', async () => {
    const p = await proxy('tls', { registry: tlsUpstream, ca: pki.caFile });
    // The TLS upstream itself is reachable with the configured CA: a missing tag is the registry's 404.
    const ok = await request(`${p.url}/v2/storage/manifests/missing`);
    expect(ok.statusCode).toBe(404);
    expect(await ok.body.json()).toMatchObject({ errors: [{ detail: { code: 'MANIFEST_UNKNOWN' } }] });
    const r = await blob(p, 'downgrade');
    expect(r.status).toBe(502);
    expect(r.json).toMatchObject({ errors: [{ detail: { code: 'UPSTREAM_INVALID' } }] });
    expect(r.json.errors[0].message).toContain('downgrade');
  });

  it('keeps a path prefix in the registry URL', async () => {
    const p = await proxy('prefixed', { registry: prefixed });
    const r = await request(`${p.url}/v2/storage/blobs/${digest}`);
    const bytes = Buffer.from(await r.body.arrayBuffer());
    expect(r.statusCode).toBe(200);
    expect(bytes.length).toBe(4096);
  });
});
