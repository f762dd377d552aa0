// Stalled clients (issue 13): 150 connections that ask for a 64 MiB blob and never read must not
// starve a normal signed pull by a real skopeo through the same trustgate; a response nobody reads is
// cut after limits.clientStallSeconds and frees its upstream connection; headers that never finish are
// answered 408; one address cannot hold more than limits.perClientStreams blob streams; manifests and
// trust do not queue behind blob streams. Real notary-server and docker-registry behind it.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushBlob } from '../support/blob-push.js';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { NotaryCli } from '../support/notary-cli.js';
import { startNotary, type NotaryLab } from '../support/notary-server.js';
import { pushImage, type PushedImage } from '../support/oci-image.js';
import { makePki } from '../support/pki.js';
import { startTrustgate, type Trustgate } from '../support/trustgate-process.js';

const run = promisify(execFile);
const BIG = 64 * 1024 * 1024;
let dir: string;
let registry: Registry;
let notary: NotaryLab;
let image: PushedImage;
let big: string;
const sockets: Socket[] = [];
const proxies: Trustgate[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-slow-'));
  const pki = await makePki(dir);
  [registry, notary] = await Promise.all([startRegistry(dir), startNotary(dir, pki, { signer: 'local' })]);
  const cli = new NotaryCli(notary.url, notary.caFile, join(dir, 'trust'));
  const gun = `${registry.host}/team/app`;
  await cli.initRepo(gun);
  image = await pushImage(dir, registry.host, 'team/app', 'v1');
  writeFileSync(join(dir, 'v1'), image.manifest);
  await cli.sign(gun, 'v1', join(dir, 'v1'));
  big = await pushBlob(registry.url, 'team/big', BIG);
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  for (const p of proxies) await p.stop();
  await notary?.stop();
  await registry?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function proxy(name: string, limits: Record<string, unknown>): Promise<Trustgate> {
  const p = await startTrustgate(
    dir,
    {
      upstreams: [{ name: 'lab', registry: registry.url, gun: registry.host, notary: { url: notary.url, ca: notary.caFile }, policy: 'enforce' }],
      default: 'lab',
      // The worst case: no blob cache, so every stream is relayed from an upstream connection at the
      // client's pace (the cache would fill from the upstream on its own and hide the stall).
      blobCache: false,
      limits,
      log: { level: 'info' },
    },
    name,
  );
  proxies.push(p);
  return p;
}

/** A client that asks for the big blob and never reads a byte of the answer. */
function stalledClient(p: Trustgate, from = '127.0.0.2'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port: Number(new URL(p.url).port), host: '127.0.0.1', localAddress: from }, () => {
      s.write(`GET /v2/team/big/blobs/${big} HTTP/1.1\r\nHost: x\r\n\r\n`);
      s.pause(); // the receive window fills and closes: the server's writes back up
      resolve(s);
    });
    s.on('error', () => {}); // the server may cut it: that is the point
    s.once('error', reject);
    sockets.push(s);
  });
}

async function streamsInFlight(p: Trustgate): Promise<number> {
  const m = await (await fetch(`${p.url}/metrics`)).text();
  return Number(/^trustgate_streams_in_flight (\d+)/m.exec(m)?.[1] ?? NaN);
}

async function waitFor(what: string, cond: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('stalled clients', () => {
  it('150 stalled clients hold connections while a signed skopeo copy completes in a few seconds', async () => {
    const p = await proxy('stalled', { perClientStreams: 16 });
    const held = await Promise.all(Array.from({ length: 150 }, () => stalledClient(p)));
    await waitFor('16 blob streams in flight', async () => (await streamsInFlight(p)) === 16, 20_000);
    // One more from the same address is refused with its own code instead of queueing.
    const agent = new Agent({ localAddress: '127.0.0.2' });
    const extra = await request(`${p.url}/v2/team/big/blobs/${big}`, { dispatcher: agent });
    expect(extra.statusCode).toBe(429);
    expect(await extra.body.json()).toMatchObject({ errors: [{ code: 'TOOMANYREQUESTS', detail: { code: 'TOO_MANY_STREAMS' } }] });
    await agent.close();

    const t0 = performance.now();
    const dest = join(dir, 'pulled');
    const r = await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${p.host}/team/app:v1`, `oci:${dest}:v1`], { timeout: 60_000 });
    const seconds = (performance.now() - t0) / 1000;
    expect(r.stderr).not.toMatch(/error/i);
    expect(JSON.parse(readFileSync(join(dest, 'index.json'), 'utf8')).manifests[0].digest).toBe(image.digest);
    expect(seconds).toBeLessThan(8);
    // The stalled streams were still held the whole time.
    expect(await streamsInFlight(p)).toBe(16);
    expect(held.filter((s) => !s.destroyed).length).toBe(150);
    const ping = performance.now();
    expect((await fetch(`${p.url}/v2/`)).status).toBe(200);
    expect(performance.now() - ping).toBeLessThan(1000);
    for (const s of held) s.destroy();
    await waitFor('streams released', async () => (await streamsInFlight(p)) === 0, 10_000);
  });

  it('a response nobody reads is cut after clientStallSeconds, freeing its stream', async () => {
    const p = await proxy('stall-timeout', { clientStallSeconds: 2 });
    await stalledClient(p, '127.0.0.1');
    await waitFor('the stream to start', async () => (await streamsInFlight(p)) === 1, 10_000);
    const t0 = performance.now();
    await waitFor('the stalled stream to be cut', async () => (await streamsInFlight(p)) === 0, 15_000);
    const s = (performance.now() - t0) / 1000;
    expect(s).toBeLessThan(8);
    await waitFor('the log line', async () => readFileSync(p.logFile, 'utf8').includes('client stopped reading'), 3000);
  });

  it('request headers that never finish are answered 408 REQUEST_TIMEOUT (slowloris)', async () => {
    const p = proxies.find((x) => x.logFile.includes('stall-timeout'))!;
    const t0 = performance.now();
    const reply = await new Promise<string>((resolve) => {
      const s = connect(Number(new URL(p.url).port), '127.0.0.1', () => s.write('GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Slow: '));
      let data = '';
      s.on('data', (c) => (data += c));
      s.on('close', () => resolve(data));
      sockets.push(s);
    });
    expect(reply).toMatch(/^HTTP\/1.1 408/);
    expect(reply).toContain('"code":"REQUEST_TIMEOUT"');
    expect(performance.now() - t0).toBeLessThan(6000);
  });

  it('manifests and trust are not queued behind blob streams holding every blob connection', async () => {
    const p = await proxy('pools', { upstreamBlobConnections: 2, perClientStreams: 100 });
    // Trust first (the signed tags), so what is timed below is the manifest's own upstream request.
    expect(((await (await fetch(`${p.url}/v2/team/app/tags/list`)).json()) as { tags: string[] }).tags).toEqual(['v1']);
    await Promise.all(Array.from({ length: 10 }, () => stalledClient(p)));
    await waitFor('blob streams in flight', async () => (await streamsInFlight(p)) >= 2, 10_000);
    const t0 = performance.now();
    const res = await request(`${p.url}/v2/team/app/manifests/v1`, { method: 'GET', headers: { accept: image.mediaType } });
    const body = Buffer.from(await res.body.arrayBuffer());
    expect(res.statusCode).toBe(200);
    expect(res.headers['docker-content-digest']).toBe(image.digest);
    expect(body.equals(image.manifest)).toBe(true);
    // Queued behind the stalled streams it would wait for clientStallSeconds (30 s) at least.
    expect(performance.now() - t0).toBeLessThan(5000);
  });
});
