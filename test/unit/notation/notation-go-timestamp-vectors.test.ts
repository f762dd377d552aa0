// notation-go's own timestamped signatures (test/fixtures/notation-go/SOURCE.md, "timestamp"): JWS and
// COSE envelopes countersigned by a public TSA (GlobalSign), whose signing certificate expired in 2024,
// verified with notation-go's trust stores as its verifier/timestamp_test.go does (authentic timestamp;
// revocation of the TSA chain is not asked here: it would need the TSA's public responders).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { verifyCoseEnvelope } from '../../../src/signatures/notation/cose-envelope.js';
import { verifyJwsEnvelope } from '../../../src/signatures/notation/jws-envelope.js';
import { loadTrustStore } from '../../../src/signatures/notation/trust-store.js';

const DIR = fileURLToPath(new URL('../../fixtures/notation-go/timestamp/', import.meta.url));
const NOW = new Date('2026-11-24T00:00:00Z'); // after the signing certificates expired (2024-06-18)
const stores = async () => ({
  ca: await loadTrustStore(DIR + 'truststore', { type: 'ca', name: 'timestamp-signers' }),
  tsa: await loadTrustStore(DIR + 'truststore', { type: 'tsa', name: 'test-timestamp' }),
  mismatch: await loadTrustStore(DIR + 'truststore', { type: 'tsa', name: 'test-mismatch' }),
});
const verify = (f: string, anchors: Awaited<ReturnType<typeof stores>>['ca'], tsa: typeof anchors | undefined, now = NOW) =>
  (f.startsWith('cose') || f === 'timestampAfterNotAfter.sig' ? verifyCoseEnvelope : verifyJwsEnvelope)(readFileSync(DIR + f), anchors, now, tsa ? { tsa: { anchors: tsa, verifyTimestamp: 'always' } } : {});
const tsProblems = (v: ReturnType<typeof verify>) => v.problems.filter((p) => p.check === 'authenticTimestamp').map((p) => p.reason);

describe("notation-go's timestamped signatures", () => {
  it.each(['jwsWithTimestamp.sig', 'coseWithTimestamp.sig', 'jwsExpiredWithTimestamp.sig', 'coseExpiredWithTimestamp.sig'])('%s: the timestamp proves the signature was made while the certificate was valid', async (f) => {
    const s = await stores();
    const v = verify(f, s.ca, s.tsa);
    expect(tsProblems(v)).toEqual([]);
    // (notation-go's test asks only for the authentic timestamp: the expired vectors' signer is in none of its stores)
    expect(v).toMatchObject({ integrity: true, authenticTimestamp: true, ...(f.includes('Expired') ? {} : { authenticity: true }) });
    expect(v.timestamp!.tsaChain.length).toBeGreaterThan(1);
  });

  it('the same signatures without a tsa store: the expired signing certificate fails authentic timestamp', async () => {
    const s = await stores();
    expect(tsProblems(verify('coseExpiredWithTimestamp.sig', s.ca, undefined)).join()).toMatch(/is not valid at verification time/);
  });

  it('a tsa store that does not hold the TSA’s root: refused', async () => {
    const s = await stores();
    expect(tsProblems(verify('jwsWithTimestamp.sig', s.ca, s.mismatch)).join()).toMatch(/does not reach a certificate of the tsa trust store|no issuer of/);
  });

  it('withoutTimestamp.sig under a policy with a tsa store: no countersignature', async () => {
    const s = await stores();
    const v = verify('withoutTimestamp.sig', [], s.tsa);
    expect(tsProblems(v)).toContain('the policy names a tsa trust store but the signature has no timestamp countersignature');
  });

  it.each([
    ['timestampBeforeNotBefore.sig', /is not within the validity of certificate .*CN=testTSA/],
    ['timestampAfterNotAfter.sig', /is not within the validity of certificate .*CN=testTSA/],
  ])('%s: a timestamp outside the signing certificate’s validity is refused', async (f, reason) => {
    const s = await stores();
    const v = verify(f, [], s.tsa);
    expect(v.authenticTimestamp).toBe(false);
    expect(tsProblems(v).join()).toMatch(reason);
  });
});
