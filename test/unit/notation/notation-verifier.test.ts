// NotationVerifier end to end against a small in-memory registry (node:http) that can answer the
// referrers API or only the tag schema: both signature manifest forms, trust anchored at an
// intermediate, the spec's `S` identity attribute, media type integrity, messages that name each check
// once, junk signatures in front of a valid one, the limit on signatures tried, and the cache.
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { NotationVerifier } from '../../../src/signatures/notation/notation-verifier.js';
import { parseTrustPolicy } from '../../../src/signatures/notation/trust-policy.js';
import type { RegistryClient } from '../../../src/registry/registry-client.js';
import { derB64, jwsEnvelope, makeCa, makeIntermediate, makeLeaf, signatureManifest, type SignatureForm } from '../../support/notation-sign.js';
import { registryStandIn, type RegistryStandIn } from '../support/registry-stand-in.js';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const dir = mkdtempSync(join(tmpdir(), 'trustgate-nverifier-'));
const root = makeCa(dir, 'acme');
const inter = makeIntermediate(dir, 'acme-issuing', root);
const signer = makeLeaf(dir, 'builder', inter, '/C=US/ST=WA/O=acme/OU=Build/CN=builder');
const chain = [derB64(signer.cert), derB64(inter.cert), derB64(root.cert)];
const cert = (f: string) => new X509Certificate(readFileSync(f));

const MT = 'application/vnd.oci.image.manifest.v1+json';
const image = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT, config: {}, layers: [] }));
const subject = { mediaType: MT, digest: sha(image), size: image.length };

// The registry's content: blobs and manifests by digest, tags, and whether it has the referrers API.
const store = new Map<string, Buffer>();
const tags = new Map<string, Buffer>();
let referrersApi = true;
let requests: string[] = [];
let registry: RegistryStandIn;
let client: RegistryClient;

function reset() {
  store.clear();
  tags.clear();
  requests = [];
}

async function addSignature(envelope: Buffer, form: SignatureForm = 'artifactType', subj = subject, thumbprints?: string[]): Promise<string> {
  const cfg = Buffer.from('{}');
  store.set(sha(cfg), cfg);
  store.set(sha(envelope), envelope);
  const m = signatureManifest(subj, { mediaType: 'application/jose+json', digest: sha(envelope), size: envelope.length }, form, { digest: sha(cfg), size: cfg.length }, thumbprints);
  store.set(sha(m), m);
  const tag = `sha256-${subj.digest.slice(7)}`;
  const index = tags.has(tag) ? JSON.parse(tags.get(tag)!.toString()) : { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] };
  // The referrers API copies the manifest's annotations into the listing (so does notation in the tag schema).
  index.manifests.push({ mediaType: MT, artifactType: 'application/vnd.cncf.notary.signature', digest: sha(m), size: m.length, annotations: JSON.parse(m.toString()).annotations });
  tags.set(tag, Buffer.from(JSON.stringify(index)));
  return sha(m);
}

const sign = (o: { target?: Partial<typeof subject>; key?: string; chain?: string[] } = {}) =>
  jwsEnvelope({ signer: { key: o.key ?? signer.key, cert: signer.cert }, chain: o.chain ?? chain, target: { ...subject, ...o.target } });

beforeAll(async () => {
  registry = await registryStandIn((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    requests.push(url.pathname);
    const ref = /^\/v2\/r\/referrers\/(sha256:[0-9a-f]{64})$/.exec(url.pathname);
    if (ref) {
      if (!referrersApi) return void res.writeHead(404).end();
      const idx = tags.get(`sha256-${ref[1]!.slice(7)}`) ?? Buffer.from('{"schemaVersion":2,"manifests":[]}');
      return void res.writeHead(200, { 'content-type': 'application/vnd.oci.image.index.v1+json' }).end(idx);
    }
    const m = /^\/v2\/r\/(manifests|blobs)\/(.+)$/.exec(url.pathname);
    const b = m ? (store.get(m[2]!) ?? tags.get(m[2]!)) : undefined;
    if (b) return void res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': b.length }).end(b);
    res.writeHead(404).end();
  });
  client = registry.client;
});
afterAll(() => registry?.close());
beforeEach(reset);

