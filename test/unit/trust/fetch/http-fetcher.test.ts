// NotaryHttpFetcher against small node:https servers on 127.0.0.1:0 (undici style): what no real
// notary-server does on demand — errors, oversized and endless bodies, slow retrieval, token auth
// with a realm allowlist. Checklist 32, 40; NOTARY.md §1 (status handling, size caps, auth).
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseBearerChallenge } from '../../../../src/http/bearer-auth.js';
import { NotaryHttpFetcher, type NotaryHttpOptions } from '../../../../src/signatures/dct/fetch/http-fetcher.js';
import type { MetadataRequest } from '../../../../src/signatures/dct/client.js';
import { makePki, type Pki } from '../../../support/pki.js';

const GUN = 'example.com/team/app';
const BODY = Buffer.from('{"signed":{},"signatures":[]}');

describe('parseBearerChallenge', () => {
  it.each<[string, string | string[] | undefined, ReturnType<typeof parseBearerChallenge>]>([
    ['notary’s challenge', `Bearer realm="https://auth.example.com/token",service="notary",scope="repository:${GUN}:pull"`, { realm: 'https://auth.example.com/token', service: 'notary', scope: `repository:${GUN}:pull` }],
    ['with an error parameter', 'Bearer realm="https://a/t",service="s",error="invalid_token"', { realm: 'https://a/t', service: 's', scope: undefined }],
    ['lower-case scheme, spaces around =', 'bearer realm = "https://a/t" , service = "s"', { realm: 'https://a/t', service: 's', scope: undefined }],
    ['unquoted values', 'Bearer realm=https://a/t,service=s', { realm: 'https://a/t', service: 's', scope: undefined }],
    ['an escaped quote', 'Bearer realm="https://a/t",service="a\\"b"', { realm: 'https://a/t', service: 'a"b', scope: undefined }],
    ['a comma inside a quoted scope', 'Bearer realm="https://a/t",scope="repository:x:pull,push"', { realm: 'https://a/t', service: undefined, scope: 'repository:x:pull,push' }],
    ['Bearer among several headers', ['Basic realm="x"', 'Bearer realm="https://a/t"'], { realm: 'https://a/t', service: undefined, scope: undefined }],
    ['Basic only', 'Basic realm="registry"', undefined],
    ['Bearer without realm', 'Bearer service="s"', undefined],
    ['no header', undefined, undefined],
    ['a scheme merely starting with Bearer', 'Bearerx realm="https://a/t"', undefined],
  ])('%s', (_what, header, want) => {
    expect(parseBearerChallenge(header)).toEqual(want);
  });
});

// ---- servers ----

interface Seen {
  url: string;
  authorization: string | undefined;
}
interface TestServer {
  origin: string;
  seen: Seen[];
  server: Server;
}
type Handler = (req: IncomingMessage, res: ServerResponse, origin: string) => void;

let pki: Pki;
let ca: string;
const open: Server[] = [];
const fetchers: NotaryHttpFetcher[] = [];

beforeAll(async () => {
  pki = await makePki(mkdtempSync(join(tmpdir(), 'trustgate-http-fetcher-')), 'fetcher');
  ca = readFileSync(pki.caFile, 'utf8');
});

afterEach(async () => {
  await Promise.all(fetchers.splice(0).map((f) => f.close()));
  for (const s of open.splice(0)) {
    s.closeAllConnections();
    s.close();
  }
});

async function serve(handler: Handler): Promise<TestServer> {
  const seen: Seen[] = [];
  let origin = '';
  const server = createServer({ key: readFileSync(pki.keyFile), cert: readFileSync(pki.certFile) }, (req, res) => {
    seen.push({ url: req.url!, authorization: req.headers.authorization });
    handler(req, res, origin);
  });
  open.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
  return { origin, seen, server };
}

function fetcher(origin: string, o: Partial<NotaryHttpOptions> = {}, now?: () => number): NotaryHttpFetcher {
  const f = new NotaryHttpFetcher({ url: origin, ca, timeoutMs: 2000, ...o }, now);
  fetchers.push(f);
  return f;
}
const req = (o: Partial<MetadataRequest> = {}): MetadataRequest => ({ gun: GUN, role: 'timestamp', maxBytes: 1 << 20, ...o });
const ok: Handler = (_req, res) => res.end(BODY);

