// Notary Project COSE_Sign1 envelopes encoded with cbor-x and signed over the RFC 9052 Sig_structure,
// verified by cose-envelope.ts and judged by a trust policy.
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decode as cborDecode, type TagDecoder } from 'cborg';
import { describe, expect, it } from 'vitest';
import { verifyCoseEnvelope } from '../../../src/signatures/notation/cose-envelope.js';
import { parseTrustPolicy } from '../../../src/signatures/notation/trust-policy.js';
import { judgeSignature } from '../../../src/signatures/notation/verdict.js';
import { cbor, coseEnvelope, derB64, makeCa, makeLeaf } from '../../support/notation-sign.js';

const dir = mkdtempSync(join(tmpdir(), 'trustgate-cose-'));
const root = makeCa(dir, 'acme');
const stranger = makeCa(dir, 'stranger');
const signer = makeLeaf(dir, 'builder', root, '/C=US/ST=WA/O=acme/OU=Build/CN=builder');
const rootCert = new X509Certificate(readFileSync(root.cert));
const strangerCert = new X509Certificate(readFileSync(stranger.cert));
const manifest = Buffer.from('{"schemaVersion":2}');
const digest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
const target = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: manifest.length };
const NOW = new Date();
const chain = [derB64(signer.cert), derB64(root.cert)];
const policy = parseTrustPolicy(
  JSON.stringify({ version: '1.0', trustPolicies: [{ name: 'p', registryScopes: ['*'], signatureVerification: { level: 'strict' }, trustStores: ['ca:acme'], trustedIdentities: ['x509.subject: C=US, ST=WA, O=acme'] }] }),
).trustPolicies[0]!;
const judge = (env: Buffer, anchors = [rootCert], now = NOW) => judgeSignature(policy, verifyCoseEnvelope(env, anchors, now), { digest, size: manifest.length, mediaType: 'application/vnd.oci.image.manifest.v1+json' });
const header = (extra: Array<[unknown, unknown]> = [], drop: unknown[] = []) =>
  new Map<unknown, unknown>(
    [
      [1, -7],
      [2, ['io.cncf.notary.signingScheme']],
      [3, 'application/vnd.cncf.notary.payload.v1+json'],
      ['io.cncf.notary.signingScheme', 'notary.x509'],
      ['io.cncf.notary.signingTime', NOW],
      ...extra,
    ].filter(([k]) => !drop.includes(k)) as Array<[unknown, unknown]>,
  );

describe('Notary Project COSE_Sign1 envelopes', () => {
  it('a valid signature from a trusted identity is allowed', () => {
    const v = verifyCoseEnvelope(coseEnvelope({ signer, chain, target, signingTime: NOW }), [rootCert], NOW);
    expect(v).toMatchObject({ integrity: true, authenticity: true, authenticTimestamp: true, expiryOk: true, target: { digest } });
    expect(judgeSignature(policy, v, { digest, size: manifest.length, mediaType: 'application/vnd.oci.image.manifest.v1+json' })).toMatchObject({ allowed: true });
  });

  it('refuses a chain to a CA outside the trust store', () => {
    expect(judge(coseEnvelope({ signer, chain, target, signingTime: NOW }), [strangerCert]).allowed).toBe(false);
  });

  it('refuses an altered signature', () => {
    const tags: TagDecoder[] = [];
    tags[18] = (d) => d();
    tags[1] = (d) => d();
    const parts = cborDecode(coseEnvelope({ signer, chain, target, signingTime: NOW }), { useMaps: true, tags }) as [Uint8Array, Map<unknown, unknown>, Uint8Array, Uint8Array];
    const sig = Buffer.from(parts[3]);
    sig[0] = sig[0]! ^ 0xff;
    const altered = Buffer.concat([Buffer.from([0xd2]), cbor([parts[0], parts[1], parts[2], sig])]);
    expect(judge(altered).enforced.map((e) => e.check)).toContain('integrity');
  });

  it('refuses an expired signature', () => {
    const env = coseEnvelope({
      signer,
      chain,
      target,
      protectedMap: header([
        [2, ['io.cncf.notary.signingScheme', 'io.cncf.notary.expiry']],
        ['io.cncf.notary.expiry', new Date(NOW.getTime() + 2000)],
      ]),
    });
    expect(judge(env, [rootCert], new Date(NOW.getTime() + 5000)).enforced.map((e) => e.check)).toEqual(['expiry']);
  });

  it.each<[string, Map<unknown, unknown>]>([
    ['an algorithm outside the allowed set (EdDSA)', header([[1, -8]])],
    ['a wrong content type', header([[3, 'application/json']])],
    ['the signing scheme not critical', header([[2, ['x']], ['x', 1]])],
    ['an unknown critical label', header([[2, ['io.cncf.notary.signingScheme', 'x']], ['x', 1]])],
    ['no signing time', header([], ['io.cncf.notary.signingTime'])],
  ])('refuses a malformed envelope: %s', (_n, protectedMap) => {
    expect(() => verifyCoseEnvelope(coseEnvelope({ signer, chain, target, protectedMap }), [rootCert], NOW)).toThrow(expect.objectContaining({ code: 'MALFORMED' }));
  });

  it('refuses bytes that are not COSE_Sign1', () => {
    expect(() => verifyCoseEnvelope(Buffer.from('{"not":"cbor"}'), [rootCert], NOW)).toThrow(expect.objectContaining({ code: 'MALFORMED' }));
  });
});
