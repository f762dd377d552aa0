// `workers: 2` with real parts: both workers serve from the shared socket, a stampede of 1,000 cold
// requests across them makes one notary fetch per role (single-flight through the file store's lock),
// and SIGTERM to the primary drains every worker with no audit line lost.
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, Pool, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushBlob } from '../support/blob-push.js';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { NotaryCli, pushSignedImage } from '../support/notary-cli.js';
import { startNotary, type NotaryLab } from '../support/notary-server.js';
import type { PushedImage } from '../support/oci-image.js';
import { makePki } from '../support/pki.js';
import { stopAndRemove } from '../support/spawn-server.js';
import { logLines } from '../support/through-proxy.js';
import { startTrustgate, type Trustgate } from '../support/trustgate-process.js';

let dir: string;
let registry: Registry;
let notary: NotaryLab;
let cli: NotaryCli;
const started: Trustgate[] = [];
const MiB = 1 << 20;

/** Bytes of the committed blobs under a blob cache's blobs/ directory. */
function cachedBytes(root: string): number {
  let n = 0;
  for (const u of readdirSync(root)) for (const f of readdirSync(join(root, u))) n += statSync(join(root, u, f)).size;
  return n;
}


function signedImage(repo: string): Promise<PushedImage> {
  return pushSignedImage(cli, dir, registry.host, repo, 'v1');
}

