// Signatures made by notation-go's own test suite (test/fixtures/notation-go/SOURCE.md), verified by
// trustgate's independent implementation with notation-go's own trust store.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { verifyCoseEnvelope } from '../../../src/signatures/notation/cose-envelope.js';
import { verifyJwsEnvelope } from '../../../src/signatures/notation/jws-envelope.js';
import { loadTrustStore } from '../../../src/signatures/notation/trust-store.js';

const DIR = fileURLToPath(new URL('../../fixtures/notation-go/', import.meta.url));
const file = (f: string) => readFileSync(DIR + f);
const SAMPLE = { mediaType: 'application/vnd.docker.distribution.manifest.v2+json', digest: 'sha256:60043cf45eaebc4c0867fea485a039b598f52fd09fd5b07b0b2d2f88fad9d74e', size: 528 };
const NOW = new Date('2026-11-24T00:00:00Z');

describe("notation-go's test signatures", () => {
  it("loads notation-go's valid trust store (CA and self-signed certificates)", async () => {
    expect(await loadTrustStore(DIR + 'truststore', { type: 'ca', name: 'valid-trust-store' })).toHaveLength(3);
  });

  it.each(['ca_valid_sig_env.json', 'sa_valid_sig_env.json'])('%s verifies: integrity, chain to the trust store, the sample descriptor', async (f) => {
    const anchors = await loadTrustStore(DIR + 'truststore', { type: 'ca', name: 'valid-trust-store' });
    const v = verifyJwsEnvelope(file(f), anchors, NOW);
    expect(v).toMatchObject({ integrity: true, authenticity: true, expiryOk: true, target: SAMPLE });
  });

  it('ca_expired_sig_env.json verifies but has expired', async () => {
    const anchors = await loadTrustStore(DIR + 'truststore', { type: 'ca', name: 'valid-trust-store' });
    const v = verifyJwsEnvelope(file('ca_expired_sig_env.json'), anchors, NOW);
    expect(v).toMatchObject({ integrity: true, expiryOk: false });
    expect(v.expiry?.toISOString()).toBe('2022-07-29T23:59:00.000Z');
  });

  it('ca_invalid_sig_env.json is refused', () => {
    expect(() => verifyJwsEnvelope(file('ca_invalid_sig_env.json'), [], NOW)).toThrow(expect.objectContaining({ code: 'MALFORMED' }));
  });

  it('the JWS and COSE signatures of the same artifact both verify, against their own self-signed signer', () => {
    const jws = verifyJwsEnvelope(file('jws_signature.sig'), [], NOW);
    const anchors = [jws.chain[jws.chain.length - 1]!];
    const a = verifyJwsEnvelope(file('jws_signature.sig'), anchors, NOW);
    const b = verifyCoseEnvelope(file('cose_signature.sig'), anchors, NOW);
    for (const v of [a, b]) expect(v).toMatchObject({ integrity: true, authenticity: true, target: { digest: 'sha256:19dbd2e48e921426ee8ace4dc892edfb2ecdc1d1a72d5416c83670c30acecef0', size: 481 } });
  });
});
