// The checks both Notary Project envelope formats (JWS, COSE_Sign1) share once their format-specific
// parsing is done. Two stages:
//   inspectEnvelope: what depends only on the envelope's bytes — the signature over the signing input
//     with the leaf key, the algorithm matching that key, the certificate requirements of the chain,
//     expiry after signing time. notation-go reports all of these as integrity failures (its envelope
//     Verify), and so do we. Cacheable by signature digest.
//   evaluateEnvelope: what depends on the trust store and the clock — the chain reaching a trust
//     anchor, validity of the chain (at verification time, the authentic signing time or a trusted
//     timestamp's range), expiry.
// Each failure is reported with its check, not thrown: the trust policy decides which are fatal
// (verdict.ts).
import { constants, createHash, verify as cryptoVerify, type X509Certificate } from 'node:crypto';
import { chainProblems, keySpecOf } from './cert-requirements.js';
import type { Check } from './trust-policy.js';
import { verifyTimestampToken, type VerifiedTimestamp } from './timestamp.js';
import { certInfo, subjectLine, within } from './x509.js';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

export interface SignatureAlgorithm {
  name: string;
  hash: string;
  kind: 'ec' | 'pss';
  curve?: string;
  width?: number;
}

/** The Notary Project's algorithms (signature-specification.md "Algorithm Selection"), by JOSE name. */
export const ALGORITHMS: Record<string, SignatureAlgorithm> = {
  ES256: { name: 'ES256', hash: 'sha256', kind: 'ec', curve: 'prime256v1', width: 32 },
  ES384: { name: 'ES384', hash: 'sha384', kind: 'ec', curve: 'secp384r1', width: 48 },
  ES512: { name: 'ES512', hash: 'sha512', kind: 'ec', curve: 'secp521r1', width: 66 },
  PS256: { name: 'PS256', hash: 'sha256', kind: 'pss' },
  PS384: { name: 'PS384', hash: 'sha384', kind: 'pss' },
  PS512: { name: 'PS512', hash: 'sha512', kind: 'pss' },
};

export const SIGNING_SCHEME_X509 = 'notary.x509';
export const SIGNING_SCHEME_SA = 'notary.x509.signingAuthority';

export interface Problem {
  check: Check;
  reason: string;
}

export interface ParsedEnvelope {
  alg: SignatureAlgorithm;
  /** The exact bytes that were signed (JWS: protected.payload; COSE: the Sig_structure). */
  input: Buffer;
  signature: Buffer;
  chain: X509Certificate[];
  target: Descriptor;
  scheme: string;
  /** Signing time (notary.x509) or authentic signing time (notary.x509.signingAuthority). */
  signingTime: Date;
  expiry?: Date | undefined;
  /** The RFC 3161 TimeStampToken of the unsigned attribute io.cncf.notary.timestampSignature. */
  timestampToken?: Buffer | undefined;
}

/** An envelope with its trust-independent checks done. */
export interface InspectedEnvelope {
  target: Descriptor;
  signingScheme: string;
  signingTime: Date;
  expiry?: Date | undefined;
  /** Leaf first. */
  chain: X509Certificate[];
  /** The primitive signature (what a timestamp countersigns). */
  signature: Buffer;
  timestampToken?: Buffer | undefined;
  /** Integrity failures: signature, algorithm, certificate requirements. Empty when intact. */
  integrityProblems: string[];
}

export interface EvaluateOptions {
  /** Trust anchors of the store type the signing scheme uses (ca, or signingAuthority). */
  anchors: readonly X509Certificate[];
  /** Present when the policy names a tsa trust store: timestamp verification is then triggered. */
  tsa?: { anchors: readonly X509Certificate[]; verifyTimestamp: 'always' | 'afterCertExpiry' } | undefined;
  now: Date;
}

export interface EnvelopeVerification extends InspectedEnvelope {
  /** The signature verifies with the leaf's key and the chain meets the certificate requirements. */
  integrity: boolean;
  /** A certificate of the chain is in the trust store. */
  authenticity: boolean;
  /** The chain was valid when the signature was made, as far as can be proven (see evaluateEnvelope). */
  authenticTimestamp: boolean;
  /** No expiry, or `now` is before it. */
  expiryOk: boolean;
  /** The trust store certificate the chain reached. */
  anchor?: X509Certificate | undefined;
  /** A verified timestamp countersignature, when one was checked and holds. */
  timestamp?: VerifiedTimestamp | undefined;
  problems: Problem[];
}

