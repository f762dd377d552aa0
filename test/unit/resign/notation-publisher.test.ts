// The two ways a Notation signature becomes findable (OCI distribution spec 1.1, "Pushing Manifests
// with Subject"): a registry with the referrers API answers OCI-Subject and indexes the referrer
// itself, so no tag is written; one without it (distribution 2.8, which the integration test runs)
// gets the sha256-<hex> referrers tag schema index. A registry stand-in (undici MockAgent) records
// what is pushed; the envelopes are real.
import { createHash, createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MockAgent } from 'undici';
import { describe, expect, it } from 'vitest';
import { RegistryClient } from '../../../src/registry/registry-client.js';
import { RegistryWriter } from '../../../src/registry/registry-writer.js';
import { parseChain } from '../../../src/resign/notation-signer.js';
import { NotationPublisher } from '../../../src/resign/notation-publisher.js';
import { makeCa, makeLeaf } from '../../support/notation-sign.js';

const dir = mkdtempSync(join(tmpdir(), 'trustgate-resign-pub-'));
const ca = makeCa(dir, 'acme');
const leaf = makeLeaf(dir, 'signer', ca, '/C=US/O=acme/CN=signer');
const privateKey = createPrivateKey(readFileSync(leaf.key));
const key = { privateKey, publicKey: parseChain(readFileSync(leaf.cert, 'utf8'), privateKey)[0]!.publicKey };
const chain = parseChain(readFileSync(leaf.cert, 'utf8') + readFileSync(ca.cert, 'utf8'), privateKey);
const digest = `sha256:${createHash('sha256').update('m').digest('hex')}`;
const subject = { name: 'reg.test/r', mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: 1 };
const provenance = { gun: 'reg.test/r', tag: 'v1', role: 'targets', keyIds: ['ab'], verifiedAt: '2026-12-01T00:00:00.000Z' };

function registry(referrersApi: boolean) {
  const agent = new MockAgent();
  agent.disableNetConnect();
  const pool = agent.get('http://reg.test');
  const writes: Array<{ method: string; path: string; body?: string }> = [];
  pool
    .intercept({ path: (p) => p.startsWith('/v2/r/'), method: (m) => ['GET', 'HEAD', 'POST', 'PUT'].includes(m) })
    .reply((o) => {
      const path = o.path;
      if (o.method === 'HEAD') return { statusCode: 404, data: '' };
      if (o.method === 'POST') return { statusCode: 202, data: '', responseOptions: { headers: { location: '/v2/r/blobs/uploads/u1' } } };
      if (o.method === 'PUT') {
        writes.push({ method: 'PUT', path, body: String(o.body) });
        const isIndex = path.includes('/manifests/sha256-');
        return { statusCode: 201, data: '', responseOptions: { headers: referrersApi && !isIndex && path.includes('/manifests/') ? { 'oci-subject': digest } : {} } };
      }
      return { statusCode: 404, data: '{"errors":[{"code":"MANIFEST_UNKNOWN"}]}' };
    })
    .persist();
  const reader = new RegistryClient({ registry: 'http://reg.test', timeoutMs: 5000, manifestBytes: 1 << 20, dispatcher: agent });
  const writer = new RegistryWriter({ registry: 'http://reg.test', timeoutMs: 5000, dispatcher: agent });
  return { writes, publisher: new NotationPublisher(reader, writer, 'r', 'reg.test/r', key, chain, 'jws', () => new Date()) };
}

describe('NotationPublisher', () => {
  it('with the referrers API (OCI-Subject in the answer): pushes envelope, config and manifest by digest, no index tag', async () => {
    const { writes, publisher } = registry(true);
    const sig = await publisher.publish(subject, provenance);
    const manifests = writes.filter((w) => w.path.includes('/manifests/'));
    expect(manifests.map((w) => w.path)).toEqual([`/v2/r/manifests/${sig}`]);
    expect(writes.filter((w) => w.path.startsWith('/v2/r/blobs/uploads/u1?digest=sha256%3A'))).toHaveLength(2);
  });

  it('without it: also writes the referrers tag schema index sha256-<hex> listing the signature', async () => {
    const { writes, publisher } = registry(false);
    const sig = await publisher.publish(subject, provenance);
    const index = writes.find((w) => w.path === `/v2/r/manifests/sha256-${digest.slice(7)}`);
    expect(JSON.parse(index!.body!)).toMatchObject({ mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ digest: sig, artifactType: 'application/vnd.cncf.notary.signature', annotations: { 'io.trustgate.dct.role': 'targets' } }] });
  });
});
