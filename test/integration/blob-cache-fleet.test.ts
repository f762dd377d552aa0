// A fleet: two trustgate replicas, each with its own disk cache, chained to one distribution
// registry in proxy mode (its own filesystem storage) as the shared tier in front of the upstream:
//
//   skopeo → trustgate A | trustgate B → docker-registry (proxy.remoteurl) → docker-registry (upstream)
//
// Signed tags pull through either replica, unsigned ones are refused, and the upstream sends each
// layer only for the first replica (the shared tier holds it); each replica fetches it once from the shared tier.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { NotaryCli } from '../support/notary-cli.js';
import { startNotary, type NotaryLab } from '../support/notary-server.js';
import { pushImage, type PushedImage } from '../support/oci-image.js';
import { makePki } from '../support/pki.js';
import { startTrustgate, type Trustgate } from '../support/trustgate-process.js';

const run = promisify(execFile);
const REPO = 'fleet/app';
let dir: string;
let upstream: Registry;
let shared: Registry;
let notary: NotaryLab;
const replicas: Trustgate[] = [];
let signed: PushedImage;

function blobGets(reg: Registry, digest: string): number {
  return readFileSync(reg.logFile, 'utf8')
    .split('\n')
    .filter((l) => l.includes('"msg":"response completed'))
    .map((l) => JSON.parse(l) as Record<string, string>)
    .filter((e) => e['http.request.method'] === 'GET' && e['http.request.uri'] === `/v2/${REPO}/blobs/${digest}`).length;
}

async function skopeo(via: Trustgate, tag: string, out: string): Promise<{ ok: boolean; err: string }> {
  try {
    await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${via.host}/${REPO}:${tag}`, `dir:${join(dir, out)}`], { timeout: 120_000 });
    return { ok: true, err: '' };
  } catch (e) {
    return { ok: false, err: String((e as { stderr?: string }).stderr) };
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-fleet-'));
  const pki = await makePki(dir);
  [upstream, notary] = await Promise.all([startRegistry(dir), startNotary(dir, pki, { signer: 'local' })]);
  shared = await startRegistry(dir, { proxyRemote: upstream.url });
  // Signatures name the upstream's GUN; the shared tier is only where the bytes come from.
  const gun = `${upstream.host}/${REPO}`;
  const cli = new NotaryCli(notary.url, notary.caFile, join(dir, 'trust'));
  await cli.initRepo(gun);
  signed = await pushImage(dir, upstream.host, REPO, 'signed');
  await pushImage(dir, upstream.host, REPO, 'unsigned');
  writeFileSync(join(dir, 'm'), signed.manifest);
  await cli.sign(gun, 'signed', join(dir, 'm'));
  for (const name of ['replica-a', 'replica-b']) {
    replicas.push(
      await startTrustgate(
        dir,
        { upstreams: [{ name: 'hub', registry: shared.url, gun: upstream.host, notary: { url: notary.url, ca: notary.caFile }, policy: 'enforce' }], default: 'hub', log: { level: 'warn' } },
        name,
      ),
    );
  }
});

afterAll(async () => {
  for (const r of replicas) await r.stop();
  await shared?.stop();
  await notary?.stop();
  await upstream?.stop();
  if (dir && !process.env.KEEP) rmSync(dir, { recursive: true, force: true });
});

describe('fleet: replicas with their own disk caches, chained to a distribution proxy-mode registry', () => {
  it('a signed tag pulls through both replicas; the second replica costs the upstream nothing', async () => {
    const [a, b] = replicas as [Trustgate, Trustgate];
    const got = await skopeo(a, 'signed', 'signed-a');
    expect(got.ok, got.err).toBe(true);
    // A second pull through the same replica comes from its own disk.
    expect((await skopeo(a, 'signed', 'signed-a-again')).ok).toBe(true);
    // distribution 2.8's proxy mode fetches a blob for the client and again to store it (storeLocal,
    // asynchronous): wait until the shared tier holds every layer in its own storage.
    for (let t = 0; t < 100 && !signed.blobs.every((x) => existsSync(join(shared.storage, 'docker/registry/v2/blobs/sha256', x.digest.slice(7, 9), x.digest.slice(7), 'data'))); t++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const upstreamAfterA = signed.blobs.map((x) => blobGets(upstream, x.digest));
    for (const n of upstreamAfterA) expect(n).toBeGreaterThan(0);
    const res = await skopeo(b, 'signed', 'signed-b');
    expect(res.ok, res.err).toBe(true);
    expect(signed.blobs.map((x) => blobGets(upstream, x.digest))).toEqual(upstreamAfterA);
    for (const x of signed.blobs) {
      // Each replica fetched each layer once from the shared tier, whatever the number of pulls.
      expect(blobGets(shared, x.digest)).toBe(replicas.length);
      expect(readFileSync(join(dir, 'signed-b', x.digest.slice(7))).equals(x.bytes)).toBe(true);
    }
  });

  it('an unsigned tag is refused by every replica', async () => {
    for (const [i, r] of replicas.entries()) {
      const got = await skopeo(r, 'unsigned', `unsigned-${i}`);
      expect(got.ok).toBe(false);
      expect(got.err).toMatch(/denied|no valid trust data|403/i);
    }
  });
});
