// Notation signatures stored next to an image in a real docker-registry (referrers tag schema, as
// notation pushes them to registries without the referrers API), discovered, fetched by digest and
// verified against a trust policy and trust store.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyJwsEnvelope } from '../../src/signatures/notation/jws-envelope.js';
import { findNotationSignatures } from '../../src/signatures/notation/referrers.js';
import { parseTrustPolicy } from '../../src/signatures/notation/trust-policy.js';
import { judgeSignature } from '../../src/signatures/notation/verdict.js';
import { RegistryClient } from '../../src/registry/registry-client.js';
import { startRegistry, type Registry } from '../support/docker-registry.js';
import { derB64, jwsEnvelope, makeCa, makeLeaf, pushSignatures } from '../support/notation-sign.js';
import { pushImage, type PushedImage } from '../support/oci-image.js';

const REPO = 'notation/app';
let dir: string;
let registry: Registry;
let client: RegistryClient;
let signed: PushedImage;
let unsigned: PushedImage;
let anchors: X509Certificate[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trustgate-notation-'));
  registry = await startRegistry(dir);
  client = new RegistryClient({ registry: registry.url, timeoutMs: 10_000, manifestBytes: 4 << 20 });
  signed = await pushImage(dir, registry.host, REPO, 'signed');
  unsigned = await pushImage(dir, registry.host, REPO, 'unsigned');
  const ca = makeCa(dir, 'acme');
  const other = makeCa(dir, 'other');
  anchors = [new X509Certificate(readFileSync(ca.cert))];
  const good = makeLeaf(dir, 'builder', ca, '/C=US/ST=WA/O=acme/OU=Build/CN=builder');
  const stray = makeLeaf(dir, 'stray', other, '/C=US/ST=WA/O=acme/OU=Build/CN=stray');
  const target = { mediaType: signed.mediaType, digest: signed.digest, size: signed.manifest.length };
  // One signature from an untrusted CA, one that verifies: the policy needs only one valid signature.
  await pushSignatures(registry.url, REPO, target, [
    await jwsEnvelope({ signer: stray, chain: [derB64(stray.cert), derB64(other.cert)], target }),
    await jwsEnvelope({ signer: good, chain: [derB64(good.cert), derB64(ca.cert)], target }),
  ]);
});

afterAll(async () => {
  await client?.close();
  await registry?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const policy = parseTrustPolicy(
  JSON.stringify({ version: '1.0', trustPolicies: [{ name: 'acme', registryScopes: ['*'], signatureVerification: { level: 'strict' }, trustStores: ['ca:acme'], trustedIdentities: ['x509.subject: C=US, ST=WA, O=acme'] }] }),
).trustPolicies[0]!;

describe('Notation signatures as referrers in a real registry', () => {
  it('the registry has no referrers API: discovery falls back to the tag schema', async () => {
    const res = await fetch(`${registry.url}/v2/${REPO}/referrers/${signed.digest}`);
    expect(res.status).toBe(404);
    const found = await findNotationSignatures(client, REPO, signed.digest);
    expect(found).toHaveLength(2);
    expect(found.every((f) => f.envelopeMediaType === 'application/jose+json')).toBe(true);
  });

  it('verifies each signature: one from the trusted CA is allowed, the stray one refused', async () => {
    const found = await findNotationSignatures(client, REPO, signed.digest);
    const verdicts = found.map((f) => judgeSignature(policy, verifyJwsEnvelope(f.envelope, anchors, new Date()), { digest: signed.digest, size: signed.manifest.length, mediaType: signed.mediaType }));
    expect(verdicts.filter((v) => v.allowed)).toHaveLength(1);
    expect(verdicts.find((v) => !v.allowed)?.enforced.map((e) => e.check)).toContain('authenticity');
  });

  it('finds nothing for an image without signatures', async () => {
    expect(await findNotationSignatures(client, REPO, unsigned.digest)).toEqual([]);
  });

  it('a signature for one manifest is no signature for another', async () => {
    const found = await findNotationSignatures(client, REPO, signed.digest);
    const v = judgeSignature(policy, verifyJwsEnvelope(found[1]!.envelope, anchors, new Date()), { digest: unsigned.digest, size: unsigned.manifest.length, mediaType: unsigned.mediaType });
    expect(v).toMatchObject({ allowed: false, enforced: [{ check: 'integrity' }] });
  });
});