describe('paths and status handling', () => {
  it('✓ 200: the body, from …/v2/<GUN>/_trust/tuf/<file>', async () => {
    const s = await serve(ok);
    const f = fetcher(s.origin);
    const sha = 'ab'.repeat(32);
    expect(Buffer.from((await f.fetch(req()))!)).toEqual(BODY);
    await f.fetch(req({ role: 'targets/releases', sha256: sha }));
    await f.fetch(req({ role: 'root', version: 3 }));
    expect(s.seen.map((x) => x.url)).toEqual([
      `/v2/${GUN}/_trust/tuf/timestamp.json`,
      `/v2/${GUN}/_trust/tuf/targets/releases.${sha}.json`,
      `/v2/${GUN}/_trust/tuf/3.root.json`,
    ]);
  });

  it('✓ 404 → null (no such metadata)', async () => {
    const s = await serve((_q, res) => res.writeHead(404).end('{"errors":[{"code":"METADATA_NOT_FOUND"}]}'));
    await expect(fetcher(s.origin).fetch(req())).resolves.toBeNull();
  });

  it.each([500, 502, 503, 400, 403, 302])('✗ %i → NOTARY_UNAVAILABLE', async (status) => {
    const s = await serve((_q, res) => res.writeHead(status, { location: 'https://elsewhere.example/' }).end('{"errors":[{"detail":"nope"}]}'));
    await expect(fetcher(s.origin).fetch(req())).rejects.toMatchObject({ code: 'NOTARY_UNAVAILABLE', message: expect.stringContaining(String(status)) });
  });

  it('✗ nothing listening → NOTARY_UNAVAILABLE', async () => {
    const s = await serve(ok);
    s.server.close();
    await new Promise((r) => setTimeout(r, 20));
    await expect(fetcher(s.origin).fetch(req())).rejects.toMatchObject({ code: 'NOTARY_UNAVAILABLE' });
  });

  it('✗ a server certificate not signed by the configured CA → NOTARY_UNAVAILABLE', async () => {
    const s = await serve(ok);
    const other = await makePki(mkdtempSync(join(tmpdir(), 'trustgate-http-fetcher-other-')), 'other');
    await expect(fetcher(s.origin, { ca: readFileSync(other.caFile, 'utf8') }).fetch(req())).rejects.toMatchObject({ code: 'NOTARY_UNAVAILABLE' });
  });

  it.each<[string, Partial<MetadataRequest>, string]>([
    ['an invalid GUN', { gun: '../../etc' }, 'USAGE'],
    ['a role with ..', { role: 'targets/../root' }, 'MALFORMED'],
    ['a bad checksum', { role: 'targets', sha256: 'XYZ' }, 'MALFORMED'],
    ['version 0', { role: 'root', version: 0 }, 'MALFORMED'],
  ])('✗ %s is refused before any request', async (_what, r, code) => {
    const s = await serve(ok);
    await expect(fetcher(s.origin).fetch(req(r))).rejects.toMatchObject({ code });
    expect(s.seen).toEqual([]);
  });

  it.each<[string, Partial<NotaryHttpOptions>]>([
    ['a plain-HTTP notary URL', { url: 'http://127.0.0.1:1' }],
    ['a plain-HTTP realm in the allowlist', { url: 'https://127.0.0.1:1', realmAllowlist: ['http://auth.example.com'] }],
  ])('✗ %s → USAGE', (_what, o) => {
    expect(() => new NotaryHttpFetcher({ url: 'https://127.0.0.1:1', ...o })).toThrow(expect.objectContaining({ code: 'USAGE' }));
  });
});

