// What no real registry does: a hostile upstream (endless, trickling, oversized manifests; redirects
// to another host; a token realm outside the allowlist) played by small node:http servers, and bad
// client input sent to the running trustgate. Every case ends in an OCI error, quickly, and the proxy
// keeps serving other requests meanwhile.
import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTrustgate, type Trustgate } from '../support/trustgate-process.js';

const D = (c: string) => `sha256:${c.repeat(64)}`;
const digestOf = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;
// What the CDN serves for each digest: the right bytes, or (for BAD) the same length with one byte changed.
const BAD = digestOf('hello there');
const CDN_BLOBS = new Map([
  [digestOf('hello'), 'hello'],
  [digestOf('hello again'), 'hello again'],
  [BAD, 'hello thErE'],
]);
let dir: string;
let proxy: Trustgate;
const seen: Array<{ server: string; url: string; headers: IncomingHttpHeaders }> = [];
const servers: Server[] = [];

async function listen(name: string, handler: (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void): Promise<string> {
  const s = createServer((req, res) => {
    seen.push({ server: name, url: req.url ?? '', headers: req.headers });
    handler(req, res);
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

let cdn: string;
let realm: string;
let evilRealm: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-hostile-'));
  cdn = await listen('cdn', (req, res) => {
    const body = CDN_BLOBS.get((req.url ?? '').slice('/blob-data/'.length));
    if (body === undefined) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-length': body.length }).end(body);
  });
  realm = await listen('realm', (_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: 'tok-123', expires_in: 300 })));
  evilRealm = await listen('evil-realm', (_req, res) => res.writeHead(200).end('{"token":"x"}'));
  const hostile = await listen('upstream', (req, res) => {
    const url = req.url ?? '';
    if (url === '/v2/') return void res.writeHead(200).end('{}');
    if (url.startsWith('/v2/auth/') && req.headers.authorization !== 'Bearer tok-123') {
      return void res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm}/token",service="hostile"` }).end();
    }
    if (url.startsWith('/v2/evilauth/')) return void res.writeHead(401, { 'www-authenticate': `Bearer realm="${evilRealm}/token",service="x"` }).end();
    if (url.includes('/endless/manifests/')) {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const pump = () => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump);
      };
      return pump();
    }
    if (url.includes('/trickle/manifests/')) {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
      const t = setInterval(() => (res.destroyed ? clearInterval(t) : res.write(' ')), 300);
      return;
    }
    if (url.includes('/huge/manifests/')) return void res.writeHead(200, { 'content-length': String(10 * 1024 ** 3) }).write('{');
    if (url.includes('/stall/manifests/')) return; // headers never come
    if (url.includes('/blobs/')) return void res.writeHead(307, { location: `${cdn}/blob-data/${url.slice(url.lastIndexOf('/') + 1)}` }).end();
    res.writeHead(404).end();
  });
  proxy = await startTrustgate(dir, {
    upstreams: [{ name: 'h', registry: hostile, gun: 'hostile.example', policy: 'off', username: 'svc', passwordEnv: 'HOSTILE_PASSWORD', realms: [realm], insecure: true /* stand-ins are plain http */ }],
    default: 'h',
    limits: { upstreamTimeoutMs: 1500 },
    log: { level: 'warn' },
  }, 'trustgate', { HOSTILE_PASSWORD: 's3cret' });
});

afterAll(async () => {
  await proxy?.stop();
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function rawRequest(text: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(Number(new URL(proxy.url).port), '127.0.0.1', () => s.write(text));
    let data = '';
    s.on('data', (c) => (data += c));
    s.on('close', () => resolve(data));
  });
}

