// One decision for every signature kind (issue 25), with real parts: images in a real docker-registry,
// DCT signatures made with the real notary CLI against a real notary-server, cosign signatures in the
// classic tag form and Notation JWS signatures made from their specifications, trustgate started as a
// process. For every `require` form: the warm answer is the full path's answer (status, digest, and the
// audit line byte for byte but its duration), warm answers ask the upstream nothing, `tags/list` lists
// exactly what the manifest path serves; 1000 concurrent cold requests make one tag resolution and one
// signature listing upstream; a fresh cosign or Notation signature is served within 2 s; a moved tag is
// seen within cache.tagTtlSeconds; a second listing of 153 tags within the TTL costs no upstream GET.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { cosignSignImage, makeCosignKey } from '../support/cosign-sign.js';
import { NotaryCli } from '../support/notary-cli.js';
import { startNotary, type NotaryLab } from '../support/notary-server.js';
import { acmeNotation } from '../support/notation-sign.js';
import { pushImage, type PushedImage } from '../support/oci-image.js';
import { makePki } from '../support/pki.js';
import { stopAndRemove } from '../support/spawn-server.js';
import { startTrustgate, type Trustgate } from '../support/trustgate-process.js';

let dir: string;
let registry: Registry;
let notary: NotaryLab;
let proxy: Trustgate;
let cli: NotaryCli;
let notation: ReturnType<typeof acmeNotation>;
const cosignKey = makeCosignKey();
const TAG_TTL_SECONDS = 3;

type Form = 'dct' | 'cosign' | 'notation' | 'any-dct-cosign' | 'all-dct-notation' | 'any-cosign-notation' | 'all-cosign-notation';
const REQUIRE: Record<Form, unknown> = {
  dct: 'dct',
  cosign: 'cosign',
  notation: 'notation',
  'any-dct-cosign': { 'any-of': ['dct', 'cosign'] },
  'all-dct-notation': { 'all-of': ['dct', 'notation'] },
  'any-cosign-notation': { 'any-of': ['cosign', 'notation'] },
  'all-cosign-notation': { 'all-of': ['cosign', 'notation'] },
};
/** Tag → the kinds that sign it, in every form's repository. */
const TAGS: Record<string, Array<'dct' | 'cosign' | 'notation'>> = { all: ['dct', 'cosign', 'notation'], cosign: ['cosign'], notation: ['notation'], dct: ['dct'], none: [] };
/** What each form must serve, worked out by hand from the rule (any-of: one kind, all-of: every kind). */
const SERVES: Record<Form, string[]> = {
  dct: ['all', 'dct'],
  cosign: ['all', 'cosign'],
  notation: ['all', 'notation'],
  'any-dct-cosign': ['all', 'cosign', 'dct'],
  'all-dct-notation': ['all'],
  'any-cosign-notation': ['all', 'cosign', 'notation'],
  'all-cosign-notation': ['all'],
};
const FORMS = Object.keys(REQUIRE) as Form[];
const images = new Map<string, PushedImage>();

const cosignSign = (repo: string, img: PushedImage) => cosignSignImage(registry.url, registry.host, repo, img.digest, cosignKey.privateKey);
const notationSign = (repo: string, img: PushedImage) => notation.sign(registry.url, repo, img);

async function dctSign(repo: string, tag: string, img: PushedImage, init: boolean): Promise<void> {
  const gun = `${registry.host}/${repo}`;
  if (init) await cli.initRepo(gun);
  const f = join(dir, `m-${repo.replace(/\//g, '_')}-${tag}`);
  writeFileSync(f, img.manifest);
  await cli.sign(gun, tag, f);
}

const agent = new Agent({ connections: 1100, pipelining: 0 });

