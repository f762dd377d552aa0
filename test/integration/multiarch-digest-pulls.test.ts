// Multi-arch images under `digestPulls: signed` (issue 25 item 6), with real parts: a real 2-platform
// OCI index pushed with skopeo `copy --all` to the real docker-registry, its tag signed with the real
// notary CLI (and, for `require: cosign`, the index digest signed in cosign's tag form), trustgate
// started as operators run it, and the real clients: containerd's ctr and dockerd pull the tag, which
// means the index by tag (or digest) and then the platform manifest BY DIGEST. Nothing signs that child
// itself; the signed index that lists it covers it (docs/trust-model.md, "Multi-arch images under
// digestPulls: signed"). A child of an unsigned index stays refused, and a trustgate that never served
// the index finds its parent by one scan of the signed targets, reused for cache.tagTtlSeconds.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startContainerd, writeHostsToml, type Containerd } from '../support/containerd.js';
import { makeCosignKey, pushClassicSignatures, signPayload, simpleSigningPayload } from '../support/cosign-sign.js';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { pinHub, startDockerd, unpinHub, type Dockerd } from '../support/dockerd.js';
import { NotaryCli } from '../support/notary-cli.js';
import { startNotary, type NotaryLab } from '../support/notary-server.js';
import { pushImage, pushIndex, type Blob, type PushedImage } from '../support/oci-image.js';
import { makePki } from '../support/pki.js';
import { auditRecords, skopeoPull } from '../support/through-proxy.js';
import { startTrustgate, type Trustgate } from '../support/trustgate-process.js';

const run = promisify(execFile);
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

let dir: string;
let registry: Registry;
let notary: NotaryLab;
let proxy: Trustgate;
let cold: Trustgate | undefined;
let containerd: Containerd;
let dockerd: Dockerd;
let hostsDir: string;
let config: Record<string, unknown>;
/** library/multi:v1, DCT-signed; library/multi:unsigned, an index nobody signed; c/multi:v1, cosign-signed. */
let multi: PushedImage & { children: Blob[] };
let unsignedIndex: PushedImage & { children: Blob[] };
let cosignIndex: PushedImage & { children: Blob[] };
let single: PushedImage;

/** GET a manifest by digest through a trustgate: status, digest header, body, refusal code. */
async function byDigest(tg: Trustgate, repo: string, digest: string, accept = OCI_MANIFEST): Promise<{ status: number; digest: string | null; body: Buffer; code?: string }> {
  const res = await fetch(`${tg.url}/v2/${repo}/manifests/${digest}`, { headers: { accept } });
  const body = Buffer.from(await res.arrayBuffer());
  let code: string | undefined;
  if (res.status !== 200) code = (JSON.parse(body.toString()) as { errors: Array<{ detail: { code: string } }> }).errors[0]?.detail.code;
  return { status: res.status, digest: res.headers.get('docker-content-digest'), body, code };
}

const scans = (tg: Trustgate) => readFileSync(tg.logFile, 'utf8').split('\n').filter((l) => l.includes('scanned signed targets for multi-arch indexes')).length;
const manifestGets = (repo: string) => registry.requests().filter((u) => u.startsWith(`/v2/${repo}/manifests/`)).length;

