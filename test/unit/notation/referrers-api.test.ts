// The referrers API path of discovery (OCI distribution 1.1), which distribution 2.8 lacks: a small
// node:http registry stands in for one that has it (unit test of one module; the tag-schema path runs
// against a real docker-registry in test/integration/notation-referrers.test.ts).
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findNotationSignatures } from '../../../src/signatures/notation/referrers.js';
import type { RegistryClient } from '../../../src/registry/registry-client.js';
import { registryStandIn, type RegistryStandIn } from '../support/registry-stand-in.js';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const subject = `sha256:${'a'.repeat(64)}`;
const envelope = Buffer.from('{"jws":"bytes"}');
const sigManifest = (subj: string, artifactType = 'application/vnd.cncf.notary.signature') =>
  Buffer.from(JSON.stringify({ schemaVersion: 2, artifactType, layers: [{ mediaType: 'application/jose+json', digest: sha(envelope), size: envelope.length }], subject: { digest: subj } }));
const good = sigManifest(subject);
const otherSubject = sigManifest(`sha256:${'b'.repeat(64)}`);
const sbom = sigManifest(subject, 'application/spdx+json');
const blobs = new Map<string, Buffer>([[sha(good), good], [sha(otherSubject), otherSubject], [sha(sbom), sbom], [sha(envelope), envelope]]);
const seen: string[] = [];
let registry: RegistryStandIn;
let client: RegistryClient;

beforeAll(async () => {
  registry = await registryStandIn((req, res) => {
    seen.push(req.url ?? '');
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === `/v2/r/referrers/${subject}`) {
      const entry = (b: Buffer, artifactType: string) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType, digest: sha(b), size: b.length });
      const index = { schemaVersion: 2, manifests: [entry(good, 'application/vnd.cncf.notary.signature'), entry(otherSubject, 'application/vnd.cncf.notary.signature'), entry(sbom, 'application/spdx+json')] };
      return void res.writeHead(200, { 'content-type': 'application/vnd.oci.image.index.v1+json' }).end(JSON.stringify(index));
    }
    const m = /^\/v2\/r\/(manifests|blobs)\/(sha256:[0-9a-f]{64})$/.exec(url.pathname);
    const b = m ? blobs.get(m[2]!) : undefined;
    if (b) return void res.writeHead(200, { 'content-type': m![1] === 'manifests' ? 'application/vnd.oci.image.manifest.v1+json' : 'application/octet-stream', 'content-length': b.length }).end(b);
    res.writeHead(404).end();
  });
  client = registry.client;
});
afterAll(() => registry?.close());

describe('referrers API discovery', () => {
  it('uses the API, keeps only Notation signatures whose subject is this manifest, checks every digest', async () => {
    const found = await findNotationSignatures(client, 'r', subject);
    expect(found).toEqual([{ manifestDigest: sha(good), envelopeMediaType: 'application/jose+json', envelope }]);
    expect(seen[0]).toBe(`/v2/r/referrers/${subject}?artifactType=${encodeURIComponent('application/vnd.cncf.notary.signature')}`);
    expect(seen.some((u) => u.includes('sha256-'))).toBe(false); // no tag-schema fallback needed
  });
});