describe('endless data and slow retrieval (checklist 32)', () => {
  it('✗ Content-Length over the cap → TOO_LARGE before the body is read', async () => {
    const s = await serve((_q, res) => {
      res.writeHead(200, { 'content-length': String(2 << 20) });
      res.write(Buffer.alloc(1024)); // and never the rest
    });
    await expect(fetcher(s.origin).fetch(req({ maxBytes: 1 << 20 }))).rejects.toMatchObject({ code: 'TOO_LARGE', message: expect.stringContaining('announced') });
  });

  it('✓ a body of exactly the cap', async () => {
    const s = await serve((_q, res) => res.end(Buffer.alloc(4096, 0x20)));
    expect((await fetcher(s.origin).fetch(req({ maxBytes: 4096 })))!.length).toBe(4096);
  });

  it('✗ one byte over the cap without Content-Length → TOO_LARGE', async () => {
    const s = await serve((_q, res) => {
      res.writeHead(200, { 'transfer-encoding': 'chunked' });
      res.end(Buffer.alloc(4097, 0x20));
    });
    await expect(fetcher(s.origin).fetch(req({ maxBytes: 4096 }))).rejects.toMatchObject({ code: 'TOO_LARGE' });
  });

  it('✗ a never-ending chunked body → TOO_LARGE', async () => {
    let sent = 0;
    const s = await serve((_q, res) => {
      res.writeHead(200, { 'transfer-encoding': 'chunked' });
      const pump = () => {
        while (!res.destroyed) {
          sent += 16 * 1024;
          if (!res.write(Buffer.alloc(16 * 1024, 0x20))) break;
        }
        if (!res.destroyed) res.once('drain', pump);
      };
      res.on('error', () => {});
      pump();
    });
    await expect(fetcher(s.origin).fetch(req({ maxBytes: 256 * 1024 }))).rejects.toMatchObject({ code: 'TOO_LARGE' });
    expect(sent).toBeGreaterThan(256 * 1024);
  });

  it('✗ a trickling body → TIMEOUT within the deadline', async () => {
    const s = await serve((_q, res) => {
      res.writeHead(200, { 'transfer-encoding': 'chunked' });
      const t = setInterval(() => (res.destroyed ? clearInterval(t) : res.write(' ')), 50);
      res.on('close', () => clearInterval(t));
    });
    const started = Date.now();
    await expect(fetcher(s.origin, { timeoutMs: 400 }).fetch(req())).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('✗ no response headers at all → TIMEOUT', async () => {
    const s = await serve(() => {});
    await expect(fetcher(s.origin, { timeoutMs: 300 }).fetch(req())).rejects.toMatchObject({ code: 'TIMEOUT' });
  });
});

describe('token auth (checklist 40)', () => {
  const scope = `repository:${GUN}:pull`;
  /** notary behind a token service on `realmOrigin` (default: itself). */
  function notary(o: { token?: string; realm?: (origin: string) => string; challenge?: string } = {}): Handler {
    const token = o.token ?? 'tok-1';
    return (q, res, origin) => {
      if (q.url!.startsWith('/token')) {
        const u = new URL(q.url!, origin);
        res.setHeader('content-type', 'application/json');
        return res.end(JSON.stringify(u.searchParams.get('scope') === scope && u.searchParams.get('service') === 'notary' ? { token, expires_in: 300 } : {}));
      }
      if (q.headers.authorization === `Bearer ${token}`) return res.end(BODY);
      const realm = o.realm ? o.realm(origin) : `${origin}/token`;
      res.writeHead(401, { 'www-authenticate': o.challenge ?? `Bearer realm="${realm}",service="notary",scope="${scope}"` }).end();
    };
  }

  it('✓ 401 → Bearer challenge → token for repository:<GUN>:pull → retry succeeds; the token is reused', async () => {
    const s = await serve(notary());
    const f = fetcher(s.origin);
    expect(Buffer.from((await f.fetch(req()))!)).toEqual(BODY);
    expect(Buffer.from((await f.fetch(req({ role: 'snapshot' })))!)).toEqual(BODY);
    expect(s.seen.map((x) => [x.url.replace(/\?.*/, ''), x.authorization])).toEqual([
      [`/v2/${GUN}/_trust/tuf/timestamp.json`, undefined],
      ['/token', undefined],
      [`/v2/${GUN}/_trust/tuf/timestamp.json`, 'Bearer tok-1'],
      [`/v2/${GUN}/_trust/tuf/snapshot.json`, 'Bearer tok-1'], // cached: no second 401, no second token
    ]);
    expect(new URL(s.seen[1]!.url, s.origin).searchParams.get('scope')).toBe(scope);
  });

  it('✓ an expired cached token is replaced', async () => {
    const s = await serve(notary());
    let now = 1_000_000;
    const f = fetcher(s.origin, {}, () => now);
    await f.fetch(req());
    now += 400_000; // past expires_in 300
    await f.fetch(req());
    expect(s.seen.filter((x) => x.url.startsWith('/token'))).toHaveLength(2);
  });

  it('✓ a token server answering access_token', async () => {
    const s = await serve((q, res, origin) => {
      if (q.url!.startsWith('/token')) return res.end(JSON.stringify({ access_token: 'acc' }));
      if (q.headers.authorization === 'Bearer acc') return res.end(BODY);
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${origin}/token",service="notary"` }).end();
    });
    await expect(fetcher(s.origin).fetch(req())).resolves.toEqual(expect.any(Uint8Array));
  });

  it('✗ a realm outside the allowlist → NOTARY_UNAUTHORIZED, and no token request', async () => {
    const evil = await serve(notary());
    const s = await serve(notary({ realm: () => `${evil.origin}/token` }));
    await expect(fetcher(s.origin, { credentials: { username: 'u', password: 'p' } }).fetch(req())).rejects.toMatchObject({ code: 'NOTARY_UNAUTHORIZED', message: expect.stringContaining('allowlist') });
    expect(evil.seen).toEqual([]);
  });

  it.each<[string, Handler]>([
    ['401 with only a Basic challenge', (_q, res) => res.writeHead(401, { 'www-authenticate': 'Basic realm="notary"' }).end()],
    ['401 without any challenge', (_q, res) => res.writeHead(401).end()],
    ['the token server refuses', (q, res, origin) => (q.url!.startsWith('/token') ? res.writeHead(401).end() : res.writeHead(401, { 'www-authenticate': `Bearer realm="${origin}/token"` }).end())],
    ['the token server sends no token', (q, res, origin) => (q.url!.startsWith('/token') ? res.end('{}') : res.writeHead(401, { 'www-authenticate': `Bearer realm="${origin}/token"` }).end())],
    ['the token is refused too', (q, res, origin) => (q.url!.startsWith('/token') ? res.end('{"token":"t"}') : res.writeHead(401, { 'www-authenticate': `Bearer realm="${origin}/token"` }).end())],
    ['an unparsable realm', (_q, res) => res.writeHead(401, { 'www-authenticate': 'Bearer realm="::not a url"' }).end()],
  ])('✗ %s → NOTARY_UNAUTHORIZED', async (_what, handler) => {
    const s = await serve(handler);
    await expect(fetcher(s.origin).fetch(req())).rejects.toMatchObject({ code: 'NOTARY_UNAUTHORIZED' });
  });

  it('Basic credentials go to the realm only, never to the metadata host', async () => {
    const auth = await serve((q, res) => {
      res.end(JSON.stringify(q.headers.authorization === `Basic ${Buffer.from('alice:s3cret').toString('base64')}` ? { token: 'tok-b' } : {}));
    });
    const s = await serve(notary({ token: 'tok-b', realm: () => `${auth.origin}/token` }));
    const f = fetcher(s.origin, { credentials: { username: 'alice', password: 's3cret' }, realmAllowlist: [auth.origin] });
    expect(Buffer.from((await f.fetch(req()))!)).toEqual(BODY);
    expect(auth.seen.map((x) => x.authorization)).toEqual([`Basic ${Buffer.from('alice:s3cret').toString('base64')}`]);
    expect(s.seen.map((x) => x.authorization)).toEqual([undefined, 'Bearer tok-b']);
    expect(JSON.stringify(s.seen)).not.toContain('Basic');
  });
});