beforeAll(async () => {
  pinHub();
  dir = mkdtempSync(join(tmpdir(), 'trustgate-multiarch-'));
  const pki = await makePki(dir);
  [registry, notary] = await Promise.all([startRegistry(dir), startNotary(dir, pki, { signer: 'local' })]);
  multi = await pushIndex(dir, registry.host, 'library/multi', 'v1');
  unsignedIndex = await pushIndex(dir, registry.host, 'library/multi', 'unsigned');
  single = await pushImage(dir, registry.host, 'library/multi', 'single');
  // Docker Hub names as the mirror sees them: GUN docker.io/library/multi. The index bytes signed are
  // exactly the bytes the registry serves for v1; a single-arch tag is signed next to it.
  const cli = new NotaryCli(notary.url, notary.caFile, join(dir, 'trust'));
  await cli.initRepo('docker.io/library/multi');
  writeFileSync(join(dir, 'multi-index'), multi.manifest);
  await cli.sign('docker.io/library/multi', 'v1', join(dir, 'multi-index'));
  writeFileSync(join(dir, 'multi-single'), single.manifest);
  await cli.sign('docker.io/library/multi', 'single', join(dir, 'multi-single'));
  // The very same index, byte for byte, in another repository whose trust data signs something else.
  await run('skopeo', ['copy', '--all', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${registry.host}/library/multi:v1`, `docker://${registry.host}/library/other:v1`], { timeout: 120_000 });
  const otherImage = await pushImage(dir, registry.host, 'library/other', 'plain');
  await cli.initRepo('docker.io/library/other');
  writeFileSync(join(dir, 'other-plain'), otherImage.manifest);
  await cli.sign('docker.io/library/other', 'plain', join(dir, 'other-plain'));
  // require: cosign — the index digest carries a cosign signature (classic tag form), its children none.
  cosignIndex = await pushIndex(dir, registry.host, 'c/multi', 'v1');
  const key = makeCosignKey();
  const payload = simpleSigningPayload(cosignIndex.digest, { repo: `docker.io/c/multi` });
  await pushClassicSignatures(registry.url, 'c/multi', cosignIndex.digest, [{ payload, signature: signPayload(payload, key.privateKey) }]);
  writeFileSync(join(dir, 'cosign.pub'), key.publicPem);
  config = {
    upstreams: [
      {
        name: 'hub',
        registry: registry.url,
        gun: 'docker.io',
        notary: { url: notary.url, ca: notary.caFile },
        cosign: { keys: [join(dir, 'cosign.pub')] },
        policy: 'enforce',
        digestPulls: 'signed',
        repositories: [{ match: 'c/*', policy: 'enforce', require: 'cosign', digestPulls: 'signed' }],
      },
    ],
    default: 'hub',
    log: { level: 'debug' },
  };
  proxy = await startTrustgate(dir, config);
  containerd = await startContainerd(dir);
  hostsDir = join(dir, 'hosts');
  writeHostsToml(hostsDir, 'docker.io', proxy.url);
  dockerd = await startDockerd(dir, proxy);
}, 300_000);

afterAll(async () => {
  await dockerd?.stop();
  await containerd?.stop();
  await cold?.stop();
  await proxy?.stop();
  await notary?.stop();
  await registry?.stop();
  unpinHub();
  if (dir && !process.env.KEEP) rmSync(dir, { recursive: true, force: true });
});

describe('a signed multi-arch index under digestPulls: signed', () => {
  it('the setup is what the test means: the index lists two platform manifests and the registry serves its bytes', async () => {
    expect(multi.children).toHaveLength(2);
    const res = await fetch(`${registry.url}/v2/library/other/manifests/v1`, { headers: { accept: OCI_INDEX } });
    expect(res.headers.get('docker-content-digest')).toBe(multi.digest); // the same bytes in library/other
  });

  it('containerd (ctr) pulls it by tag: the index, then its platform manifest by digest', async () => {
    const r = await containerd.pull('docker.io/library/multi:v1', hostsDir);
    expect(r.ok, r.out).toBe(true);
    const lines = auditRecords(proxy.logFile).filter((l) => l.repo === 'library/multi');
    const amd64 = multi.children[0]!.digest; // the index lists amd64 first; this machine is x86_64
    expect(lines).toContainEqual(expect.objectContaining({ ref: amd64, decision: 'allow', digestPulls: 'signed', satisfiedBy: `index ${multi.digest} (dct targets tag v1)` }));
    expect(lines.filter((l) => l.decision === 'deny')).toEqual([]);
  });

  it('dockerd pulls it by tag through registry-mirrors', async () => {
    const r = await dockerd.docker(['pull', 'multi:v1']);
    expect(r.ok, r.out).toBe(true);
    expect(r.out).toContain(multi.digest);
    const lines = auditRecords(proxy.logFile).filter((l) => l.repo === 'library/multi');
    expect(lines).toContainEqual(expect.objectContaining({ ref: 'v1', decision: 'allow', digest: multi.digest }));
    expect(lines.filter((l) => l.decision === 'deny')).toEqual([]);
  });

  it('serves each child by digest, byte for byte, naming the index in X-Trustgate-Verified-By', async () => {
    for (const c of multi.children) {
      const r = await byDigest(proxy, 'library/multi', c.digest);
      expect(r.status).toBe(200);
      expect(r.digest).toBe(c.digest);
      expect(r.body.equals(c.bytes)).toBe(true);
    }
    const res = await fetch(`${proxy.url}/v2/library/multi/manifests/${multi.children[1]!.digest}`, { method: 'HEAD' });
    expect(res.headers.get('x-trustgate-verified-by')).toBe(`index ${multi.digest} (dct targets tag v1)`);
  });

  it('refuses a child of the unsigned index in the same repository: DIGEST_NOT_SIGNED', async () => {
    for (const c of unsignedIndex.children) {
      const r = await byDigest(proxy, 'library/multi', c.digest);
      expect(r.status).toBe(403);
      expect(r.code).toBe('DIGEST_NOT_SIGNED');
    }
    const r = await containerd.pull('docker.io/library/multi:unsigned', hostsDir);
    expect(r.ok).toBe(false);
  });

  it('refuses the same children in another repository where the index is not signed: DIGEST_NOT_SIGNED', async () => {
    // library/other holds the signed index's exact bytes, but its own trust data signs only `plain`.
    const idx = await byDigest(proxy, 'library/other', multi.digest, OCI_INDEX);
    expect(idx.status).toBe(403);
    for (const c of multi.children) {
      const r = await byDigest(proxy, 'library/other', c.digest);
      expect(r.status).toBe(403);
      expect(r.code).toBe('DIGEST_NOT_SIGNED');
    }
    expect(auditRecords(proxy.logFile)).toContainEqual(expect.objectContaining({ repo: 'library/other', ref: multi.children[0]!.digest, decision: 'deny', code: 'DIGEST_NOT_SIGNED' }));
  });

  it('a single-arch image is no parent: its own digest is served, an unrelated manifest stays refused', async () => {
    expect((await byDigest(proxy, 'library/multi', single.digest)).status).toBe(200);
    expect((await byDigest(proxy, 'library/multi', unsignedIndex.digest, OCI_INDEX)).code).toBe('DIGEST_NOT_SIGNED');
  });
});

describe('a trustgate that never served the index (another replica did)', () => {
  it('serves a child by digest at once, from one scan of the signed targets, reused for many requests', async () => {
    cold = await startTrustgate(dir, config, 'cold');
    const before = manifestGets('library/multi');
    const asks = Array.from({ length: 40 }, (_, i) => byDigest(cold!, 'library/multi', multi.children[i % 2]!.digest));
    const got = await Promise.all(asks);
    expect(got.map((r) => r.status)).toEqual(Array(40).fill(200));
    expect(auditRecords(cold.logFile)).toContainEqual(expect.objectContaining({ ref: multi.children[0]!.digest, decision: 'allow', satisfiedBy: `index ${multi.digest} (dct targets tag v1)` }));
    // Unsigned children asked for in a flood: refused, with no scan beyond the first within the TTL.
    const refused = await Promise.all(Array.from({ length: 40 }, (_, i) => byDigest(cold!, 'library/multi', unsignedIndex.children[i % 2]!.digest)));
    expect(refused.map((r) => r.code)).toEqual(Array(40).fill('DIGEST_NOT_SIGNED'));
    expect(scans(cold)).toBe(1);
    // Upstream: each child once (manifest cache), the signed targets once (v1's index and `single`).
    expect(manifestGets('library/multi') - before).toBeLessThanOrEqual(6);
  });
});

describe('require: cosign, the index digest cosign-signed', () => {
  it('skopeo pulls the tag: the index by its signature, then its platform manifest by digest', async () => {
    const r = await skopeoPull(proxy.host, 'c/multi', 'v1', dir);
    expect(r.ok, r.out).toBe(true);
    const lines = auditRecords(proxy.logFile).filter((l) => l.repo === 'c/multi');
    expect(lines).toContainEqual(expect.objectContaining({ ref: 'v1', decision: 'allow', digest: cosignIndex.digest, satisfiedBy: expect.stringContaining('cosign key') }));
    expect(lines).toContainEqual(expect.objectContaining({ ref: cosignIndex.children[0]!.digest, decision: 'allow', satisfiedBy: expect.stringMatching(new RegExp(`^index ${cosignIndex.digest} \\(cosign key `)) }));
  });

  it('an index first answered by the warm path (after a tags/list filled the caches) still covers its children', async () => {
    const fresh = await startTrustgate(dir, config, 'warm-first');
    try {
      const list = await fetch(`${fresh.url}/v2/c/multi/tags/list`);
      expect(((await list.json()) as { tags: string[] }).tags).toContain('v1');
      // The tag's resolution and verdict are cached now: this pull is answered synchronously, warm.
      const index = await fetch(`${fresh.url}/v2/c/multi/manifests/v1`, { headers: { accept: cosignIndex.mediaType } });
      expect(index.status).toBe(200);
      expect(index.headers.get('docker-content-digest')).toBe(cosignIndex.digest);
      const child = await byDigest(fresh, 'c/multi', cosignIndex.children[0]!.digest);
      expect(child.status).toBe(200);
    } finally {
      await fresh.stop();
    }
  });

  it('serves the other child by digest too, and refuses a manifest the index does not list', async () => {
    const r = await byDigest(proxy, 'c/multi', cosignIndex.children[1]!.digest);
    expect(r.status).toBe(200);
    expect(r.body.equals(cosignIndex.children[1]!.bytes)).toBe(true);
    const stray = await pushImage(dir, registry.host, 'c/multi', 'stray');
    const s = await byDigest(proxy, 'c/multi', stray.digest);
    expect(s.status).toBe(403);
    expect(s.code).toBe('DIGEST_NOT_SIGNED');
  });
});