/** trustgate with two workers, once both listen (before that, one worker would take every connection). */
async function startTwoWorkers(name: string, extra: Record<string, unknown> = {}): Promise<Trustgate> {
  const tg = await startTrustgate(
    dir,
    {
      upstreams: [{ name: 'lab', registry: registry.url, gun: registry.host, notary: { url: notary.url, ca: notary.caFile }, policy: 'enforce' }],
      default: 'lab',
      workers: 2,
      ...extra,
    },
    name,
  );
  started.push(tg);
  const deadline = Date.now() + 30_000;
  while (!logLines(tg.logFile).some((l) => l.msg === 'all workers listening')) {
    if (Date.now() > deadline) throw new Error(`workers did not start:\n${readFileSync(tg.logFile, 'utf8')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return tg;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-workers-'));
  const pki = await makePki(dir);
  [registry, notary] = await Promise.all([startRegistry(dir), startNotary(dir, pki, { signer: 'local' })]);
  cli = new NotaryCli(notary.url, notary.caFile, join(dir, 'trust'));
}, 120_000);

afterAll(() => stopAndRemove(dir, ...started, notary, registry));

describe('workers: 2', () => {
  it('a stampede of 1,000 cold requests across both workers makes one notary fetch per role', async () => {
    const repo = 'stampede/app';
    const gun = `${registry.host}/${repo}`;
    const img = await signedImage(repo);
    const tg = await startTwoWorkers('stampede');
    const before = notary.requests().filter((u) => u.includes(`/${gun}/_trust/`)).length;
    const agent = new Agent({ connections: 1000 });
    const statuses = await Promise.all(
      Array.from({ length: 1000 }, async () => {
        const r = await request(`${tg.url}/v2/${repo}/manifests/v1`, { method: 'HEAD', dispatcher: agent, headers: { accept: img.mediaType } });
        await r.body.dump();
        return r.statusCode;
      }),
    );
    await agent.close();
    expect(statuses.filter((s) => s === 200)).toHaveLength(1000);
    const fetched = notary
      .requests()
      .filter((u) => u.includes(`/${gun}/_trust/`))
      .slice(before)
      .map((u) => u.split('/').pop()!.replace(/\.[0-9a-f]{64}\.json$/, '.<sha256>.json'));
    // One per role, from whichever worker took the lock (its first-contact prefetch asks by name, and
    // for targets/releases too); the other found them in the store.
    expect(fetched.sort()).toEqual(['releases.json', 'root.json', 'snapshot.json', 'targets.json', 'timestamp.json']);
    // Both workers answered (their audit lines carry the worker id), one line per request.
    let audit: Array<Record<string, unknown>> = [];
    for (const deadline = Date.now() + 5000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
      audit = logLines(tg.logFile).filter((l) => l.audit === true && l.repo === repo);
      if (audit.length >= 1000) break;
    }
    expect(audit).toHaveLength(1000);
    expect(audit.every((l) => l.decision === 'allow' && l.digest === img.digest)).toBe(true);
    expect(new Set(audit.map((l) => l.worker))).toEqual(new Set([1, 2]));
  }, 120_000);

  it('blob cache across workers: a layer one worker committed is served by the other from disk, and the primary keeps the directory under its cap', async () => {
    const repo = 'blobs/app';
    const sizes = 6;
    const digests: string[] = [];
    for (let i = 0; i < sizes; i++) digests.push(await pushBlob(registry.url, repo, MiB, 40 + i));
    const cacheDir = join(dir, 'workers-blobcache');
    const tg = await startTwoWorkers('blobs', { blobCache: { path: cacheDir, maxBytes: 3 * MiB } });
    // A fresh connection per pull: the primary hands connections to the workers in turn.
    const pull = async (digest: string) => {
      const agent = new Agent();
      const r = await request(`${tg.url}/v2/${repo}/blobs/${digest}`, { dispatcher: agent });
      const body = Buffer.from(await r.body.arrayBuffer());
      await agent.close();
      return { status: r.statusCode, digest: `sha256:${createHash('sha256').update(body).digest('hex')}` };
    };
    const upstreamGets = (digest: string) =>
      readFileSync(registry.logFile, 'utf8')
        .split('\n')
        .filter((l) => l.includes('"msg":"response completed'))
        .map((l) => JSON.parse(l) as Record<string, string>)
        .filter((e) => e['http.request.method'] === 'GET' && e['http.request.uri'] === `/v2/${repo}/blobs/${digest}`).length;
    for (let i = 0; i < 8; i++) expect(await pull(digests[0]!)).toEqual({ status: 200, digest: digests[0] });
    expect(upstreamGets(digests[0]!)).toBe(1);

    // Six 1 MiB layers over two workers: each keeps its own view under 3 MiB, together they hold more;
    // the primary's sweep prunes the directory to the cap.
    for (const d of digests.slice(1)) expect(await pull(d)).toEqual({ status: 200, digest: d });
    const held = () => cachedBytes(join(cacheDir, 'blobs'));
    let bytes = held();
    for (const deadline = Date.now() + 20_000; Date.now() < deadline && bytes > 3 * MiB; await new Promise((r) => setTimeout(r, 200))) bytes = held();
    expect(bytes).toBeLessThanOrEqual(3 * MiB);
    expect(logLines(tg.logFile).some((l) => String(l.msg).startsWith('blob cache over its cap across workers'))).toBe(true);
    // What was pruned under a worker that indexed it is fetched again, correct.
    for (const d of digests) expect(await pull(d)).toEqual({ status: 200, digest: d });
  }, 120_000);

  it('SIGTERM to the primary drains every worker: audit lines = responses received, then all exit', async () => {
    const repo = 'drain/app';
    const img = await signedImage(repo);
    const tg = await startTwoWorkers('drain', { limits: { shutdownGraceSeconds: 20 } });
    const pool = new Pool(tg.url, { connections: 32 });
    let received = 0;
    let failed = 0;
    let stopped: Promise<void> | undefined;
    await Promise.all(
      Array.from({ length: 4000 }, async (_, i) => {
        try {
          const r = await pool.request({ path: `/v2/${repo}/manifests/v1`, method: i % 2 ? 'HEAD' : 'GET', headers: { accept: img.mediaType } });
          await r.body.dump();
          if (r.statusCode === 200) received++;
          if (received === 300) stopped = tg.stop();
        } catch {
          failed++;
        }
      }),
    );
    await stopped;
    await pool.close().catch(() => undefined);
    expect(stopped).toBeDefined();
    expect(failed).toBeGreaterThan(0);
    const all = logLines(tg.logFile);
    const audit = all.filter((l) => l.audit === true);
    expect(audit).toHaveLength(received);
    expect(new Set(audit.map((l) => l.worker))).toEqual(new Set([1, 2]));
    // Each worker drained and stopped, then the primary.
    expect(new Set(all.filter((l) => l.msg === 'stopped' && l.worker !== undefined).map((l) => l.worker))).toEqual(new Set([1, 2]));
    expect(all.at(-1)).toMatchObject({ msg: 'stopped' });
    expect(all.at(-1)).not.toHaveProperty('worker');
  }, 120_000);
});
