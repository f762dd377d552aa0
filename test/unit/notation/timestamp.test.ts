// RFC 3161 timestamp countersignatures answered by `openssl ts -reply` from a local TSA, on JWS and
// COSE envelopes, judged by the trust policy's authentic-timestamp rules: a signature made while its
// certificate was valid stays valid after that certificate expires when a trusted timestamp proves it;
// without one (or with one that does not hold) it does not.
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { verifyCoseEnvelope } from '../../../src/signatures/notation/cose-envelope.js';
import { verifyJwsEnvelope } from '../../../src/signatures/notation/jws-envelope.js';
import { verifyTimestampToken } from '../../../src/signatures/notation/timestamp.js';
import { coseEnvelope, derB64, jwsEnvelope, LEAF_EXT, withJwsTimestamp } from '../../support/notation-sign.js';
import { OpensslCa, timestampToken, TSA_EXT } from '../../support/openssl-ca.js';

const dir = mkdtempSync(join(tmpdir(), 'trustgate-tsa-'));
const acme = new OpensslCa(dir, 'acme');
const signer = acme.issue('builder', '/C=US/ST=WA/O=acme/CN=builder', LEAF_EXT, { notAfter: new Date(Date.now() + 86400e3) });
const tsaRoot = new OpensslCa(dir, 'tsaroot');
const tsa = tsaRoot.issue('tsa', '/C=US/ST=WA/O=tsa/CN=Test TSA', TSA_EXT);
const otherTsaRoot = new OpensslCa(dir, 'othertsa');
const otherTsa = otherTsaRoot.issue('tsa2', '/C=US/ST=WA/O=tsa/CN=Other TSA', TSA_EXT);
// openssl itself refuses to answer with a TSA certificate whose EKU is not critical; one without keyUsage it accepts.
const sloppyTsa = tsaRoot.issue('sloppy', '/C=US/ST=WA/O=tsa/CN=Sloppy TSA', 'extendedKeyUsage=critical,timeStamping\n');
const cert = (f: string) => new X509Certificate(readFileSync(f));
const anchors = [cert(acme.cert)];
const tsaAnchors = [cert(tsaRoot.cert)];
const chain = [derB64(signer.cert), derB64(acme.cert)];
const NOW = new Date();
const AFTER_EXPIRY = new Date(NOW.getTime() + 3 * 86400e3); // the signing certificate expired by then
const target = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${'c'.repeat(64)}`, size: 10 };
const stamp = (by = tsa, root = tsaRoot) => (sig: Buffer) => timestampToken(dir, by, [by.cert, root.cert], sig);
const tsaPolicy = (verifyTimestamp: 'always' | 'afterCertExpiry' = 'always') => ({ tsa: { anchors: tsaAnchors, verifyTimestamp } });

describe('RFC 3161 timestamp countersignatures', () => {
  it('a JWS timestamped while its certificate was valid stays valid after the certificate expires', async () => {
    const env = withJwsTimestamp(await jwsEnvelope({ signer, chain, target, signingTime: NOW }), stamp());
    const v = verifyJwsEnvelope(env, anchors, AFTER_EXPIRY, tsaPolicy());
    expect(v.problems).toEqual([]);
    expect(v).toMatchObject({ integrity: true, authenticity: true, authenticTimestamp: true });
    expect(v.timestamp!.accuracyMs).toBe(1500);
    expect(Math.abs(v.timestamp!.genTime.getTime() - Date.now())).toBeLessThan(60_000);
    expect(v.timestamp!.tsaChain.map((c) => c.subject)).toEqual([cert(tsa.cert).subject, cert(tsaRoot.cert).subject]);
  });

  it('a COSE envelope carries its timestamp the same way', () => {
    const env = coseEnvelope({ signer, chain, target, signingTime: NOW, timestamp: stamp() });
    expect(verifyCoseEnvelope(env, anchors, AFTER_EXPIRY, tsaPolicy())).toMatchObject({ authenticTimestamp: true, problems: [] });
  });

  it('without a timestamp the same signature is refused once the certificate has expired', async () => {
    const env = await jwsEnvelope({ signer, chain, target, signingTime: NOW });
    const v = verifyJwsEnvelope(env, anchors, AFTER_EXPIRY);
    expect(v.authenticTimestamp).toBe(false);
    expect(v.problems.map((p) => p.reason).join()).toMatch(/is not valid at verification time .* and no trusted timestamp proves the signature older/);
  });

  it('with a tsa store and verifyTimestamp always, a signature without a timestamp fails authentic timestamp; afterCertExpiry waits for expiry', async () => {
    const env = await jwsEnvelope({ signer, chain, target, signingTime: NOW });
    expect(verifyJwsEnvelope(env, anchors, NOW, tsaPolicy('always')).problems).toEqual([{ check: 'authenticTimestamp', reason: 'the policy names a tsa trust store but the signature has no timestamp countersignature' }]);
    expect(verifyJwsEnvelope(env, anchors, NOW, tsaPolicy('afterCertExpiry')).authenticTimestamp).toBe(true);
    expect(verifyJwsEnvelope(env, anchors, AFTER_EXPIRY, tsaPolicy('afterCertExpiry')).authenticTimestamp).toBe(false);
  });

  it.each<[string, () => Promise<Buffer>, RegExp]>([
    ['a TSA outside the tsa trust store', async () => withJwsTimestamp(await jwsEnvelope({ signer, chain, target }), stamp(otherTsa, otherTsaRoot)), /does not reach a certificate of the tsa trust store|no issuer of/],
    ['a timestamp of other bytes', async () => withJwsTimestamp(await jwsEnvelope({ signer, chain, target }), (sig) => stamp()(Buffer.concat([sig, Buffer.from('x')]))), /messageImprint differs/],
    [
      'an altered countersignature',
      async () =>
        withJwsTimestamp(await jwsEnvelope({ signer, chain, target }), (sig) => {
          const t = stamp()(sig);
          t[t.length - 3] = t[t.length - 3]! ^ 0x01; // inside the signature value, the token's last field
          return t;
        }),
      /countersignature does not verify|malformed|not/,
    ],
    ['a TSA certificate without keyUsage', async () => withJwsTimestamp(await jwsEnvelope({ signer, chain, target }), stamp(sloppyTsa)), /timestamping leaf certificate .*the keyUsage extension must be present/],
    ['bytes that are no timestamp token', async () => withJwsTimestamp(await jwsEnvelope({ signer, chain, target }), () => Buffer.from('not a token')), /./],
  ])('refuses %s (authenticTimestamp)', async (_n, make, reason) => {
    const v = verifyJwsEnvelope(await make(), anchors, AFTER_EXPIRY, tsaPolicy());
    expect(v.authenticTimestamp).toBe(false);
    expect(v.timestamp).toBeUndefined();
    expect(v.problems.filter((p) => p.check === 'authenticTimestamp').map((p) => p.reason).join()).toMatch(reason);
  });

  it('a timestamp after the signing certificate expired proves nothing', async () => {
    const late = acme.issue('late', '/C=US/ST=WA/O=acme/CN=late', LEAF_EXT, { notBefore: new Date(Date.now() - 7200e3), notAfter: new Date(Date.now() - 3600e3) });
    const env = withJwsTimestamp(await jwsEnvelope({ signer: late, chain: [derB64(late.cert), derB64(acme.cert)], target, signingTime: new Date(Date.now() - 5400e3) }), stamp());
    const v = verifyJwsEnvelope(env, anchors, NOW, tsaPolicy());
    expect(v.authenticTimestamp).toBe(false);
    expect(v.problems).toContainEqual({ check: 'authenticTimestamp', reason: expect.stringMatching(/^the timestamp .* \(±1500 ms\) is not within the validity of certificate .*CN=late/) });
  });

  it('verifies the token on its own: genTime, accuracy and chain; imprint with SHA-384 too', () => {
    const sig = createHash('sha256').update('s').digest();
    const t = verifyTimestampToken(timestampToken(dir, tsa, [tsa.cert, tsaRoot.cert], sig, 'sha384'), sig, tsaAnchors);
    expect(t).toMatchObject({ accuracyMs: 1500 });
    expect(verifyTimestampToken(timestampToken(dir, tsa, [tsa.cert, tsaRoot.cert], sig), sig, [])).toEqual({ problem: 'the tsa trust store holds no certificates' });
  });
});
