// HTTP request fuzzer over raw sockets (issue 13), bounded in count: malformed request lines, header
// floods, 10,000-segment paths, invalid UTF-8, pipelined requests, and a bad request arriving while a
// response is in flight. Every answer is an OCI error (or a well-formed success) or a closed
// connection, never a crash, never a corrupted response, and the process's memory stays bounded.
// trustgate runs in front of a real docker-registry.
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushBlob } from '../support/blob-push.js';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { rssBytes, startTrustgate, type Trustgate } from '../support/trustgate-process.js';

let dir: string;
let registry: Registry;
let proxy: Trustgate;
let blob: string;
const BLOB_SIZE = 16 * 1024 * 1024;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-fuzz-'));
  registry = await startRegistry(dir);
  blob = await pushBlob(registry.url, 'fuzz/big', BLOB_SIZE);
  proxy = await startTrustgate(dir, { upstreams: [{ name: 'lab', registry: registry.url, gun: registry.host, policy: 'off' }], default: 'lab', log: { level: 'warn' } });
});

afterAll(async () => {
  await proxy?.stop();
  await registry?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Send raw bytes, collect everything until the server closes (or `ms` passes, then close). */
function raw(data: Buffer | string | Array<Buffer | string>, ms = 5000): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = connect(Number(new URL(proxy.url).port), '127.0.0.1', () => {
      for (const d of Array.isArray(data) ? data : [data]) s.write(d);
    });
    const t = setTimeout(() => s.destroy(), ms);
    s.on('data', (c) => chunks.push(c));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(t);
      resolve(Buffer.concat(chunks));
    });
  });
}

interface Reply {
  status: number;
  body: Buffer;
}

/** Parse back-to-back HTTP/1.1 responses with content-length; throws on anything malformed. */
function parseReplies(buf: Buffer): Reply[] {
  const out: Reply[] = [];
  let at = 0;
  while (at < buf.length) {
    const end = buf.indexOf('\r\n\r\n', at);
    if (end < 0) throw new Error(`truncated headers: ${JSON.stringify(buf.subarray(at, at + 200).toString('latin1'))}`);
    const head = buf.subarray(at, end).toString('latin1');
    const m = /^HTTP\/1\.1 (\d{3}) /.exec(head);
    if (!m) throw new Error(`not a status line: ${JSON.stringify(head.slice(0, 200))}`);
    const len = /\r\ncontent-length: (\d+)/i.exec(head);
    if (!len) throw new Error(`no content-length: ${head}`);
    const body = buf.subarray(end + 4, end + 4 + Number(len[1]));
    if (body.length !== Number(len[1])) throw new Error('truncated body');
    out.push({ status: Number(m[1]), body });
    at = end + 4 + body.length;
  }
  return out;
}

/** The rule for every fuzz case: nothing, or well-formed responses whose errors are OCI errors. */
function expectWellFormed(buf: Buffer, what: string): Reply[] {
  let replies: Reply[];
  try {
    replies = parseReplies(buf);
  } catch (err) {
    throw new Error(`${what}: ${(err as Error).message}`);
  }
  for (const r of replies) {
    expect(r.status, what).not.toBe(500);
    if (r.status >= 400) expect(JSON.parse(r.body.toString('utf8')), what).toMatchObject({ errors: [{ code: expect.any(String), detail: { code: expect.any(String) } }] });
  }
  return replies;
}

