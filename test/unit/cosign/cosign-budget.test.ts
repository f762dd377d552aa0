// CosignVerifier under junk (issue 27): attestation layers ahead of the signature in the .sig manifest,
// more genuine-looking junk than one request's budget, listed bundles the registry does not have, and
// a cached verdict that another trust must not reuse. Against a node:http registry stand-in.
import { createHash, createPublicKey } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CosignVerifier } from '../../../src/signatures/cosign/cosign-verifier.js';
import type { RegistryClient } from '../../../src/registry/registry-client.js';
import { makeCosignKey, signPayload, simpleSigningPayload } from '../../support/cosign-sign.js';
import { registryStandIn, type RegistryStandIn } from '../support/registry-stand-in.js';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const subject = `sha256:${'a'.repeat(64)}`;
const signer = makeCosignKey();
const stranger = makeCosignKey();
const trustOf = (k: ReturnType<typeof makeCosignKey>, name: string) => ({ keys: [{ name, key: createPublicKey(k.publicPem) }], identities: [] });
const SS = 'application/vnd.dev.cosign.simplesigning.v1+json';
const BUNDLE = 'application/vnd.dev.sigstore.bundle.v0.3+json';

const blobs = new Map<string, Buffer>();
let sigManifest: Buffer | undefined;
let referrers: unknown[] = [];
let requests: string[] = [];
let registry: RegistryStandIn;
let client: RegistryClient;

function layer(payload: Buffer, signature: string, mediaType = SS) {
  blobs.set(sha(payload), payload);
  return { mediaType, digest: sha(payload), size: payload.length, annotations: { 'dev.cosignproject.cosign/signature': signature } };
}
const signedLayer = (k: ReturnType<typeof makeCosignKey>, n = 0) => {
  const payload = Buffer.from(JSON.stringify({ ...JSON.parse(simpleSigningPayload(subject).toString()), optional: { n } }));
  return layer(payload, signPayload(payload, k.privateKey));
};
const setSig = (layers: object[]) => (sigManifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', layers })));
const fetches = () => {
  const n = requests.filter((p) => p.includes('/blobs/') || p.includes('/manifests/sha256:')).length;
  requests = [];
  return n;
};

beforeAll(async () => {
  registry = await registryStandIn((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    requests.push(url.pathname);
    if (/^\/v2\/\w+\/referrers\//.test(url.pathname) && url.pathname.endsWith(subject)) return void res.writeHead(200, { 'content-type': 'application/vnd.oci.image.index.v1+json' }).end(JSON.stringify({ schemaVersion: 2, manifests: referrers }));
    if (url.pathname.endsWith(`/manifests/sha256-${'a'.repeat(64)}.sig`) && sigManifest) return void res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end(sigManifest);
    const m = /^\/v2\/\w+\/(manifests|blobs)\/(sha256:[0-9a-f]{64})$/.exec(url.pathname);
    const b = m ? blobs.get(m[2]!) : undefined;
    if (b) return void res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': b.length }).end(b);
    res.writeHead(404).end();
  });
  client = registry.client;
});
afterAll(() => registry?.close());
beforeEach(() => {
  blobs.clear();
  sigManifest = undefined;
  referrers = [];
  requests = [];
});

describe('CosignVerifier: junk candidates', () => {
  it('100 attestation layers ahead of the signature are filtered before any limit and never fetched', async () => {
    const att = Buffer.alloc(1024, 'x');
    setSig([...Array.from({ length: 100 }, () => layer(att, '', 'application/vnd.dsse.envelope.v1+json')), signedLayer(signer)]);
    const v = new CosignVerifier(trustOf(signer, 'k'), 1);
    await expect(v.verify(client, 'reg/r', 'r', { digest: subject })).resolves.toMatchObject({ kind: 'cosign', by: expect.stringMatching(/^cosign key k sha256:/) });
    expect(requests.filter((p) => p.includes(sha(att)))).toEqual([]);
    expect(fetches()).toBe(1);
    await v.verify(client, 'reg/r', 'r', { digest: subject });
    expect(fetches()).toBe(0);
  });

  it('more junk than the budget: each request spends it on uncached candidates only, so a later one reaches the signature', async () => {
    setSig([...Array.from({ length: 40 }, (_, i) => signedLayer(stranger, i)), signedLayer(signer)]);
    const v = new CosignVerifier(trustOf(signer, 'k'), { maxSignatures: 16 });
    await expect(v.verify(client, 'reg/r', 'r', { digest: subject })).rejects.toMatchObject({ code: 'COSIGN_INVALID', message: expect.stringContaining('25 candidate(s) not examined') });
    expect(fetches()).toBe(16);
    await expect(v.verify(client, 'reg/r', 'r', { digest: subject })).rejects.toMatchObject({ code: 'COSIGN_INVALID', message: expect.stringContaining('9 candidate(s) not examined') });
    expect(fetches()).toBe(16);
    await expect(v.verify(client, 'reg/r', 'r', { digest: subject })).resolves.toMatchObject({ kind: 'cosign' });
    expect(fetches()).toBe(9);
    await expect(v.verify(client, 'reg/r', 'r', { digest: subject })).resolves.toMatchObject({ kind: 'cosign' });
    expect(fetches()).toBe(0);
  });

  it('a verdict is never reused under another trust (the cache key holds its fingerprint)', async () => {
    setSig([signedLayer(signer)]);
    const trusts = { a: trustOf(signer, 'a'), b: trustOf(stranger, 'b') };
    const v = new CosignVerifier((repo) => (repo.startsWith('a') ? trusts.a : trusts.b));
    await expect(v.verify(client, 'reg/a', 'a', { digest: subject })).resolves.toMatchObject({ kind: 'cosign' });
    expect(fetches()).toBe(1);
    await expect(v.verify(client, 'reg/b', 'b', { digest: subject })).rejects.toMatchObject({ code: 'COSIGN_INVALID', message: expect.stringContaining('layer 0:') });
    expect(fetches()).toBe(1);
  });

  it('bundle referrers the registry does not have cost one fetch each, then are remembered for a while', async () => {
    referrers = Array.from({ length: 50 }, (_, i) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: BUNDLE, digest: sha(Buffer.from(`missing ${i}`)), size: 500 }));
    const v = new CosignVerifier(trustOf(signer, 'k'));
    await expect(v.verify(client, 'reg/r', 'r', { digest: subject })).rejects.toMatchObject({ code: 'COSIGN_INVALID', message: expect.stringContaining('and 42 more') });
    expect(fetches()).toBe(50);
    await expect(v.verify(client, 'reg/r', 'r', { digest: subject })).rejects.toMatchObject({ code: 'COSIGN_INVALID' });
    expect(fetches()).toBe(0);
  });

  it('the signature byte budget bounds what one request fetches', async () => {
    const big = Buffer.alloc(60 * 1024, 'y');
    setSig([...Array.from({ length: 10 }, (_, i) => layer(Buffer.concat([big, Buffer.from(String(i))]), 'c2ln')), signedLayer(signer)]);
    const v = new CosignVerifier(trustOf(signer, 'k'), { signatureBytes: 128 * 1024 });
    await expect(v.verify(client, 'reg/r', 'r', { digest: subject })).rejects.toMatchObject({ code: 'COSIGN_INVALID', message: expect.stringContaining('not examined') });
  });
});
