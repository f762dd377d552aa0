// A tag signed with Docker Content Trust right after trustgate has cached the repository is served at
// once, not after the cache period (issue 25 "Freshness"): a miss against cached data revalidates the
// timestamp once, single-flight and at most once a second per repository, so a flood of unsigned-tag
// requests cannot multiply requests to the notary server. Real notary-server, notary CLI, docker-registry.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { NotaryCli, pushSignedImage } from '../support/notary-cli.js';
import { startNotary, tufRequestsFor, type NotaryLab } from '../support/notary-server.js';
import { pushImage } from '../support/oci-image.js';
import { makePki } from '../support/pki.js';
import { stopAndRemove } from '../support/spawn-server.js';
import { startTrustgate, type Trustgate } from '../support/trustgate-process.js';

const REPO = 'fresh/app';
let dir: string;
let registry: Registry;
let notary: NotaryLab;
let proxy: Trustgate;
let cli: NotaryCli;
let gun: string;

async function status(repo: string, tag: string): Promise<{ status: number; digest?: string; code?: string }> {
  const res = await fetch(`${proxy.url}/v2/${repo}/manifests/${tag}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  const body = await res.text();
  return { status: res.status, digest: res.headers.get('docker-content-digest') ?? undefined, code: res.status === 200 ? undefined : JSON.parse(body).errors?.[0]?.detail?.code };
}

/** Poll until the tag is served; the time from `since` to the first 200. */
async function servedAfter(repo: string, tag: string, since: number, digest: string): Promise<number> {
  for (;;) {
    const r = await status(repo, tag);
    if (r.status === 200) {
      expect(r.digest).toBe(digest);
      return Date.now() - since;
    }
    if (Date.now() - since > 10_000) throw new Error(`${repo}:${tag} still refused (${r.code}) 10 s after signing`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-fresh-'));
  const pki = await makePki(dir);
  [registry, notary] = await Promise.all([startRegistry(dir), startNotary(dir, pki, { signer: 'local' })]);
  gun = `${registry.host}/${REPO}`;
  cli = new NotaryCli(notary.url, notary.caFile, join(dir, 'trust'));
  await pushSignedImage(cli, dir, registry.host, REPO, 'v1');
  // The default cache period (limits.trustCacheSeconds 300): without revalidation a new tag would wait for it.
  proxy = await startTrustgate(dir, { upstreams: [{ name: 'local', registry: registry.url, gun: registry.host, notary: { url: notary.url, ca: notary.caFile }, policy: 'enforce' }], default: 'local' });
}, 180_000);

afterAll(async () => stopAndRemove(dir, proxy, notary, registry));

describe('newly signed tags are served at once', () => {
  it('a tag signed with the notary CLI after trustgate cached the repository is served within 2 s', async () => {
    expect((await status(REPO, 'v1')).status).toBe(200);
    const img = await pushImage(dir, registry.host, REPO, 'v2');
    expect(await status(REPO, 'v2')).toMatchObject({ status: 403, code: 'TAG_NOT_SIGNED' });
    // Cached data is older than a second by the time the tag is signed: the next miss revalidates.
    await new Promise((r) => setTimeout(r, 1100));
    const f = join(dir, 'm-v2');
    (await import('node:fs')).writeFileSync(f, img.manifest);
    await cli.sign(gun, 'v2', f);
    const signedAt = Date.now();
    expect(await servedAfter(REPO, 'v2', signedAt, img.digest)).toBeLessThan(2000);
  });

  it('a repository refused as having no trust data is served within 2 s of its first signature', async () => {
    const repo = 'fresh/new';
    const img = await pushImage(dir, registry.host, repo, 'v1');
    expect(await status(repo, 'v1')).toMatchObject({ status: 403, code: 'TRUST_DATA_MISSING' });
    await new Promise((r) => setTimeout(r, 1100));
    const f = join(dir, 'm-new');
    (await import('node:fs')).writeFileSync(f, img.manifest);
    await cli.initRepo(`${registry.host}/${repo}`);
    await cli.sign(`${registry.host}/${repo}`, 'v1', f);
    const signedAt = Date.now();
    expect(await servedAfter(repo, 'v1', signedAt, img.digest)).toBeLessThan(2000);
  });

  it('1000 unsigned-tag requests make at most 2 timestamp fetches per second', async () => {
    await new Promise((r) => setTimeout(r, 1100));
    const before = tufRequestsFor(notary, gun).filter((p) => p.startsWith('timestamp')).length;
    const agent = new Agent({ connections: 64 });
    const start = Date.now();
    const codes = await Promise.all(
      Array.from({ length: 1000 }, async (_, i) => {
        const res = await request(`${proxy.url}/v2/${REPO}/manifests/nope-${i % 50}`, { dispatcher: agent });
        const body = (await res.body.json()) as { errors: Array<{ detail: { code: string } }> };
        return `${res.statusCode} ${body.errors[0]!.detail.code}`;
      }),
    );
    const seconds = (Date.now() - start) / 1000;
    await agent.close();
    expect(new Set(codes)).toEqual(new Set(['403 TAG_NOT_SIGNED']));
    const fetched = tufRequestsFor(notary, gun).filter((p) => p.startsWith('timestamp')).length - before;
    expect(fetched).toBeGreaterThanOrEqual(1); // the first miss did revalidate
    expect(fetched).toBeLessThanOrEqual(2 * Math.ceil(seconds));
  });
});
