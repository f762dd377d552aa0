// Discovery of cosign signatures against a registry that has the OCI referrers API (distribution 2.8,
// used by the integration tests, only has the tag schema): a small node:http registry stands in.
// Candidates that do not say what they are, point elsewhere, or whose bytes do not match are dropped.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findCosignSignatures } from '../../../src/signatures/cosign/discovery.js';
import type { RegistryClient } from '../../../src/registry/registry-client.js';
import { registryStandIn, type RegistryStandIn } from '../support/registry-stand-in.js';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const subject = `sha256:${'a'.repeat(64)}`;
const BUNDLE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const bundle = Buffer.from('{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}');
const payload = Buffer.from('{"critical":{}}');
const swapped = Buffer.from('{"critical":{"other":1}}');
const referrer = (subj: string, artifactType = BUNDLE) =>
  Buffer.from(JSON.stringify({ schemaVersion: 2, artifactType, layers: [{ mediaType: BUNDLE, digest: sha(bundle), size: bundle.length }], subject: { digest: subj } }));
const good = referrer(subject);
const elsewhere = referrer(`sha256:${'b'.repeat(64)}`);
const sbom = referrer(subject, 'application/spdx+json');
const layer = (mediaType: string, digest: string, signature?: string) => ({ mediaType, digest, size: 1, annotations: signature ? { 'dev.cosignproject.cosign/signature': signature } : {} });
const sigManifest = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    layers: [
      layer('application/vnd.dev.cosign.simplesigning.v1+json', sha(payload), 'c2ln'),
      layer('application/vnd.dev.cosign.simplesigning.v1+json', sha(payload)), // no signature annotation
      layer('application/octet-stream', sha(payload), 'c2ln'), // not a simple-signing payload
      layer('application/vnd.dev.cosign.simplesigning.v1+json', `sha256:${'d'.repeat(64)}`, 'c2ln'), // a blob the registry does not have
      layer('application/vnd.dev.cosign.simplesigning.v1+json', `sha256:${'e'.repeat(64)}`, 'c2ln'), // served bytes do not hash to it
    ],
  }),
);
const blobs = new Map<string, Buffer>([
  [sha(good), good],
  [sha(elsewhere), elsewhere],
  [sha(sbom), sbom],
  [sha(bundle), bundle],
  [sha(payload), payload],
  [`sha256:${'e'.repeat(64)}`, swapped],
]);
let registry: RegistryStandIn;
let client: RegistryClient;

beforeAll(async () => {
  registry = await registryStandIn((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === `/v2/r/referrers/${subject}`) {
      const entry = (b: Buffer, artifactType: string) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType, digest: sha(b), size: b.length });
      return void res.writeHead(200, { 'content-type': 'application/vnd.oci.image.index.v1+json' }).end(JSON.stringify({ schemaVersion: 2, manifests: [entry(good, BUNDLE), entry(elsewhere, BUNDLE), entry(sbom, 'application/spdx+json')] }));
    }
    if (url.pathname === `/v2/r/referrers/sha256:${'9'.repeat(64)}`) return void res.writeHead(200, { 'content-type': 'application/vnd.oci.image.index.v1+json' }).end('{"manifests": {}}');
    if (url.pathname === `/v2/r/manifests/sha256-${'a'.repeat(64)}.sig`) return void res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end(sigManifest);
    const m = /^\/v2\/r\/(manifests|blobs)\/(sha256:[0-9a-f]{64})$/.exec(url.pathname);
    const b = m ? blobs.get(m[2]!) : undefined;
    if (b) return void res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': b.length }).end(b);
    res.writeHead(404).end();
  });
  client = registry.client;
});

afterAll(() => registry?.close());

describe('findCosignSignatures', () => {
  it('finds the bundle referrer of this subject through the referrers API; one for another subject is unusable, another artifactType ignored', async () => {
    const found = await findCosignSignatures(client, 'r', subject);
    expect(found.bundles).toEqual([{ manifestDigest: sha(good), bundle }]);
    expect(found.rejected).toContain(`bundle manifest ${sha(elsewhere)}: not a Sigstore bundle manifest whose subject is ${subject}`);
    expect(found.rejected.join('\n')).not.toContain(sha(sbom));
  });

  it('keeps simple-signing layers with a signature whose blob matches its digest, says why the others are unusable', async () => {
    const found = await findCosignSignatures(client, 'r', subject);
    expect(found.classic.map((c) => [c.layer, c.payload.toString(), c.signature])).toEqual([[0, payload.toString(), 'c2ln']]);
    expect(found.classic[0]!.manifestDigest).toBe(sha(sigManifest));
    const m = sha(sigManifest);
    expect(found.rejected.filter((r) => r.startsWith(m))).toEqual([
      `${m} layer 1: no dev.cosignproject.cosign/signature annotation or no sha256 digest`,
      `${m} layer 3: cosign payload sha256:${'d'.repeat(64)} is not in the registry`,
      `${m} layer 4: the registry served other bytes for cosign payload sha256:${'e'.repeat(64)}`,
    ]);
  });

  it('takes at most max candidates per form, counted after the media type filter', async () => {
    const found = await findCosignSignatures(client, 'r', subject, 1);
    expect(found.bundles).toHaveLength(1);
    expect(found.classic).toHaveLength(1);
    // Only what the listing itself shows (a layer without a signature annotation); nothing past the limit is fetched.
    expect(found.rejected).toEqual([`${sha(sigManifest)} layer 1: no dev.cosignproject.cosign/signature annotation or no sha256 digest`]);
  });

  it('finds nothing for a digest without signatures', async () => {
    expect(await findCosignSignatures(client, 'r', `sha256:${'f'.repeat(64)}`)).toEqual({ classic: [], bundles: [], rejected: [] });
  });

  it('answers UPSTREAM_INVALID for a referrers listing that is not an index', async () => {
    await expect(findCosignSignatures(client, 'r', `sha256:${'9'.repeat(64)}`)).rejects.toMatchObject({ code: 'UPSTREAM_INVALID' });
  });
});