/** xorshift32: the same "random" cases on every run, so a failure can be replayed. */
function rng(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

async function alive(): Promise<void> {
  expect((await fetch(`${proxy.url}/v2/`)).status).toBe(200);
}

describe('HTTP request fuzzer', () => {
  it('malformed request lines (40 written, 160 generated) get an OCI error or a closed connection', async () => {
    const fixed = [
      'GARBAGE\r\n\r\n',
      'GET\r\n\r\n',
      'GET /v2/\r\n\r\n',
      'GET /v2/ HTTP/9.9\r\n\r\n',
      'GET /v2/ HTTP/1.1 extra\r\nHost: x\r\n\r\n',
      ' GET /v2/ HTTP/1.1\r\n\r\n',
      'GET  /v2/  HTTP/1.1\r\nHost: x\r\n\r\n',
      'G\x00T /v2/ HTTP/1.1\r\n\r\n',
      'GET /v2/\x00 HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET /v2/ HTTP/1.1\nHost: x\n\n',
      'GET /v2/ HTTP/1.1\rHost: x\r\r',
      `${'A'.repeat(10000)} /v2/ HTTP/1.1\r\n\r\n`,
      'GET http://evil.example/v2/ HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET * HTTP/1.1\r\nHost: x\r\n\r\n',
      'CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: x\r\n\r\n',
      'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n',
      'TRACE /v2/ HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET /v2/ HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n',
      'GET /v2/ HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n',
      'GET /v2/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n',
      'GET /v2/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n',
      'GET /v2/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked, identity\r\n\r\n',
      'GET /v2/ HTTP/1.1\r\n: novalue\r\n\r\n',
      'GET /v2/ HTTP/1.1\r\nbad header\r\n\r\n',
      'GET /v2/ HTTP/1.1\r\nHo st: x\r\n\r\n',
      'GET /v2/ HTTP/1.1\r\n Host: folded\r\n\r\n',
      'GET /v2/ HTTP/1.1\r\nHost: x\r\nX: \x7f\x01\r\n\r\n',
      'GET /v2/a/manifests/%00 HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET /v2/a/manifests/..%2f..%2fetc%2fpasswd HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET /v2/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET /v2/a/blobs/sha256:' + 'g'.repeat(64) + ' HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET /v2/a/blobs/sha512:' + 'a'.repeat(128) + ' HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET /v2/a/manifests/' + 'x'.repeat(200) + ' HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET /v2/A/manifests/latest HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET /v2/a/tags/list?n=-1 HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET /v2/a/tags/list?n=99999999999 HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET /v2/a/tags/list?last=%00 HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET /v2/a/manifests/latest?ns=%ff HTTP/1.1\r\nHost: x\r\n\r\n',
      'DELETE /v2/a/manifests/latest HTTP/1.1\r\nHost: x\r\n\r\n',
      'PUT /v2/a/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc',
    ];
    const next = rng(0x13);
    const alphabet = 'GETHPOSUD /v2aZ09:%.\r\n\t\x00\x7f\xff?#=&-_~';
    const generated = Array.from({ length: 160 }, () => {
      const len = 1 + Math.floor(next() * 120);
      let line = next() < 0.5 ? 'GET /v2/' : '';
      for (let i = 0; i < len; i++) line += alphabet[Math.floor(next() * alphabet.length)];
      return Buffer.from(`${line}\r\nHost: x\r\nConnection: close\r\n\r\n`, 'latin1');
    });
    const cases = [...fixed.map((f) => Buffer.from(f, 'latin1')), ...generated];
    for (let i = 0; i < cases.length; i += 20) {
      await Promise.all(cases.slice(i, i + 20).map(async (c, j) => expectWellFormed(await raw(c, 3000), `case ${i + j}: ${JSON.stringify(c.toString('latin1').slice(0, 80))}`)));
    }
    await alive();
  });

  it('header floods: too many, too large, never ending', async () => {
    // A 431 is written, but the client is still sending: the kernel may answer its unread bytes with a
    // reset that discards the 431 on the client's side, so "closed" is as good an outcome here.
    const refused = (replies: Reply[]) => expect(replies.length <= 1 && replies.every((r) => r.status === 431), JSON.stringify(replies.map((r) => r.status))).toBe(true);
    const many = `GET /v2/ HTTP/1.1\r\nHost: x\r\n${'x-a: b\r\n'.repeat(5000)}\r\n`;
    refused(expectWellFormed(await raw(many), 'many headers'));
    const justUnder = `GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${'x-a: b\r\n'.repeat(1500)}\r\n`;
    expect(expectWellFormed(await raw(justUnder), 'many small headers').map((r) => r.status)).toEqual([200]);
    const huge = `GET /v2/ HTTP/1.1\r\nHost: x\r\nx-big: ${'a'.repeat(1024 * 1024)}\r\n\r\n`;
    refused(expectWellFormed(await raw(huge), 'one huge header'));
    // Headers that never end: 4 MiB in 64 KiB pieces. The server must stop reading, not buffer them.
    const t0 = performance.now();
    const endless = await raw(['GET /v2/ HTTP/1.1\r\nHost: x\r\n', ...Array.from({ length: 64 }, (_, i) => `x-${i}: ${'z'.repeat(64 * 1024)}\r\n`)], 10_000);
    refused(expectWellFormed(endless, 'endless headers'));
    expect(performance.now() - t0).toBeLessThan(5000);
    await alive();
  });

  it('10,000-segment paths', async () => {
    const cases = [
      `/v2/${'a/'.repeat(10000)}manifests/latest`,
      `/v2/${'/'.repeat(10000)}manifests/latest`,
      `/v2/${'../'.repeat(10000)}manifests/latest`,
      `/v2/${'a/'.repeat(2000)}manifests/latest`,
      `/v2/${'lab/'.repeat(1000)}tags/list`,
    ];
    for (const path of cases) {
      const t0 = performance.now();
      const replies = expectWellFormed(await raw(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`), path.slice(0, 40));
      expect(replies.length).toBeLessThanOrEqual(1);
      if (replies[0]) expect([400, 414, 431]).toContain(replies[0].status);
      expect(performance.now() - t0).toBeLessThan(2000);
    }
    await alive();
  });

  it('invalid UTF-8 in the path, query and headers', async () => {
    const bad = [
      Buffer.concat([Buffer.from('GET /v2/'), Buffer.from([0xff, 0xfe]), Buffer.from('/manifests/latest HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')]),
      Buffer.concat([Buffer.from('GET /v2/a/manifests/'), Buffer.from([0xc3, 0x28]), Buffer.from(' HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')]),
      Buffer.from('GET /v2/%ff%fe/manifests/latest HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
      Buffer.from('GET /v2/a/manifests/%C0%AF HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
      Buffer.from('GET /v2/a/tags/list?last=%ED%A0%80 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
      Buffer.concat([Buffer.from('GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Name: '), Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]), Buffer.from('\r\nConnection: close\r\n\r\n')]),
      Buffer.concat([Buffer.from('GET /v2/a/manifests/latest HTTP/1.1\r\nHost: x\r\nAccept: '), Buffer.from([0xc0, 0x80]), Buffer.from('\r\nConnection: close\r\n\r\n')]),
    ];
    for (const [i, b] of bad.entries()) {
      const replies = expectWellFormed(await raw(b), `utf8 case ${i}`);
      for (const r of replies) expect([200, 400, 404, 405]).toContain(r.status);
    }
    await alive();
  });

  it('pipelined requests are answered in order, and a bad one among them ends the connection cleanly', async () => {
    const ok = 'GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n';
    const fifty = expectWellFormed(await raw(ok.repeat(49) + ok.replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n')), 'fifty pipelined');
    expect(fifty.map((r) => r.status)).toEqual(Array(50).fill(200));
    const mixed = [ok, 'GET /v2/a/blobs/sha256:zz HTTP/1.1\r\nHost: x\r\n\r\n', ok, 'GARBAGE \x01\r\n\r\n', ok].join('');
    const replies = expectWellFormed(await raw(mixed), 'mixed pipeline');
    // The parser reads the whole pipeline at once and fails on the garbage while earlier responses may
    // still be in flight: those that went out are whole and in order, then the connection is closed
    // (never an error written across a response), and nothing after the garbage is answered.
    expect(replies.length).toBeGreaterThanOrEqual(1);
    expect(replies.map((r) => r.status)).toEqual([200, 400, 200, 400].slice(0, replies.length));
    // Sent one by one, the same requests are each answered.
    const oneByOne = [];
    for (const r of [ok, 'GET /v2/a/blobs/sha256:zz HTTP/1.1\r\nHost: x\r\n\r\n', ok]) oneByOne.push(...expectWellFormed(await raw(r.replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n')), 'single'));
    expect(oneByOne.map((r) => r.status)).toEqual([200, 400, 200]);
    await alive();
  });

  it('a malformed request arriving while a blob response is in flight never writes into that response', async () => {
    for (let round = 0; round < 3; round++) {
      const got = await new Promise<Buffer>((resolve) => {
        const chunks: Buffer[] = [];
        let sent = false;
        const s = connect(Number(new URL(proxy.url).port), '127.0.0.1', () => s.write(`GET /v2/fuzz/big/blobs/${blob} HTTP/1.1\r\nHost: x\r\n\r\n`));
        s.on('data', (c) => {
          chunks.push(c);
          if (!sent) {
            sent = true; // headers are out: now a broken second request on the same connection
            s.write('GARBAGE \x01 HTTP/1.1\r\n\r\n');
          }
        });
        s.on('error', () => {});
        s.on('close', () => resolve(Buffer.concat(chunks)));
        setTimeout(() => s.destroy(), 10_000);
      });
      const text = got.toString('latin1');
      expect(text.slice(0, 300), `round ${round}`).toMatch(/^HTTP\/1\.1 200 /);
      // Nothing but the blob after the headers: no error response spliced into the body.
      expect(text.indexOf('HTTP/1.1', 1)).toBe(-1);
      expect(text.includes('"errors"')).toBe(false);
    }
    await alive();
  });

  it('after every case the process is alive and its memory bounded', async () => {
    await alive();
    expect(rssBytes(proxy.pid)).toBeLessThan(300 * 1024 * 1024);
  });
});