function verifier(o: { identity?: string; store?: X509Certificate[]; level?: string; maxSignatures?: number; signatureBytes?: number; storeRef?: string } = {}) {
  const storeRef = o.storeRef ?? 'ca:acme';
  const trustPolicy = parseTrustPolicy(
    JSON.stringify({
      version: '1.0',
      trustPolicies: [{ name: 'acme', registryScopes: ['*'], signatureVerification: { level: o.level ?? 'strict', override: { revocation: 'skip' } }, trustStores: [storeRef], trustedIdentities: [o.identity ?? 'x509.subject: C=US, ST=WA, O=acme, OU=Build'] }],
    }),
  );
  return new NotationVerifier({ trustPolicy, trustStores: new Map([[storeRef, o.store ?? [cert(root.cert)]]]), maxSignatures: o.maxSignatures, signatureBytes: o.signatureBytes });
}

describe('NotationVerifier', () => {
  it.each<[string, SignatureForm, boolean]>([
    ['the current form (artifactType) through the referrers API', 'artifactType', true],
    ["notation 1.0's form (config.mediaType) through the referrers API", 'config', true],
    ['the current form through the referrers tag schema', 'artifactType', false],
    ["notation 1.0's form through the referrers tag schema", 'config', false],
  ])('finds and verifies %s', async (_n, form, api) => {
    referrersApi = api;
    const sig = await addSignature(await sign(), form);
    await expect(verifier().verify(client, 'reg/r', 'r', subject)).resolves.toMatchObject({ signature: sig, policy: 'acme' });
    expect(requests.some((p) => p.includes('/manifests/sha256-'))).toBe(!api);
    referrersApi = true;
  });

  it('accepts a trust store that holds the intermediate CA only, as notation-core-go does', async () => {
    await addSignature(await sign());
    await expect(verifier({ store: [cert(inter.cert)] }).verify(client, 'reg/r', 'r', subject)).resolves.toMatchObject({ policy: 'acme' });
  });

  it('matches a trusted identity written with S for the state, as the specification allows', async () => {
    await addSignature(await sign());
    await expect(verifier({ identity: 'x509.subject: C=US, S=WA, O=acme' }).verify(client, 'reg/r', 'r', subject)).resolves.toMatchObject({ policy: 'acme' });
    await expect(verifier({ identity: 'x509.subject: C=US, S=OR, O=acme' }).verify(client, 'reg/r', 'r', subject)).rejects.toMatchObject({ code: 'NOTATION_INVALID' });
  });

  it('refuses a signed descriptor whose media type is not the manifest’s', async () => {
    await addSignature(await sign({ target: { mediaType: 'application/vnd.docker.distribution.manifest.v2+json' } }));
    await expect(verifier().verify(client, 'reg/r', 'r', subject)).rejects.toMatchObject({
      code: 'NOTATION_INVALID',
      message: expect.stringContaining(`integrity: the signed descriptor is not the manifest served: media type application/vnd.docker.distribution.manifest.v2+json, not ${MT}`),
    });
  });

  it('names each failed check once in the refusal ("authenticity: …", never "authenticity: authenticity:")', async () => {
    await addSignature(await sign());
    const err = await verifier({ store: [cert(makeCa(dir, 'other').cert)] }).verify(client, 'reg/r', 'r', subject).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/authenticity: no certificate of the chain is in the trust store/);
    expect((err as Error).message).not.toMatch(/authenticity: authenticity/);
  });

  it('20 junk signatures pushed before a valid one do not hide it; each is fetched once, then cached', async () => {
    const junkSigner = makeLeaf(dir, 'junk', makeCa(dir, 'junkca'), '/C=US/ST=WA/O=acme/OU=Build/CN=junk');
    for (let i = 0; i < 10; i++) await addSignature(Buffer.from(`{"not":"a jws ${i}"}`));
    for (let i = 0; i < 10; i++) await addSignature(await jwsEnvelope({ signer: junkSigner, chain: [derB64(junkSigner.cert)], target: subject, signingTime: new Date(Date.now() - i * 1000) }));
    const good = await addSignature(await sign());
    const v = verifier();
    await expect(v.verify(client, 'reg/r', 'r', subject)).resolves.toMatchObject({ signature: good });
    const fetched = requests.filter((p) => p.includes('/manifests/sha256:')).length;
    expect(fetched).toBe(21);
    requests = [];
    await expect(v.verify(client, 'reg/r', 'r', subject)).resolves.toMatchObject({ signature: good });
    expect(requests.filter((p) => p.includes('/manifests/sha256:') || p.includes('/blobs/'))).toEqual([]); // all from the cache
  });

  it('spends at most maxSignatures uncached candidates per request; cached failures are free, so the next request goes on', async () => {
    for (let i = 0; i < 12; i++) await addSignature(Buffer.from(`junk ${i}`));
    const good = await addSignature(await sign());
    const v = verifier({ maxSignatures: 5 });
    const fetchedNow = () => {
      const n = requests.filter((p) => p.includes('/manifests/sha256:')).length;
      requests = [];
      return n;
    };
    await expect(v.verify(client, 'reg/r', 'r', subject)).rejects.toMatchObject({ code: 'NOTATION_INVALID', message: expect.stringContaining("8 candidate(s) not examined: this request's signature budget (5 uncached candidates") });
    expect(fetchedNow()).toBe(5);
    await expect(v.verify(client, 'reg/r', 'r', subject)).rejects.toMatchObject({ code: 'NOTATION_INVALID', message: expect.stringContaining('3 candidate(s) not examined') });
    expect(fetchedNow()).toBe(5);
    await expect(v.verify(client, 'reg/r', 'r', subject)).resolves.toMatchObject({ signature: good });
    expect(fetchedNow()).toBe(3);
    await expect(v.verify(client, 'reg/r', 'r', subject)).resolves.toMatchObject({ signature: good });
    expect(fetchedNow()).toBe(0);
  });

  it('ranks by the thumbprint annotation: one naming a trust-store certificate is fetched first, ones naming only others get what is left', async () => {
    const thumb = (f: string) => createHash('sha256').update(cert(f).raw).digest('hex');
    const stranger = makeCa(dir, 'stranger');
    for (let i = 0; i < 40; i++) await addSignature(Buffer.from(`junk ${i}`), 'artifactType', subject, [thumb(stranger.cert)]);
    const good = await addSignature(await sign(), 'artifactType', subject, [thumb(signer.cert), thumb(inter.cert), thumb(root.cert)]);
    await expect(verifier({ maxSignatures: 1 }).verify(client, 'reg/r', 'r', subject)).resolves.toMatchObject({ signature: good });
    expect(requests.filter((p) => p.includes('/manifests/sha256:'))).toEqual([`/v2/r/manifests/${good}`]);
  });

  it('copying the trusted thumbprint onto junk only moves it up; it is verified like any other candidate', async () => {
    const thumb = createHash('sha256').update(cert(root.cert).raw).digest('hex');
    for (let i = 0; i < 3; i++) await addSignature(Buffer.from(`junk ${i}`), 'artifactType', subject, [thumb]);
    const good = await addSignature(await sign(), 'artifactType', subject, []);
    await expect(verifier().verify(client, 'reg/r', 'r', subject)).resolves.toMatchObject({ signature: good });
  });

  it('bounds the bytes fetched per request (signatureBytes), without caching what the budget cut', async () => {
    const good = await addSignature(await sign());
    const v = verifier({ signatureBytes: 1024 });
    await expect(v.verify(client, 'reg/r', 'r', subject)).rejects.toMatchObject({ code: 'NOTATION_INVALID', message: expect.stringContaining('signature byte budget of this request is spent') });
    // The same candidate under a budget that affords it: nothing was cached against it.
    const roomy = verifier();
    await expect(roomy.verify(client, 'reg/r', 'r', subject)).resolves.toMatchObject({ signature: good });
  });

  it('keys verdicts by a fingerprint of the trust material: another trust store never reuses them', async () => {
    expect(verifier().fingerprint).toBe(verifier().fingerprint);
    expect(verifier({ store: [cert(inter.cert)] }).fingerprint).not.toBe(verifier().fingerprint);
    expect(verifier({ identity: 'x509.subject: C=US, ST=WA, O=acme' }).fingerprint).not.toBe(verifier().fingerprint);
  });

  it('stops at the first signature (in listing order) that satisfies the policy', async () => {
    const first = await addSignature(await sign());
    await addSignature(await sign());
    await expect(verifier().verify(client, 'reg/r', 'r', subject)).resolves.toMatchObject({ signature: first });
    // Candidates of one rank are fetched a few at a time (SIGNATURE_PARALLEL): both of these at once.
    expect(requests.filter((p) => p.includes('/manifests/sha256:')).length).toBeLessThanOrEqual(2);
  });

  it('refuses a signature manifest that points at another subject, and one that is no signature at all', async () => {
    const other = { ...subject, digest: `sha256:${'b'.repeat(64)}` };
    const m = await addSignature(await sign(), 'artifactType', other);
    // List it under our subject anyway (the index is anyone's to write).
    tags.set(`sha256-${subject.digest.slice(7)}`, tags.get(`sha256-${other.digest.slice(7)}`)!);
    const err = await verifier().verify(client, 'reg/r', 'r', subject).catch((e: Error) => e);
    expect((err as Error).message).toContain(`${m}: signature manifest ${m} is for ${other.digest}`);
  });

  it('notary.x509.signingAuthority signatures are anchored in signingAuthority stores, not ca stores', async () => {
    const t = new Date(Date.now() - 1000).toISOString().replace(/\.\d+Z$/, 'Z');
    await addSignature(
      await jwsEnvelope({
        signer,
        chain,
        target: subject,
        protectedOverride: {
          crit: ['io.cncf.notary.signingScheme', 'io.cncf.notary.authenticSigningTime'],
          'io.cncf.notary.signingScheme': 'notary.x509.signingAuthority',
          'io.cncf.notary.authenticSigningTime': new Date(Math.max(Date.parse(t), Date.parse(new X509Certificate(readFileSync(signer.cert)).validFrom))).toISOString(),
          'io.cncf.notary.signingTime': undefined,
        },
      }),
    );
    await expect(verifier({ storeRef: 'signingAuthority:acme' }).verify(client, 'reg/r', 'r', subject)).resolves.toMatchObject({ policy: 'acme' });
    await expect(verifier({ storeRef: 'ca:acme' }).verify(client, 'reg/r', 'r', subject)).rejects.toMatchObject({
      message: expect.stringContaining('authenticity: the policy has no trusted certificates for this signing scheme'),
    });
  });

  it('an image without signatures is NOTATION_UNSIGNED', async () => {
    await expect(verifier().verify(client, 'reg/r', 'r', subject)).rejects.toMatchObject({ code: 'NOTATION_UNSIGNED' });
  });
});

