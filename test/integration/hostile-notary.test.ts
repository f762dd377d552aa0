// A hostile notary server (issue 13): a man in the middle in front of a real notary-server answers
// some requests its own way — one altered content-addressed file, an endless or trickling timestamp, a
// wrong content type, a redirect to an internal address — and trustgate, with two replicas sharing a
// real Redis, never serves wrong data, never lets one bad answer block the genuine ones, and never
// follows the notary server somewhere else. The registry is a real docker-registry.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { startHostileNotary, type HostileNotary } from '../support/hostile-notary.js';
import { NotaryCli } from '../support/notary-cli.js';
import { startNotary, type NotaryLab } from '../support/notary-server.js';
import { pushImage, type PushedImage } from '../support/oci-image.js';
import { makePki, type Pki } from '../support/pki.js';
import { startRedis, type RedisLab } from '../support/redis.js';
import { rssBytes, startTrustgate, type Trustgate } from '../support/trustgate-process.js';

const REPO = 'team/app';
let dir: string;
let pki: Pki;
let registry: Registry;
let notary: NotaryLab;
let redis: RedisLab;
let hostile: HostileNotary;
let image: PushedImage;
let gun: string;
let internal: Server;
const internalHits: string[] = [];
const started: Array<{ stop(): Promise<void> }> = [];

/** The genuine file as the real notary-server serves it. */
async function genuine(role: string): Promise<Buffer> {
  const agent = new Agent({ connect: { ca: readFileSync(notary.caFile) } });
  const res = await request(`${notary.url}/v2/${gun}/_trust/tuf/${role}.json`, { dispatcher: agent });
  const b = Buffer.from(await res.body.arrayBuffer());
  await agent.close();
  expect(res.statusCode).toBe(200);
  return b;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-hostile-notary-'));
  pki = await makePki(dir);
  [registry, notary, redis] = await Promise.all([startRegistry(dir), startNotary(dir, pki, { signer: 'local' }), startRedis(dir)]);
  gun = `${registry.host}/${REPO}`;
  const cli = new NotaryCli(notary.url, notary.caFile, join(dir, 'trust'));
  await cli.initRepo(gun);
  image = await pushImage(dir, registry.host, REPO, 'v1');
  writeFileSync(join(dir, 'v1'), image.manifest);
  await cli.sign(gun, 'v1', join(dir, 'v1'));
  hostile = await startHostileNotary({ gun, key: readFileSync(pki.keyFile), cert: readFileSync(pki.certFile), upstream: { url: notary.url, ca: readFileSync(notary.caFile) } });
  started.push({ stop: () => hostile.close() });
  internal = createServer((req, res) => {
    internalHits.push(req.url ?? '');
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"signed":{},"signatures":[]}');
  });
  await new Promise<void>((r) => internal.listen(0, '127.0.0.2', r));
});

afterAll(async () => {
  for (const s of started.reverse()) await s.stop().catch(() => undefined);
  internal?.closeAllConnections();
  internal?.close();
  await notary?.stop();
  await registry?.stop();
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function tg(name: string, store: Record<string, unknown> | undefined, notaryTimeoutMs = 15_000): Promise<Trustgate> {
  const t = await startTrustgate(dir, {
    upstreams: [{ name: 'lab', registry: registry.url, gun: registry.host, notary: { url: hostile.url, ca: pki.caFile, timeoutMs: notaryTimeoutMs }, policy: 'enforce' }],
    default: 'lab',
    limits: { trustCacheSeconds: 0 },
    log: { level: 'warn' },
    ...(store ? { store } : {}),
  }, name);
  started.push(t);
  return t;
}

async function pull(t: Trustgate): Promise<{ status: number; code?: string; digest?: string; ms: number }> {
  const t0 = performance.now();
  const res = await request(`${t.url}/v2/${REPO}/manifests/v1`, { headers: { accept: image.mediaType } });
  const body = Buffer.from(await res.body.arrayBuffer());
  const ms = performance.now() - t0;
  if (res.statusCode !== 200) return { status: res.statusCode, code: JSON.parse(body.toString()).errors?.[0]?.detail?.code, ms };
  expect(body.equals(image.manifest)).toBe(true);
  return { status: 200, digest: res.headers['docker-content-digest'] as string, ms };
}

describe('hostile notary server in front of a real one', () => {
  it('one altered content-addressed file is refused, and the genuine answers after it are accepted on every replica sharing Redis', async () => {
    const targets = await genuine('targets');
    const altered = Buffer.from(targets);
    altered[altered.length >> 1]! ^= 1;
    hostile.once.set('targets', altered);
    const store = { kind: 'redis', url: redis.url, prefix: 'poison:' };
    const a = await tg('poison-a', store);
    expect(await pull(a)).toMatchObject({ status: 403, code: 'HASH_MISMATCH' });
    expect(hostile.once.size).toBe(0); // the bad answer was used
    const b = await tg('poison-b', store);
    expect(await pull(b)).toMatchObject({ status: 200, digest: image.digest });
    expect(await pull(a)).toMatchObject({ status: 200, digest: image.digest });
  });

  it('an endless timestamp is refused as TOO_LARGE with bounded memory', async () => {
    hostile.files.set('timestamp', 'endless');
    try {
      const t = await tg('endless', undefined, 3000);
      const r = await pull(t);
      expect(r).toMatchObject({ status: 403, code: 'TOO_LARGE' });
      expect(r.ms).toBeLessThan(3000);
      expect(rssBytes(t.pid)).toBeLessThan(300 * 1024 * 1024);
    } finally {
      hostile.files.delete('timestamp');
    }
  });

  it('a trickling timestamp times out within the notary deadline while other requests are answered', async () => {
    hostile.files.set('timestamp', 'trickle');
    try {
      const t = await tg('trickle', undefined, 1500);
      const slow = pull(t);
      const ping = performance.now();
      expect((await fetch(`${t.url}/v2/`)).status).toBe(200);
      expect(performance.now() - ping).toBeLessThan(500);
      const r = await slow;
      expect(r).toMatchObject({ status: 503, code: 'TIMEOUT' });
      expect(r.ms).toBeLessThan(6000);
    } finally {
      hostile.files.delete('timestamp');
    }
  });

  it('the content type does not matter when the bytes verify, and an HTML page is MALFORMED', async () => {
    hostile.files.set('timestamp', { contentType: 'text/html; charset=utf-8', body: await genuine('timestamp') });
    try {
      expect(await pull(await tg('ctype-ok', undefined))).toMatchObject({ status: 200, digest: image.digest });
      hostile.files.set('timestamp', { contentType: 'text/html', body: Buffer.from('<html><body>Please log in to the Wi-Fi</body></html>') });
      expect(await pull(await tg('ctype-html', undefined))).toMatchObject({ status: 403, code: 'MALFORMED' });
    } finally {
      hostile.files.delete('timestamp');
    }
  });

  it('a redirect from the notary server is not followed', async () => {
    const port = (internal.address() as AddressInfo).port;
    hostile.files.set('root', { redirect: `http://127.0.0.2:${port}/latest/meta-data/root.json` });
    try {
      internalHits.length = 0;
      const r = await pull(await tg('redirect', undefined));
      expect(r).toMatchObject({ status: 503, code: 'NOTARY_UNAVAILABLE' });
      expect(internalHits).toEqual([]);
    } finally {
      hostile.files.delete('root');
    }
  });
});