async function get(path: string, init: { method?: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE' | 'PATCH'; headers?: Record<string, string> } = {}) {
  const t0 = performance.now();
  const res = await request(`${proxy.url}${path}`, { method: init.method ?? 'GET', headers: init.headers });
  const text = await res.body.text();
  return { status: res.statusCode, body: text ? JSON.parse(text) : undefined, ms: performance.now() - t0, headers: res.headers };
}

describe('hostile upstream', () => {
  it.each([
    ['an endless manifest', 'endless', 502, 'MANIFEST_TOO_LARGE'],
    ['a manifest announcing 10 GiB', 'huge', 502, 'MANIFEST_TOO_LARGE'],
    ['a trickling manifest', 'trickle', 504, 'UPSTREAM_TIMEOUT'],
    ['an upstream that never answers', 'stall', 504, 'UPSTREAM_TIMEOUT'],
  ])('%s fails quickly with an OCI error while other requests are served', async (_n, repo, status, code) => {
    const slow = get(`/v2/${repo}/manifests/${D('a')}`);
    const ping = await get('/v2/');
    expect(ping.status).toBe(200);
    expect(ping.ms).toBeLessThan(2000); // the slow request (up to 10 s) must not hold it up; generous for loaded CI machines
    const r = await slow;
    expect(r.status).toBe(status);
    expect(r.body).toMatchObject({ errors: [{ detail: { code } }] });
    expect(r.ms).toBeLessThan(10_000);
  });

  it('follows a blob redirect itself, without sending credentials to the other host', async () => {
    seen.length = 0;
    const r = await request(`${proxy.url}/v2/auth/app/blobs/${digestOf('hello')}`, { headers: { authorization: 'Basic Y2xpZW50OnNlY3JldA==' } });
    expect(r.statusCode).toBe(200);
    expect(await r.body.text()).toBe('hello');
    const tokenReq = seen.find((s) => s.server === 'realm');
    expect(tokenReq?.headers.authorization).toBe(`Basic ${Buffer.from('svc:s3cret').toString('base64')}`);
    expect(tokenReq?.url).toContain('scope=repository%3Aauth%2Fapp%3Apull');
    const upstreamAuth = seen.filter((s) => s.server === 'upstream').map((s) => s.headers.authorization);
    expect(upstreamAuth).toEqual([undefined, 'Bearer tok-123']);
    // The client's own Authorization goes nowhere; the CDN gets no credentials at all.
    expect(seen.every((s) => s.headers.authorization !== 'Basic Y2xpZW50OnNlY3JldA==')).toBe(true);
    expect(seen.find((s) => s.server === 'cdn')?.headers.authorization).toBeUndefined();
  });

  it('caches the token until it expires', async () => {
    seen.length = 0;
    const r = await request(`${proxy.url}/v2/auth/app/blobs/${digestOf('hello again')}`);
    expect(await r.body.text()).toBe('hello again');
    expect(r.statusCode).toBe(200);
    expect(seen.filter((s) => s.server === 'upstream').map((s) => s.headers.authorization)).toEqual(['Bearer tok-123']);
    expect(seen.filter((s) => s.server === 'realm')).toHaveLength(0);
  });

  it('cuts a redirected blob whose bytes do not hash to its digest before the last byte', async () => {
    // One small chunk: nothing is released before the digest is known, so the client sees the
    // connection close before (or right after) the headers — never a complete 11-byte body.
    const got: Buffer[] = [];
    const pull = (async () => {
      const r = await request(`${proxy.url}/v2/auth/app/blobs/${BAD}`);
      for await (const c of r.body) got.push(c as Buffer);
    })();
    await expect(pull).rejects.toThrow(/other side closed|terminated/);
    expect(Buffer.concat(got).length).toBeLessThan(11);
  });

  it('refuses a token realm outside the allowlist without contacting it', async () => {
    seen.length = 0;
    const r = await get(`/v2/evilauth/app/blobs/${D('d')}`);
    expect(r.status).toBe(401);
    expect(r.body).toMatchObject({ errors: [{ code: 'UNAUTHORIZED', detail: { code: 'UPSTREAM_UNAUTHORIZED' } }] });
    expect(seen.filter((s) => s.server === 'evil-realm')).toHaveLength(0);
  });
});

describe('bad client input', () => {
  it.each<[string, string, 'GET' | 'PUT' | 'POST' | 'DELETE' | 'PATCH', number, string]>([
    ['push', '/v2/app/manifests/v1', 'PUT', 405, 'UNSUPPORTED'],
    ['upload', '/v2/app/blobs/uploads/', 'POST', 405, 'UNSUPPORTED'],
    ['delete', `/v2/app/manifests/${D('e')}`, 'DELETE', 405, 'UNSUPPORTED'],
    ['encoded slash', '/v2/a%2f..%2fb/manifests/v1', 'GET', 400, 'NAME_INVALID'],
    ['bad digest', '/v2/app/blobs/sha256:zz', 'GET', 400, 'DIGEST_INVALID'],
    ['bad tag', '/v2/app/manifests/.hidden', 'GET', 400, 'NAME_INVALID'],
    ['unknown route', '/v2/app/whatever', 'GET', 404, 'NOT_FOUND'],
  ])('%s: %s %s', async (_n, path, method, status, code) => {
    seen.length = 0;
    const r = await get(path, { method });
    expect(r.status).toBe(status);
    expect(r.body).toMatchObject({ errors: [{ detail: { code } }] });
    expect(seen.filter((s) => s.server === 'upstream')).toHaveLength(0); // nothing reached the upstream
  });

  it('path traversal sent raw (HTTP clients would normalize it away) → 400 NAME_INVALID', async () => {
    seen.length = 0;
    const reply = await rawRequest('GET /v2/a/../../secret/manifests/v1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(reply).toMatch(/^HTTP\/1.1 400/);
    expect(reply).toContain('"code":"NAME_INVALID"');
    expect(seen.filter((s) => s.server === 'upstream')).toHaveLength(0);
  });

  it('oversized headers get an OCI error, not a crash', async () => {
    const r = await get('/v2/', { headers: { 'x-big': 'a'.repeat(32 * 1024) } });
    expect(r.status).toBe(431);
    expect(r.body).toMatchObject({ errors: [{ detail: { code: 'NAME_INVALID' } }] });
    expect((await get('/v2/')).status).toBe(200);
  });

  it('a malformed HTTP request gets an OCI error and the server stays up', async () => {
    const reply = await rawRequest('GARBAGE \x01\x02 HTTP/9\r\n\r\n');
    expect(reply).toMatch(/^HTTP\/1.1 400/);
    expect(reply).toContain('"errors"');
    expect((await get('/v2/')).status).toBe(200);
  });
});