describe('NotationVerifier with a signature repository (notation.repository)', () => {
  // The image is reg/app; its signatures are read in `r` of the stand-in, named sig.test/r.
  it.each([
    ['through the referrers API', true],
    ['through the referrers tag schema', false],
  ])('finds the referrers of the image digest there %s; the policy is the image’s', async (_n, api) => {
    referrersApi = api;
    const sig = await addSignature(await sign());
    await expect(verifier().verify(client, 'reg/app', 'r', subject, 'sig.test/r')).resolves.toMatchObject({ signature: sig, policy: 'acme' });
    expect(requests.every((p) => p.startsWith('/v2/r/'))).toBe(true);
    referrersApi = true;
  });

  it('refuses a signature there of another digest, even listed under this one, naming the repository', async () => {
    await addSignature(await sign({ target: { digest: `sha256:${'f'.repeat(64)}` } }));
    await expect(verifier().verify(client, 'reg/app', 'r', subject, 'sig.test/r')).rejects.toMatchObject({ code: 'NOTATION_INVALID', message: expect.stringContaining('reg/app@sha256:') });
    await expect(verifier().verify(client, 'reg/app', 'r', subject, 'sig.test/r')).rejects.toMatchObject({ message: expect.stringMatching(/in signature repository sig\.test\/r satisfies.*digest sha256:f+, not/) });
  });

  it('is NOTATION_UNSIGNED, naming the repository, when it holds nothing for the digest', async () => {
    await expect(verifier().verify(client, 'reg/app', 'r', subject, 'sig.test/r')).rejects.toMatchObject({ code: 'NOTATION_UNSIGNED', message: expect.stringContaining('has no Notary Project signature in signature repository sig.test/r') });
  });
});