export function inspectEnvelope(e: ParsedEnvelope): InspectedEnvelope {
  const { alg, input, signature: sig, chain, signingTime, expiry } = e;
  const integrityProblems: string[] = [];
  const leaf = chain[0]!;
  // "The signing certificate's public key algorithm and size MUST be used to determine the signature
  // algorithm" (JWS: `alg` must match it, which also stops algorithm substitution).
  const spec = keySpecOf(leaf);
  if (spec && spec.alg !== alg.name) integrityProblems.push(`the signature algorithm ${alg.name} is not the one the signing key (${spec.name}) determines, ${spec.alg} (Algorithm Selection)`);
  let verified = false;
  try {
    const key = leaf.publicKey;
    if (alg.kind === 'ec') {
      verified = key.asymmetricKeyDetails?.namedCurve === alg.curve && sig.length === 2 * alg.width! && cryptoVerify(alg.hash, input, { key, dsaEncoding: 'ieee-p1363' }, sig);
    } else {
      const saltLength = createHash(alg.hash).digest().length; // PSS salt = hash length (RFC 7518 3.5)
      verified = key.asymmetricKeyType === 'rsa' && cryptoVerify(alg.hash, input, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength }, sig);
    }
  } catch {
    verified = false;
  }
  if (!verified) integrityProblems.push('the signature does not verify with the signing certificate');
  integrityProblems.push(...chainProblems(chain, 'codeSigning'));
  if (expiry !== undefined && expiry <= signingTime) integrityProblems.push('the expiry is not after the signing time');
  return { target: e.target, signingScheme: e.scheme, signingTime, expiry, chain, signature: sig, timestampToken: e.timestampToken, integrityProblems };
}

const iso = (d: Date) => d.toISOString();

export function evaluateEnvelope(v: InspectedEnvelope, o: EvaluateOptions): EnvelopeVerification {
  const problems: Problem[] = v.integrityProblems.map((reason) => ({ check: 'integrity', reason }));
  const { chain, now } = { chain: v.chain, now: o.now };

  // Authenticity: as notation-core-go's VerifyAuthenticity, a certificate of the trust store anywhere
  // in the chain (so a site may trust an intermediate CA); the chain itself was checked above.
  const anchor = chain.find((c) => o.anchors.some((a) => a.raw.equals(c.raw)));
  if (!anchor) {
    problems.push({
      check: 'authenticity',
      reason: o.anchors.length === 0 ? 'the policy has no trusted certificates for this signing scheme' : 'no certificate of the chain is in the trust store',
    });
  }

  // Authentic timestamp (trust-store-trust-policy.md "Signature Verification" step 6).
  let timestamp: VerifiedTimestamp | undefined;
  const before = problems.length;
  if (v.signingScheme === SIGNING_SCHEME_SA) {
    for (const c of chain) if (!within(c, v.signingTime)) problems.push({ check: 'authenticTimestamp', reason: `certificate ${subjectLine(c)} was not valid at the authentic signing time ${iso(v.signingTime)}` });
  } else {
    for (const c of chain) if (!within(c, v.signingTime)) problems.push({ check: 'authenticTimestamp', reason: `certificate ${subjectLine(c)} was not valid at the signing time ${iso(v.signingTime)} (Certificate Requirements → Other requirements)` });
    const expiredNow = chain.some((c) => now > certInfo(c).notAfter);
    const trigger = o.tsa !== undefined && (o.tsa.verifyTimestamp === 'always' || expiredNow);
    if (trigger) {
      if (!v.timestampToken || v.timestampToken.length === 0) problems.push({ check: 'authenticTimestamp', reason: 'the policy names a tsa trust store but the signature has no timestamp countersignature' });
      else {
        const r = verifyTimestampToken(v.timestampToken, v.signature, o.tsa!.anchors);
        if ('problem' in r) problems.push({ check: 'authenticTimestamp', reason: `timestamp countersignature: ${r.problem}` });
        else {
          // The whole [lower, upper] range of the stamped time must lie within each certificate's validity.
          const bad = chain.filter((c) => r.lower < certInfo(c).notBefore || r.upper > certInfo(c).notAfter);
          for (const c of bad) problems.push({ check: 'authenticTimestamp', reason: `the timestamp ${iso(r.genTime)} (±${r.accuracyMs} ms) is not within the validity of certificate ${subjectLine(c)}` });
          if (bad.length === 0) timestamp = r;
        }
      }
    } else {
      // No timestamp to rely on: every certificate must be valid now.
      for (const c of chain) if (!within(c, now)) problems.push({ check: 'authenticTimestamp', reason: `certificate ${subjectLine(c)} is not valid at verification time ${iso(now)} (valid ${iso(certInfo(c).notBefore)} to ${iso(certInfo(c).notAfter)}) and no trusted timestamp proves the signature older` });
    }
  }
  const authenticTimestamp = problems.length === before;
  const expiryOk = v.expiry === undefined || now < v.expiry;
  if (!expiryOk) problems.push({ check: 'expiry', reason: `the signature expired at ${iso(v.expiry!)}` });
  return {
    ...v,
    integrity: v.integrityProblems.length === 0,
    authenticity: anchor !== undefined,
    authenticTimestamp,
    expiryOk,
    anchor,
    timestamp,
    problems,
  };
}

/**
 * A certificate subject as attribute → value, as notation matches trusted identities. An attribute
 * the subject repeats maps to undefined, so no identity naming it can match by accident.
 */
export function subjectOf(cert: X509Certificate): Map<string, string | undefined> {
  const m = new Map<string, string | undefined>();
  for (const [k, v] of certInfo(cert).subject) m.set(k, m.has(k) ? undefined : v);
  return m;
}