async function get(path: string, method: 'GET' | 'HEAD' = 'GET'): Promise<{ status: number; digest?: string; code?: string; body: string }> {
  const res = await request(`${proxy.url}${path}`, { method, dispatcher: agent, headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  const body = method === 'HEAD' ? '' : await res.body.text();
  if (method === 'HEAD') await res.body.dump();
  let code: string | undefined;
  try {
    code = (JSON.parse(body) as { errors?: Array<{ detail?: { code?: string } }> }).errors?.[0]?.detail?.code;
  } catch {
    /* a manifest or nothing */
  }
  return { status: res.statusCode, digest: res.headers['docker-content-digest'] as string | undefined, code, body };
}

/** GET `path` every 50 ms until `done` says so or `maxMs` pass: the last answer and how long it took. */
async function pollUntil(path: string, done: (r: Awaited<ReturnType<typeof get>>) => boolean, maxMs: number): Promise<{ r: Awaited<ReturnType<typeof get>>; took: number }> {
  const t0 = Date.now();
  let r = await get(path);
  while (!done(r) && Date.now() - t0 < maxMs) {
    await new Promise((res) => setTimeout(res, 50));
    r = await get(path);
  }
  return { r, took: Date.now() - t0 };
}

/** The raw audit lines trustgate wrote, in order. */
const auditLines = (): string[] =>
  readFileSync(proxy.logFile, 'utf8')
    .split('\n')
    .filter((l) => l.includes('"audit":true'));

/** An audit line without what differs between any two answers (its time and duration, the pino envelope). */
const decisionPart = (line: string): string => {
  const o = JSON.parse(line) as Record<string, unknown>;
  for (const k of ['time', 'durationMs', 'level', 'pid', 'hostname', 'msg']) delete o[k];
  return JSON.stringify(o);
};

/** Wait until `n` more audit lines than `from` are written; the new ones. */
async function newAuditLines(from: number, n: number): Promise<string[]> {
  for (const until = Date.now() + 5000; Date.now() < until; await new Promise((r) => setTimeout(r, 20))) {
    const l = auditLines();
    if (l.length >= from + n) return l.slice(from);
  }
  return auditLines().slice(from);
}

/** The registry's request log once it has stopped growing (it logs when a handler returns, a moment after the answer). */
async function settledRequests(): Promise<string[]> {
  let last = -1;
  for (;;) {
    const r = registry.allRequests();
    if (r.length === last) return r;
    last = r.length;
    await new Promise((res) => setTimeout(res, 300));
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-one-decision-'));
  const pki = await makePki(dir);
  [registry, notary] = await Promise.all([startRegistry(dir), startNotary(dir, pki, { signer: 'local' })]);
  cli = new NotaryCli(notary.url, notary.caFile, join(dir, 'trust'));
  notation = acmeNotation(dir);
  for (const form of FORMS) {
    const repo = `f-${form}/app`;
    let dctInit = true;
    for (const [tag, kinds] of Object.entries(TAGS)) {
      const img = await pushImage(dir, registry.host, repo, tag, `${form}-${tag}`);
      images.set(`${repo}:${tag}`, img);
      if (kinds.includes('cosign')) await cosignSign(repo, img);
      if (kinds.includes('notation')) await notationSign(repo, img);
      if (kinds.includes('dct')) {
        await dctSign(repo, tag, img, dctInit);
        dctInit = false;
      }
    }
  }
  const keyFile = join(dir, 'cosign.pub');
  writeFileSync(keyFile, cosignKey.publicPem);
  proxy = await startTrustgate(dir, {
    upstreams: [
      {
        name: 'lab',
        registry: registry.url,
        gun: registry.host,
        notary: { url: notary.url, ca: notary.caFile },
        cosign: { keys: [keyFile] },
        notation: { trustPolicy: notation.trustPolicy, trustStore: notation.trustStore },
        policy: 'enforce',
        require: 'dct',
        repositories: [
          ...FORMS.filter((f) => f !== 'dct').map((f) => ({ match: `f-${f}/*`, policy: 'enforce', require: REQUIRE[f] })),
          { match: 'cosign/*', policy: 'enforce', require: 'cosign' },
          { match: 'notation/*', policy: 'enforce', require: 'notation' },
        ],
      },
    ],
    default: 'lab',
    cache: { tagTtlSeconds: TAG_TTL_SECONDS },
  });
}, 300_000);

afterAll(async () => {
  await agent.close();
  await stopAndRemove(dir, proxy, notary, registry);
});

describe('one decision, replayed warm, for every require form', () => {
  it('serves what the rule says; the warm answer is the full answer, audit line included, and asks the upstream nothing', async () => {
    const wrong: string[] = [];
    for (const form of FORMS) {
      const repo = `f-${form}/app`;
      for (const tag of Object.keys(TAGS)) {
        const path = `/v2/${repo}/manifests/${tag}`;
        const shouldServe = SERVES[form].includes(tag);
        const before = auditLines().length;
        const full = await get(path);
        const fullHead = await get(path, 'HEAD');
        const mark = (await settledRequests()).length;
        const warm = await get(path);
        const warmHead = await get(path, 'HEAD');
        const lines = await newAuditLines(before, 4);
        const upstream = (await settledRequests()).slice(mark);
        const want = shouldServe ? 200 : 403;
        for (const [what, r] of [['full GET', full], ['full HEAD', fullHead], ['warm GET', warm], ['warm HEAD', warmHead]] as const) {
          if (r.status !== want) wrong.push(`${form} ${tag} ${what}: ${r.status} ${r.code ?? ''}, want ${want}`);
        }
        if (shouldServe) {
          const img = images.get(`${repo}:${tag}`)!;
          if (full.digest !== img.digest || warm.digest !== img.digest || warmHead.digest !== img.digest) wrong.push(`${form} ${tag}: served ${full.digest}/${warm.digest}/${warmHead.digest}, want ${img.digest}`);
          if (warm.body !== img.manifest.toString()) wrong.push(`${form} ${tag}: warm body differs from the pushed manifest`);
          // Within the TTL a warm answer asks the upstream nothing.
          if (upstream.length !== 0) wrong.push(`${form} ${tag}: warm answers made ${upstream.length} upstream requests: ${upstream.join(' ')}`);
        } else if (full.code !== warm.code) wrong.push(`${form} ${tag}: refused ${full.code} then ${warm.code}`);
        if (lines.length !== 4) wrong.push(`${form} ${tag}: ${lines.length} audit lines for 4 answers`);
        else {
          const [a, b, c, d] = lines.map(decisionPart);
          if (a !== c || b !== d || a !== b) wrong.push(`${form} ${tag}: audit lines differ:\n  full ${a}\n  warm ${c}`);
        }
      }
    }
    expect(wrong).toEqual([]);
  }, 240_000);

  it('tags/list lists exactly the tags the manifest path serves, under every form', async () => {
    for (const form of FORMS) {
      const repo = `f-${form}/app`;
      const res = await get(`/v2/${repo}/tags/list`);
      expect(res.status, form).toBe(200);
      const listed = (JSON.parse(res.body) as { tags: string[] }).tags;
      const served: string[] = [];
      for (const tag of Object.keys(TAGS)) if ((await get(`/v2/${repo}/manifests/${tag}`)).status === 200) served.push(tag);
      expect([...listed].sort(), form).toEqual([...served].sort());
      expect([...listed].sort(), form).toEqual([...SERVES[form]].sort());
    }
  }, 120_000);
});

describe('load on the upstream', () => {
  it('1000 concurrent cold requests for one cosign-signed tag make 1 tag resolution and 1 signature listing upstream', async () => {
    const repo = 'cosign/stampede';
    const img = await pushImage(dir, registry.host, repo, 'v1', 'stampede');
    await cosignSign(repo, img);
    const mark = (await settledRequests()).length;
    const answers = await Promise.all(Array.from({ length: 1000 }, () => get(`/v2/${repo}/manifests/v1`)));
    expect(answers.filter((a) => a.status !== 200).map((a) => `${a.status} ${a.code}`)).toEqual([]);
    expect(new Set(answers.map((a) => a.digest))).toEqual(new Set([img.digest]));
    const upstream = (await settledRequests()).slice(mark);
    const sig = `sha256-${img.digest.slice('sha256:'.length)}.sig`;
    expect(upstream.filter((u) => u === `/v2/${repo}/manifests/v1`), upstream.join('\n')).toHaveLength(1);
    expect(upstream.filter((u) => u === `/v2/${repo}/manifests/${sig}`), upstream.join('\n')).toHaveLength(1);
    expect(upstream.filter((u) => u.includes('/referrers/')).length).toBeLessThanOrEqual(1);
  }, 120_000);

  it('a second tags/list of 153 cosign-signed tags within cache.tagTtlSeconds makes no upstream request; the listing is what pulls serve', async () => {
    const repo = 'cosign/many';
    const signed: string[] = [];
    for (let i = 0; i < 153; i++) {
      const tag = `t${String(i).padStart(3, '0')}`;
      const img = await pushImage(dir, registry.host, repo, tag, `many-${i}`);
      if (i % 51 !== 7) {
        await cosignSign(repo, img);
        signed.push(tag);
      }
    }
    const mark = (await settledRequests()).length;
    const first = await get(`/v2/${repo}/tags/list`);
    expect(first.status).toBe(200);
    const firstRequests = (await settledRequests()).slice(mark);
    const firstCost = firstRequests.length;
    const kinds = new Map<string, number>();
    for (const u of firstRequests) {
      const k = u.replace(/^\/v2\/cosign\/many\//, '').replace(/sha256[-:][0-9a-f]{64}/, 'D').replace(/t\d{3}/, 'TAG');
      kinds.set(k, (kinds.get(k) ?? 0) + 1);
    }
    // The upstream's list includes cosign's own sha256-<hex>.sig tags: each is a candidate too (refused,
    // as a pull of it would be), which is most of a first listing's cost.
    console.log(`first listing, upstream requests by kind: ${JSON.stringify(Object.fromEntries(kinds))}`);
    const second = await get(`/v2/${repo}/tags/list`);
    const secondCost = (await settledRequests()).length - mark - firstCost;
    console.log(`tags/list of 153 tags: first listing ${firstCost} upstream requests, second ${secondCost}`);
    expect(second.body).toBe(first.body);
    expect(secondCost).toBe(0);
    expect((JSON.parse(first.body) as { tags: string[] }).tags).toEqual(signed);
    // Once the TTL is over, four concurrent listings share one computation: one upstream tags/list.
    await new Promise((r) => setTimeout(r, (TAG_TTL_SECONDS + 0.5) * 1000));
    const mark2 = (await settledRequests()).length;
    const four = await Promise.all(Array.from({ length: 4 }, () => get(`/v2/${repo}/tags/list`)));
    expect(new Set(four.map((f) => f.body))).toEqual(new Set([first.body]));
    expect((await settledRequests()).slice(mark2).filter((u) => u === `/v2/${repo}/tags/list`)).toHaveLength(1);
    // Each tag once for the listing, resolved then reused by the pulls below (within the TTL).
    const pulls = await Promise.all(Array.from({ length: 153 }, (_, i) => get(`/v2/${repo}/manifests/t${String(i).padStart(3, '0')}`)));
    expect(pulls.map((p, i) => (p.status === 200 ? `t${String(i).padStart(3, '0')}` : undefined)).filter(Boolean)).toEqual(signed);
  }, 180_000);
});

describe('freshness', () => {
  it('a tag pushed, refused as unsigned, then signed with cosign is served within 2 s of the signature', async () => {
    const repo = 'cosign/fresh';
    const img = await pushImage(dir, registry.host, repo, 'v1', 'fresh-1');
    expect((await get(`/v2/${repo}/manifests/v1`)).code).toBe('COSIGN_UNSIGNED');
    await cosignSign(repo, img);
    const { r, took } = await pollUntil(`/v2/${repo}/manifests/v1`, (a) => a.status === 200, 5000);
    console.log(`fresh cosign signature served after ${took} ms`);
    expect(r.status).toBe(200);
    expect(r.digest).toBe(img.digest);
    expect(took).toBeLessThan(2000);
  });

  it('a tag moved to a new digest and signed with Notation is served within 2 s, although the old resolution is cached', async () => {
    const repo = 'notation/moved';
    await pushImage(dir, registry.host, repo, 'v1', 'moved-unsigned');
    expect((await get(`/v2/${repo}/manifests/v1`)).status).toBe(403);
    // Moved: the tag now names another image, which is signed. The cached resolution names the old one.
    const next = await pushImage(dir, registry.host, repo, 'v1', 'moved-signed');
    await notationSign(repo, next);
    const { r, took } = await pollUntil(`/v2/${repo}/manifests/v1`, (a) => a.status === 200, 5000);
    console.log(`moved and Notation-signed tag served after ${took} ms`);
    expect(r.status).toBe(200);
    expect(r.digest).toBe(next.digest);
    expect(took).toBeLessThan(2000);
  });

  it('a signed tag moved to another signed digest is served at the new digest within cache.tagTtlSeconds, never anything unsigned', async () => {
    const repo = 'cosign/resigned';
    const old = await pushImage(dir, registry.host, repo, 'v1', 'resigned-1');
    await cosignSign(repo, old);
    expect((await get(`/v2/${repo}/manifests/v1`)).digest).toBe(old.digest);
    const next = await pushImage(dir, registry.host, repo, 'v1', 'resigned-2');
    await cosignSign(repo, next);
    const t0 = Date.now();
    const seen = new Set<string>();
    let r = await get(`/v2/${repo}/manifests/v1`);
    while (r.digest !== next.digest && Date.now() - t0 < (TAG_TTL_SECONDS + 3) * 1000) {
      if (r.status === 200) seen.add(r.digest!);
      await new Promise((res) => setTimeout(res, 100));
      r = await get(`/v2/${repo}/manifests/v1`);
    }
    const took = Date.now() - t0;
    console.log(`re-signed tag seen at its new digest after ${took} ms (tagTtlSeconds ${TAG_TTL_SECONDS})`);
    expect(r.digest).toBe(next.digest);
    expect([...seen].every((d) => d === old.digest)).toBe(true);
    expect(took).toBeLessThan((TAG_TTL_SECONDS + 1) * 1000);
  });
});
