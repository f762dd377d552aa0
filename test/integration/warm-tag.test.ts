// The synchronous warm tag path (src/server/handlers/warm-tag.ts) against real parts: once a tag's
// mapping and bytes are in memory it answers exactly what the full path answered — the same audit
// line byte for byte but for time and duration, the same headers and bytes — never past the trust
// cache period (a re-signed tag is served at its new digest), and never for a policy it does not prove.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { NotaryCli } from '../support/notary-cli.js';
import { startNotary, type NotaryLab } from '../support/notary-server.js';
import { pushImage, type PushedImage } from '../support/oci-image.js';
import { makePki } from '../support/pki.js';
import { stopAndRemove } from '../support/spawn-server.js';
import { startTrustgate, type Trustgate } from '../support/trustgate-process.js';

const REPO = 'warm/app';
const OPEN = 'open/app';
let dir: string;
let registry: Registry;
let notary: NotaryLab;
let cli: NotaryCli;
let v1: PushedImage;
let tg: Trustgate;

async function pull(repo: string, tag: string, method: 'GET' | 'HEAD') {
  const r = await request(`${tg.url}/v2/${repo}/manifests/${tag}`, { method, headers: { accept: v1.mediaType } });
  const body = Buffer.from(await r.body.arrayBuffer());
  const { date: _date, 'keep-alive': _ka, connection: _c, ...headers } = r.headers;
  return { status: r.statusCode, headers, body };
}

/** Raw audit lines (as written), with the two fields that differ per line blanked. */
async function auditLines(n: number): Promise<string[]> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const got = readFileSync(tg.logFile, 'utf8')
      .split('\n')
      .filter((l) => l.includes('"audit":true'))
      .map((l) => l.replace(/"time":\d+,/, '"time":0,').replace(/"durationMs":[\d.]+,/, '"durationMs":0,'));
    if (got.length >= n || Date.now() > deadline) return got;
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function requestsCounted(method: string): Promise<number> {
  const text = await (await request(`${tg.url}/metrics`)).body.text();
  const m = new RegExp(`trustgate_http_requests_total\\{route="manifest",method="${method}",status="200"\\} (\\d+)`).exec(text);
  return m ? Number(m[1]) : 0;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-warm-'));
  const pki = await makePki(dir);
  [registry, notary] = await Promise.all([startRegistry(dir), startNotary(dir, pki, { signer: 'local' })]);
  cli = new NotaryCli(notary.url, notary.caFile, join(dir, 'trust'));
  await cli.initRepo(`${registry.host}/${REPO}`);
  v1 = await pushImage(dir, registry.host, REPO, 'v1');
  writeFileSync(join(dir, 'v1'), v1.manifest);
  await cli.sign(`${registry.host}/${REPO}`, 'v1', join(dir, 'v1'));
  await cli.sign(`${registry.host}/${REPO}`, 'latest', join(dir, 'v1')); // two tags, one manifest
  await pushImage(dir, registry.host, OPEN, 'v1');
  tg = await startTrustgate(
    dir,
    {
      upstreams: [
        {
          name: 'lab',
          registry: registry.url,
          gun: registry.host,
          notary: { url: notary.url, ca: notary.caFile },
          policy: 'enforce',
          repositories: [{ match: 'open/*', policy: 'off' }],
        },
      ],
      default: 'lab',
      limits: { trustCacheSeconds: 2 },
    },
    'warm',
  );
}, 180_000);

afterAll(() => stopAndRemove(dir, tg, notary, registry));

describe('warm tag path', () => {
  it('answers repeated pulls of a tag exactly as the first, verified one, audit line included', async () => {
    const before = { GET: await requestsCounted('GET'), HEAD: await requestsCounted('HEAD') };
    // The first request of each tag goes the full way (trust resolved, manifest fetched by digest).
    const answers = [];
    for (const tag of ['v1', 'latest', 'v1', 'latest', 'v1', 'v1']) {
      for (const method of ['GET', 'HEAD'] as const) answers.push({ tag, method, ...(await pull(REPO, tag, method)) });
    }
    for (const a of answers) {
      expect(a.status, `${a.method} ${a.tag}`).toBe(200);
      expect(a.headers['docker-content-digest']).toBe(v1.digest);
      expect(a.headers['x-trustgate-verified-by']).toBe('dct targets');
      expect(a.body).toEqual(a.method === 'GET' ? v1.manifest : Buffer.alloc(0));
    }
    // Same headers on the first (full path) and later (warm) answers, per method.
    for (const method of ['GET', 'HEAD']) {
      const all = answers.filter((a) => a.method === method);
      for (const a of all) expect(a.headers).toEqual(all[0]!.headers);
    }
    const lines = await auditLines(answers.length);
    expect(lines).toHaveLength(answers.length);
    const byTag = (tag: string) => lines.filter((l) => l.includes(`"ref":"${tag}"`));
    for (const tag of ['v1', 'latest']) {
      const own = byTag(tag);
      expect(own.length).toBeGreaterThan(2);
      for (const l of own) expect(l).toBe(own[0]);
      expect(JSON.parse(own[0]!)).toMatchObject({ audit: true, upstream: 'lab', repo: REPO, ref: tag, decision: 'allow', digest: v1.digest, role: 'targets', satisfiedBy: 'dct targets', policy: 'enforce', require: 'dct' });
    }
    // Every answer, warm or not, is counted in the request metric.
    expect((await requestsCounted('GET')) - before.GET).toBe(6);
    expect((await requestsCounted('HEAD')) - before.HEAD).toBe(6);
  });

  it('serves a re-signed tag at its new digest once the cache period is over, never the old one', async () => {
    expect((await pull(REPO, 'v1', 'HEAD')).headers['docker-content-digest']).toBe(v1.digest);
    const v2 = await pushImage(dir, registry.host, REPO, 'v1', 'second build');
    expect(v2.digest).not.toBe(v1.digest);
    writeFileSync(join(dir, 'v2'), v2.manifest);
    await cli.sign(`${registry.host}/${REPO}`, 'v1', join(dir, 'v2'));
    const deadline = Date.now() + 2000 + 5000; // trustCacheSeconds 2, and time to verify again
    let digest: unknown;
    while (Date.now() < deadline) {
      digest = (await pull(REPO, 'v1', 'HEAD')).headers['docker-content-digest'];
      if (digest === v2.digest) break;
      expect(digest).toBe(v1.digest); // the old mapping, only until the set is re-verified
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(digest).toBe(v2.digest);
    const got = await pull(REPO, 'v1', 'GET');
    expect(got.body).toEqual(v2.manifest);
    expect(got.headers['docker-content-digest']).toBe(v2.digest);
  });

  it('never answers warm for a policy it does not prove: policy off keeps writing pass lines', async () => {
    const n = (await auditLines(0)).length;
    for (let i = 0; i < 3; i++) expect((await pull(OPEN, 'v1', 'HEAD')).status).toBe(200);
    const lines = (await auditLines(n + 3)).slice(n);
    expect(lines.map((l) => JSON.parse(l)).map((l) => [l.repo, l.decision, l.policy])).toEqual(Array(3).fill([OPEN, 'pass', 'off']));
  });
});
